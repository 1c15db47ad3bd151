// How money, dates and statuses read on screen.
import type { Money, OrderKind, OrderStatus, ProductStatus } from "./api/types";

/** "12.50 EUR": the gateway's exact decimal string, never a float. */
export function formatMoney(money: Money): string {
  return `${money.amount} ${money.currency}`;
}

const DATE = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeZone: "UTC" });
const DATE_TIME = new Intl.DateTimeFormat("en-GB", { dateStyle: "short", timeStyle: "medium", timeZone: "UTC" });

export function formatDate(iso: string): string {
  return DATE.format(new Date(iso));
}

export function formatDateTime(iso: string): string {
  return `${DATE_TIME.format(new Date(iso))} UTC`;
}

export const ORDER_KIND_LABELS: Record<OrderKind, string> = {
  LICENSE_PURCHASE: "Licenses",
  STORAGE_UPGRADE: "Cloud storage",
  RENEWAL: "Renewal",
};

export const PRODUCT_STATUS_LABELS: Record<ProductStatus, string> = {
  ACTIVE: "Active",
  PAST_DUE: "Past due",
  CANCELED: "Canceled",
};

export const STATUS_LABELS: Record<OrderStatus, string> = {
  PENDING: "Pending",
  PROCESSING: "Processing",
  REQUIRES_ACTION: "Needs authentication",
  SUCCEEDED: "Succeeded",
  FAILED: "Failed",
  CANCELED: "Canceled",
};

export function describeCard(card: { brand: string; last4: string }): string {
  const brand = card.brand.charAt(0).toUpperCase() + card.brand.slice(1);
  return `${brand} •••• ${card.last4}`;
}
