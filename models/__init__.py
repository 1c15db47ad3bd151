"""SQLModel tables. Importing this package registers every table on ``SQLModel.metadata``."""

from models.audit import AuditEntry
from models.base import UTCDateTime, new_id, utcnow
from models.catalog import BillingInterval, Plan, PlanKind, Product, ProductStatus
from models.orders import Order, OrderEvent, OrderKind, OrderLine, OrderStatus
from models.payment_methods import PaymentMethod
from models.payments import ProcessedWebhookEvent, SandboxPayment, SandboxPaymentMethod
from models.secrets import GatewaySecret
from models.tenancy import ApiToken, Customer, Partner, PartnerRole, User

__all__ = [
    "ApiToken",
    "AuditEntry",
    "BillingInterval",
    "Customer",
    "GatewaySecret",
    "Order",
    "OrderEvent",
    "OrderKind",
    "OrderLine",
    "OrderStatus",
    "Partner",
    "PartnerRole",
    "PaymentMethod",
    "Plan",
    "PlanKind",
    "ProcessedWebhookEvent",
    "Product",
    "ProductStatus",
    "SandboxPayment",
    "SandboxPaymentMethod",
    "UTCDateTime",
    "User",
    "new_id",
    "utcnow",
]
