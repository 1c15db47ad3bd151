"""The caller, their partner, and the partner's customers."""

from __future__ import annotations

import strawberry

from models import PartnerRole
from schema.pagination import PageInfo

__all__ = ["Customer", "CustomerConnection", "CustomerEdge", "Partner", "Viewer"]


@strawberry.type
class Partner:
    id: strawberry.ID
    name: str


@strawberry.type(description="The signed-in user.")
class Viewer:
    id: strawberry.ID
    email: str
    role: PartnerRole
    partner: Partner


@strawberry.type(description="One of the partner's customers, on whose behalf staff act.")
class Customer:
    id: strawberry.ID
    name: str


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo
