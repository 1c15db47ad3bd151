// Everything about the acting customer: products, billing details, buying,
// and the live order list.
import { useQuery } from "urql";

import { BILLING_DETAILS, CATALOG, PRODUCTS } from "../api/documents";
import { type Problem, describeError } from "../api/errors";
import type { BillingDetails, CatalogPlan, Product } from "../api/types";
import { useLiveOrders } from "../live/useLiveOrders";
import { useSession } from "../session";
import { BillingPanel } from "./BillingPanel";
import { Panel, ProblemNotice } from "./Notice";
import { OrdersPanel } from "./OrdersPanel";
import { ProductsTable } from "./ProductsTable";
import { PurchasePanel } from "./PurchasePanel";

const NETWORK_ONLY = { requestPolicy: "network-only" } as const;

export function CustomerView({ customerId }: { customerId: string }) {
  const { endpoints, viewer } = useSession();
  const variables = { customer: customerId };
  const [products, refreshProducts] = useQuery({ query: PRODUCTS, variables });
  const [billing, refreshBilling] = useQuery({ query: BILLING_DETAILS, variables });
  const [catalog] = useQuery({ query: CATALOG, variables });
  const forbidden = billing.error?.graphQLErrors.find((e) => e.extensions?.code === "FORBIDDEN");

  return (
    <>
      <Panel title="Products" testId="products">
        {products.data && <ProductsTable products={products.data.products} />}
        <ProblemNotice problem={products.error ? describeError(products.error, endpoints.origin) : null} />
      </Panel>
      {forbidden ? (
        // One clear notice rather than the same refusal from every billing panel.
        <Panel title="Billing" testId="billing-forbidden">
          <p className="notice notice-error" role="alert" data-testid="problem" data-code="FORBIDDEN">
            Billing details, orders and purchases are not available to your role ({viewer.role}): ask a partner owner or
            a finance admin. The gateway said: {forbidden.message}
          </p>
        </Panel>
      ) : (
        <CustomerBilling
          customerId={customerId}
          billing={billing.data?.billingDetails ?? null}
          billingProblem={billing.error ? describeError(billing.error, endpoints.origin) : null}
          products={products.data?.products ?? null}
          catalog={catalog.data?.catalog ?? []}
          onBillingChanged={() => refreshBilling(NETWORK_ONLY)}
          onProductsChanged={() => refreshProducts(NETWORK_ONLY)}
        />
      )}
    </>
  );
}

interface BillingProps {
  customerId: string;
  billing: BillingDetails | null;
  billingProblem: Problem | null;
  products: Product[] | null;
  catalog: CatalogPlan[];
  onBillingChanged(): void;
  onProductsChanged(): void;
}

function CustomerBilling(props: BillingProps) {
  const { customerId, billing, products, onProductsChanged } = props;
  // Licenses and storage change when an order succeeds, and a renewal that
  // fails or awaits authentication leaves its product past due: read the
  // products again then.
  const orders = useLiveOrders(customerId, (event) => {
    const renewalSettling =
      event.order.kind === "RENEWAL" && event.status !== "PENDING" && event.status !== "PROCESSING";
    if (event.status === "SUCCEEDED" || renewalSettling) onProductsChanged();
  });

  return (
    <>
      <Panel title="Billing details" testId="billing">
        {billing && <BillingPanel customerId={customerId} billing={billing} onChanged={props.onBillingChanged} />}
        <ProblemNotice problem={props.billingProblem} />
      </Panel>
      <Panel title="Buy" testId="buy">
        {billing && products ? (
          <PurchasePanel
            customerId={customerId}
            products={products}
            catalog={props.catalog}
            paymentMethods={billing.paymentMethods}
            onOrder={orders.addOrder}
            statusOf={(id) => orders.rows.find((row) => row.order.id === id)?.status}
          />
        ) : (
          <p>Loading…</p>
        )}
      </Panel>
      <Panel title="Orders" testId="orders">
        <div id="orders" />
        <OrdersPanel rows={orders.rows} />
        <ProblemNotice problem={orders.problem} />
      </Panel>
    </>
  );
}
