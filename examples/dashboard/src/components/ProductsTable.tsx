// The customer's products: one row per plan held, one column per fact.
//
// Columns are data, so a new Product field is one entry here (after adding
// it to Product in api/types.ts and to PRODUCT_FIELDS in api/documents.ts).
import type { ReactNode } from "react";

import type { Product } from "../api/types";
import { PRODUCT_STATUS_LABELS, formatDate } from "../format";

interface Column {
  key: string;
  header: string;
  numeric?: boolean;
  cell(product: Product): ReactNode;
}

const INTERVAL_LABELS = { MONTHLY: "Monthly", YEARLY: "Yearly" } as const;

export const PRODUCT_COLUMNS: readonly Column[] = [
  { key: "plan", header: "Plan", cell: (p) => p.plan.name },
  { key: "interval", header: "Billing", cell: (p) => INTERVAL_LABELS[p.billingInterval] },
  { key: "total", header: "Total licenses", numeric: true, cell: (p) => p.totalLicenses },
  { key: "assigned", header: "Assigned", numeric: true, cell: (p) => p.assignedLicenses },
  { key: "available", header: "Available", numeric: true, cell: (p) => p.availableLicenses },
  { key: "storage", header: "Storage", numeric: true, cell: (p) => (p.storageGb === null ? "—" : `${p.storageGb} GB`) },
  {
    key: "status",
    header: "Status",
    cell: (p) => <span className={`badge product-${p.status}`}>{PRODUCT_STATUS_LABELS[p.status]}</span>,
  },
  { key: "periodEnd", header: "Paid until", cell: (p) => formatDate(p.currentPeriodEnd) },
  { key: "renews", header: "Renews", cell: renewal },
  {
    key: "scheduled",
    header: "Next period",
    cell: (p) => (p.scheduledLicenses === null ? "—" : `${p.scheduledLicenses} licenses`),
  },
];

/** When the next charge comes, or why none will. */
function renewal(product: Product): string {
  if (product.status === "CANCELED") return "—";
  if (product.cancelAtPeriodEnd) return `Cancels ${formatDate(product.currentPeriodEnd)}`;
  if (product.renewsAt === null) return "—";
  const date = formatDate(product.renewsAt);
  return product.status === "PAST_DUE" ? `Retry ${date}` : date;
}

export function ProductsTable({ products }: { products: readonly Product[] }) {
  if (products.length === 0) return <p>This customer holds no products yet.</p>;
  return (
    <table data-testid="products-table">
      <thead>
        <tr>
          {PRODUCT_COLUMNS.map((column) => (
            <th key={column.key} className={column.numeric ? "numeric" : undefined}>
              {column.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {products.map((product) => (
          <tr key={product.id} data-testid="product-row" data-product-id={product.id}>
            {PRODUCT_COLUMNS.map((column) => (
              <td key={column.key} data-column={column.key} className={column.numeric ? "numeric" : undefined}>
                {column.cell(product)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
