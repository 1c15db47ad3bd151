"""Add, choose and remove a customer's payment methods.

Provider calls happen outside database transactions: a slow card network must
never hold the database's write lock. Changing which card is primary locks
the customer first, so two concurrent changes apply one after the other and
the customer never ends up with two primary cards.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, select, update

from auth.principal import Principal
from billing import audit
from billing.access import acting_customer, lock_acting_customer, plausible_id
from billing.customers import CustomerView, customer_with, split_customer
from billing.errors import UserError, UserErrors
from billing.services import BillingServices
from models import new_id
from models.base import utcnow
from models.database import Connection, Query, Row, any_of, insert_into
from models.tables import customers, payment_methods
from payments.provider import AttachedCard, CardDeclined, PaymentMethodTokenInvalid, ProviderUnavailable

__all__ = [
    "PaymentMethodView",
    "add_payment_method",
    "customer_payment_methods",
    "ensure_provider_customer",
    "find_active_payment_method",
    "payment_methods_by_id",
    "primary_payment_method",
    "remove_payment_method",
    "set_primary_payment_method",
]

log = logging.getLogger(__name__)

_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_]{3,255}")
_LOOKS_LIKE_CARD_NUMBER = re.compile(r"[\d\s-]{12,}")
_TOKEN_FIELD = ("input", "paymentMethodToken")


@dataclass(frozen=True, slots=True)
class PaymentMethodView:
    id: str
    customer_id: str
    provider_ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_primary: bool
    # Removed methods are kept so past orders still name the card they used.
    removed_at: datetime | None


_COLUMNS = (
    payment_methods.c.id,
    payment_methods.c.customer_id,
    payment_methods.c.provider_ref,
    payment_methods.c.brand,
    payment_methods.c.last4,
    payment_methods.c.exp_month,
    payment_methods.c.exp_year,
    payment_methods.c.is_primary,
    payment_methods.c.removed_at,
)
_ACTIVE = (payment_methods.c.customer_id == bindparam("customer_id")) & payment_methods.c.removed_at.is_(None)
_CUSTOMER_METHODS = Query(
    customer_with(
        _COLUMNS,
        payment_methods,
        (payment_methods.c.customer_id == customers.c.id) & payment_methods.c.removed_at.is_(None),
    ).order_by(payment_methods.c.created_at, payment_methods.c.id)
)
_ACTIVE_OF = Query(select(*_COLUMNS).where(_ACTIVE).order_by(payment_methods.c.created_at, payment_methods.c.id))
_BY_IDS = Query(select(*_COLUMNS).where(any_of(payment_methods.c.id, "ids")))
_ACTIVE_BY_ID = Query(select(*_COLUMNS).where(_ACTIVE, payment_methods.c.id == bindparam("id")))
_PRIMARY_OF = Query(select(*_COLUMNS).where(_ACTIVE, payment_methods.c.is_primary.is_(True)))
_INSERT = Query(insert_into(payment_methods))
_UNSET_PRIMARY = Query(
    update(payment_methods)
    .where(payment_methods.c.customer_id == bindparam("customer_id"), payment_methods.c.is_primary.is_(True))
    .values(is_primary=False)
)
_SET_PRIMARY = Query(
    update(payment_methods)
    .where(payment_methods.c.id == bindparam("id"), payment_methods.c.removed_at.is_(None))
    .values(is_primary=True)
    .returning(*_COLUMNS)
)
_REMOVE = Query(
    update(payment_methods)
    .where(payment_methods.c.id == bindparam("id"))
    .values(removed_at=bindparam("now"), is_primary=False)
)
_STORE_PROVIDER_CUSTOMER = Query(
    update(customers)
    .where(customers.c.id == bindparam("id"), customers.c.provider_customer_ref.is_(None))
    .values(provider_customer_ref=bindparam("ref"))
    .returning(customers.c.provider_customer_ref)
)
_PROVIDER_CUSTOMER = Query(select(customers.c.provider_customer_ref).where(customers.c.id == bindparam("id")))


def _view(row: Row) -> PaymentMethodView:
    return PaymentMethodView(*row)


# -- reads --------------------------------------------------------------------


async def customer_payment_methods(
    conn: Connection, partner_id: str, customer_id: str
) -> tuple[CustomerView | None, list[PaymentMethodView]]:
    """The partner's customer (None: not theirs) and its active payment
    methods, oldest first, in one statement."""
    customer, rows = split_customer(await conn.all(_CUSTOMER_METHODS, partner_id=partner_id, customer_id=customer_id))
    return customer, [_view(row) for row in rows]


async def payment_methods_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, PaymentMethodView]:
    return {row[0]: _view(row) for row in await conn.all(_BY_IDS, ids=list(ids))}


async def primary_payment_method(conn: Connection, customer_id: str) -> PaymentMethodView | None:
    row = await conn.first(_PRIMARY_OF, customer_id=customer_id)
    return _view(row) if row else None


async def find_active_payment_method(
    conn: Connection, customer_id: str, payment_method_id: str, *, field: tuple[str, ...]
) -> PaymentMethodView:
    """The customer's payment method, unless removed; PAYMENT_METHOD_NOT_FOUND otherwise."""
    row = (
        await conn.first(_ACTIVE_BY_ID, customer_id=customer_id, id=payment_method_id)
        if plausible_id(payment_method_id)
        else None
    )
    if row is None:
        raise UserErrors(UserError("PAYMENT_METHOD_NOT_FOUND", "No such payment method for this customer.", field))
    return _view(row)


# -- changes ------------------------------------------------------------------


async def ensure_provider_customer(services: BillingServices, conn: Connection, customer: CustomerView) -> str:
    """The provider's customer for ``customer``, created on first need."""
    if customer.provider_customer_ref:
        return customer.provider_customer_ref
    ref = await services.provider.ensure_customer(customer_id=customer.id, name=customer.name, existing_ref=None)
    stored = await conn.write(_STORE_PROVIDER_CUSTOMER, id=customer.id, ref=ref)
    if stored:
        return ref
    # A concurrent request stored one first; use it.
    existing: str = await conn.scalar(_PROVIDER_CUSTOMER, id=customer.id)
    return existing


def _check_token(token: str) -> None:
    if _LOOKS_LIKE_CARD_NUMBER.fullmatch(token):
        raise UserErrors(
            UserError(
                "INVALID_PAYMENT_METHOD_TOKEN",
                "Card numbers are never accepted: create a payment method token with Stripe.js and send that.",
                _TOKEN_FIELD,
            )
        )
    if not _TOKEN_PATTERN.fullmatch(token):
        raise UserErrors(UserError("INVALID_PAYMENT_METHOD_TOKEN", "Malformed payment method token.", _TOKEN_FIELD))


async def _attach(services: BillingServices, conn: Connection, customer: CustomerView, token: str) -> AttachedCard:
    """The card the provider attached for ``token``; UserErrors when it would not."""
    try:
        _check_token(token)
        provider_customer = await ensure_provider_customer(services, conn, customer)
        return await services.provider.attach_payment_method(provider_customer_ref=provider_customer, token=token)
    except CardDeclined as exc:
        raise UserErrors(UserError("CARD_DECLINED", f"The card was declined: {exc}", _TOKEN_FIELD)) from None
    except PaymentMethodTokenInvalid:
        raise UserErrors(
            UserError("INVALID_PAYMENT_METHOD_TOKEN", "Unknown payment method token.", _TOKEN_FIELD)
        ) from None
    except ProviderUnavailable:
        log.warning("payment provider unavailable while adding a payment method for %s", customer.id)
        raise UserErrors(
            UserError("PAYMENT_PROVIDER_UNAVAILABLE", "The payment provider is unavailable; try again shortly.")
        ) from None


async def add_payment_method(
    services: BillingServices,
    conn: Connection,
    principal: Principal,
    customer_id: str,
    *,
    token: str,
    make_primary: bool,
) -> PaymentMethodView:
    action = "payment_method.add"
    await audit.require_billing_role(services, conn, principal, customer_id=customer_id, action=action)
    customer = await acting_customer(conn, principal, customer_id)
    try:
        card = await _attach(services, conn, customer, token)
    except UserErrors as errors:
        raise await audit.record_refusal(
            conn, principal, customer_id=customer.id, action=action, errors=errors
        ) from None

    async with conn.transaction() as tx:
        await lock_acting_customer(tx, principal, customer.id)
        primary = make_primary or not await tx.all(_ACTIVE_OF, customer_id=customer.id)
        if primary:
            await tx.execute(_UNSET_PRIMARY, customer_id=customer.id)
        method = PaymentMethodView(
            new_id("pm"),
            customer.id,
            card.provider_ref,
            card.brand,
            card.last4,
            card.exp_month,
            card.exp_year,
            primary,
            None,
        )
        await tx.execute(
            _INSERT,
            id=method.id,
            customer_id=method.customer_id,
            provider_ref=method.provider_ref,
            brand=method.brand,
            last4=method.last4,
            exp_month=method.exp_month,
            exp_year=method.exp_year,
            is_primary=primary,
            created_at=utcnow(),
            removed_at=None,
        )
        await audit.record(
            tx,
            partner_id=principal.partner_id,
            principal=principal,
            customer_id=customer.id,
            action=action,
            target_id=method.id,
            outcome="OK",
            detail={"brand": card.brand, "last4": card.last4, "primary": primary},
        )
    if primary:
        await _sync_default(services, conn, customer, method)
    return method


async def _sync_default(
    services: BillingServices, conn: Connection, customer: CustomerView, method: PaymentMethodView
) -> None:
    """Tell the provider about the new default. The gateway's own record is
    what charges use, so a failure here is logged rather than surfaced."""
    provider_customer = customer.provider_customer_ref or await conn.scalar(_PROVIDER_CUSTOMER, id=customer.id)
    if not provider_customer:
        return
    try:
        await services.provider.set_default_payment_method(
            provider_customer_ref=provider_customer, payment_method_ref=method.provider_ref
        )
    except ProviderUnavailable:
        log.warning("could not set the provider's default payment method for %s", method.customer_id)


async def set_primary_payment_method(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, *, payment_method_id: str
) -> PaymentMethodView:
    action = "payment_method.set_primary"
    await audit.require_billing_role(services, conn, principal, customer_id=customer_id, action=action)
    customer = await acting_customer(conn, principal, customer_id)
    try:
        async with conn.transaction() as tx:
            await lock_acting_customer(tx, principal, customer.id)
            await find_active_payment_method(tx, customer.id, payment_method_id, field=("paymentMethodId",))
            await tx.execute(_UNSET_PRIMARY, customer_id=customer.id)
            method = _view((await tx.all(_SET_PRIMARY, id=payment_method_id))[0])
            await audit.record(
                tx,
                partner_id=principal.partner_id,
                principal=principal,
                customer_id=customer.id,
                action=action,
                target_id=method.id,
                outcome="OK",
            )
    except UserErrors as errors:
        raise await audit.record_refusal(
            conn, principal, customer_id=customer.id, action=action, errors=errors
        ) from None
    await _sync_default(services, conn, customer, method)
    return method


async def remove_payment_method(
    services: BillingServices, conn: Connection, principal: Principal, customer_id: str, *, payment_method_id: str
) -> PaymentMethodView:
    """Remove a method; if it was the primary one, the newest remaining one
    becomes primary so purchases keep a default."""
    action = "payment_method.remove"
    await audit.require_billing_role(services, conn, principal, customer_id=customer_id, action=action)
    customer = await acting_customer(conn, principal, customer_id)
    now = services.clock()
    promoted: PaymentMethodView | None = None
    try:
        async with conn.transaction() as tx:
            await lock_acting_customer(tx, principal, customer.id)
            method = await find_active_payment_method(tx, customer.id, payment_method_id, field=("paymentMethodId",))
            await tx.execute(_REMOVE, id=method.id, now=now)
            remaining = [_view(row) for row in await tx.all(_ACTIVE_OF, customer_id=customer.id)]
            if method.is_primary and remaining:
                promoted = _view((await tx.all(_SET_PRIMARY, id=remaining[-1].id))[0])
            await audit.record(
                tx,
                partner_id=principal.partner_id,
                principal=principal,
                customer_id=customer.id,
                action=action,
                target_id=method.id,
                outcome="OK",
            )
    except UserErrors as errors:
        raise await audit.record_refusal(
            conn, principal, customer_id=customer.id, action=action, errors=errors
        ) from None
    try:
        await services.provider.detach_payment_method(payment_method_ref=method.provider_ref)
    except ProviderUnavailable:
        log.warning("could not detach payment method %s at the provider", method.id)
    if promoted is not None:
        await _sync_default(services, conn, customer, promoted)
    return replace(method, is_primary=False, removed_at=now)
