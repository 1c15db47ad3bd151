"""The root schema: the GraphQL types, the resolvers and the subscription
streams composed into one ``strawberry.Schema``. It lives above all three so
each of them only ever imports downwards."""

from __future__ import annotations

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from gateway.rate_limit import RateLimitOperations
from observability.operations import observe_operations
from resolvers import audit as audit_resolvers
from resolvers import catalog as catalog_resolvers
from resolvers import node as node_resolvers
from resolvers import orders as order_resolvers
from resolvers import payment_methods as payment_method_resolvers
from resolvers import products as product_resolvers
from resolvers import tenancy as tenancy_resolvers
from schema import enums as _enums  # noqa: F401 - registers the enums
from schema.audit import AuditEntryConnection
from schema.billing import BillingDetails
from schema.catalog import Plan, Product
from schema.documents import DocumentCache, PreparedDocuments
from schema.errors import (
    ErrorCodes,
    ErrorCodingRunner,
    SubscriptionsOverWebSocketOnly,
    classify_errors,
    log_unexpected,
)
from schema.limits import Limits
from schema.node import Node
from schema.orders import Order, OrderConnection, OrderSummary
from schema.payloads import OrderPayload, PaymentMethodPayload, ProductPayload
from schema.scalars import DATE_TIME
from schema.tenancy import CustomerConnection, Viewer
from settings import Settings
from subscriptions import streams
from subscriptions.multiplex import MultiplexingExecutor

__all__ = ["GatewaySchema", "Mutation", "Query", "Subscription", "build_schema"]


_BILLING_ROLE = "Needs PARTNER_OWNER or PARTNER_FINANCE_ADMIN (PARTNER_ADMIN: FORBIDDEN)."
_PURCHASE_ERRORS = (
    "userErrors codes: INVALID_QUANTITY, PAYMENT_METHOD_NOT_FOUND, NO_PAYMENT_METHOD, IDEMPOTENCY_KEY_REUSED, "
    "ORDER_IN_PROGRESS, CARD_DECLINED (the order is returned FAILED), PAYMENT_PROVIDER_UNAVAILABLE (the order is "
    "returned PENDING and settled later)"
)
_SUMMARY = (
    "Priced exactly as the mutation would charge now; nothing is stored. A reason the mutation would refuse is "
    "a top-level error: NOT_FOUND (extensions.reason: PRODUCT_NOT_FOUND, PLAN_NOT_FOUND, "
    "PAYMENT_METHOD_NOT_FOUND) or BAD_USER_INPUT (extensions.reason: the userErrors code). "
)


@strawberry.type(description="Reads. Every field needs a token (`Authorization: Bearer …`), else UNAUTHENTICATED.")
class Query:
    viewer: Viewer = strawberry.field(resolver=tenancy_resolvers.viewer, description="The signed-in user.")
    node: Node | None = strawberry.field(
        resolver=node_resolvers.node,
        description="Any object by its id (Relay's refetching), under the same rules as the field that shows it: "
        "orders and payment methods need a billing role (else FORBIDDEN); an id of something you may not see, "
        "or of nothing, is NOT_FOUND.",
    )
    customers: CustomerConnection = strawberry.field(
        resolver=tenancy_resolvers.customers, description="Your partner's customers, by name."
    )
    catalog: list[Plan] = strawberry.field(
        resolver=catalog_resolvers.catalog, description="The plans the acting customer can buy, in shop order."
    )
    products: list[Product] = strawberry.field(
        resolver=catalog_resolvers.products, description="The plans the acting customer holds, oldest first."
    )
    billing_details: BillingDetails = strawberry.field(
        resolver=payment_method_resolvers.billing_details,
        description="The acting customer's cards on file. " + _BILLING_ROLE,
    )
    order: Order | None = strawberry.field(
        resolver=order_resolvers.order,
        description="One of the acting customer's orders; any other id is NOT_FOUND. " + _BILLING_ROLE,
    )
    orders: OrderConnection = strawberry.field(
        resolver=order_resolvers.orders, description="The acting customer's orders, newest first. " + _BILLING_ROLE
    )
    license_purchase_summary: OrderSummary = strawberry.field(
        resolver=order_resolvers.license_purchase_summary,
        description="What buyLicenses would charge for this input. " + _SUMMARY + _BILLING_ROLE,
    )
    storage_upgrade_summary: OrderSummary = strawberry.field(
        resolver=order_resolvers.storage_upgrade_summary,
        description="What upgradeStorage would charge for this input. " + _SUMMARY + _BILLING_ROLE,
    )
    audit_log: AuditEntryConnection = strawberry.field(
        resolver=audit_resolvers.audit_log,
        description="Who changed what, newest first: the partner's whole trail, or one customer's with "
        "`actingCustomer`. Needs PARTNER_OWNER (others: FORBIDDEN).",
    )


@strawberry.type(
    description="Changes; each is recorded in the audit trail. Expected refusals come back as the payload's "
    "userErrors (codes listed on each mutation); who-may-do-what as top-level errors (FORBIDDEN, NOT_FOUND for "
    "`actingCustomer`). Never sent over GET."
)
class Mutation:
    add_payment_method: PaymentMethodPayload = strawberry.mutation(
        resolver=payment_method_resolvers.add_payment_method,
        description="Add a card to the acting customer; their first card becomes primary. userErrors codes: "
        "INVALID_PAYMENT_METHOD_TOKEN, CARD_DECLINED, PAYMENT_PROVIDER_UNAVAILABLE. " + _BILLING_ROLE,
    )
    set_primary_payment_method: PaymentMethodPayload = strawberry.mutation(
        resolver=payment_method_resolvers.set_primary_payment_method,
        description="Make this card the one purchases use by default. userErrors codes: PAYMENT_METHOD_NOT_FOUND. "
        + _BILLING_ROLE,
    )
    remove_payment_method: PaymentMethodPayload = strawberry.mutation(
        resolver=payment_method_resolvers.remove_payment_method,
        description="Remove a card (past orders still show it); if it was primary, the newest remaining card "
        "becomes primary. userErrors codes: PAYMENT_METHOD_NOT_FOUND. " + _BILLING_ROLE,
    )
    buy_licenses: OrderPayload = strawberry.mutation(
        resolver=order_resolvers.buy_licenses,
        description="Add licenses to a product, same interval, charged pro rata for the rest of its current period "
        "(see licensePurchaseSummary). The licenses are added once the payment SUCCEEDED. "
        + _PURCHASE_ERRORS
        + ", PRODUCT_NOT_FOUND. "
        + _BILLING_ROLE,
    )
    upgrade_storage: OrderPayload = strawberry.mutation(
        resolver=order_resolvers.upgrade_storage,
        description="Buy a cloud-storage plan, or move the customer's to another plan, licence count or interval: a "
        "full period less a credit for the unused time (see storageUpgradeSummary). The change is made once the "
        "payment SUCCEEDED. "
        + _PURCHASE_ERRORS
        + ", PLAN_NOT_FOUND, DOWNGRADE_NOT_SUPPORTED (worth less than the credit), NOTHING_TO_CHANGE. "
        + _BILLING_ROLE,
    )
    schedule_license_change: ProductPayload = strawberry.mutation(
        resolver=product_resolvers.schedule_license_change,
        description="Fewer licenses from the product's next period (more licenses: buyLicenses, now). userErrors "
        "codes: INVALID_QUANTITY (not 1 to the current total), LICENSES_IN_USE (below assignedLicenses), "
        "PRODUCT_NOT_FOUND, PRODUCT_NOT_ACTIVE, ORDER_IN_PROGRESS. " + _BILLING_ROLE,
    )
    cancel_product: ProductPayload = strawberry.mutation(
        resolver=product_resolvers.cancel_product,
        description="Stop renewing the product: it stays ACTIVE until its period ends, then is CANCELED (a PAST_DUE "
        "product is canceled at once). userErrors codes: PRODUCT_NOT_FOUND, PRODUCT_NOT_ACTIVE, "
        "ORDER_IN_PROGRESS. " + _BILLING_ROLE,
    )
    resume_product: ProductPayload = strawberry.mutation(
        resolver=product_resolvers.resume_product,
        description="Undo cancelProduct before the period ends: the product renews again. userErrors codes: "
        "PRODUCT_NOT_FOUND, PRODUCT_NOT_ACTIVE. " + _BILLING_ROLE,
    )


@strawberry.type(
    description="Live order events over WebSocket (`graphql-transport-ws`) at /graphql. A refused token closes the "
    "socket with 4401; a role or tenant refusal is an `error` message with its code."
)
class Subscription:
    payment_confirmation = strawberry.subscription(
        resolver=streams.payment_confirmation,
        description="One order: its current status first, then every change; completes after SUCCEEDED, FAILED or "
        "CANCELED. " + _BILLING_ROLE,
    )
    order_status_changed = strawberry.subscription(
        resolver=streams.order_status_changed,
        description="Every order status change of one customer, or of all your partner's customers. With `after`, "
        "the stored events after that cursor first, in order, then live ones: a client that reconnects misses "
        "nothing and sees nothing twice. " + _BILLING_ROLE,
    )


class GatewaySchema(strawberry.Schema):
    # Every query text's parse and validation, shared by every way in.
    documents: DocumentCache

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return ErrorCodingRunner(execution_context, extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors (bad input, refusals) are answers, not incidents.
        log_unexpected(errors, execution_context)


def build_schema(
    settings: Settings | None = None, *, extra_extensions: tuple[type[SchemaExtension], ...] = ()
) -> GatewaySchema:
    settings = settings or Settings()

    class Documents(PreparedDocuments):
        pass

    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # The observer first: it finishes last, after ErrorCodes has given
        # each error its code. extra_extensions: tracing, when configured.
        extensions=[
            observe_operations(classify_errors),
            ErrorCodes,
            SubscriptionsOverWebSocketOnly,
            Documents,
            RateLimitOperations,
            *extra_extensions,
        ],
        # DateTime as https://scalars.graphql.org/andimarek/date-time (@specifiedBy).
        # Suggestions ("Did you mean …?") are dropped by DocumentCache when
        # introspection is off.
        config=StrawberryConfig(disable_field_suggestions=False, scalar_map={datetime: DATE_TIME}),
        execution_context_class=MultiplexingExecutor,
    )
    limits = Limits(
        max_depth=settings.max_query_depth, max_aliases=settings.max_aliases, max_fields=settings.max_fields
    )
    schema.documents = Documents.cache = DocumentCache(
        schema._schema, limits, max_tokens=settings.max_tokens, introspection=settings.introspection
    )
    return schema
