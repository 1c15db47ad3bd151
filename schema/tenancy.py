"""The caller, their partner, and the partner's customers."""

from __future__ import annotations

import strawberry

from models import PartnerRole
from schema.node import Node
from schema.pagination import PageInfo

__all__ = ["Customer", "CustomerConnection", "CustomerEdge", "Partner", "Viewer"]


@strawberry.type(description="The MSP partner (`ptn_…`) whose staff use the API.")
class Partner(Node):
    name: str = strawberry.field(description="The partner's name, as its staff see it.")


@strawberry.type(description="The signed-in user (`usr_…`): who the token belongs to.")
class Viewer(Node):
    email: str = strawberry.field(description="The user's email address, in lower case.")
    role: PartnerRole = strawberry.field(description="What the user may do.")
    partner: Partner = strawberry.field(description="The partner the user works for.")


@strawberry.type(
    description="One of the partner's customers (`cst_…`), on whose behalf staff act: pass its id as `actingCustomer`."
)
class Customer(Node):
    name: str = strawberry.field(description="The customer's name.")


@strawberry.type(description="A customer in a page of customers.")
class CustomerEdge:
    cursor: str = strawberry.field(description="Opaque; pass it as `after` to continue after this customer.")
    node: Customer = strawberry.field(description="The customer.")


@strawberry.type(description="A page of the partner's customers, by name (Relay connection).")
class CustomerConnection:
    edges: list[CustomerEdge] = strawberry.field(description="The customers of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page stands: is there a next one, and its cursors.")
