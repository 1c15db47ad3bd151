// Stripe.js, only when a publishable key is configured: the `pure` entry
// point does not inject Stripe's script on import, and this module is reached
// through dynamic import() only, so a sandbox dashboard never loads it.
import type { Stripe } from "@stripe/stripe-js";
import { loadStripe } from "@stripe/stripe-js/pure";

let stripe: Promise<Stripe | null> | null = null;

/** The page's one Stripe instance (Stripe.js wants exactly one). */
export function getStripe(publishableKey: string): Promise<Stripe | null> {
  stripe ??= loadStripe(publishableKey);
  return stripe;
}

/** Finish 3-D Secure for a payment the gateway confirmed server-side (the
 * order is REQUIRES_ACTION with a clientSecret). The gateway learns the
 * result from Stripe's webhook; the live order list shows it. */
export async function handleNextAction(publishableKey: string, clientSecret: string): Promise<string | null> {
  const instance = await getStripe(publishableKey);
  if (instance === null) return "Stripe.js could not be loaded.";
  const result = await instance.handleNextAction({ clientSecret });
  return result.error ? (result.error.message ?? "Authentication failed.") : null;
}
