// What the dashboard is configured with at build time (Vite env variables) and
// at run time (the page's `?gateway=` parameter, the sign-in form).

export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000";

/** The gateway URL to start with: `?gateway=…` in the page's address, else
 * VITE_GATEWAY_URL, else the gateway's own default address. */
export function initialGatewayUrl(location: Location = window.location): string {
  const fromQuery = new URLSearchParams(location.search).get("gateway");
  return fromQuery || import.meta.env.VITE_GATEWAY_URL || DEFAULT_GATEWAY_URL;
}

/** Stripe.js is used (and loaded) only when a publishable key is configured. */
export function stripePublishableKey(): string | null {
  const key = import.meta.env.VITE_STRIPE_PUBLISHABLE_KEY?.trim();
  return key ? key : null;
}

export interface GatewayEndpoints {
  /** The gateway's origin, e.g. http://127.0.0.1:8000 */
  origin: string;
  /** POST /graphql */
  http: string;
  /** graphql-transport-ws at /graphql */
  ws: string;
  /** The sandbox provider's 3-D Secure stand-in. */
  sandboxAuthenticate: string;
}

/** Parse what the user typed into the endpoints the dashboard talks to, or
 * say in one sentence why it is not a gateway address. */
export function gatewayEndpoints(input: string): GatewayEndpoints | string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    return `"${input}" is not a URL; expected something like ${DEFAULT_GATEWAY_URL}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `The gateway URL must start with http:// or https://, not ${url.protocol}//`;
  }
  const origin = url.origin;
  const ws = `${url.protocol === "https:" ? "wss:" : "ws:"}//${url.host}/graphql`;
  return { origin, http: `${origin}/graphql`, ws, sandboxAuthenticate: `${origin}/sandbox/authenticate` };
}
