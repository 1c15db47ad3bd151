import { useSyncExternalStore } from "react";

import type { ConnectionPhase } from "../api/connection";
import { useSession } from "../session";

const LABELS: Record<ConnectionPhase, string> = {
  idle: "Live updates off",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  "token-rejected": "Token rejected",
  closed: "Live updates stopped",
};

/** What the live connection is doing, always visible in the header. */
export function ConnectionBadge() {
  const { connection } = useSession().clients;
  const state = useSyncExternalStore(connection.subscribe, connection.getSnapshot);
  const close = state.lastClose && state.phase !== "live" ? ` (closed ${state.lastClose.code})` : "";
  return (
    <span className={`badge badge-${state.phase}`} data-testid="connection" data-phase={state.phase} role="status">
      {LABELS[state.phase]}
      {close}
    </span>
  );
}
