"""``partner-billing``: run and administer a gateway on ``DATABASE_URL``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from billing import onboarding
from billing.errors import GatewayError
from models import PartnerRole
from models.database import Database
from settings import Settings, SettingsError, load_settings

__all__ = ["main"]

SCHEMA_FILE = "schema.graphql"


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
        print(f"Partner {tenant.partner.name} ({tenant.partner.id})")
        for customer in tenant.customers:
            print(f"  customer {customer.name}: {customer.id}")
        for role, token in tenant.tokens.items():
            print(f"  {role}: {token}")

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
            token = await onboarding.create_token(session, user_id=args.user, label=args.label)
        _print(args, {"user": args.user, "token": token}, f"token (shown once): {token}")

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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "gateway.asgi:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=settings.web_concurrency,
        ws_per_message_deflate=False,  # ~64 KB per connection otherwise
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """Seed a demo partner, say how to sign in, and serve."""

    async def work(db: Database) -> None:
        tenant = await onboarding.seed_demo(db)
        host, port = args.host or settings.host, args.port or settings.port
        owner = tenant.tokens["PARTNER_OWNER"]
        print(
            "\nPartner Billing Gateway demo\n"
            f"  GraphiQL:  http://{host}:{port}/graphql\n"
            f"  Partner:   {tenant.partner.name}\n"
            + "".join(f"  Customer:  {c.name}  id {c.id}\n" for c in tenant.customers)
            + "".join(f"  {role:<22} {token}\n" for role, token in tenant.tokens.items())
            + "\nIn GraphiQL open the Headers tab and paste:\n"
            f'  {{"Authorization": "Bearer {owner}"}}\n'
            'then run the queries in README.md ("A first session").\n',
            flush=True,
        )

    asyncio.run(_with_db(settings, work))
    cmd_serve(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partner-billing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace, Settings], None], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        sub.add_argument("--json", action="store_true", help="print JSON")
        return sub

    for name, handler, help_text in (
        ("serve", cmd_serve, "run the gateway (HOST, PORT, WEB_CONCURRENCY)"),
        ("demo", cmd_demo, "seed a demo partner, print its tokens, and run the gateway"),
    ):
        sub = command(name, handler, help_text)
        sub.add_argument("--host")
        sub.add_argument("--port", type=int)
    command("init-db", cmd_init_db, "create or update the database schema and catalogue")
    command("migrate", cmd_migrate, "migrate the database schema to the latest revision (release step)")
    command("seed-demo", cmd_seed_demo, "create a demo partner with customers, products and one token per role")
    command("create-partner", cmd_create_partner, "create a partner").add_argument("name")
    sub = command("create-customer", cmd_create_customer, "create a customer of a partner")
    sub.add_argument("--partner", required=True)
    sub.add_argument("name")
    sub = command("create-user", cmd_create_user, "create a partner user and print their first token")
    sub.add_argument("--partner", required=True)
    sub.add_argument("--email", required=True)
    sub.add_argument("--role", required=True, choices=[r.value for r in PartnerRole])
    sub = command("create-token", cmd_create_token, "issue another API token for a user (shown once)")
    sub.add_argument("--user", required=True)
    sub.add_argument("--label", default="")
    sub = command("export-schema", cmd_export_schema, "print or write the GraphQL SDL")
    sub.add_argument(
        "--output", "-o", default="-", help=f"file to write (default: stdout; the repo keeps {SCHEMA_FILE})"
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
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
