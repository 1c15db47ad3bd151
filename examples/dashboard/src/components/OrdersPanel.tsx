// The order list, live: each order's status as the gateway reports it, the
// statuses it went through while this page watched, a declined card's reason,
// and the 3-D Secure challenge of an order that needs one.
import type { OrderRow } from "../live/orderRows";
import { ORDER_KIND_LABELS, STATUS_LABELS, describeCard, formatDateTime, formatMoney } from "../format";
import { AuthenticationChallenge } from "./AuthenticationChallenge";

export function OrdersPanel({ rows }: { rows: readonly OrderRow[] }) {
  if (rows.length === 0) return <p>No orders yet.</p>;
  return (
    <table data-testid="orders-table">
      <thead>
        <tr>
          <th>Placed</th>
          <th>Order</th>
          <th className="numeric">Total</th>
          <th>Card</th>
          <th>Status</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ order, status, trail }) => (
          <tr key={order.id} data-testid="order-row" data-order-id={order.id} data-status={status}>
            <td className="nowrap">{formatDateTime(order.createdAt)}</td>
            <td>
              {ORDER_KIND_LABELS[order.kind]}: {order.summary.lines[0]?.description ?? ""}
            </td>
            <td className="numeric nowrap">{formatMoney(order.total)}</td>
            <td className="nowrap">{order.paymentMethod ? describeCard(order.paymentMethod) : "—"}</td>
            <td>
              <span className={`status status-${status}`} data-testid="order-status">
                {STATUS_LABELS[status]}
              </span>
              {trail.length > 1 && (
                <div className="trail" data-testid="order-trail">
                  {trail.map((step) => STATUS_LABELS[step]).join(" → ")}
                </div>
              )}
              {status === "FAILED" && order.failureReason && (
                <div className="failure" data-testid="failure-reason">
                  {order.failureReason}
                </div>
              )}
              {status === "REQUIRES_ACTION" && order.clientSecret && (
                <AuthenticationChallenge clientSecret={order.clientSecret} />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
