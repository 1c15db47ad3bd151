// Billing details: the cards on file, which one is primary, and changes to them.
import { useState } from "react";
import { useMutation } from "urql";

import { REMOVE_PAYMENT_METHOD, SET_PRIMARY_PAYMENT_METHOD } from "../api/documents";
import { type Problem, describeError } from "../api/errors";
import type { BillingDetails, PaymentMethod, UserError } from "../api/types";
import { describeCard } from "../format";
import { useSession } from "../session";
import { AddPaymentMethod } from "./AddPaymentMethod";
import { ProblemNotice, UserErrorList } from "./Notice";

interface Props {
  customerId: string;
  billing: BillingDetails;
  onChanged(): void;
}

export function BillingPanel({ customerId, billing, onChanged }: Props) {
  const { endpoints } = useSession();
  const [problem, setProblem] = useState<Problem | null>(null);
  const [userErrors, setUserErrors] = useState<UserError[]>([]);
  const [confirmingRemoval, setConfirmingRemoval] = useState<string | null>(null);
  const [setPrimaryState, setPrimary] = useMutation(SET_PRIMARY_PAYMENT_METHOD);
  const [removeState, remove] = useMutation(REMOVE_PAYMENT_METHOD);
  const busy = setPrimaryState.fetching || removeState.fetching;

  async function run(action: typeof setPrimary | typeof remove, method: PaymentMethod) {
    setProblem(null);
    setUserErrors([]);
    setConfirmingRemoval(null);
    const result = await action({ customer: customerId, paymentMethodId: method.id });
    if (result.error) {
      setProblem(describeError(result.error, endpoints.origin));
      return;
    }
    const data = result.data;
    const payload =
      data && ("setPrimaryPaymentMethod" in data ? data.setPrimaryPaymentMethod : data.removePaymentMethod);
    setUserErrors(payload?.userErrors ?? []);
    onChanged();
  }

  return (
    <>
      {billing.paymentMethods.length === 0 ? (
        <p>No payment method on file: add one before buying.</p>
      ) : (
        <ul className="cards" data-testid="payment-methods">
          {billing.paymentMethods.map((method) => (
            <li
              key={method.id}
              data-testid="payment-method"
              data-last4={method.last4}
              data-primary={method.isPrimary ? "true" : "false"}
            >
              <span className="card-name">{describeCard(method)}</span>
              <span className="card-expiry">
                expires {String(method.expMonth).padStart(2, "0")}/{method.expYear}
              </span>
              {method.isPrimary ? (
                <span className="badge badge-primary">Primary</span>
              ) : (
                <button type="button" disabled={busy} onClick={() => void run(setPrimary, method)}>
                  Make primary
                </button>
              )}
              {confirmingRemoval === method.id ? (
                <span className="confirm">
                  Remove {describeCard(method)}?{" "}
                  <button type="button" className="danger" disabled={busy} onClick={() => void run(remove, method)}>
                    Yes, remove
                  </button>
                  <button type="button" onClick={() => setConfirmingRemoval(null)}>
                    Keep
                  </button>
                </span>
              ) : (
                <button type="button" className="link" disabled={busy} onClick={() => setConfirmingRemoval(method.id)}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <ProblemNotice problem={problem} />
      <UserErrorList errors={userErrors} />
      <AddPaymentMethod customerId={customerId} hasCards={billing.paymentMethods.length > 0} onAdded={onChanged} />
    </>
  );
}
