from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated

import strawberry

from billing import payment_methods as domain
from billing.errors import UserErrors
from resolvers.common import caller_customer_and
from schema.arguments import ActingCustomer, PaymentMethodId
from schema.billing import BillingDetails, PaymentMethod
from schema.context import Info
from schema.inputs import AddPaymentMethodInput
from schema.payloads import PaymentMethodPayload, UserError
from schema.tenancy import Customer

__all__ = ["add_payment_method", "billing_details", "remove_payment_method", "set_primary_payment_method"]


async def billing_details(info: Info, acting_customer: ActingCustomer) -> BillingDetails:
    customer, views = await caller_customer_and(info, acting_customer, domain.customer_payment_methods, billing=True)
    methods = [PaymentMethod.of(m) for m in views]
    return BillingDetails(
        customer=Customer(id=strawberry.ID(customer.id), name=customer.name),
        payment_methods=methods,
        primary_payment_method=next((m for m in methods if m.is_primary), None),
    )


async def _payload(change: Awaitable[domain.PaymentMethodView]) -> PaymentMethodPayload:
    """The changed method, or the userErrors that explain why nothing changed."""
    try:
        method = await change
    except UserErrors as errors:
        return PaymentMethodPayload(payment_method=None, user_errors=[UserError.of(e) for e in errors.errors])
    return PaymentMethodPayload(payment_method=PaymentMethod.of(method), user_errors=[])


async def add_payment_method(
    info: Info,
    acting_customer: ActingCustomer,
    input: Annotated[AddPaymentMethodInput, strawberry.argument(description="The card to add.")],
) -> PaymentMethodPayload:
    return await _payload(
        domain.add_payment_method(
            info.context.services,
            info.context.db,
            info.context.caller(),
            acting_customer,
            token=input.payment_method_token,
            make_primary=bool(input.make_primary),
        )
    )


async def set_primary_payment_method(
    info: Info, acting_customer: ActingCustomer, payment_method_id: PaymentMethodId
) -> PaymentMethodPayload:
    return await _payload(
        domain.set_primary_payment_method(
            info.context.services,
            info.context.db,
            info.context.caller(),
            acting_customer,
            payment_method_id=payment_method_id,
        )
    )


async def remove_payment_method(
    info: Info, acting_customer: ActingCustomer, payment_method_id: PaymentMethodId
) -> PaymentMethodPayload:
    return await _payload(
        domain.remove_payment_method(
            info.context.services,
            info.context.db,
            info.context.caller(),
            acting_customer,
            payment_method_id=payment_method_id,
        )
    )
