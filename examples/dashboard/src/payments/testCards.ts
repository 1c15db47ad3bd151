// Stripe's test payment-method tokens, which the gateway's sandbox provider
// honours as Stripe does in test mode (payments/test_cards.py).
export interface TestCard {
  token: string;
  label: string;
}

export const TEST_CARDS: readonly TestCard[] = [
  { token: "pm_card_visa", label: "Visa 4242: succeeds" },
  { token: "pm_card_mastercard", label: "Mastercard 4444: succeeds" },
  { token: "pm_card_amex", label: "Amex 8431: succeeds" },
  { token: "pm_card_visa_chargeDeclined", label: "Visa 0002: declined when added" },
  { token: "pm_card_chargeCustomerFail", label: "Visa 0341: added, every charge declined" },
  { token: "pm_card_authenticationRequired", label: "Visa 3155: charges need 3-D Secure" },
];
