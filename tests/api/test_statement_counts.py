"""No N+1: the reads a dashboard repeats cost a constant number of SQL statements.

Each read runs once against a tenant with 10 rows of what it lists and once
with 1,000 (inserted directly, as a busy partner's history would be), and the
number of statements the database ran must be the same. The counter is the
database's own (``Database.statements``); nothing else runs meanwhile: orders
are settled, and the event hub reads nothing while no one subscribes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from billing.onboarding import DemoTenant
from models import (
    BillingInterval,
    Customer,
    Order,
    OrderKind,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    Plan,
    PlanKind,
    Product,
    utcnow,
)
from tests.api.helpers import SHARED_LOOP, SUMMARY_FIELDS, module_gateway, shared_gateway  # noqa: F401 - fixtures
from tests.support.gateway import GatewayServer

pytestmark = SHARED_LOOP

DASHBOARD = """
query($c: ID!) {
  viewer { id email role partner { id name } }
  products(actingCustomer: $c) {
    id billingInterval totalLicenses assignedLicenses availableLicenses currentPeriodEnd
    plan { id name kind price(interval: MONTHLY) { amount currency } }
  }
  billingDetails(actingCustomer: $c) { paymentMethods { id brand last4 expMonth expYear isPrimary } }
}
"""
ORDERS = f"""
query($c: ID!) {{
  orders(actingCustomer: $c, first: 50) {{
    edges {{ node {{ id status total {{ amount }} summary {{ {SUMMARY_FIELDS} }} paymentMethod {{ id last4 }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
CUSTOMERS = "{ customers(first: 100) { edges { node { id name } } pageInfo { hasNextPage } } }"


async def statements(gateway: GatewayServer, token: str, query: str, variables: dict[str, Any]) -> int:
    db = gateway.runtime.db
    before = db.statements
    data = await gateway.client(token).data(query, variables)
    assert data
    return db.statements - before


async def grow(gateway: GatewayServer, tenant: DemoTenant, rows: int) -> None:
    """``rows`` products, cards, orders (each with two lines) and customers more."""
    acme = tenant.customers[0]
    now = utcnow()
    async with gateway.runtime.db.orm(write=True) as session:
        plan = await session.get(Plan, "plan_backup_essentials")
        assert plan is not None
        cards = [
            PaymentMethod(
                customer_id=acme.id,
                provider_ref=f"ref{n}",
                brand="visa",
                last4=f"{n % 10000:04d}",
                exp_month=1,
                exp_year=2030,
            )
            for n in range(rows)
        ]
        session.add_all(cards)
        for n in range(rows):
            session.add(
                Product(
                    customer_id=acme.id,
                    plan_id=plan.id,
                    plan_kind=PlanKind.BACKUP,
                    billing_interval=BillingInterval.MONTHLY,
                    total_licenses=n + 1,
                    period_anchor=now,
                    current_period_start=now,
                    current_period_end=now + timedelta(days=30),
                )
            )
            order = Order(
                customer_id=acme.id,
                partner_id=tenant.partner.id,
                kind=OrderKind.LICENSE_PURCHASE,
                status=OrderStatus.SUCCEEDED,
                billing_interval=BillingInterval.MONTHLY,
                subtotal_minor=100,
                total_minor=100,
                quantity=1,
                payment_method_id=cards[n].id,
                request_fingerprint="x",
                provider_idempotency_key=f"k{n}",
                created_at=now - timedelta(seconds=n),
            )
            session.add(order)
            for position in range(2):
                session.add(
                    OrderLine(
                        order_id=order.id,
                        position=position,
                        description="line",
                        quantity=1,
                        unit_price_minor=50,
                        amount_minor=50,
                    )
                )
            session.add(Customer(partner_id=tenant.partner.id, name=f"Customer {n:04d}"))


@pytest.mark.parametrize(
    ("query", "name", "most"),
    [
        # The token, then products and cards each read with their customer.
        (DASHBOARD, "the dashboard read", 3),
        # The token, the customer, and one statement per list at most.
        (ORDERS, "orders(first: 50) with summaries", 5),
        (CUSTOMERS, "customers", 5),
    ],
)
async def test_a_read_costs_the_same_statements_with_10_or_1000_rows(
    gateway: GatewayServer, query: str, name: str, most: int
) -> None:
    counts = []
    for rows in (10, 1000):
        tenant = await gateway.tenant()
        await grow(gateway, tenant, rows)
        variables = {"c": tenant.customers[0].id} if "$c" in query else {}
        counts.append(await statements(gateway, tenant.tokens["PARTNER_OWNER"], query, variables))
    assert counts[0] == counts[1], f"{name}: {counts[0]} statements with 10 rows, {counts[1]} with 1,000"
    assert counts[0] <= most, f"{name}: {counts[0]} statements"
