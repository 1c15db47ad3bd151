// The acting customer: every other panel works on behalf of this one.
import { useEffect, useState } from "react";
import { useQuery } from "urql";

import { CUSTOMERS } from "../api/documents";
import { describeError } from "../api/errors";
import type { Customer } from "../api/types";
import { useSession } from "../session";
import { ProblemNotice } from "./Notice";

const PAGE_SIZE = 100; // the gateway's cap for `first`

interface Props {
  value: string | null;
  onChange(customerId: string | null): void;
}

export function CustomerPicker({ value, onChange }: Props) {
  const { endpoints } = useSession();
  const [after, setAfter] = useState<string | null>(null);
  const [customers, setCustomers] = useState<Customer[]>([]);
  const [result] = useQuery({ query: CUSTOMERS, variables: { first: PAGE_SIZE, after } });

  // Pages add up: "More customers" asks for the next page after the last one.
  useEffect(() => {
    const page = result.data?.customers.edges.map((edge) => edge.node);
    if (!page) return;
    setCustomers((known) => {
      const ids = new Set(known.map((customer) => customer.id));
      return [...known, ...page.filter((customer) => !ids.has(customer.id))];
    });
  }, [result.data]);

  const pageInfo = result.data?.customers.pageInfo;
  return (
    <div className="customer-picker">
      <label>
        Acting customer
        <select
          data-testid="customer"
          value={value ?? ""}
          onChange={(e) => onChange(e.target.value || null)}
          disabled={customers.length === 0}
        >
          <option value="">{result.fetching && customers.length === 0 ? "Loading…" : "Choose a customer"}</option>
          {customers.map((customer) => (
            <option key={customer.id} value={customer.id}>
              {customer.name}
            </option>
          ))}
        </select>
      </label>
      {pageInfo?.hasNextPage && (
        <button type="button" className="link" onClick={() => setAfter(pageInfo.endCursor)}>
          More customers
        </button>
      )}
      {!result.fetching && !result.error && customers.length === 0 && <p>This partner has no customers yet.</p>}
      <ProblemNotice problem={result.error ? describeError(result.error, endpoints.origin) : null} />
    </div>
  );
}
