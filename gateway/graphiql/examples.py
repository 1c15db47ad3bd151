"""What GraphiQL's editor holds on a first visit: README's "A first session"
as one document of named operations, with its variables and headers.

One document rather than a tab per operation because GraphiQL keeps headers
per tab and they are never stored: the token is pasted once, not once a tab.
"""

from __future__ import annotations

__all__ = ["EXAMPLE_HEADERS", "EXAMPLE_OPERATIONS", "EXAMPLE_VARIABLES", "TOKEN_PLACEHOLDER"]

TOKEN_PLACEHOLDER = "paste-your-token-here"

EXAMPLE_OPERATIONS = """\
# Partner Billing Gateway: a first session
#
# 1. Headers (below): paste a token in place of the
#    placeholder. It is never stored: reloading forgets it.
# 2. Run Viewer: ▶ asks which operation to run, and
#    Ctrl-Enter runs the one under the cursor. Copy a
#    customer id into Variables as "c".
# 3. Run ProductsAndCatalog; copy a product id into "p".
# 4. Run AddCard (the sandbox takes Stripe's test tokens:
#    pm_card_visa, pm_card_visa_chargeDeclined,
#    pm_card_authenticationRequired, …), PurchaseSummary,
#    then BuyLicenses; copy the order id into "o". The same
#    "key" returns the first order; a new key buys again.
# 5. Run PaymentConfirmation: the order's status, live.

query Viewer {
  viewer { email role partner { name } }
  customers(first: 10) { edges { node { id name } } }
}

query ProductsAndCatalog($c: ID!) {
  products(actingCustomer: $c) {
    id plan { name } billingInterval
    totalLicenses assignedLicenses availableLicenses
    status currentPeriodEnd renewsAt scheduledLicenses
  }
  catalog(actingCustomer: $c) {
    id name kind storageGb
    monthly: price(interval: MONTHLY) { amount currency }
    yearly: price(interval: YEARLY) { amount currency }
  }
}

mutation AddCard($c: ID!) {
  addPaymentMethod(
    actingCustomer: $c
    input: {paymentMethodToken: "pm_card_visa", makePrimary: true}
  ) {
    paymentMethod { id brand last4 isPrimary }
    userErrors { field code message }
  }
}

query PurchaseSummary($c: ID!, $p: ID!) {
  licensePurchaseSummary(
    actingCustomer: $c
    input: {productId: $p, quantity: 5}
  ) {
    lines { description quantity unitPrice { amount } amount { amount } }
    total { amount currency }
  }
}

mutation BuyLicenses($c: ID!, $p: ID!, $key: String!) {
  buyLicenses(
    actingCustomer: $c
    input: {productId: $p, quantity: 5, idempotencyKey: $key}
  ) {
    order { id status total { amount currency } }
    userErrors { field code message }
  }
}

subscription PaymentConfirmation($c: ID!, $o: ID!) {
  paymentConfirmation(actingCustomer: $c, orderId: $o) {
    status occurredAt order { status total { amount } }
  }
}
"""

EXAMPLE_VARIABLES = """\
{
  "c": "a customer id, from Viewer",
  "p": "a product id, from ProductsAndCatalog",
  "key": "first-purchase",
  "o": "an order id, from BuyLicenses"
}
"""

EXAMPLE_HEADERS = f"""\
{{
  "Authorization": "Bearer {TOKEN_PLACEHOLDER}"
}}
"""
