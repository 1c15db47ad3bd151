"""Generated and hostile requests over real HTTP: whatever is sent, the
gateway answers below 500, within the timeout, with no INTERNAL error and
only the contract's codes, logs no error, and ``/healthz`` still answers.

Examples are derandomized and bounded, so CI runs the same few hundred
requests every time (tests/fuzz takes well under a minute on 2 cores)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fuzz.strategies import (
    Generated,
    fragment_bomb,
    generated_operations,
    hostile_documents,
    hostile_json,
    hostile_strings,
    weighted,
)
from tests.fuzz.target import FuzzTarget, assert_answer, deep, encode, error_codes, fuzz

pytestmark = pytest.mark.postgres


# Who sends it: each role of the partner, an expired token, another
# partner's owner, a made-up token, none.
CALLERS = ("PARTNER_OWNER", "PARTNER_FINANCE_ADMIN", "PARTNER_ADMIN", "EXPIRED", "OTHER_PARTNER", "made-up", None)
# A document the limits must refuse may take no longer than this to refuse
# (as tests/api/test_query_limits.py): generous for a loaded machine, far
# below what a check exponential in the document would take.
GUARD_S = 2.0


def token_of(target: FuzzTarget, caller: str | None) -> str | None:
    if caller is None:
        return None
    return target.seeded.tokens.get(caller, "pbg_" + "A" * 43)


def send(target: FuzzTarget, token: str | None, operation: Generated, over_get: bool) -> httpx.Response:
    if not over_get:
        return target.post_json({"query": operation.document, "variables": operation.variables}, token)
    params = {"query": operation.document}
    if operation.variables is not None:
        params["variables"] = encode(operation.variables).decode()
    if sum(map(len, params.values())) > 20_000:  # too long for a URL: the client refuses it
        return target.post_json({"query": operation.document, "variables": operation.variables}, token)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return target.http.get("/graphql?" + query_string(params), headers=headers)


def query_string(params: dict[str, str]) -> str:
    """URL-encoded, lone surrogates as the bytes of their UTF-8 encoding (not UTF-8)."""
    return urlencode({name: value.encode("utf-8", "surrogatepass") for name, value in params.items()})


@fuzz(160)
@given(data=st.data())
def test_generated_operations_never_fail_the_gateway(fuzz_target: FuzzTarget, data: st.DataObject) -> None:
    """Queries and mutations generated from schema.graphql (valid ones and
    ones with a violation, arguments inline or as hostile variables), by
    every kind of caller, as JSON POSTs (the compiled fast path) and as GETs
    (Strawberry's view)."""
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    operation = data.draw(generated_operations(fuzz_target.seeded), label="operation")
    over_get = data.draw(st.booleans(), label="over GET")
    with fuzz_target.stays_healthy():
        response = send(fuzz_target, token_of(fuzz_target, caller), operation, over_get)
        assert_answer(response, (caller, operation))


@fuzz(100)
@given(data=st.data())
def test_hostile_documents_are_answered_at_once(fuzz_target: FuzzTarget, data: st.DataObject) -> None:
    """Fragment bombs of random depth and fan-out, alias floods (introspection
    included), deep nesting, directives, broken syntax, giant strings, many
    operations: answered within the guard, and refused as QUERY_TOO_COMPLEX
    whenever their expansion is over the limits."""
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    hostile = data.draw(hostile_documents(), label="document")
    with fuzz_target.stays_healthy():
        started = time.monotonic()
        response = fuzz_target.post_json(
            {"query": hostile.document, "variables": hostile.variables}, token_of(fuzz_target, caller)
        )
        elapsed = time.monotonic() - started
        body = assert_answer(response, (caller, hostile.document[:300]))
        assert elapsed < GUARD_S, (elapsed, hostile.document[:300])
        if hostile.too_complex:
            assert body["data"] is None and set(error_codes(body)) == {"QUERY_TOO_COMPLEX"}, body


def test_the_largest_fragment_bombs_are_refused_within_the_guard(fuzz_target: FuzzTarget) -> None:
    """The shapes the strategy reaches only by chance, every time: 2,000
    tokens' worth of fragments, fan-outs of two and four, aliased spreads."""
    token = fuzz_target.seeded.tokens["PARTNER_OWNER"]
    with fuzz_target.stays_healthy():
        for bomb in (
            fragment_bomb(190, 2, "viewer { id }"),
            fragment_bomb(130, 4, "a: viewer { id }"),
            fragment_bomb(60, 2, "s: __schema { queryType { name } }", alias_spreads=True),
            fragment_bomb(40, 3, "customers { edges { cursor } }"),
        ):
            started = time.monotonic()
            body = assert_answer(fuzz_target.post_json({"query": bomb.document}, token), bomb.document[:80])
            assert time.monotonic() - started < GUARD_S
            assert set(error_codes(body)) == {"QUERY_TOO_COMPLEX"}, body


# Where a request goes: the fast path (a JSON POST), Strawberry's view (a
# content type it reads as JSON, or GET), or neither (other methods and
# content types). Each is drawn as often.
_FAST_PATH_JSON = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;"]
_VIEW_JSON = ["application/jsonx", "application/json-patch+json", "text/application/json"]
_OTHER_CONTENT_TYPES = [
    "application/graphql",
    "application/graphql-response+json",
    "text/plain",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "",
]
_OTHER_METHODS = ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def _route() -> st.SearchStrategy[tuple[str, str | None]]:
    """A method and a content type (None: no such header)."""
    post = st.just("POST")
    return weighted(
        (1, st.tuples(post, st.sampled_from(_FAST_PATH_JSON))),
        (1, st.tuples(post, st.sampled_from(_VIEW_JSON))),
        (1, st.tuples(st.just("GET"), st.none() | st.sampled_from(_FAST_PATH_JSON))),
        (1, st.tuples(post | st.sampled_from(_OTHER_METHODS), st.none() | st.sampled_from(_OTHER_CONTENT_TYPES))),
    )


def _envelopes() -> st.SearchStrategy[object]:
    """Request bodies: objects with fields of any type, batches, bare values."""
    query = st.sampled_from(["{ viewer { id } }", "query Q { viewer { id } }", "mutation { __typename }"])
    field = st.one_of(query, hostile_json())
    envelope = st.fixed_dictionaries(
        {}, optional={"query": field, "variables": field, "operationName": field, "extensions": field}
    )
    return st.one_of(envelope, st.lists(envelope, max_size=3), hostile_json())


_ODD_BODIES = (b"", b"{", b"\xff\xfe{}", b'{"query": "{ viewer { id } }"}\x00', b"\xef\xbb\xbf{}", b'"\xff"')


def _bodies() -> st.SearchStrategy[bytes]:
    json_bodies = _envelopes().map(encode)
    # JSON with bytes put in that may not be UTF-8 at all
    spliced = st.tuples(json_bodies, st.integers(min_value=0), st.binary(min_size=1, max_size=3)).map(
        lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2] + t[0][t[1] % (len(t[0]) + 1) :]
    )
    too_deep = st.integers(min_value=900, max_value=60_000).map(
        lambda n: encode({"query": "{ viewer { id } }", "variables": deep(n)})
    )
    return weighted(
        (3, json_bodies),
        (2, spliced),
        (1, st.binary(max_size=200)),
        (1, too_deep),
        (1, st.sampled_from(_ODD_BODIES)),
    )


_UNSENDABLE = bytes(range(0x20)).replace(b"\t", b"") + b"\x7f"


def _header_values() -> st.SearchStrategy[bytes]:
    strings = hostile_strings().map(lambda s: s.encode("utf-8", "surrogatepass"))
    # Without the control characters and edge whitespace HTTP/1.1 forbids
    # (the client refuses to send them); bytes over 0x7F stay.
    return (strings | st.binary(max_size=40)).map(lambda b: b.translate(None, _UNSENDABLE).strip(b" \t")[:200])


@fuzz(120)
@given(data=st.data())
def test_malformed_requests_are_refused_cleanly(fuzz_target: FuzzTarget, data: st.DataObject) -> None:
    """Any method, content type, body (non-JSON, batches, deep nesting, wrong
    types) and odd headers (Authorization, X-Request-ID, Origin): a 4xx or a
    GraphQL answer, never a 5xx, an INTERNAL or a stalled server."""
    method, content_type = data.draw(_route(), label="method and content type")
    body = data.draw(_bodies(), label="body") if method not in ("GET", "HEAD") else b""
    params: dict[str, str] = {}
    if method == "GET":
        params = data.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "query": st.sampled_from(["{ viewer { id } }", "mutation { __typename }"]) | hostile_strings(),
                    "variables": _envelopes().map(lambda v: encode(v).decode())
                    | st.integers(900, 5_000).map(lambda n: "[" * n + "]" * n),
                    "operationName": hostile_strings(),
                },
            ),
            label="params",
        )
    headers: dict[bytes, bytes] = {}
    if content_type is not None:
        headers[b"content-type"] = content_type.encode()
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    token = token_of(fuzz_target, caller)
    if token is not None:
        headers[b"authorization"] = b"Bearer " + token.encode()
    for name in (b"authorization", b"x-request-id", b"origin"):
        if data.draw(st.booleans(), label=f"odd {name.decode()}"):
            headers[name] = data.draw(_header_values(), label=name.decode())
    with fuzz_target.stays_healthy():
        url = "/graphql?" + query_string(params) if params else "/graphql"
        assume(len(url) < 60_000)  # longer, the client refuses to send it
        response = fuzz_target.http.request(method, url, content=body, headers=headers)
        assert_answer(response, (method, headers, params, body[:300]))
