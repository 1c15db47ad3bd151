"""Add, choose and remove a customer's payment methods.

Provider calls happen outside database transactions: a slow card network must
never hold the database's write lock.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth.principal import Principal
from billing import audit
from billing.access import acting_customer
from billing.errors import UserError, UserErrors
from billing.services import BillingServices
from models import Customer, PaymentMethod
from payments.provider import CardDeclined, PaymentMethodTokenInvalid, ProviderUnavailable

__all__ = [
    "active_payment_methods",
    "add_payment_method",
    "ensure_provider_customer",
    "find_active_payment_method",
    "remove_payment_method",
    "set_primary_payment_method",
]

log = logging.getLogger(__name__)

_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_]{3,255}")
_LOOKS_LIKE_CARD_NUMBER = re.compile(r"[\d\s-]{12,}")
_TOKEN_FIELD = ("input", "paymentMethodToken")


async def active_payment_methods(session: AsyncSession, customer_id: str) -> list[PaymentMethod]:
    rows = await session.exec(
        select(PaymentMethod)
        .where(PaymentMethod.customer_id == customer_id, col(PaymentMethod.removed_at).is_(None))
        .order_by(col(PaymentMethod.created_at), col(PaymentMethod.id))
    )
    return list(rows.all())


async def find_active_payment_method(
    session: AsyncSession, customer_id: str, payment_method_id: str, *, field: tuple[str, ...]
) -> PaymentMethod:
    """The customer's payment method, unless removed; PAYMENT_METHOD_NOT_FOUND otherwise."""
    method = await session.get(PaymentMethod, payment_method_id) if len(payment_method_id) <= 64 else None
    if method is None or method.customer_id != customer_id or method.removed_at is not None:
        raise UserErrors(UserError("PAYMENT_METHOD_NOT_FOUND", "No such payment method for this customer.", field))
    return method


async def _make_primary(session: AsyncSession, customer_id: str, method: PaymentMethod) -> None:
    await session.exec(
        update(PaymentMethod)
        .where(col(PaymentMethod.customer_id) == customer_id, col(PaymentMethod.id) != method.id)
        .values(is_primary=False)
    )
    method.is_primary = True
    session.add(method)


async def ensure_provider_customer(services: BillingServices, customer: Customer) -> str:
    """The provider's customer for ``customer``, created on first need."""
    if customer.provider_customer_ref:
        return customer.provider_customer_ref
    ref = await services.provider.ensure_customer(customer_id=customer.id, name=customer.name, existing_ref=None)
    async with services.db.write() as session:
        stored = await session.get(Customer, customer.id)
        assert stored is not None
        if stored.provider_customer_ref:  # a concurrent request stored one first; use it
            return stored.provider_customer_ref
        stored.provider_customer_ref = ref
        session.add(stored)
    return ref


async def _reject(
    services: BillingServices, principal: Principal, customer_id: str, action: str, errors: UserErrors
) -> UserErrors:
    async with services.db.write() as session:
        await audit.record(
            session,
            partner_id=principal.partner_id,
            principal=principal,
            customer_id=customer_id,
            action=action,
            outcome=errors.errors[0].code,
        )
    return errors


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


async def add_payment_method(
    services: BillingServices, principal: Principal, customer_id: str, *, token: str, make_primary: bool
) -> PaymentMethod:
    await audit.require_billing_role(services, principal, customer_id=customer_id, action="payment_method.add")
    async with services.db.read() as session:
        customer = await acting_customer(session, principal, customer_id)
    try:
        _check_token(token)
        provider_customer = await ensure_provider_customer(services, customer)
        card = await services.provider.attach_payment_method(provider_customer_ref=provider_customer, token=token)
    except UserErrors as errors:
        raise await _reject(services, principal, customer.id, "payment_method.add", errors) from None
    except CardDeclined as exc:
        declined = UserErrors(UserError("CARD_DECLINED", f"The card was declined: {exc}", _TOKEN_FIELD))
        raise await _reject(services, principal, customer.id, "payment_method.add", declined) from None
    except PaymentMethodTokenInvalid:
        unknown = UserErrors(UserError("INVALID_PAYMENT_METHOD_TOKEN", "Unknown payment method token.", _TOKEN_FIELD))
        raise await _reject(services, principal, customer.id, "payment_method.add", unknown) from None
    except ProviderUnavailable:
        log.warning("payment provider unavailable while adding a payment method for %s", customer.id)
        unavailable = UserErrors(
            UserError("PAYMENT_PROVIDER_UNAVAILABLE", "The payment provider is unavailable; try again shortly.")
        )
        raise await _reject(services, principal, customer.id, "payment_method.add", unavailable) from None

    async with services.db.write() as session:
        first = not await active_payment_methods(session, customer.id)
        method = PaymentMethod(
            customer_id=customer.id,
            provider_ref=card.provider_ref,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )
        session.add(method)
        if make_primary or first:
            await _make_primary(session, customer.id, method)
        await audit.record(
            session,
            partner_id=principal.partner_id,
            principal=principal,
            customer_id=customer.id,
            action="payment_method.add",
            target_id=method.id,
            outcome="OK",
            detail={"brand": card.brand, "last4": card.last4, "primary": method.is_primary},
        )
    if method.is_primary:
        await _sync_default(services, provider_customer, method)
    return method


async def _sync_default(services: BillingServices, provider_customer: str | None, method: PaymentMethod) -> None:
    """Tell the provider about the new default. The gateway's own record is
    what charges use, so a failure here is logged rather than surfaced."""
    if not provider_customer:
        return
    try:
        await services.provider.set_default_payment_method(
            provider_customer_ref=provider_customer, payment_method_ref=method.provider_ref
        )
    except ProviderUnavailable:
        log.warning("could not set the provider's default payment method for %s", method.customer_id)


async def set_primary_payment_method(
    services: BillingServices, principal: Principal, customer_id: str, *, payment_method_id: str
) -> PaymentMethod:
    await audit.require_billing_role(services, principal, customer_id=customer_id, action="payment_method.set_primary")
    try:
        async with services.db.write() as session:
            customer = await acting_customer(session, principal, customer_id)
            method = await find_active_payment_method(
                session, customer.id, payment_method_id, field=("paymentMethodId",)
            )
            await _make_primary(session, customer.id, method)
            await audit.record(
                session,
                partner_id=principal.partner_id,
                principal=principal,
                customer_id=customer.id,
                action="payment_method.set_primary",
                target_id=method.id,
                outcome="OK",
            )
    except UserErrors as errors:
        raise await _reject(services, principal, customer_id, "payment_method.set_primary", errors) from None
    await _sync_default(services, customer.provider_customer_ref, method)
    return method


async def remove_payment_method(
    services: BillingServices, principal: Principal, customer_id: str, *, payment_method_id: str
) -> PaymentMethod:
    """Remove a method; if it was the primary one, the newest remaining one
    becomes primary so purchases keep a default."""
    await audit.require_billing_role(services, principal, customer_id=customer_id, action="payment_method.remove")
    promoted: PaymentMethod | None = None
    try:
        async with services.db.write() as session:
            customer = await acting_customer(session, principal, customer_id)
            method = await find_active_payment_method(
                session, customer.id, payment_method_id, field=("paymentMethodId",)
            )
            was_primary = method.is_primary
            method.removed_at = services.clock()
            method.is_primary = False
            session.add(method)
            remaining = [m for m in await active_payment_methods(session, customer.id) if m.id != method.id]
            if was_primary and remaining:
                promoted = remaining[-1]
                await _make_primary(session, customer.id, promoted)
            await audit.record(
                session,
                partner_id=principal.partner_id,
                principal=principal,
                customer_id=customer.id,
                action="payment_method.remove",
                target_id=method.id,
                outcome="OK",
            )
    except UserErrors as errors:
        raise await _reject(services, principal, customer_id, "payment_method.remove", errors) from None
    try:
        await services.provider.detach_payment_method(payment_method_ref=method.provider_ref)
    except ProviderUnavailable:
        log.warning("could not detach payment method %s at the provider", method.id)
    if promoted is not None:
        await _sync_default(services, customer.provider_customer_ref, promoted)
    return method
