// Add a card: one of the sandbox's test tokens, or (with a Stripe publishable
// key configured) a real card entered in Stripe Elements.
import { type FormEvent, Suspense, lazy, useState } from "react";
import { useMutation } from "urql";

import { ADD_PAYMENT_METHOD } from "../api/documents";
import { type Problem, describeError } from "../api/errors";
import type { UserError } from "../api/types";
import { stripePublishableKey } from "../config";
import { TEST_CARDS } from "../payments/testCards";
import { useSession } from "../session";
import { ProblemNotice, UserErrorList } from "./Notice";

const StripeCardForm = lazy(() => import("../payments/StripeCardForm"));

interface Props {
  customerId: string;
  /** A first card is made primary unless the user says otherwise. */
  hasCards: boolean;
  onAdded(): void;
}

export function AddPaymentMethod({ customerId, hasCards, onAdded }: Props) {
  const { endpoints } = useSession();
  const publishableKey = stripePublishableKey();
  const [testToken, setTestToken] = useState(TEST_CARDS[0]?.token ?? "");
  const [makePrimary, setMakePrimary] = useState(!hasCards);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [userErrors, setUserErrors] = useState<UserError[]>([]);
  const [state, addPaymentMethod] = useMutation(ADD_PAYMENT_METHOD);

  async function add(token: string) {
    setProblem(null);
    setUserErrors([]);
    const result = await addPaymentMethod({ customer: customerId, token, makePrimary });
    if (result.error) {
      setProblem(describeError(result.error, endpoints.origin));
      return;
    }
    const payload = result.data?.addPaymentMethod;
    setUserErrors(payload?.userErrors ?? []);
    if (payload?.paymentMethod) onAdded();
  }

  function submitTestCard(event: FormEvent) {
    event.preventDefault();
    void add(testToken);
  }

  const primaryBox = (
    <label className="checkbox">
      <input
        type="checkbox"
        data-testid="make-primary"
        checked={makePrimary}
        onChange={(e) => setMakePrimary(e.target.checked)}
      />
      Make it the primary payment method
    </label>
  );

  return (
    <div className="add-card" data-testid="add-card">
      <h3>Add a payment method</h3>
      {publishableKey ? (
        <>
          {primaryBox}
          <Suspense fallback={<p>Loading Stripe…</p>}>
            <StripeCardForm publishableKey={publishableKey} busy={state.fetching} onToken={(id) => void add(id)} />
          </Suspense>
        </>
      ) : (
        <form onSubmit={submitTestCard}>
          <label>
            Sandbox test card
            <select data-testid="test-card" value={testToken} onChange={(e) => setTestToken(e.target.value)}>
              {TEST_CARDS.map((card) => (
                <option key={card.token} value={card.token}>
                  {card.token}: {card.label}
                </option>
              ))}
            </select>
          </label>
          {primaryBox}
          <button type="submit" disabled={state.fetching}>
            {state.fetching ? "Adding…" : "Add card"}
          </button>
        </form>
      )}
      <ProblemNotice problem={problem} />
      <UserErrorList errors={userErrors} />
    </div>
  );
}
