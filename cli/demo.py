"""What ``seed-demo`` and ``demo`` print, and the port check ``demo`` makes first.

The first minutes of a new user are: start the gateway, open GraphiQL, paste a
token into Headers and ids into Variables, run the README's examples. So the
text output ends with exactly those two JSON documents, with the variable
names the README's examples use (``$c`` a customer, ``$p`` one of its products).
"""

from __future__ import annotations

import errno
import json
import socket

from billing.onboarding import DemoTenant

__all__ = ["describe", "graphiql_variables", "port_problem"]


def graphiql_variables(tenant: DemoTenant) -> dict[str, str]:
    """``{"c": <first customer>, "p": <its first product>}``, as in README.md."""
    customer = tenant.customers[0]
    product = next(p for p in tenant.products if p.customer_id == customer.id)
    return {"c": customer.id, "p": product.id}


def describe(tenant: DemoTenant, *, graphiql_url: str | None = None, reused: bool = False) -> str:
    lines = [f"Partner {tenant.partner.name} ({tenant.partner.id})" + (", as before" if reused else "")]
    for customer in tenant.customers:
        lines.append(f"  customer {customer.name}: {customer.id}")
        for product in (p for p in tenant.products if p.customer_id == customer.id):
            lines.append(
                f"    product {product.plan_id}: {product.id}"
                f" ({product.total_licenses} licenses, {str(product.billing_interval).lower()})"
            )
    if reused:
        lines.append(
            "  New tokens (the earlier ones still work; only hashes are stored, so they cannot be shown again):"
        )
    else:
        lines.append("  Tokens (shown once; only their hashes are stored):")
    lines += [f"    {role:<22} {token}" for role, token in tenant.tokens.items()]
    customer = tenant.customers[0]
    product_plan = next(p.plan_id for p in tenant.products if p.customer_id == customer.id)
    where = f"GraphiQL at {graphiql_url}" if graphiql_url else "GraphiQL (a running gateway's /graphql)"
    lines += [
        "",
        f"In {where}, paste into the Headers tab:",
        "  " + json.dumps({"Authorization": f"Bearer {tenant.tokens['PARTNER_OWNER']}"}),
        f"and into the Variables tab ($c is {customer.name}, $p its {product_plan} product):",
        "  " + json.dumps(graphiql_variables(tenant)),
        'then run the examples in README.md ("A first session").',
    ]
    return "\n".join(lines)


def port_problem(host: str, port: int) -> str | None:
    """Why the gateway could not listen on ``host:port``, or None if it can.

    Binds the way uvicorn will (IPv6 when the host has a colon, SO_REUSEADDR),
    so a port that a previous run left in TIME_WAIT is not reported as taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            other = port + 1 if port < 65535 else 8000
            change = f"PORT={other} scripts/demo, or partner-billing demo --port {other}"
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use (another gateway?); choose another: {change}"
            return f"cannot listen on {host}:{port} ({exc.strerror or exc}); set HOST and PORT, e.g. {change}"
    return None
