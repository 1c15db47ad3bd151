// Turn whatever went wrong into one sentence a partner's staff can act on.
//
// The gateway reports who-may-do-what and malformed requests as top-level
// GraphQL errors with `extensions.code` (UNAUTHENTICATED, FORBIDDEN, …);
// business outcomes come back as a mutation's `userErrors` instead and are
// shown where the mutation was made.
import type { CombinedError } from "@urql/core";

export type ProblemCode =
  | "NETWORK"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "BAD_USER_INPUT"
  | "RATE_LIMITED"
  | "QUERY_TOO_COMPLEX"
  | "INTERNAL"
  | "UNKNOWN";

export interface Problem {
  code: ProblemCode;
  message: string;
}

const KNOWN_CODES: ReadonlySet<string> = new Set([
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "NOT_FOUND",
  "BAD_USER_INPUT",
  "RATE_LIMITED",
  "QUERY_TOO_COMPLEX",
  "INTERNAL",
]);

export const TOKEN_REJECTED =
  "Token rejected: the gateway does not accept this token (mistyped, revoked or expired). Paste a new one.";

/** A fetch that never got an answer: the gateway is down, the URL is wrong, or
 * the browser refused the answer because this page's origin is not in the
 * gateway's ALLOWED_ORIGINS (a browser reports all three the same way). */
export function networkProblem(gatewayUrl: string): Problem {
  return {
    code: "NETWORK",
    message:
      `Cannot reach the gateway at ${gatewayUrl}. Check that it is running and that its ` +
      `ALLOWED_ORIGINS includes this page's origin (${window.location.origin}).`,
  };
}

/** The problem of a failed urql operation. */
export function describeError(error: CombinedError, gatewayUrl: string): Problem {
  const first = error.graphQLErrors[0];
  if (first) {
    const extensions = first.extensions ?? {};
    const rawCode = typeof extensions.code === "string" ? extensions.code : "UNKNOWN";
    const code = (KNOWN_CODES.has(rawCode) ? rawCode : "UNKNOWN") as ProblemCode;
    switch (code) {
      case "UNAUTHENTICATED":
        return { code, message: TOKEN_REJECTED };
      case "FORBIDDEN":
        return { code, message: `Not allowed for your role: ${first.message}` };
      case "RATE_LIMITED": {
        const retryAfter = typeof extensions.retryAfter === "number" ? extensions.retryAfter : null;
        const wait = retryAfter === null ? "in a moment" : `in ${retryAfter} s`;
        return { code, message: `Too many requests with this token; try again ${wait}.` };
      }
      case "INTERNAL": {
        const requestId = typeof extensions.requestId === "string" ? ` (request id ${extensions.requestId})` : "";
        return { code, message: `The gateway failed${requestId}; try again, or tell its operators.` };
      }
      default:
        return { code, message: first.message };
    }
  }
  const status = error.response instanceof Response ? error.response.status : null;
  if (status !== null && status >= 400) {
    return { code: "UNKNOWN", message: `The gateway answered HTTP ${status}: ${error.networkError?.message ?? ""}` };
  }
  return networkProblem(gatewayUrl);
}
