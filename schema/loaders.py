"""DataLoaders, built per request, so lists resolve without N+1 queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import col, select
from strawberry.dataloader import DataLoader

from models import OrderLine, PaymentMethod, Plan
from models.database import Database

__all__ = ["Loaders"]


class Loaders:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.plan_by_id = DataLoader(self._plans)
        self.payment_method_by_id = DataLoader(self._payment_methods)
        self.lines_by_order_id = DataLoader(self._lines)

    async def _plans(self, ids: Sequence[str]) -> list[Plan | None]:
        async with self._db.read() as session:
            rows = {p.id: p for p in (await session.exec(select(Plan).where(col(Plan.id).in_(ids)))).all()}
        return [rows.get(i) for i in ids]

    async def _payment_methods(self, ids: Sequence[str]) -> list[PaymentMethod | None]:
        async with self._db.read() as session:
            query = select(PaymentMethod).where(col(PaymentMethod.id).in_(ids))
            rows = {m.id: m for m in (await session.exec(query)).all()}
        return [rows.get(i) for i in ids]

    async def _lines(self, order_ids: Sequence[str]) -> list[list[OrderLine]]:
        async with self._db.read() as session:
            query = select(OrderLine).where(col(OrderLine.order_id).in_(order_ids)).order_by(col(OrderLine.position))
            grouped: dict[str, list[OrderLine]] = defaultdict(list)
            for line in (await session.exec(query)).all():
                grouped[line.order_id].append(line)
        return [grouped[i] for i in order_ids]
