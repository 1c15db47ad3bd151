"""Placing orders: quote, record, charge, settle.

1. One write transaction checks the request, prices it and stores the order
   (PENDING) with its lines, its first event and a provider idempotency key
   derived from the order id.
2. The provider is charged outside any transaction.
3. The answer goes through :func:`billing.settlement.apply_payment_outcome`,
   the same path as the provider's later confirmation.

A replay with the same idempotency key returns the stored order; if that order
never reached the provider (the gateway died in between), the charge resumes
with the same provider key, so it is made at most once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth.principal import Principal
from billing import audit
from billing.access import acting_customer, lock_customer
from billing.errors import BadUserInput, UserError, UserErrors
from billing.events import append_event
from billing.payment_methods import ensure_provider_customer, find_active_payment_method
from billing.quotes import Quote, license_purchase_quote, storage_product, storage_upgrade_quote
from billing.services import BillingServices
from billing.settlement import apply_payment_outcome
from models import BillingInterval, Customer, Order, OrderKind, OrderLine, OrderStatus, PaymentMethod
from payments.provider import ChargeRequest, PaymentError, PaymentOutcome, PaymentStatus, ProviderUnavailable

__all__ = [
    "LicensePurchase",
    "OrderResult",
    "StorageUpgrade",
    "buy_licenses",
    "charge_order",
    "charge_request",
    "upgrade_storage",
]

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class LicensePurchase:
    product_id: str
    quantity: int
    payment_method_id: str | None = None
    idempotency_key: str | None = None
    kind: ClassVar[OrderKind] = OrderKind.LICENSE_PURCHASE


@dataclass(frozen=True)
class StorageUpgrade:
    plan_id: str
    licenses: int
    billing_interval: BillingInterval
    payment_method_id: str | None = None
    idempotency_key: str | None = None
    kind: ClassVar[OrderKind] = OrderKind.STORAGE_UPGRADE


Request = LicensePurchase | StorageUpgrade


@dataclass(frozen=True)
class OrderResult:
    order: Order
    user_errors: tuple[UserError, ...] = ()


def _audit_action(kind: OrderKind) -> str:
    return f"order.{kind.value.lower()}"


def _fingerprint(request: Request) -> str:
    fields = {k: v for k, v in vars(request).items() if k != "idempotency_key"}
    fields["kind"] = type(request).__name__
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadUserInput(f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.")


async def buy_licenses(
    services: BillingServices, principal: Principal, customer_id: str, request: LicensePurchase
) -> OrderResult:
    return await _place(services, principal, customer_id, request)


async def upgrade_storage(
    services: BillingServices, principal: Principal, customer_id: str, request: StorageUpgrade
) -> OrderResult:
    return await _place(services, principal, customer_id, request)


async def quote_for(session: AsyncSession, customer: Customer, request: Request, services: BillingServices) -> Quote:
    now = services.clock()
    if isinstance(request, LicensePurchase):
        return await license_purchase_quote(
            session, customer, product_id=request.product_id, quantity=request.quantity, now=now
        )
    return await storage_upgrade_quote(
        session,
        customer,
        plan_id=request.plan_id,
        licenses=request.licenses,
        interval=request.billing_interval,
        now=now,
    )


async def _payment_method(session: AsyncSession, customer_id: str, chosen: str | None) -> PaymentMethod:
    if chosen is not None:
        return await find_active_payment_method(session, customer_id, chosen, field=("input", "paymentMethodId"))
    rows = await session.exec(
        select(PaymentMethod).where(
            PaymentMethod.customer_id == customer_id,
            col(PaymentMethod.is_primary),
            col(PaymentMethod.removed_at).is_(None),
        )
    )
    primary = rows.first()
    if primary is None:
        raise UserErrors(
            UserError(
                "NO_PAYMENT_METHOD",
                "The customer has no primary payment method; add one or choose one.",
                ("input", "paymentMethodId"),
            )
        )
    return primary


_IN_FLIGHT = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.REQUIRES_ACTION)


async def _conflicting_order_in_flight(session: AsyncSession, customer_id: str, quote: Quote) -> bool:
    """Whether an unsettled order would race this one over the storage product.

    A plan change replaces the storage product's licenses and price, so it
    waits for every unsettled storage order and license purchase on that
    product; a license purchase on the storage product waits for an unsettled
    plan change. (Abandoned 3-D Secure orders are canceled by reconciliation.)
    """
    storage = await storage_product(session, customer_id)
    if quote.kind is OrderKind.STORAGE_UPGRADE:
        touches_storage = col(Order.kind) == OrderKind.STORAGE_UPGRADE
        if storage is not None:
            touches_storage = touches_storage | (col(Order.product_id) == storage.id)
    elif storage is not None and quote.product_id == storage.id:
        touches_storage = col(Order.kind) == OrderKind.STORAGE_UPGRADE
    else:
        return False
    rows = await session.exec(
        select(Order.id).where(Order.customer_id == customer_id, col(Order.status).in_(_IN_FLIGHT), touches_storage)
    )
    return rows.first() is not None


async def _replay(session: AsyncSession, customer_id: str, request: Request) -> Order | None:
    """The order an idempotency key already made, if any; a different request
    under the same key is refused."""
    if request.idempotency_key is None:
        return None
    rows = await session.exec(
        select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == request.idempotency_key)
    )
    existing = rows.first()
    if existing is not None and existing.request_fingerprint != _fingerprint(request):
        raise UserErrors(
            UserError(
                "IDEMPOTENCY_KEY_REUSED",
                "This idempotency key was used for a different request.",
                ("input", "idempotencyKey"),
            )
        )
    return existing


async def _create_order(
    services: BillingServices, principal: Principal, customer_id: str, request: Request
) -> tuple[Order, bool]:
    """Store a new PENDING order, or find the one this idempotency key made.
    Returns the order and whether it is new."""
    async with services.db.write() as session:
        customer = await acting_customer(session, principal, customer_id)
        await lock_customer(session, customer.id)
        existing = await _replay(session, customer.id, request)
        if existing is not None:
            return existing, False
        quote = await quote_for(session, customer, request, services)
        method = await _payment_method(session, customer.id, request.payment_method_id)
        if await _conflicting_order_in_flight(session, customer.id, quote):
            raise UserErrors(
                UserError(
                    "ORDER_IN_PROGRESS",
                    "Another order changing this customer's storage plan is still being paid; "
                    "wait for it to finish (watch paymentConfirmation).",
                )
            )
        order = Order(
            customer_id=customer.id,
            partner_id=customer.partner_id,
            kind=quote.kind,
            status=OrderStatus.PENDING,
            billing_interval=quote.billing_interval,
            currency=quote.currency,
            subtotal_minor=quote.subtotal_minor,
            total_minor=quote.total_minor,
            product_id=quote.product_id,
            plan_id=quote.plan_id,
            quantity=quote.quantity,
            payment_method_id=method.id,
            idempotency_key=request.idempotency_key,
            request_fingerprint=_fingerprint(request),
            provider_idempotency_key="",
            created_by_user_id=principal.user_id,
        )
        order.provider_idempotency_key = f"pbg-order-{order.id}"
        session.add(order)
        for position, line in enumerate(quote.lines):
            session.add(
                OrderLine(
                    order_id=order.id,
                    position=position,
                    description=line.description,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    amount_minor=line.amount_minor,
                )
            )
        await audit.record(
            session,
            partner_id=principal.partner_id,
            principal=principal,
            customer_id=customer.id,
            action=_audit_action(quote.kind),
            target_id=order.id,
            outcome="PLACED",
            detail={"total_minor": quote.total_minor, "quantity": quote.quantity, "plan": quote.plan_id},
        )
        event = await append_event(session, order, OrderStatus.PENDING)
    assert event.seq is not None
    await services.notifier.notify(event.seq)
    return order, True


async def _place(services: BillingServices, principal: Principal, customer_id: str, request: Request) -> OrderResult:
    action = _audit_action(request.kind)
    await audit.require_billing_role(services, principal, customer_id=customer_id, action=action)
    _check_idempotency_key(request.idempotency_key)
    try:
        order, _is_new = await _create_order(services, principal, customer_id, request)
    except IntegrityError:
        # Two requests raced with one idempotency key; the other one won.
        order, _is_new = await _create_order(services, principal, customer_id, request)
    except UserErrors as errors:
        async with services.db.write() as session:
            await audit.record(
                session,
                partner_id=principal.partner_id,
                principal=principal,
                customer_id=customer_id,
                action=action,
                outcome=errors.errors[0].code,
            )
        raise
    if order.status == OrderStatus.PENDING:
        order = await charge_order(services, order)
    if order.status == OrderStatus.FAILED:
        return OrderResult(order, (UserError("CARD_DECLINED", order.failure_reason or "The payment failed."),))
    if order.status == OrderStatus.PENDING:
        unavailable = UserError(
            "PAYMENT_PROVIDER_UNAVAILABLE",
            "The payment provider did not answer. The order is kept and will be settled; "
            "repeat the request with the same idempotencyKey or watch paymentConfirmation.",
        )
        return OrderResult(order, (unavailable,))
    return OrderResult(order)


def charge_request(order: Order, *, provider_customer_ref: str, method: PaymentMethod) -> ChargeRequest:
    """The provider charge for ``order``: its stored total and idempotency key."""
    return ChargeRequest(
        order_id=order.id,
        customer_id=order.customer_id,
        amount_minor=order.total_minor,
        currency=order.currency,
        provider_customer_ref=provider_customer_ref,
        payment_method_ref=method.provider_ref,
        idempotency_key=order.provider_idempotency_key,
    )


async def charge_order(services: BillingServices, order: Order) -> Order:
    """Charge a PENDING order (again, safely) and apply the provider's answer."""
    async with services.db.read() as session:
        customer = await session.get(Customer, order.customer_id)
        method = await session.get(PaymentMethod, order.payment_method_id)
    assert customer is not None and method is not None
    try:
        provider_customer = await ensure_provider_customer(services, customer)
        outcome = await services.provider.charge(
            charge_request(order, provider_customer_ref=provider_customer, method=method)
        )
    except ProviderUnavailable:
        # The charge may or may not exist; reconciliation asks the provider later.
        log.warning("order %s: payment provider unavailable; left PENDING for reconciliation", order.id)
        return order
    except PaymentError as error:
        # The provider refused the charge outright (say, an amount it will not
        # take): the order fails and nothing else changes.
        log.warning("order %s: the provider refused the charge (%s)", order.id, type(error).__name__)
        outcome = PaymentOutcome(
            payment_ref="", order_id=order.id, status=PaymentStatus.FAILED, failure_reason=str(error), declined=True
        )
    settled = await apply_payment_outcome(services, outcome)
    assert settled is not None
    if outcome.status is PaymentStatus.FAILED and settled.status != OrderStatus.FAILED:
        log.info("order %s: decline arrived after %s", order.id, settled.status)
    return settled
