"""``partner-billing``: run and administer a gateway on ``DATABASE_URL``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billing import onboarding, tokens
from billing.demo import open_demo
from billing.errors import GatewayError
from cli.demo import describe, port_problem
from models import Partner, PartnerRole
from models.database import Database
from settings import Settings, SettingsError, load_settings

__all__ = ["main"]

SCHEMA_FILE = "schema.graphql"


class CommandError(Exception):
    """The command cannot do what was asked; the message says what to change."""


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=None if args.json else 2) if args.json else text)


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[None]]) -> None:
    from gateway.bootstrap import prepare_database

    db = Database(settings.database_url)
    try:
        await prepare_database(db)
        await work(db)
    finally:
        await db.dispose()


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        tenant = await onboarding.seed_demo(db)
        if args.json:
            print(json.dumps(tenant.as_json()))
            return
        print(describe(tenant))

    asyncio.run(_with_db(settings, work))


def cmd_create_partner(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.orm(write=True) as session:
            partner = await onboarding.create_partner(session, name=args.name)
        _print(args, {"id": partner.id, "name": partner.name}, f"partner {partner.id} {partner.name}")

    asyncio.run(_with_db(settings, work))


def cmd_create_customer(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.orm(write=True) as session:
            customer = await onboarding.create_customer(session, partner_id=args.partner, name=args.name)
        _print(args, {"id": customer.id, "name": customer.name}, f"customer {customer.id} {customer.name}")

    asyncio.run(_with_db(settings, work))


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.orm(write=True) as session:
            user = await onboarding.create_user(
                session, partner_id=args.partner, email=args.email, role=PartnerRole(args.role)
            )
            await session.flush()
            token = await onboarding.create_token(session, user_id=user.id, label="create-user")
        data = {"id": user.id, "email": user.email, "role": user.role, "token": token}
        _print(args, data, f"user {user.id} {user.email} ({user.role})\ntoken (shown once): {token}")

    asyncio.run(_with_db(settings, work))


def cmd_create_token(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.orm(write=True) as session:
            issued = await tokens.create_token(
                session, user_id=args.user, label=args.label, expires_in_days=args.expires_in_days
            )
        expiry = f"expires {issued.expires_at.isoformat()}" if issued.expires_at else "never expires"
        _print(args, issued.as_json(), f"token {issued.id} ({expiry})\ntoken (shown once): {issued.token}")

    asyncio.run(_with_db(settings, work))


def cmd_list_tokens(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.orm() as session:
            if await session.get(Partner, args.partner) is None:
                raise CommandError(f"no partner {args.partner!r}")
            found = await tokens.list_tokens(session, partner_id=args.partner)
        if args.json:
            print(json.dumps([token.as_json() for token in found]))
            return
        for token in found:
            state = "revoked" if token.revoked_at else "active"
            print(
                f"{token.id} user {token.user_id} {state} created {token.created_at:%Y-%m-%d} "
                f"last used {token.last_used_at.isoformat() if token.last_used_at else 'never'} "
                f"expires {token.expires_at.isoformat() if token.expires_at else 'never'} {token.label}".rstrip()
            )

    asyncio.run(_with_db(settings, work))


def cmd_revoke_token(args: argparse.Namespace, settings: Settings) -> None:
    from gateway.sockets import announce_revoked

    async def work(db: Database) -> None:
        async with db.orm(write=True) as session:
            token, now = await tokens.revoke_token(session, args.token)
        # Open sockets on every instance close at once; without a shared
        # broadcast, within TOKEN_RECHECK_INTERVAL_S.
        if now:
            await announce_revoked(settings.broadcast_url, token.id)
        assert token.revoked_at is not None
        what = "revoked" if now else "already revoked"
        _print(args, token.as_json(), f"token {token.id} {what} at {token.revoked_at.isoformat()}")

    asyncio.run(_with_db(settings, work))


def cmd_export_schema(args: argparse.Namespace, settings: Settings) -> None:
    from gateway.schema import build_schema

    sdl = build_schema(settings).as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl)
        print(f"wrote {args.output}", file=sys.stderr)


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> None:
    from datetime import timedelta

    from billing.reconcile import reconcile_orders
    from gateway.runtime import running

    async def work() -> None:
        async with running(settings) as runtime:
            report = await reconcile_orders(runtime.services, older_than=timedelta(seconds=args.older_than))
        _print(
            args,
            vars(report),
            f"examined {report.examined}, changed {report.changed}, provider unreachable for {report.unreachable}",
        )

    asyncio.run(work())


def cmd_renew(args: argparse.Namespace, settings: Settings) -> None:
    """One renewal pass, as of now or of ``--as-of`` (a test clock)."""
    from billing.renewals import count_settled, renew_due_products
    from gateway.runtime import running
    from payments.sandbox import SandboxPaymentProvider

    async def work() -> None:
        async with running(settings) as runtime:
            services = runtime.services
            if args.as_of is not None:
                as_of = args.as_of
                services.clock = lambda: as_of  # settlement stamps by the same clock
            report = await renew_due_products(services)
            if report.unsettled and isinstance(services.provider, SandboxPaymentProvider):
                # The sandbox confirms a moment later; this process would exit first.
                await services.provider.drain()
                report = await count_settled(services, report)
        text = f"renewed {report.renewed}, failed {report.failed}, canceled {report.canceled}"
        if report.unsettled:
            text += f"; {len(report.unsettled)} not settled yet (processing or awaiting authentication)"
        _print(args, report.as_json(), text)

    asyncio.run(work())


def cmd_init_db(args: argparse.Namespace, settings: Settings) -> None:
    async def work(_db: Database) -> None:
        print("database ready", file=sys.stderr)

    asyncio.run(_with_db(settings, work))


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    """Upgrade the schema to the latest migration and fill in the catalogue (the Procfile's release step)."""
    from migrations.runner import current_revision

    async def work(db: Database) -> None:
        revision = await current_revision(db)
        _print(args, {"revision": revision}, f"database at revision {revision} (head)")

    asyncio.run(_with_db(settings, work))


def _address(args: argparse.Namespace, settings: Settings) -> tuple[str, int]:
    host = args.host if args.host is not None else settings.host
    return host, args.port if args.port is not None else settings.port


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    host, port = _address(args, settings)
    # The app reads its settings from the environment: let it see --host (it
    # warns when sandbox payments are served beyond loopback).
    os.environ["HOST"] = host
    uvicorn.run(
        "gateway.asgi:app",
        host=host,
        port=port,
        workers=settings.web_concurrency,
        # The sans-I/O WebSocket protocol (the legacy one is deprecated) and no
        # per-message deflate: about 7 KB and 43 KB less per connection.
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        # A WebSocket message larger than a request body may be closes the socket
        # (1009) before it is read whole.
        ws_max_size=settings.max_body_bytes,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """Open (or create once) the demo partner, say how to sign in, and serve."""
    host, port = _address(args, settings)
    # Before touching the database: a busy port would otherwise print tokens
    # for a gateway that never starts.
    problem = port_problem(host, port)
    if problem:
        raise CommandError(problem)

    async def work(db: Database) -> None:
        tenant, reused = await open_demo(db)
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
        url = f"http://{shown_host}:{port}/graphql"
        print(
            f"\nPartner Billing Gateway demo: {url}\n" + describe(tenant, graphiql_url=url, reused=reused) + "\n",
            flush=True,
        )

    asyncio.run(_with_db(settings, work))
    cmd_serve(args, settings)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2027-01-31T12:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= tokens.MAX_EXPIRY_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1-{tokens.MAX_EXPIRY_DAYS})")
    return days


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partner-billing",
        description="Run and administer a gateway on DATABASE_URL.",
        epilog="Configuration is environment variables: see docs/deploy.md (Environment).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do:")

    def command(
        name: str, handler: Callable[[argparse.Namespace, Settings], None], help: str, *, json: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler, json=False)
        if json:
            sub.add_argument("--json", action="store_true", help="print JSON instead of text")
        return sub

    for name, handler, help_text in (
        ("serve", cmd_serve, "run the gateway (HOST, PORT, WEB_CONCURRENCY)"),
        (
            "demo",
            cmd_demo,
            "run the gateway with a demo partner (made once, reused later): print its ids, fresh tokens "
            "and GraphiQL's Headers and Variables",
        ),
    ):
        sub = command(name, handler, help_text, json=False)  # they serve; nothing to print as JSON
        sub.add_argument("--host", help="address to listen on (default: HOST, else 127.0.0.1)")
        sub.add_argument("--port", type=_port, help="port to listen on (default: PORT, else 8000)")
    command("init-db", cmd_init_db, "create or update the database schema and catalogue")
    command("migrate", cmd_migrate, "migrate the database schema to the latest revision (release step)")
    command(
        "seed-demo",
        cmd_seed_demo,
        "create a new demo partner with two customers, a product each and one token per role, "
        "and print their ids and GraphiQL's Headers and Variables",
    )
    command("create-partner", cmd_create_partner, "create a partner").add_argument(
        "name", help="the partner's name, as its staff see it"
    )
    sub = command("create-customer", cmd_create_customer, "create a customer of a partner")
    sub.add_argument("--partner", required=True, help="the partner's id (ptn_…)")
    sub.add_argument("name", help="the customer's name")
    sub = command("create-user", cmd_create_user, "create a partner user and print their first token")
    sub.add_argument("--partner", required=True, help="the partner's id (ptn_…)")
    sub.add_argument("--email", required=True, help="the user's email address (unique; stored in lower case)")
    sub.add_argument("--role", required=True, choices=[r.value for r in PartnerRole], help="what the user may do")
    sub = command("create-token", cmd_create_token, "issue another API token for a user (shown once)")
    sub.add_argument("--user", required=True, help="the user's id (usr_…)")
    sub.add_argument("--label", default="", help="a note to recognise the token by later, e.g. 'ci'")
    sub.add_argument(
        "--expires-in-days",
        type=_days,
        default=None,
        metavar="N",
        help=f"the token stops working after N days (1-{tokens.MAX_EXPIRY_DAYS}; default: never)",
    )
    sub = command("list-tokens", cmd_list_tokens, "list a partner's API tokens (never the tokens themselves)")
    sub.add_argument("--partner", required=True, help="the partner's id (ptn_…)")
    sub = command(
        "revoke-token", cmd_revoke_token, "revoke an API token now (its open WebSockets close within seconds)"
    )
    sub.add_argument("token", help="the token itself (pbg_…) or its id (tok_…)")
    sub = command("export-schema", cmd_export_schema, "print or write the GraphQL SDL")
    sub.add_argument(
        "--output", "-o", default="-", help=f"file to write (default: stdout; the repo keeps {SCHEMA_FILE})"
    )
    sub = command(
        "renew",
        cmd_renew,
        "charge every product whose period has ended for its next period, retry past-due ones "
        "and cancel those set to cancel (the gateway does this every RENEWAL_INTERVAL_S)",
    )
    sub.add_argument(
        "--as-of",
        type=_moment,
        metavar="TIME",
        help="run as if the clock said TIME (ISO 8601, e.g. 2027-01-31T12:00:00Z; no offset means UTC): a test clock",
    )
    sub = command("reconcile", cmd_reconcile, "settle unfinished orders from the payment provider")
    sub.add_argument("--older-than", type=float, default=0.0, help="only orders untouched for this many seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        args.handler(args, settings)
    except SettingsError as exc:
        print(f"partner-billing: configuration error: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"partner-billing: {exc.message}", file=sys.stderr)
        return 1
    except CommandError as exc:
        print(f"partner-billing: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
