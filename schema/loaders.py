"""DataLoaders, built per request over its one connection, so lists resolve
without N+1 queries. The reads themselves live in ``billing``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from billing.customers import customers_by_id
from billing.orders import OrderLineView, lines_by_order_id, orders_by_id
from billing.payment_methods import payment_methods_by_id
from models.database import Connection

__all__ = ["Loaders"]

V = TypeVar("V")


def _loader(
    conn: Connection, read: Callable[[Connection, Sequence[str]], Awaitable[Mapping[str, V]]]
) -> DataLoader[str, V | None]:
    async def load(ids: Sequence[str]) -> list[V | None]:
        found = await read(conn, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load)


class Loaders:
    def __init__(self, conn: Connection) -> None:
        self.customers = _loader(conn, customers_by_id)
        self.orders = _loader(conn, orders_by_id)
        self.payment_methods = _loader(conn, payment_methods_by_id)
        self.order_lines: DataLoader[str, list[OrderLineView]] = DataLoader(self._lines(conn))

    @staticmethod
    def _lines(conn: Connection) -> Callable[[Sequence[str]], Awaitable[list[list[OrderLineView]]]]:
        async def load(ids: Sequence[str]) -> list[list[OrderLineView]]:
            found = await lines_by_order_id(conn, ids)
            return [found.get(i, []) for i in ids]

        return load
