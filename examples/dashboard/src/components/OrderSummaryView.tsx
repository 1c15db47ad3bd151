import type { OrderSummary } from "../api/types";
import { formatMoney } from "../format";

/** What an order will charge, line by line: exactly what the gateway charges. */
export function OrderSummaryView({ summary }: { summary: OrderSummary }) {
  return (
    <table className="summary" data-testid="order-summary">
      <thead>
        <tr>
          <th>Item</th>
          <th className="numeric">Quantity</th>
          <th className="numeric">Unit price</th>
          <th className="numeric">Amount</th>
        </tr>
      </thead>
      <tbody>
        {summary.lines.map((line, index) => (
          <tr key={index}>
            <td>{line.description}</td>
            <td className="numeric">{line.quantity}</td>
            <td className="numeric">{formatMoney(line.unitPrice)}</td>
            <td className="numeric">{formatMoney(line.amount)}</td>
          </tr>
        ))}
      </tbody>
      <tfoot>
        <tr>
          <td colSpan={3}>Subtotal</td>
          <td className="numeric">{formatMoney(summary.subtotal)}</td>
        </tr>
        <tr className="total">
          <td colSpan={3}>Total ({summary.billingInterval === "YEARLY" ? "yearly" : "monthly"} billing)</td>
          <td className="numeric" data-testid="summary-total">
            {formatMoney(summary.total)}
          </td>
        </tr>
      </tfoot>
    </table>
  );
}
