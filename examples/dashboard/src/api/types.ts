// The parts of the gateway's schema (schema.graphql at the repository root)
// that the dashboard reads, as TypeScript types. Names follow the contract.

export type PartnerRole = "PARTNER_OWNER" | "PARTNER_FINANCE_ADMIN" | "PARTNER_ADMIN";
export type BillingInterval = "MONTHLY" | "YEARLY";
export type PlanKind = "BACKUP" | "CLOUD_STORAGE";
export type OrderKind = "LICENSE_PURCHASE" | "STORAGE_UPGRADE" | "RENEWAL";
export type ProductStatus = "ACTIVE" | "PAST_DUE" | "CANCELED";
export type OrderStatus = "PENDING" | "PROCESSING" | "REQUIRES_ACTION" | "SUCCEEDED" | "FAILED" | "CANCELED";

export const FINAL_STATUSES: ReadonlySet<OrderStatus> = new Set(["SUCCEEDED", "FAILED", "CANCELED"]);

export interface Money {
  amount: string;
  minorUnits: number;
  currency: string;
}

export interface Viewer {
  id: string;
  email: string;
  role: PartnerRole;
  partner: { id: string; name: string };
}

export interface Customer {
  id: string;
  name: string;
}

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface Plan {
  id: string;
  name: string;
  kind: PlanKind;
  storageGb: number | null;
}

export interface CatalogPlan extends Plan {
  monthly: Money;
  yearly: Money;
}

/** A plan the customer holds, billed each period until canceled. A new
 * field goes here, in PRODUCT_FIELDS (documents.ts) and, to be seen, in
 * the columns of ProductsTable. */
export interface Product {
  id: string;
  plan: Plan;
  billingInterval: BillingInterval;
  totalLicenses: number;
  assignedLicenses: number;
  availableLicenses: number;
  storageGb: number | null;
  status: ProductStatus;
  /** End of the last paid period. */
  currentPeriodEnd: string;
  /** When the next period is charged (past due: the next retry); null when canceled or set to cancel. */
  renewsAt: string | null;
  cancelAtPeriodEnd: boolean;
  /** Total licenses from the next period; null: unchanged. */
  scheduledLicenses: number | null;
}

export interface PaymentMethod {
  id: string;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  isPrimary: boolean;
}

export interface BillingDetails {
  customer: Customer;
  paymentMethods: PaymentMethod[];
  primaryPaymentMethod: { id: string } | null;
}

export interface OrderLine {
  description: string;
  quantity: number;
  unitPrice: Money;
  amount: Money;
}

export interface OrderSummary {
  lines: OrderLine[];
  subtotal: Money;
  total: Money;
  billingInterval: BillingInterval;
}

export interface Order {
  id: string;
  kind: OrderKind;
  status: OrderStatus;
  summary: OrderSummary;
  total: Money;
  paymentMethod: { id: string; brand: string; last4: string } | null;
  failureReason: string | null;
  clientSecret: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface OrderStatusEvent {
  order: Order;
  status: OrderStatus;
  occurredAt: string;
  cursor: string;
}

export interface UserError {
  field: string[] | null;
  code: string;
  message: string;
}

export interface PaymentMethodPayload {
  paymentMethod: PaymentMethod | null;
  userErrors: UserError[];
}

export interface OrderPayload {
  order: Order | null;
  userErrors: UserError[];
}

export interface BuyLicensesInput {
  productId: string;
  quantity: number;
  paymentMethodId?: string | null;
  idempotencyKey?: string | null;
}

export interface UpgradeStorageInput {
  planId: string;
  licenses: number;
  billingInterval: BillingInterval;
  paymentMethodId?: string | null;
  idempotencyKey?: string | null;
}
