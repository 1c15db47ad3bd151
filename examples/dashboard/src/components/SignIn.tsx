// Paste a token, check it against the gateway (`viewer`), and start a session.
import { type FormEvent, useState } from "react";

import { createGatewayClients } from "../api/clients";
import { VIEWER } from "../api/documents";
import { type Problem, describeError } from "../api/errors";
import { gatewayEndpoints, initialGatewayUrl } from "../config";
import type { Session } from "../session";
import { ProblemNotice } from "./Notice";

interface Props {
  onSignedIn(session: Session): void;
  /** Called by the clients whenever the gateway refuses the token later on. */
  onTokenRejected(): void;
  notice: string | null;
}

export function SignIn({ onSignedIn, onTokenRejected, notice }: Props) {
  const [gatewayUrl, setGatewayUrl] = useState(initialGatewayUrl);
  const [token, setToken] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setProblem(null);
    const endpoints = gatewayEndpoints(gatewayUrl);
    if (typeof endpoints === "string") {
      setProblem({ code: "BAD_USER_INPUT", message: endpoints });
      return;
    }
    const trimmed = token.trim().replace(/^Bearer\s+/i, "");
    if (!trimmed) {
      setProblem({ code: "BAD_USER_INPUT", message: "Paste a token first (partner-billing seed-demo prints some)." });
      return;
    }
    setBusy(true);
    // Until the session starts, a refusal is this form's to show.
    let started = false;
    const clients = createGatewayClients(endpoints, trimmed, {
      onTokenRejected: () => {
        if (started) onTokenRejected();
      },
    });
    const result = await clients.urql.query(VIEWER, {}, { requestPolicy: "network-only" }).toPromise();
    setBusy(false);
    if (result.error || !result.data) {
      clients.dispose();
      setProblem(
        result.error
          ? describeError(result.error, endpoints.origin)
          : { code: "UNKNOWN", message: "The gateway sent no data." },
      );
      return;
    }
    setToken(""); // the session holds it now; the form forgets it
    started = true;
    onSignedIn({ endpoints, viewer: result.data.viewer, clients });
  }

  return (
    <form className="panel sign-in" onSubmit={submit} aria-label="Sign in">
      <h2>Sign in</h2>
      {notice && (
        <p className="notice notice-error" role="alert" data-testid="session-notice">
          {notice}
        </p>
      )}
      <label>
        Gateway URL
        <input
          name="gateway"
          data-testid="gateway-url"
          value={gatewayUrl}
          onChange={(e) => setGatewayUrl(e.target.value)}
          spellCheck={false}
        />
      </label>
      <label>
        API token
        <input
          name="token"
          data-testid="token"
          type="password"
          autoComplete="off"
          placeholder="pbg_…"
          value={token}
          onChange={(e) => setToken(e.target.value)}
        />
      </label>
      <p className="hint">The token stays in this tab's memory only: reloading or closing the tab signs you out.</p>
      <button type="submit" disabled={busy}>
        {busy ? "Checking…" : "Sign in"}
      </button>
      <ProblemNotice problem={problem} />
    </form>
  );
}
