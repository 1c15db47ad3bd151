// The live order list: `orderStatusChanged` for one customer over graphql-ws,
// resumed after a reconnect from the last event seen.
//
// graphql-ws re-sends an interrupted subscription by itself, but with the
// variables it started with: events that happened while the socket was down
// would be lost. So when the client reports a reconnect (`connected` with
// wasRetry), the feed drops that retry and subscribes again with
// `after: <cursor of the last event it delivered>`; the gateway then sends
// every stored event after it, in order, then live ones.
import { stringifyDocument } from "@urql/core";
import type { Client as WsClient, FormattedExecutionResult } from "graphql-ws";

import { ORDER_STATUS_CHANGED } from "../api/documents";
import type { ProblemCode } from "../api/errors";
import type { OrderStatusEvent } from "../api/types";

type EventData = { orderStatusChanged: OrderStatusEvent };

export interface FeedProblem {
  code: ProblemCode;
  message: string;
}

export interface FeedListener {
  /** An order took a status (live, or replayed after a reconnect). */
  onEvent(event: OrderStatusEvent): void;
  /** The subscription was refused or ended with an error; it is not retried. */
  onProblem(problem: FeedProblem): void;
  /** The socket came back and the feed subscribed again. With `after` null
   * (no event had arrived yet) nothing could be replayed: reload the list. */
  onResumed(after: string | null): void;
}

const QUERY = stringifyDocument(ORDER_STATUS_CHANGED);

function problemOf(error: unknown): FeedProblem {
  // graphql-ws passes the `error` message's GraphQL errors as an array, and a
  // fatal close as the CloseEvent.
  if (Array.isArray(error) && error.length > 0) {
    const first = error[0] as { message?: unknown; extensions?: { code?: unknown } };
    const code = typeof first.extensions?.code === "string" ? first.extensions.code : "UNKNOWN";
    const message = typeof first.message === "string" ? first.message : "The live order list was refused.";
    return { code: code as ProblemCode, message };
  }
  if (typeof error === "object" && error !== null && "code" in error) {
    const { code, reason } = error as { code: unknown; reason?: unknown };
    if (code === 4401)
      return { code: "UNAUTHENTICATED", message: "The gateway closed the live connection: token rejected." };
    return { code: "UNKNOWN", message: `The live connection closed (${String(code)} ${String(reason ?? "")}).` };
  }
  return { code: "NETWORK", message: "The live connection failed." };
}

export class OrderFeed {
  private lastCursor: string | null = null;
  // Cursors already delivered: a replay can never show an event twice.
  private readonly seen = new Set<string>();
  private dispose: (() => void) | null = null;
  private stopped = false;
  private readonly unlisten: () => void;

  constructor(
    private readonly ws: WsClient,
    private readonly customerId: string,
    private readonly listener: FeedListener,
  ) {
    this.unlisten = ws.on("connected", (_socket, _payload, wasRetry) => {
      if (wasRetry && !this.stopped) this.resume();
    });
    this.subscribe(null);
  }

  /** The cursor a resumed subscription would start after. */
  get cursor(): string | null {
    return this.lastCursor;
  }

  close(): void {
    this.stopped = true;
    this.unlisten();
    this.dispose?.();
    this.dispose = null;
  }

  private resume(): void {
    this.dispose?.();
    this.subscribe(this.lastCursor);
    this.listener.onResumed(this.lastCursor);
  }

  private subscribe(after: string | null): void {
    const variables = { customer: this.customerId, after };
    this.dispose = this.ws.subscribe<EventData>(
      { query: QUERY, operationName: "OrderStatusChanged", variables },
      {
        next: (result: FormattedExecutionResult<EventData>) => {
          if (result.errors?.length) {
            this.fail(result.errors);
          } else if (result.data) {
            this.deliver(result.data.orderStatusChanged);
          }
        },
        error: (error) => this.fail(error),
        complete: () => {},
      },
    );
  }

  private deliver(event: OrderStatusEvent): void {
    if (this.seen.has(event.cursor)) return;
    this.seen.add(event.cursor);
    this.lastCursor = event.cursor;
    this.listener.onEvent(event);
  }

  private fail(error: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.dispose?.();
    this.dispose = null;
    this.listener.onProblem(problemOf(error));
  }
}
