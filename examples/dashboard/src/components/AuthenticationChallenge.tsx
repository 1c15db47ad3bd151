// 3-D Secure for an order that is REQUIRES_ACTION. With Stripe configured,
// Stripe.js shows the bank's challenge; with the gateway's sandbox provider,
// the user plays the bank: complete or fail the authentication, which the
// gateway's /sandbox/authenticate endpoint records as Stripe.js would.
import { useState } from "react";

import { stripePublishableKey } from "../config";
import { useSession } from "../session";

interface Props {
  clientSecret: string;
}

async function sandboxAuthenticate(url: string, clientSecret: string, success: boolean): Promise<string | null> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ clientSecret, success }),
    });
  } catch {
    return "Cannot reach the gateway to finish the authentication; try again.";
  }
  if (response.ok) return null;
  const body = (await response.json().catch(() => ({}))) as { error?: unknown };
  return typeof body.error === "string" ? body.error : `The gateway answered HTTP ${response.status}.`;
}

export function AuthenticationChallenge({ clientSecret }: Props) {
  const { endpoints } = useSession();
  const publishableKey = stripePublishableKey();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function run(action: () => Promise<string | null>) {
    setBusy(true);
    setError(null);
    setError(await action());
    setBusy(false); // the live list moves the order on; this component then goes away
  }

  return (
    <div className="challenge" data-testid="challenge">
      {publishableKey ? (
        <button
          type="button"
          className="primary"
          disabled={busy}
          onClick={() =>
            void run(async () => (await import("../payments/stripe")).authenticatePayment(publishableKey, clientSecret))
          }
        >
          Authenticate with the bank
        </button>
      ) : (
        <>
          <span>Sandbox bank:</span>
          <button
            type="button"
            className="primary"
            disabled={busy}
            onClick={() => void run(() => sandboxAuthenticate(endpoints.sandboxAuthenticate, clientSecret, true))}
          >
            Complete authentication
          </button>
          <button
            type="button"
            className="danger"
            disabled={busy}
            onClick={() => void run(() => sandboxAuthenticate(endpoints.sandboxAuthenticate, clientSecret, false))}
          >
            Fail authentication
          </button>
        </>
      )}
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
