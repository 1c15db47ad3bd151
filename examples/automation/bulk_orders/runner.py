"""One row, start to end: place the order (buyLicenses or upgradeStorage with
the row's idempotency key), then follow it until it settles."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bulk_orders.client import GatewayClient, GatewayUnreachable, RequestRefused
from bulk_orders.confirmation import SETTLED, ConfirmationWatcher, SubscriptionRefused
from bulk_orders.rows import OrderKind, OrderRow

__all__ = ["RowResult", "Runner"]

log = logging.getLogger("bulk_orders")

ORDER_FIELDS = "id status failureReason createdAt total { amount currency }"
USER_ERRORS = "userErrors { field code message }"
BUY_LICENSES = f"""
mutation BuyLicenses($customer: ID!, $input: BuyLicensesInput!) {{
  buyLicenses(actingCustomer: $customer, input: $input) {{ order {{ {ORDER_FIELDS} }} {USER_ERRORS} }}
}}
"""
UPGRADE_STORAGE = f"""
mutation UpgradeStorage($customer: ID!, $input: UpgradeStorageInput!) {{
  upgradeStorage(actingCustomer: $customer, input: $input) {{ order {{ {ORDER_FIELDS} }} {USER_ERRORS} }}
}}
"""
ORDER = f"query Order($customer: ID!, $id: ID!) {{ order(actingCustomer: $customer, id: $id) {{ {ORDER_FIELDS} }} }}"


@dataclass(frozen=True)
class RowResult:
    row: OrderRow
    idempotency_key: str
    order_id: str | None = None
    status: str | None = None  # None: no order was made
    total: str | None = None  # "12.50 EUR"
    placed_at: str | None = None  # the order's createdAt: an earlier run's order keeps its time
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED" and self.error is None


class Runner:
    def __init__(self, gateway: GatewayClient, watcher: ConfirmationWatcher, *, settle_timeout_s: float) -> None:
        self.gateway = gateway
        self.watcher = watcher
        self.settle_timeout_s = settle_timeout_s

    async def run(self, row: OrderRow, key: str) -> RowResult:
        what = f"line {row.line}"
        try:
            payload = await self._place(row, key, what)
        except RequestRefused as refused:
            return RowResult(row, key, error=f"{refused.code}: {refused.message}")
        except GatewayUnreachable as exc:
            return RowResult(row, key, error=f"UNREACHABLE: {exc}")
        user_errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        order = payload.get("order")
        if not isinstance(order, dict):
            described = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in user_errors)
            return RowResult(row, key, error=described or "no order and no reason given")
        log.info("%s: order %s is %s", what, order["id"], order["status"])
        if order["status"] not in SETTLED:
            order = await self._settle(row, order, what)
        return _result(row, key, order, user_errors, self.settle_timeout_s)

    async def _place(self, row: OrderRow, key: str, what: str) -> dict[str, Any]:
        if row.kind is OrderKind.LICENSES:
            field, document = "buyLicenses", BUY_LICENSES
            order_input: dict[str, Any] = {"productId": row.target_id, "quantity": row.quantity}
        else:
            field, document = "upgradeStorage", UPGRADE_STORAGE
            order_input = {"planId": row.target_id, "licenses": row.quantity, "billingInterval": row.billing_interval}
        order_input["idempotencyKey"] = key
        data = await self.gateway.execute(document, {"customer": row.customer_id, "input": order_input}, what=what)
        payload: dict[str, Any] = data[field]
        return payload

    async def _settle(self, row: OrderRow, order: dict[str, Any], what: str) -> dict[str, Any]:
        order_id = order["id"]
        try:
            seen = await self.watcher.wait(row.customer_id, order_id, timeout_s=self.settle_timeout_s, what=what)
            why = f"no final status within {self.settle_timeout_s:g} s"
        except SubscriptionRefused as refused:
            seen, why = None, str(refused)
        if seen is not None and seen["status"] in SETTLED:
            log.info("%s: order %s is %s", what, order_id, seen["status"])
            return seen
        # The subscription gave no final word (timeout, WebSocket unusable):
        # one last look over HTTP before reporting the order as unsettled.
        log.warning("%s: paymentConfirmation of order %s: %s; asking for its status instead", what, order_id, why)
        try:
            variables = {"customer": row.customer_id, "id": order_id}
            latest = (await self.gateway.execute(ORDER, variables, what=what))["order"]
        except (RequestRefused, GatewayUnreachable) as exc:
            log.warning("%s: cannot read order %s: %s", what, order_id, exc)
            latest = None
        return latest if isinstance(latest, dict) else seen or order


def _result(
    row: OrderRow, key: str, order: dict[str, Any], user_errors: list[dict[str, Any]], timeout_s: float
) -> RowResult:
    status = str(order["status"])
    total = order.get("total") or {}
    error: str | None = None
    if status == "FAILED":
        declined = [e for e in user_errors if e.get("code") == "CARD_DECLINED"]
        reason = order.get("failureReason") or "the payment failed"
        error = f"CARD_DECLINED: {declined[0].get('message') or reason}" if declined else f"FAILED: {reason}"
    elif status == "CANCELED":
        error = "CANCELED: the payment was canceled"
    elif status == "REQUIRES_ACTION":
        error = (
            "REQUIRES_ACTION: the cardholder must complete 3-D Secure (for example in the dashboard); "
            "run this file again afterwards to see the outcome"
        )
    elif status != "SUCCEEDED":
        codes = "".join(f"{e.get('code')}; " for e in user_errors)
        error = (
            f"NOT_SETTLED: {codes}still {status} after {timeout_s:g} s; run this file again later to see "
            "the outcome (it is not charged twice)"
        )
    return RowResult(
        row,
        key,
        order_id=str(order["id"]),
        status=status,
        total=f"{total.get('amount')} {total.get('currency')}" if total else None,
        placed_at=order.get("createdAt"),
        error=error,
    )
