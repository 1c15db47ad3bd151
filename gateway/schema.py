"""The root schema: the GraphQL types, the resolvers and the subscription
streams composed into one ``strawberry.Schema``. It lives above all three so
each of them only ever imports downwards."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from resolvers import audit as audit_resolvers
from resolvers import catalog as catalog_resolvers
from resolvers import orders as order_resolvers
from resolvers import payment_methods as payment_method_resolvers
from resolvers import tenancy as tenancy_resolvers
from schema import enums as _enums  # noqa: F401 - registers the enums
from schema.audit import AuditEntryConnection
from schema.billing import BillingDetails
from schema.catalog import Plan, Product
from schema.errors import ErrorCodes, SubscriptionsOverWebSocketOnly, log_unexpected
from schema.limits import Limits, limits_extension
from schema.orders import Order, OrderConnection, OrderSummary
from schema.payloads import OrderPayload, PaymentMethodPayload
from schema.tenancy import CustomerConnection, Viewer
from settings import Settings
from subscriptions import streams
from subscriptions.multiplex import MultiplexingExecutor

__all__ = ["Mutation", "Query", "Subscription", "build_schema"]


@strawberry.type
class Query:
    viewer: Viewer = strawberry.field(resolver=tenancy_resolvers.viewer)
    customers: CustomerConnection = strawberry.field(resolver=tenancy_resolvers.customers)
    catalog: list[Plan] = strawberry.field(resolver=catalog_resolvers.catalog)
    products: list[Product] = strawberry.field(resolver=catalog_resolvers.products)
    billing_details: BillingDetails = strawberry.field(resolver=payment_method_resolvers.billing_details)
    order: Order | None = strawberry.field(resolver=order_resolvers.order)
    orders: OrderConnection = strawberry.field(resolver=order_resolvers.orders)
    license_purchase_summary: OrderSummary = strawberry.field(resolver=order_resolvers.license_purchase_summary)
    storage_upgrade_summary: OrderSummary = strawberry.field(resolver=order_resolvers.storage_upgrade_summary)
    audit_log: AuditEntryConnection = strawberry.field(resolver=audit_resolvers.audit_log)


@strawberry.type
class Mutation:
    add_payment_method: PaymentMethodPayload = strawberry.mutation(resolver=payment_method_resolvers.add_payment_method)
    set_primary_payment_method: PaymentMethodPayload = strawberry.mutation(
        resolver=payment_method_resolvers.set_primary_payment_method
    )
    remove_payment_method: PaymentMethodPayload = strawberry.mutation(
        resolver=payment_method_resolvers.remove_payment_method
    )
    buy_licenses: OrderPayload = strawberry.mutation(resolver=order_resolvers.buy_licenses)
    upgrade_storage: OrderPayload = strawberry.mutation(resolver=order_resolvers.upgrade_storage)


@strawberry.type
class Subscription:
    payment_confirmation = strawberry.subscription(resolver=streams.payment_confirmation)
    order_status_changed = strawberry.subscription(resolver=streams.order_status_changed)


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors (bad input, refusals) are answers, not incidents.
        log_unexpected(errors, execution_context)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    limits = settings or Settings()
    query_limits = limits_extension(
        Limits(
            max_depth=limits.max_query_depth,
            max_aliases=limits.max_aliases,
            max_fields=limits.max_fields,
            introspection=limits.introspection,
        )
    )

    class Tokens(MaxTokensLimiter):
        def __init__(self) -> None:
            super().__init__(max_token_count=limits.max_tokens)

    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[ErrorCodes, SubscriptionsOverWebSocketOnly, Tokens, ParserCache, query_limits],
        config=StrawberryConfig(disable_field_suggestions=False),
        execution_context_class=MultiplexingExecutor,
    )
