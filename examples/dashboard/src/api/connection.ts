// The state of the live connection (the graphql-ws socket), as a tiny store
// that React reads with useSyncExternalStore.

export type ConnectionPhase =
  /** No subscription is running yet (the client connects lazily). */
  | "idle"
  | "connecting"
  | "live"
  /** The socket dropped; the client is retrying with backoff. */
  | "reconnecting"
  /** Closed with 4401: the gateway refused the token; no more retries. */
  | "token-rejected"
  /** Closed with a code after which retrying cannot help (see lastClose). */
  | "closed";

export interface ConnectionState {
  phase: ConnectionPhase;
  /** The last close code and reason, when the socket closed. */
  lastClose: { code: number; reason: string } | null;
  /** How many times the socket came back after a drop. */
  reconnects: number;
}

export class ConnectionStore {
  private state: ConnectionState = { phase: "idle", lastClose: null, reconnects: 0 };
  private readonly listeners = new Set<() => void>();

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): ConnectionState => this.state;

  update(change: Partial<ConnectionState>): void {
    this.state = { ...this.state, ...change };
    this.listeners.forEach((listener) => listener());
  }
}
