"""Everything the running gateway holds, built and torn down by the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from broadcaster import Broadcast

from auth.usage import TokenUsage
from billing.reconcile import reconcile_orders
from billing.renewals import renew_due_products
from billing.services import BillingServices
from billing.settlement import apply_payment_outcome
from events.backends import backend_healthy, make_broadcast_backend
from events.hub import EventHub
from gateway.bootstrap import cursor_secret, prepare_database
from gateway.rate_limit import RateLimiter, make_rate_limiter
from gateway.socket_slots import SocketSlots, make_socket_slots
from gateway.sockets import SocketWatcher
from models import OrderKind, OrderStatus
from models.database import Database
from observability import metrics
from payments.provider import PaymentOutcome, PaymentProvider
from payments.sandbox import SandboxPaymentProvider
from payments.stripe_provider import StripePaymentProvider
from schema.cursors import CursorCodec
from settings import Settings
from subscriptions.streams import event_preparer

__all__ = ["Runtime", "make_provider", "running"]

log = logging.getLogger(__name__)


def make_provider(settings: Settings, db: Database) -> PaymentProvider:
    if settings.payment_provider == "stripe":
        assert settings.stripe_api_key is not None
        return StripePaymentProvider(api_key=settings.stripe_api_key, api_base=settings.stripe_api_base)
    return SandboxPaymentProvider(db, confirm_delay_ms=settings.sandbox_confirm_delay_ms)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    hub: EventHub
    services: BillingServices
    broadcast: Broadcast
    # Tokens' last use, written in batches; open sockets' tokens, re-checked.
    usage: TokenUsage
    sockets: SocketWatcher
    cursors: CursorCodec
    rate_limiter: RateLimiter | None = None
    # Each token's open WebSockets (MAX_CONNECTIONS_PER_TOKEN); None: no limit.
    socket_slots: SocketSlots | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def broadcast_healthy(self) -> bool:
        return await backend_healthy(self.broadcast._backend)

    async def on_payment_event(self, outcome: PaymentOutcome) -> None:
        await apply_payment_outcome(self.services, self.db.connection(), outcome)

    async def _reconcile_periodically(self) -> None:
        interval = self.settings.reconcile_interval_s
        while True:
            # Jitter keeps several instances from asking the provider in step.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                await reconcile_orders(self.services, older_than=timedelta(seconds=max(30.0, interval / 2)))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic reconciliation failed")

    async def _renew_periodically(self) -> None:
        interval = self.settings.renewal_interval_s
        while True:
            # Jittered like reconciliation; instances racing a pass is safe anyway.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                await renew_due_products(self.services)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic renewal pass failed")


def _count_order_status(kind: OrderKind, status: OrderStatus) -> None:
    metrics.order_status_changed(kind.value, status.value)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size or None,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        inline=settings.sqlite_inline,
    )
    await prepare_database(db)
    cursors = CursorCodec(await cursor_secret(db, settings))
    broadcast = Broadcast(backend=make_broadcast_backend(settings.broadcast_url))
    hub = EventHub(
        db,
        broadcast,
        poll_interval_s=settings.event_poll_interval_s,
        queue_size=settings.subscriber_queue_size,
    )
    provider = make_provider(settings, db)
    metrics.declare_order_labels([kind.value for kind in OrderKind], [status.value for status in OrderStatus])
    services = BillingServices(
        db=db,
        provider=provider,
        notifier=hub,
        order_status_committed=_count_order_status,
        renewal_retry_days=settings.renewal_retry_days,
    )
    usage = TokenUsage(db, interval_s=settings.token_usage_flush_s)
    sockets = SocketWatcher(db, broadcast, usage, interval_s=settings.token_recheck_interval_s)
    runtime = Runtime(
        settings=settings,
        db=db,
        hub=hub,
        services=services,
        broadcast=broadcast,
        usage=usage,
        sockets=sockets,
        cursors=cursors,
        rate_limiter=make_rate_limiter(settings),
        socket_slots=make_socket_slots(settings),
    )
    hub.prepare = event_preparer(db, cursors)
    await hub.start()
    runtime._tasks.append(asyncio.create_task(usage.run(), name="token-usage"))
    runtime._tasks.append(asyncio.create_task(sockets.run(), name="socket-watcher"))
    if runtime.socket_slots is not None:
        runtime._tasks.append(asyncio.create_task(runtime.socket_slots.run(), name="socket-slots"))
    await provider.start(runtime.on_payment_event)
    if settings.reconcile_interval_s > 0:
        runtime._tasks.append(asyncio.create_task(runtime._reconcile_periodically(), name="reconcile"))
    if settings.renewal_interval_s > 0:
        runtime._tasks.append(asyncio.create_task(runtime._renew_periodically(), name="renew"))
    try:
        yield runtime
    finally:
        for task in runtime._tasks:
            task.cancel()
        await asyncio.gather(*runtime._tasks, return_exceptions=True)
        # What was noted since the last flush, before the pool closes.
        with contextlib.suppress(Exception):
            await usage.flush()
        await provider.aclose()
        if runtime.rate_limiter is not None:
            await runtime.rate_limiter.aclose()
        if runtime.socket_slots is not None:
            await runtime.socket_slots.aclose()
        await hub.stop()
        await db.dispose()
