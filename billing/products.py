"""Plan changes a partner makes to a product, effective at its period's end:
fewer licenses from the next period, cancel, and resume (undo the cancel).

Each change is one write transaction that locks the customer, then the
product (the order the renewal pass locks them in), so a change and a renewal
being placed never interleave. Refusals are user errors, recorded in the
audit trail like the changes themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, update

from auth.principal import Principal
from billing import audit
from billing.access import lock_acting_customer, plausible_id
from billing.catalog import PRODUCT_WITH_PLAN, ProductView, product_of, product_view
from billing.errors import UserError, UserErrors
from billing.product_renewal import renewal_in_flight
from billing.services import BillingServices
from models import ProductStatus
from models.database import Connection, Query
from models.tables import products

__all__ = ["cancel_product", "resume_product", "schedule_license_change"]

_PRODUCT_FIELD = ("input", "productId")
_LICENSES_FIELD = ("input", "totalLicenses")

_LOCK_PRODUCT = Query(
    PRODUCT_WITH_PLAN.where(
        products.c.id == bindparam("id"), products.c.customer_id == bindparam("customer_id")
    ).with_for_update(of=products)
)
_SCHEDULE = Query(
    update(products)
    .where(products.c.id == bindparam("id"))
    .values(scheduled_licenses=bindparam("scheduled"), updated_at=bindparam("now"))
)
_SET_CANCEL = Query(
    update(products)
    .where(products.c.id == bindparam("id"))
    .values(cancel_at_period_end=bindparam("cancel"), updated_at=bindparam("now"))
)
_CANCEL_NOW = Query(
    update(products)
    .where(products.c.id == bindparam("id"))
    .values(
        status=ProductStatus.CANCELED.value,
        cancel_at_period_end=True,
        next_renewal_at=None,
        updated_at=bindparam("now"),
    )
)


@dataclass(frozen=True)
class _Change:
    """What to write (None: nothing changes) and what to record of it."""

    statement: Query | None
    params: dict[str, Any]
    detail: dict[str, object]


# Given the locked product and whether a renewal of it is being paid.
Decide = Callable[[ProductView, bool], _Change]

_IN_PROGRESS = UserError(
    "ORDER_IN_PROGRESS",
    "This product's renewal is being paid; change it once that has settled (watch orderStatusChanged).",
)


def _canceled(message: str = "The product is canceled: it renews no more.") -> UserErrors:
    return UserErrors(UserError("PRODUCT_NOT_ACTIVE", message, _PRODUCT_FIELD))


async def schedule_license_change(
    services: BillingServices,
    conn: Connection,
    principal: Principal,
    customer_id: str,
    *,
    product_id: str,
    total_licenses: int,
) -> ProductView:
    """From the next period, ``total_licenses`` (fewer, or as many as now to
    undo a scheduled change); more licenses are bought now, with buyLicenses."""

    def decide(product: ProductView, renewal_being_paid: bool) -> _Change:
        if product.status is ProductStatus.CANCELED:
            raise _canceled()
        if not 1 <= total_licenses <= product.total_licenses:
            raise UserErrors(
                UserError(
                    "INVALID_QUANTITY",
                    f"totalLicenses must be from 1 to the current total ({product.total_licenses}); "
                    "to add licenses, buy them (buyLicenses).",
                    _LICENSES_FIELD,
                )
            )
        if total_licenses < product.assigned_licenses:
            raise UserErrors(
                UserError(
                    "LICENSES_IN_USE",
                    f"{product.assigned_licenses} licenses are assigned; unassign some before scheduling fewer.",
                    _LICENSES_FIELD,
                )
            )
        if renewal_being_paid:
            # Its order already says how many licenses the next period has.
            raise UserErrors(_IN_PROGRESS)
        scheduled = None if total_licenses == product.total_licenses else total_licenses
        return _Change(_SCHEDULE, {"scheduled": scheduled}, {"scheduled_licenses": scheduled})

    return await _change(services, conn, principal, customer_id, product_id, "product.schedule_license_change", decide)


async def cancel_product(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, *, product_id: str
) -> ProductView:
    """Cancel at the period's end: the renewal pass cancels it then instead of
    charging. A past-due product's paid period is already over, so it is
    canceled at once (unless a renewal of it is being paid: then it is set to
    cancel, and a successful payment keeps it until the end of the period
    paid). Canceling twice changes nothing."""

    def decide(product: ProductView, renewal_being_paid: bool) -> _Change:
        if product.status is ProductStatus.CANCELED:
            raise _canceled()
        if product.cancel_at_period_end:
            return _Change(None, {}, {"already": True})
        if product.status is ProductStatus.PAST_DUE and not renewal_being_paid:
            return _Change(_CANCEL_NOW, {}, {"effective": "now"})
        return _Change(_SET_CANCEL, {"cancel": True}, {"effective": product.current_period_end.isoformat()})

    return await _change(services, conn, principal, customer_id, product_id, "product.cancel", decide)


async def resume_product(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, *, product_id: str
) -> ProductView:
    """Undo a cancellation that has not happened yet: the product renews as
    before (a past-due one at its next retry). Resuming a product that is not
    set to cancel changes nothing."""

    def decide(product: ProductView, renewal_being_paid: bool) -> _Change:
        if product.status is ProductStatus.CANCELED:
            raise _canceled("The product is already canceled and cannot be resumed; buy the plan again instead.")
        if not product.cancel_at_period_end:
            return _Change(None, {}, {"already": True})
        return _Change(_SET_CANCEL, {"cancel": False}, {})

    return await _change(services, conn, principal, customer_id, product_id, "product.resume", decide)


async def _change(
    services: BillingServices,
    conn: Connection,
    principal: Principal,
    customer_id: str,
    product_id: str,
    action: str,
    decide: Decide,
) -> ProductView:
    await audit.require_billing_role(services, conn, principal, customer_id=customer_id, action=action)
    now = services.clock()
    try:
        async with conn.transaction() as tx:
            customer = await lock_acting_customer(tx, principal, customer_id)
            row = (
                await tx.first(_LOCK_PRODUCT, id=product_id, customer_id=customer.id)
                if plausible_id(product_id)
                else None
            )
            if row is None:
                raise UserErrors(UserError("PRODUCT_NOT_FOUND", "No such product for this customer.", _PRODUCT_FIELD))
            product = product_view(row)
            change = decide(product, await renewal_in_flight(tx, product.id))
            if change.statement is not None:
                await tx.execute(change.statement, id=product.id, now=now, **change.params)
            await audit.record(
                tx,
                partner_id=principal.partner_id,
                principal=principal,
                customer_id=customer.id,
                action=action,
                target_id=product.id,
                outcome="OK",
                detail=change.detail,
            )
            changed = await product_of(tx, customer.id, product.id)
    except UserErrors as errors:
        raise await audit.record_refusal(
            conn, principal, customer_id=customer_id, action=action, errors=errors
        ) from None
    assert changed is not None
    return changed
