// The two clients a signed-in session uses: urql over HTTP for queries and
// mutations, and graphql-ws for the live order list.
import { Client as UrqlClient, cacheExchange, fetchExchange, mapExchange } from "@urql/core";
import { type Client as WsClient, CloseCode, createClient } from "graphql-ws";

import type { GatewayEndpoints } from "../config";
import { ConnectionStore } from "./connection";

export interface GatewayClients {
  urql: UrqlClient;
  ws: WsClient;
  connection: ConnectionStore;
  /** Close the socket and stop retrying (sign-out, another token). */
  dispose(): void;
}

export interface ClientHooks {
  /** The gateway refused the token: over HTTP (UNAUTHENTICATED) or by closing
   * the socket with 4401. */
  onTokenRejected(): void;
}

// Ping every 10 s and give the pong 5 s: a socket that died silently (a
// sleeping laptop, a dropped NAT entry) is noticed and replaced.
const KEEP_ALIVE_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;
// Reconnect quickly at first, then every 5 s at most, with jitter so that
// many dashboards do not all come back in the same millisecond.
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 5_000;

function retryWait(retries: number): Promise<void> {
  const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** retries) + Math.random() * RETRY_BASE_MS;
  return new Promise((resolve) => setTimeout(resolve, delay));
}

// Close codes after which graphql-ws gives up (the same list as its own
// shouldRetry check); any other close is followed by a reconnect.
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.InternalServerError,
  CloseCode.InternalClientError,
  CloseCode.BadRequest,
  CloseCode.BadResponse,
  CloseCode.SubprotocolNotAcceptable,
  CloseCode.SubscriberAlreadyExists,
  CloseCode.TooManyInitialisationRequests,
]);
const NORMAL_CLOSURE = 1000;

function closeDetails(event: unknown): { code: number; reason: string } | null {
  if (typeof event === "object" && event !== null && "code" in event && typeof event.code === "number") {
    const reason = "reason" in event && typeof event.reason === "string" ? event.reason : "";
    return { code: event.code, reason };
  }
  return null;
}

export function createGatewayClients(endpoints: GatewayEndpoints, token: string, hooks: ClientHooks): GatewayClients {
  const authorization = `Bearer ${token}`;
  const connection = new ConnectionStore();
  let pongTimer: ReturnType<typeof setTimeout> | undefined;

  const ws: WsClient = createClient({
    url: endpoints.ws,
    // The token travels in connection_init, never in the URL.
    connectionParams: { Authorization: authorization },
    lazy: true,
    keepAlive: KEEP_ALIVE_MS,
    // A dashboard keeps trying for as long as it is open; 4401 (token
    // refused) and the protocol's other fatal codes still stop it.
    retryAttempts: Infinity,
    retryWait,
    on: {
      connecting: (isRetry) => connection.update({ phase: isRetry ? "reconnecting" : "connecting" }),
      connected: (_socket, _payload, wasRetry) => {
        const { reconnects } = connection.getSnapshot();
        connection.update({ phase: "live", reconnects: wasRetry ? reconnects + 1 : reconnects });
      },
      ping: (received) => {
        if (!received) pongTimer = setTimeout(() => ws.terminate(), PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: (event) => {
        clearTimeout(pongTimer);
        const lastClose = closeDetails(event);
        if (connection.getSnapshot().phase === "token-rejected") return;
        if (lastClose?.code === CloseCode.Unauthorized) {
          connection.update({ phase: "token-rejected", lastClose });
          hooks.onTokenRejected();
        } else if (lastClose?.code === NORMAL_CLOSURE) {
          // The client closed it: no subscription left, or signed out.
          connection.update({ phase: "idle", lastClose });
        } else if (lastClose !== null && FINAL_CLOSE_CODES.has(lastClose.code)) {
          connection.update({ phase: "closed", lastClose });
        } else {
          connection.update({ phase: "reconnecting", lastClose });
        }
      },
    },
  });

  const urql = new UrqlClient({
    url: endpoints.http,
    // Every screen shows what the gateway says now; the document cache only
    // spares identical requests made at the same moment.
    requestPolicy: "cache-and-network",
    preferGetMethod: false,
    fetchOptions: { headers: { Authorization: authorization } },
    exchanges: [
      mapExchange({
        onError(error) {
          if (error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) hooks.onTokenRejected();
        },
      }),
      cacheExchange,
      fetchExchange,
    ],
  });

  return {
    urql,
    ws,
    connection,
    dispose() {
      clearTimeout(pongTimer);
      void ws.dispose();
    },
  };
}
