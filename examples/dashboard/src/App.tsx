// The dashboard: sign in with a token, choose the acting customer, and work
// on its behalf.
import { useCallback, useRef, useState } from "react";
import { Provider } from "urql";

import { TOKEN_REJECTED } from "./api/errors";
import { ConnectionBadge } from "./components/ConnectionBadge";
import { CustomerPicker } from "./components/CustomerPicker";
import { CustomerView } from "./components/CustomerView";
import { SignIn } from "./components/SignIn";
import { type Session, SessionContext } from "./session";

const ROLE_LABELS = {
  PARTNER_OWNER: "Partner owner",
  PARTNER_FINANCE_ADMIN: "Finance admin",
  PARTNER_ADMIN: "Partner admin",
} as const;

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [customerId, setCustomerId] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // The clients call back into signOut long after they were made: read the
  // session of the moment, not the one of that render.
  const current = useRef<Session | null>(null);

  const signOut = useCallback((why: string | null) => {
    current.current?.clients.dispose();
    current.current = null;
    setSession(null);
    setCustomerId(null);
    setNotice(why);
  }, []);

  // The gateway refused the token after sign-in (revoked, expired): back to
  // the sign-in form, saying why.
  const onTokenRejected = useCallback(() => signOut(TOKEN_REJECTED), [signOut]);

  function signedIn(next: Session) {
    current.current = next;
    setNotice(null);
    setSession(next);
  }

  return (
    <div className="app">
      <header>
        <h1>Partner Billing</h1>
        {session && (
          <div className="who" data-testid="viewer">
            <span>
              {session.viewer.partner.name} · {session.viewer.email} · {ROLE_LABELS[session.viewer.role]}
            </span>
            <SessionContext.Provider value={session}>
              <ConnectionBadge />
            </SessionContext.Provider>
            <button type="button" onClick={() => signOut(null)}>
              Sign out
            </button>
          </div>
        )}
      </header>
      <main>
        {session === null ? (
          <SignIn onSignedIn={signedIn} onTokenRejected={onTokenRejected} notice={notice} />
        ) : (
          <SessionContext.Provider value={session}>
            <Provider value={session.clients.urql}>
              <CustomerPicker value={customerId} onChange={setCustomerId} />
              {customerId && <CustomerView key={customerId} customerId={customerId} />}
            </Provider>
          </SessionContext.Provider>
        )}
      </main>
    </div>
  );
}
