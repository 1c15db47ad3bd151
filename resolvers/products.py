"""Plan changes: fewer licenses from the next period, cancel, resume."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated

import strawberry

from billing import products as domain
from billing.catalog import ProductView
from billing.errors import UserErrors
from schema.arguments import ActingCustomer
from schema.catalog import Product
from schema.context import Info
from schema.inputs import ProductInput, ScheduleLicenseChangeInput
from schema.payloads import ProductPayload, UserError

__all__ = ["cancel_product", "resume_product", "schedule_license_change"]

ScheduleChangeArgument = Annotated[
    ScheduleLicenseChangeInput,
    strawberry.argument(description="The product and its total licenses from the next period."),
]
ProductArgument = Annotated[ProductInput, strawberry.argument(description="The product to change.")]


async def _payload(change: Awaitable[ProductView]) -> ProductPayload:
    """The changed product, or the userErrors that explain why nothing changed."""
    try:
        product = await change
    except UserErrors as errors:
        return ProductPayload(product=None, user_errors=[UserError.of(e) for e in errors.errors])
    return ProductPayload(product=Product.of(product), user_errors=[])


async def schedule_license_change(
    info: Info, acting_customer: ActingCustomer, input: ScheduleChangeArgument
) -> ProductPayload:
    """Fewer licenses from the next period (more licenses: buyLicenses, now)."""
    context = info.context
    return await _payload(
        domain.schedule_license_change(
            context.services,
            context.db,
            context.caller(),
            acting_customer,
            product_id=input.product_id,
            total_licenses=input.total_licenses,
        )
    )


async def cancel_product(info: Info, acting_customer: ActingCustomer, input: ProductArgument) -> ProductPayload:
    """Cancel at the end of the current period (a past-due product: now)."""
    context = info.context
    caller = context.caller()
    return await _payload(
        domain.cancel_product(context.services, context.db, caller, acting_customer, product_id=input.product_id)
    )


async def resume_product(info: Info, acting_customer: ActingCustomer, input: ProductArgument) -> ProductPayload:
    """Undo cancelProduct before the period ends."""
    context = info.context
    caller = context.caller()
    return await _payload(
        domain.resume_product(context.services, context.db, caller, acting_customer, product_id=input.product_id)
    )
