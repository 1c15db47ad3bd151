// Card entry with Stripe Elements: the card number goes from the browser to
// Stripe, and only the PaymentMethod id (pm_…) reaches the gateway.
// Loaded with React.lazy, only when VITE_STRIPE_PUBLISHABLE_KEY is set.
import { CardElement, Elements, useElements, useStripe } from "@stripe/react-stripe-js";
import { type FormEvent, useState } from "react";

import { getStripe } from "./stripe";

interface Props {
  publishableKey: string;
  busy: boolean;
  /** Called with the new PaymentMethod's id, to pass to addPaymentMethod. */
  onToken(paymentMethodId: string): void;
}

function CardForm({ busy, onToken }: Omit<Props, "publishableKey">) {
  const stripe = useStripe();
  const elements = useElements();
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const card = elements?.getElement(CardElement);
    if (!stripe || !card) return; // Stripe.js is still loading
    setError(null);
    const result = await stripe.createPaymentMethod({ type: "card", card });
    if (result.error) {
      setError(result.error.message ?? "The card was not accepted.");
    } else {
      onToken(result.paymentMethod.id);
    }
  }

  return (
    <form onSubmit={submit} className="stripe-card-form">
      <div className="stripe-card">
        <CardElement options={{ hidePostalCode: true }} />
      </div>
      <button type="submit" disabled={!stripe || busy}>
        Add card
      </button>
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export default function StripeCardForm({ publishableKey, ...props }: Props) {
  return (
    <Elements stripe={getStripe(publishableKey)}>
      <CardForm {...props} />
    </Elements>
  );
}
