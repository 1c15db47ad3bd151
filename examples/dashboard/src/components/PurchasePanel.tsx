// Buy licenses, or add or upgrade a cloud-storage plan: choose, review the
// gateway's order summary, then pay. The order then appears in the live list.
import { type FormEvent, useState } from "react";
import { useClient, useMutation } from "urql";

import { BUY_LICENSES, LICENSE_PURCHASE_SUMMARY, STORAGE_UPGRADE_SUMMARY, UPGRADE_STORAGE } from "../api/documents";
import { type Problem, describeError } from "../api/errors";
import type {
  BillingInterval,
  BuyLicensesInput,
  CatalogPlan,
  Order,
  OrderPayload,
  OrderStatus,
  OrderSummary,
  PaymentMethod,
  Product,
  UpgradeStorageInput,
  UserError,
} from "../api/types";
import { STATUS_LABELS, describeCard, formatMoney } from "../format";
import { newIdempotencyKey } from "../payments/idempotency";
import { useSession } from "../session";
import { ProblemNotice, UserErrorList } from "./Notice";
import { OrderSummaryView } from "./OrderSummaryView";

type Purchase = { kind: "licenses"; input: BuyLicensesInput } | { kind: "storage"; input: UpgradeStorageInput };

/** A reviewed purchase and the key that makes paying for it safe to repeat. */
interface Attempt {
  purchase: Purchase;
  summary: OrderSummary;
  idempotencyKey: string;
  /** What "Pay" got back; null until the gateway answered. */
  outcome: { order: Order | null; userErrors: UserError[] } | null;
}

interface Props {
  customerId: string;
  products: readonly Product[];
  catalog: readonly CatalogPlan[];
  paymentMethods: readonly PaymentMethod[];
  onOrder(order: Order): void;
  /** An order's status as the live list knows it now. */
  statusOf(orderId: string): OrderStatus | undefined;
}

const MAX_QUANTITY = 10_000;

interface LicenseCountProps {
  label: string;
  testId: string;
  value: number;
  onChange(value: number): void;
}

/** A number of licenses, 1 to 10,000 as the gateway takes them. */
function LicenseCount({ label, testId, value, onChange }: LicenseCountProps) {
  return (
    <label>
      {label}
      <input
        type="number"
        data-testid={testId}
        min={1}
        max={MAX_QUANTITY}
        value={value}
        onChange={(e) => onChange(e.target.valueAsNumber)}
      />
    </label>
  );
}

export function PurchasePanel({ customerId, products, catalog, paymentMethods, onOrder, statusOf }: Props) {
  const { endpoints } = useSession();
  const client = useClient();
  const [tab, setTab] = useState<"licenses" | "storage">("licenses");
  const storagePlans = catalog.filter((plan) => plan.kind === "CLOUD_STORAGE");
  const [productId, setProductId] = useState(products[0]?.id ?? "");
  const [quantity, setQuantity] = useState(1);
  const [planId, setPlanId] = useState(storagePlans[0]?.id ?? "");
  const [licenses, setLicenses] = useState(1);
  const [interval, setBillingInterval] = useState<BillingInterval>("MONTHLY");
  const [paymentMethodId, setPaymentMethodId] = useState(""); // "": the primary method
  const [attempt, setAttempt] = useState<Attempt | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [reviewing, setReviewing] = useState(false);
  const [buyState, buyLicenses] = useMutation(BUY_LICENSES);
  const [upgradeState, upgradeStorage] = useMutation(UPGRADE_STORAGE);
  const paying = buyState.fetching || upgradeState.fetching;

  function purchase(): Purchase {
    const method = paymentMethodId || null;
    return tab === "licenses"
      ? { kind: "licenses", input: { productId, quantity, paymentMethodId: method } }
      : { kind: "storage", input: { planId, licenses, billingInterval: interval, paymentMethodId: method } };
  }

  async function review(event: FormEvent) {
    event.preventDefault();
    setProblem(null);
    const count = tab === "licenses" ? quantity : licenses;
    if (!Number.isInteger(count) || count < 1 || count > MAX_QUANTITY) {
      setProblem({ code: "BAD_USER_INPUT", message: "Enter a whole number of licenses from 1 to 10,000." });
      return;
    }
    setReviewing(true);
    const wanted = purchase();
    const result =
      wanted.kind === "licenses"
        ? await client
            .query(
              LICENSE_PURCHASE_SUMMARY,
              { customer: customerId, input: wanted.input },
              { requestPolicy: "network-only" },
            )
            .toPromise()
            .then((r) => ({ error: r.error, summary: r.data?.licensePurchaseSummary }))
        : await client
            .query(
              STORAGE_UPGRADE_SUMMARY,
              { customer: customerId, input: wanted.input },
              { requestPolicy: "network-only" },
            )
            .toPromise()
            .then((r) => ({ error: r.error, summary: r.data?.storageUpgradeSummary }));
    setReviewing(false);
    if (result.error || !result.summary) {
      setProblem(result.error ? describeError(result.error, endpoints.origin) : null);
      return;
    }
    setAttempt({ purchase: wanted, summary: result.summary, idempotencyKey: newIdempotencyKey(), outcome: null });
  }

  async function pay(current: Attempt) {
    setProblem(null);
    const key = current.idempotencyKey; // the same on every retry of this attempt
    let payload: OrderPayload | undefined;
    let error;
    if (current.purchase.kind === "licenses") {
      const result = await buyLicenses({
        customer: customerId,
        input: { ...current.purchase.input, idempotencyKey: key },
      });
      payload = result.data?.buyLicenses;
      error = result.error;
    } else {
      const result = await upgradeStorage({
        customer: customerId,
        input: { ...current.purchase.input, idempotencyKey: key },
      });
      payload = result.data?.upgradeStorage;
      error = result.error;
    }
    if (error || !payload) {
      // No answer (or a refusal before anything was done): the attempt and its
      // key stay, so "Retry payment" cannot charge twice.
      setProblem(error ? describeError(error, endpoints.origin) : null);
      return;
    }
    setAttempt({ ...current, outcome: { order: payload.order, userErrors: payload.userErrors } });
    if (payload.order) onOrder(payload.order);
  }

  function startOver() {
    setAttempt(null);
    setProblem(null);
  }

  if (attempt !== null) {
    const { outcome } = attempt;
    return (
      <div className="purchase" data-testid="purchase">
        <h3>{attempt.purchase.kind === "licenses" ? "Review: buy licenses" : "Review: cloud storage"}</h3>
        <OrderSummaryView summary={attempt.summary} />
        {outcome === null ? (
          <div className="actions">
            <button
              type="button"
              className="primary"
              data-testid="pay"
              disabled={paying}
              onClick={() => void pay(attempt)}
            >
              {paying ? "Paying…" : problem ? "Retry payment" : `Pay ${formatMoney(attempt.summary.total)}`}
            </button>
            <button type="button" disabled={paying} onClick={startOver}>
              Change order
            </button>
          </div>
        ) : (
          <div className="outcome" data-testid="purchase-outcome">
            {outcome.order && (
              <p data-testid="purchase-order" data-order-id={outcome.order.id}>
                Order status: <strong>{STATUS_LABELS[statusOf(outcome.order.id) ?? outcome.order.status]}</strong> (live
                under <a href="#orders">Orders</a>).
              </p>
            )}
            <UserErrorList errors={outcome.userErrors} />
            <button type="button" onClick={startOver}>
              New order
            </button>
          </div>
        )}
        <ProblemNotice problem={problem} />
      </div>
    );
  }

  const paymentChoice = (
    <label>
      Pay with
      <select data-testid="pay-with" value={paymentMethodId} onChange={(e) => setPaymentMethodId(e.target.value)}>
        <option value="">The primary payment method</option>
        {paymentMethods.map((method) => (
          <option key={method.id} value={method.id}>
            {describeCard(method)}
          </option>
        ))}
      </select>
    </label>
  );

  return (
    <form className="purchase" data-testid="purchase" onSubmit={review}>
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === "licenses"} onClick={() => setTab("licenses")}>
          Buy licenses
        </button>
        <button type="button" role="tab" aria-selected={tab === "storage"} onClick={() => setTab("storage")}>
          Cloud storage
        </button>
      </div>
      {tab === "licenses" ? (
        <>
          <label>
            Product
            <select data-testid="purchase-product" value={productId} onChange={(e) => setProductId(e.target.value)}>
              {products.map((product) => (
                <option key={product.id} value={product.id}>
                  {product.plan.name} ({product.billingInterval === "YEARLY" ? "yearly" : "monthly"})
                </option>
              ))}
            </select>
          </label>
          <LicenseCount label="Licenses to add" testId="quantity" value={quantity} onChange={setQuantity} />
        </>
      ) : (
        <>
          <label>
            Storage plan
            <select data-testid="storage-plan" value={planId} onChange={(e) => setPlanId(e.target.value)}>
              {storagePlans.map((plan) => (
                <option key={plan.id} value={plan.id}>
                  {plan.name}: {plan.storageGb} GB per license,{" "}
                  {formatMoney(interval === "YEARLY" ? plan.yearly : plan.monthly)} per license{" "}
                  {interval === "YEARLY" ? "a year" : "a month"}
                </option>
              ))}
            </select>
          </label>
          <LicenseCount label="Licenses" testId="storage-licenses" value={licenses} onChange={setLicenses} />
          <fieldset className="interval">
            <legend>Billing</legend>
            {(["MONTHLY", "YEARLY"] as const).map((value) => (
              <label key={value} className="radio">
                <input
                  type="radio"
                  name="interval"
                  value={value}
                  checked={interval === value}
                  onChange={() => setBillingInterval(value)}
                />
                {value === "MONTHLY" ? "Monthly" : "Yearly"}
              </label>
            ))}
          </fieldset>
        </>
      )}
      {paymentChoice}
      <button type="submit" data-testid="review" disabled={reviewing || (tab === "licenses" ? !productId : !planId)}>
        {reviewing ? "Asking for the summary…" : "Review order"}
      </button>
      <ProblemNotice problem={problem} />
    </form>
  );
}
