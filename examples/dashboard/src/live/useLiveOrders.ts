// The customer's orders, kept current: the newest page from `orders`, then
// every change from the live feed (see orderFeed.ts).
import { useCallback, useEffect, useRef, useState } from "react";
import { useClient } from "urql";

import { ORDERS } from "../api/documents";
import { type Problem, describeError } from "../api/errors";
import type { Order, OrderStatusEvent } from "../api/types";
import { useSession } from "../session";
import { OrderFeed } from "./orderFeed";
import { type OrderRow, type OrderRows, sortedRows, withEvent, withOrder } from "./orderRows";

const PAGE_SIZE = 20;

export interface LiveOrders {
  rows: OrderRow[];
  problem: Problem | null;
  /** Show an order a mutation just returned, before its first event arrives. */
  addOrder(order: Order): void;
}

/** `onEvent` hears every event (the products refresh when an order succeeds). */
export function useLiveOrders(customerId: string, onEvent: (event: OrderStatusEvent) => void): LiveOrders {
  const { clients, endpoints } = useSession();
  const client = useClient();
  const [rows, setRows] = useState<OrderRows>(new Map());
  const [problem, setProblem] = useState<Problem | null>(null);
  // The feed lives as long as the customer is shown; it calls the newest callback.
  const onEventRef = useRef(onEvent);
  useEffect(() => {
    onEventRef.current = onEvent;
  });

  const load = useCallback(async () => {
    const result = await client
      .query(ORDERS, { customer: customerId, first: PAGE_SIZE }, { requestPolicy: "network-only" })
      .toPromise();
    if (result.error) {
      setProblem(describeError(result.error, endpoints.origin));
    } else if (result.data) {
      const orders = result.data.orders.edges.map((edge) => edge.node);
      setRows((current) => orders.reduce(withOrder, current));
    }
  }, [client, customerId, endpoints.origin]);

  useEffect(() => {
    // Subscribe first, then read the list: an order that changes in between
    // is in one or the other (or both, and the newest state wins).
    const feed = new OrderFeed(clients.ws, customerId, {
      onEvent(event) {
        setRows((current) => withEvent(current, event));
        onEventRef.current(event);
      },
      onProblem: setProblem,
      onResumed(after) {
        if (after === null) void load(); // nothing to resume from: read the list again
      },
    });
    void load();
    return () => feed.close();
  }, [clients.ws, customerId, load]);

  const addOrder = useCallback((order: Order) => setRows((current) => withOrder(current, order)), []);
  return { rows: sortedRows(rows), problem, addOrder };
}
