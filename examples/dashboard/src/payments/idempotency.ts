// One idempotency key per purchase attempt: made when the user reviews an
// order, sent with "Pay", and sent again unchanged by "Retry payment" after a
// network failure, so the gateway returns the first order instead of
// charging twice. A new review is a new attempt with a new key.

function randomHex(bytes: number): string {
  const buffer = new Uint8Array(bytes);
  crypto.getRandomValues(buffer); // available on plain http:// origins too, unlike randomUUID
  return Array.from(buffer, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function newIdempotencyKey(): string {
  return `dashboard-${randomHex(16)}`;
}
