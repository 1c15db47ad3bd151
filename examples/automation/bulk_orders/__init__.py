"""bulk_orders: a partner's unattended purchase run against Partner Billing Gateway.

Reads a CSV of purchases (:mod:`bulk_orders.rows`), gives each an idempotency
key (:mod:`bulk_orders.keys`), places each order over HTTP with safe retries
(:mod:`bulk_orders.client`), follows it to its outcome over WebSocket
(:mod:`bulk_orders.confirmation`) and prints a summary (:mod:`bulk_orders.summary`).
Run it with ``python -m bulk_orders ORDERS.csv``.
"""

__all__: list[str] = []
