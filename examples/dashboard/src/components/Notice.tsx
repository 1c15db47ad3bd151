import type { ReactNode } from "react";

import type { Problem } from "../api/errors";
import type { UserError } from "../api/types";

/** A problem the user should read: role="alert" so screen readers say it too. */
export function ProblemNotice({ problem }: { problem: Problem | null }) {
  if (problem === null) return null;
  return (
    <p className="notice notice-error" role="alert" data-testid="problem" data-code={problem.code}>
      {problem.message}
    </p>
  );
}

/** A mutation's business outcome (CARD_DECLINED, NO_PAYMENT_METHOD, …). */
export function UserErrorList({ errors }: { errors: readonly UserError[] }) {
  if (errors.length === 0) return null;
  return (
    <ul className="notice notice-error" role="alert" data-testid="user-errors">
      {errors.map((error) => (
        <li key={`${error.code}:${error.message}`} data-code={error.code}>
          {error.message}
        </li>
      ))}
    </ul>
  );
}

export function Panel({ title, children, testId }: { title: string; children: ReactNode; testId: string }) {
  return (
    <section className="panel" aria-label={title} data-testid={testId}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}
