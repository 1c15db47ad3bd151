"""The per-request (per-connection, for WebSockets) GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from auth.principal import Principal
from billing.errors import Unauthenticated
from billing.services import BillingServices
from models.database import Connection
from schema.cursors import CursorCodec
from schema.loaders import Loaders
from settings import Settings

if TYPE_CHECKING:
    from events.hub import EventHub

__all__ = ["Context", "Info"]


@dataclass(slots=True)
class Context:
    services: BillingServices
    hub: EventHub
    settings: Settings
    request: Request | WebSocket
    # The unit of work's connection: it borrows a pooled driver connection
    # only while a statement or transaction runs.
    db: Connection
    # Seals and opens cursors (schema.cursors); the runtime's, from its key.
    cursors: CursorCodec
    principal: Principal | None = None
    # Strawberry's response for an HTTP request it serves (status, headers); None otherwise.
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # A WebSocket's place among its token's open sockets, once it took one
    # (gateway.socket_slots); given back when the socket ends.
    socket_slot: str | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    def caller(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated()
        return self.principal

    @property
    def loaders(self) -> Loaders:
        # A WebSocket context lives as long as the connection: give each use
        # fresh loaders there instead of a cache that never empties.
        if isinstance(self.request, WebSocket):
            return Loaders(self.db)
        if self._loaders is None:
            self._loaders = Loaders(self.db)
        return self._loaders


Info: TypeAlias = StrawberryInfo[Context, None]
