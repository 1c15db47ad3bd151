"""Order summaries: exactly what a purchase will charge, computed one way for
both the summary queries and the mutations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.access import plausible_id
from billing.catalog import PlanView, ProductView, plans_by_id, product_of, storage_product_of
from billing.customers import CustomerView
from billing.errors import UserError, UserErrors
from billing.money import prorate
from models import BillingInterval, OrderKind, PlanKind, ProductStatus
from models.database import Connection

__all__ = [
    "MAX_LICENSES_PER_PRODUCT",
    "MAX_QUANTITY",
    "Quote",
    "QuoteLine",
    "check_quantity",
    "license_purchase_quote",
    "storage_upgrade_quote",
]

MAX_QUANTITY = 10_000
# A product's total, so its storage (up to 5,120 GB a license) stays within
# GraphQL's 32-bit Int: 100,000 × 5,120 GB = 512,000,000 GB.
MAX_LICENSES_PER_PRODUCT = 100_000


@dataclass(frozen=True)
class QuoteLine:
    description: str
    quantity: int
    unit_price_minor: int

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True)
class Quote:
    kind: OrderKind
    lines: tuple[QuoteLine, ...]
    billing_interval: BillingInterval
    currency: str
    quantity: int
    product_id: str | None
    plan_id: str | None

    @property
    def subtotal_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    @property
    def total_minor(self) -> int:
        return self.subtotal_minor


def check_quantity(quantity: int, field: tuple[str, ...]) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise UserErrors(UserError("INVALID_QUANTITY", f"Quantity must be between 1 and {MAX_QUANTITY:,}.", field))


def _licenses(n: int) -> str:
    return f"{n} license" if n == 1 else f"{n} licenses"


async def license_purchase_quote(
    conn: Connection, customer: CustomerView, *, product_id: str, quantity: int, now: datetime
) -> Quote:
    """Licenses added to a product, charged pro rata (by whole days) for the rest
    of its current (paid) period, at the product's plan price for its interval."""
    check_quantity(quantity, ("input", "quantity"))
    product = await product_of(conn, customer.id, product_id) if plausible_id(product_id) else None
    if product is None:
        raise UserErrors(UserError("PRODUCT_NOT_FOUND", "No such product for this customer.", ("input", "productId")))
    if product.status is not ProductStatus.ACTIVE:
        raise UserErrors(
            UserError(
                "PRODUCT_NOT_ACTIVE",
                f"The product is {product.status.value.lower().replace('_', ' ')}: licenses can only be added "
                "to an active product.",
                ("input", "productId"),
            )
        )
    if product.total_licenses + quantity > MAX_LICENSES_PER_PRODUCT:
        raise UserErrors(
            UserError(
                "INVALID_QUANTITY",
                f"A product holds at most {MAX_LICENSES_PER_PRODUCT:,} licenses; this one has "
                f"{product.total_licenses:,}.",
                ("input", "quantity"),
            )
        )
    plan = product.plan
    interval = product.billing_interval
    period = product.period
    days_left = period.days_left(now.date())
    unit = prorate(plan.price_minor(interval), days_left, period.length_days)
    line = QuoteLine(
        description=(
            f"{plan.name}: {_licenses(quantity)} added, {interval.value.lower()}, "
            f"pro rata for {days_left} of {period.length_days} days until {period.end.date().isoformat()}"
        ),
        quantity=quantity,
        unit_price_minor=unit,
    )
    return Quote(
        kind=OrderKind.LICENSE_PURCHASE,
        lines=(line,),
        billing_interval=interval,
        currency=plan.currency,
        quantity=quantity,
        product_id=product.id,
        plan_id=plan.id,
    )


async def storage_upgrade_quote(
    conn: Connection,
    customer: CustomerView,
    *,
    plan_id: str,
    licenses: int,
    interval: BillingInterval,
    now: datetime,
) -> Quote:
    """A full period of the chosen storage plan, less a pro rata credit for the
    unused days of the storage plan it replaces (if any)."""
    check_quantity(licenses, ("input", "licenses"))
    plan = (await plans_by_id(conn, [plan_id])).get(plan_id) if plausible_id(plan_id) else None
    if plan is None or not plan.active or plan.kind != PlanKind.CLOUD_STORAGE:
        raise UserErrors(UserError("PLAN_NOT_FOUND", "No such cloud-storage plan.", ("input", "planId")))
    lines = [
        QuoteLine(
            description=f"{plan.name}: {_licenses(licenses)}, {interval.value.lower()}",
            quantity=licenses,
            unit_price_minor=plan.price_minor(interval),
        )
    ]
    current = await storage_product_of(conn, customer.id)
    if current is not None:
        _check_replacement(current, licenses=licenses, plan=plan, interval=interval)
        credit = _credit_line(current, now=now)
        if credit is not None:
            lines.append(credit)
    quote = Quote(
        kind=OrderKind.STORAGE_UPGRADE,
        lines=tuple(lines),
        billing_interval=interval,
        currency=plan.currency,
        quantity=licenses,
        product_id=current.id if current else None,
        plan_id=plan.id,
    )
    if quote.total_minor <= 0:
        raise UserErrors(
            UserError(
                "DOWNGRADE_NOT_SUPPORTED",
                "This change is worth less than the unused time on the current plan; "
                "choose a larger plan, more licenses or a longer interval.",
                ("input", "planId"),
            )
        )
    return quote


def _check_replacement(current: ProductView, *, licenses: int, plan: PlanView, interval: BillingInterval) -> None:
    same = current.plan.id == plan.id and current.billing_interval == interval and current.total_licenses == licenses
    if same and current.status is ProductStatus.ACTIVE:
        raise UserErrors(
            UserError("NOTHING_TO_CHANGE", "The customer already holds this plan with these licenses.", ("input",))
        )
    if licenses < current.assigned_licenses:
        raise UserErrors(
            UserError(
                "INVALID_QUANTITY",
                f"{current.assigned_licenses} licenses are assigned; the new plan needs at least that many.",
                ("input", "licenses"),
            )
        )


def _credit_line(current: ProductView, *, now: datetime) -> QuoteLine | None:
    """A pro rata credit for the paid days of the storage plan being replaced;
    None when none are left (past due, canceled, or its period is over)."""
    period = current.period
    if current.status is not ProductStatus.ACTIVE or now >= period.end:
        return None
    old_plan = current.plan
    days_left = period.days_left(now.date())
    unit = prorate(old_plan.price_minor(current.billing_interval), days_left, period.length_days)
    return QuoteLine(
        description=f"Credit for {days_left} unused of {period.length_days} days on {old_plan.name}",
        quantity=current.total_licenses,
        unit_price_minor=-unit,
    )
