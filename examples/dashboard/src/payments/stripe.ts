// Stripe.js, only when a publishable key is configured: the `pure` entry
// point does not inject Stripe's script on import, and this module is reached
// through dynamic import() only, so a sandbox dashboard never loads it.
import type { PaymentIntent, Stripe } from "@stripe/stripe-js";
import { loadStripe } from "@stripe/stripe-js/pure";

let stripe: Promise<Stripe | null> | null = null;

/** The page's one Stripe instance (Stripe.js wants exactly one). */
export function getStripe(publishableKey: string): Promise<Stripe | null> {
  stripe ??= loadStripe(publishableKey);
  return stripe;
}

function paymentMethodId(intent: PaymentIntent): string | null {
  const method = intent.last_payment_error?.payment_method ?? intent.payment_method;
  if (method === null || method === undefined) return null;
  return typeof method === "string" ? method : method.id;
}

/** Finish 3-D Secure for an order in REQUIRES_ACTION, from its clientSecret.
 * Returns the error to show, or null. The gateway learns the result from
 * Stripe's webhook, and the live order list shows it.
 *
 * The gateway charges off-session, so Stripe leaves the PaymentIntent either
 * in requires_action (handleNextAction) or in requires_payment_method with an
 * authentication_required error (confirm it again with the same card, which
 * brings up the challenge): the same two cases as the README's example. */
export async function authenticatePayment(publishableKey: string, clientSecret: string): Promise<string | null> {
  const instance = await getStripe(publishableKey);
  if (instance === null) return "Stripe.js could not be loaded.";
  const retrieved = await instance.retrievePaymentIntent(clientSecret);
  if (retrieved.error) return retrieved.error.message ?? "The payment could not be read from Stripe.";
  const intent = retrieved.paymentIntent;
  let result;
  if (intent.status === "requires_action") {
    result = await instance.handleNextAction({ clientSecret });
  } else {
    const method = paymentMethodId(intent);
    if (method === null) return "This payment has no card to authenticate.";
    result = await instance.confirmCardPayment(clientSecret, { payment_method: method });
  }
  return result.error ? (result.error.message ?? "Authentication failed.") : null;
}
