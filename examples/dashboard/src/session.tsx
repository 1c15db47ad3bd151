// The signed-in session: which gateway, which token, who that is, and the
// clients that talk to the gateway on its behalf. The token lives here, in
// memory only: never in localStorage or sessionStorage, so closing or
// reloading the tab signs out.
import { createContext, useContext } from "react";

import type { GatewayClients } from "./api/clients";
import type { Viewer } from "./api/types";
import type { GatewayEndpoints } from "./config";

export interface Session {
  endpoints: GatewayEndpoints;
  viewer: Viewer;
  clients: GatewayClients;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession() outside a signed-in session");
  return session;
}
