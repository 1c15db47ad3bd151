// The order list as the dashboard shows it: each order's newest known state,
// plus the statuses it was seen to take live (its "trail").
import type { Order, OrderStatus, OrderStatusEvent } from "../api/types";

export interface OrderRow {
  order: Order;
  status: OrderStatus;
  /** When `status` was true (an event's occurredAt, else the order's updatedAt). */
  asOf: number;
  /** The statuses seen through the live list, in order, without repeats. */
  trail: OrderStatus[];
}

export type OrderRows = ReadonlyMap<string, OrderRow>;

function time(iso: string): number {
  const parsed = Date.parse(iso);
  return Number.isNaN(parsed) ? 0 : parsed;
}

/** Take an order as a query or a mutation returned it. */
export function withOrder(rows: OrderRows, order: Order): OrderRows {
  const existing = rows.get(order.id);
  const asOf = time(order.updatedAt);
  if (existing && existing.asOf > asOf) return rows; // already newer, from an event
  const next = new Map(rows);
  next.set(order.id, { order, status: order.status, asOf, trail: existing?.trail ?? [] });
  return next;
}

/** Take an event of the live list. */
export function withEvent(rows: OrderRows, event: OrderStatusEvent): OrderRows {
  const existing = rows.get(event.order.id);
  const trail = existing?.trail ?? [];
  const nextTrail = trail[trail.length - 1] === event.status ? trail : [...trail, event.status];
  // The event's order is read when the event is delivered, so it may already
  // be further along than the event itself (a replay after a reconnect).
  // The newest wins; on a tie, what arrived last.
  const candidates: [OrderStatus, number][] = existing ? [[existing.status, existing.asOf]] : [];
  candidates.push([event.status, time(event.occurredAt)], [event.order.status, time(event.order.updatedAt)]);
  const [status, asOf] = candidates.reduce((newest, candidate) => (candidate[1] >= newest[1] ? candidate : newest));
  const next = new Map(rows);
  next.set(event.order.id, { order: { ...event.order, status }, status, asOf, trail: nextTrail });
  return next;
}

/** Newest first, as the gateway's `orders` lists them. */
export function sortedRows(rows: OrderRows): OrderRow[] {
  return [...rows.values()].sort((a, b) => time(b.order.createdAt) - time(a.order.createdAt));
}
