"""Generated WebSocket conversations over a real socket, in graphql-transport-ws
and in the older graphql-ws the endpoint also speaks: whatever the client
sends, in whatever order (subscribe before init, duplicate ids, odd payloads,
unknown types, non-JSON, binary frames, oversized frames, subscriptions and
operations generated from the schema, the hand-made hostile documents), the
gateway never sends an INTERNAL error nor one without a contract code,
closes only with the protocol's documented codes, answers a last message
(a ping) unless it closed, logs no error, and ``/healthz`` still answers.
Odd handshakes (subprotocols, origins, Authorization) are refused cleanly."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.fuzz.strategies import (
    generated_operations,
    hostile_documents,
    hostile_json,
    hostile_strings,
    subscription_documents,
    weighted,
)
from tests.fuzz.target import REQUEST_TIMEOUT_S, FuzzTarget, Seeded, assert_errors, deep, encode, fuzz

pytestmark = pytest.mark.postgres

# The close codes a client may see (graphql-transport-ws's PROTOCOL.md, RFC 6455):
# 4400 invalid message, 4401 unauthorized (a refused token: README), 4403
# forbidden, 4408 init timeout, 4409 duplicate id, 4429 second init, 1009
# message over WS_MAX_SIZE, 1000 normal. 1011 or 4500 would be a server fault.
CLOSE_CODES = frozenset({1000, 1009, 4400, 4401, 4403, 4408, 4409, 4429})
CALLERS = ("PARTNER_OWNER", "PARTNER_FINANCE_ADMIN", "PARTNER_ADMIN", "EXPIRED", "OTHER_PARTNER")
OVER_MAX_SIZE = 300 * 1024  # uvicorn's --ws-max-size is 256 KB


@dataclass(frozen=True)
class Frame:
    """A WebSocket frame: text, binary, or (an int) that many bytes of text."""

    data: str | bytes | int

    def payload(self) -> str | bytes:
        return "x" * self.data if isinstance(self.data, int) else self.data


def _json(message: object) -> Frame:
    return Frame(encode(message).decode())


def _authorization(seeded: Seeded) -> st.SearchStrategy[object]:
    tokens = st.sampled_from(CALLERS).map(lambda caller: "Bearer " + seeded.tokens[caller])
    return weighted((3, tokens), (1, st.just("Bearer pbg_" + "A" * 43)), (1, hostile_json()))


def _init_payloads(seeded: Seeded) -> st.SearchStrategy[dict[str, object]]:
    key = st.sampled_from(["Authorization", "authorization"])
    authorized = st.builds(lambda k, v: {"payload": {k: v}}, key, _authorization(seeded))
    payload = weighted((3, authorized), (1, hostile_json().map(lambda p: {"payload": p})), (1, st.just({})))
    return payload.map(lambda p: {"type": "connection_init", **p})


def _ids() -> st.SearchStrategy[object]:
    # Mostly well-formed (and repeated), so conversations go on past them.
    return weighted((6, st.sampled_from(["1", "2"])), (1, hostile_strings()), (1, hostile_json()))


def _subscribe_payloads(seeded: Seeded) -> st.SearchStrategy[object]:
    operations = weighted((2, subscription_documents(seeded)), (1, generated_operations(seeded)))
    valid = operations.map(lambda op: {"query": op.document, "variables": op.variables})
    # Well-formed envelopes whose contents cannot run: no query, an operation
    # name that is not there, a query where only subscriptions run, the hand-made
    # hostile documents (bombs, broken syntax...).
    queries = st.sampled_from(["", "subscription S { orderStatusChanged { cursor } }", "query Q { __typename }"])
    documents = hostile_documents().map(lambda hostile: hostile.document)
    odd = st.fixed_dictionaries(
        {"query": weighted((3, queries), (2, documents), (1, hostile_json()))},
        optional={
            "variables": hostile_json(),
            "operationName": weighted((3, st.sampled_from(["S", "Q", "nope"])), (1, hostile_json())),
            "extensions": hostile_json(),
        },
    )
    return weighted((3, valid), (3, odd), (1, hostile_json()))


def _raw_frames() -> st.SearchStrategy[Frame]:
    """Frames that are no message of either protocol."""
    return st.one_of(
        hostile_json().map(_json),  # lists, strings, numbers, deep nesting, objects
        st.dictionaries(hostile_strings(), hostile_json(), max_size=3).map(_json),
        # Text frames carry UTF-8: no lone surrogates there (escaped in JSON, above).
        st.text(st.characters(codec="utf-8"), max_size=30).map(Frame),
        st.binary(max_size=30).map(Frame),
        st.integers(min_value=900, max_value=20_000).map(lambda n: _json({"type": "ping", "payload": deep(n)})),
        st.just(Frame(OVER_MAX_SIZE)),
    )


def protocol_frames(seeded: Seeded, *, start: str, stop: str) -> st.SearchStrategy[Frame]:
    """A protocol's frames: graphql-transport-ws's (subscribe, complete, ping,
    pong) or graphql-ws's (start, stop, connection_terminate)."""
    if start == "subscribe":
        pings = [{"type": "ping"}, {"type": "pong"}]
        other = st.sampled_from(pings) | hostile_json().map(lambda p: {"type": "ping", "payload": p})
    else:
        other = st.just({"type": "connection_terminate"})
    starting = st.builds(lambda i, p: {"id": i, "type": start, "payload": p}, _ids(), _subscribe_payloads(seeded))
    stopping = _ids().map(lambda i: {"id": i, "type": stop})
    return weighted(
        (2, _init_payloads(seeded).map(_json)),
        (5, starting.map(_json)),
        (1, stopping.map(_json)),
        (1, (other | hostile_json().map(lambda t: {"type": t})).map(_json)),
        (2, _raw_frames()),
    )


@st.composite
def conversations(draw: st.DrawFn, seeded: Seeded, start: str, stop: str) -> list[Frame]:
    """A few frames, usually after a well-formed connection_init, so the
    acknowledged state is reached as often as the others."""
    opening: list[Frame] = []
    if draw(st.integers(min_value=0, max_value=3), label="opening") > 0:
        caller = draw(st.sampled_from(CALLERS), label="caller")
        opening.append(
            _json({"type": "connection_init", "payload": {"Authorization": f"Bearer {seeded.tokens[caller]}"}})
        )
    frames = protocol_frames(seeded, start=start, stop=stop)
    return opening + draw(st.lists(frames, min_size=1, max_size=5), label="frames")


_TYPES = frozenset({"connection_ack", "next", "error", "complete", "ping", "pong"})
# The older graphql-ws protocol's (subscriptions-transport-ws), also served.
_LEGACY_TYPES = frozenset({"connection_ack", "connection_error", "data", "error", "complete", "ka"})


def check_message(text: str | bytes, context: object, *, legacy: bool = False) -> dict[str, Any]:
    """A message from the server: a JSON object of the protocol, its errors with contract codes."""
    assert isinstance(text, str), (text, context)  # the protocol's messages are text frames
    message = json.loads(text)
    assert isinstance(message, dict), (message, context)
    kind = message.get("type")
    assert kind in (_LEGACY_TYPES if legacy else _TYPES), (message, context)
    payload = message.get("payload")
    if kind in ("error", "connection_error"):
        assert_errors(payload if isinstance(payload, list) else [payload], (message, context))
    elif kind in ("next", "data") and isinstance(payload, dict) and "errors" in payload:
        assert_errors(payload["errors"], (message, context))
    return message


# After the conversation, a message the server must answer once it has
# handled every frame before it (frames are handled in order): a ping
# (graphql-transport-ws), or a start of a query (graphql-ws, which has no
# ping, answers it with an error: it runs subscriptions only; and closes
# with 4401 on a socket not acknowledged).
_BARRIER = "fuzz-barrier"
_TRANSPORT_BARRIER = {"type": "ping"}
_LEGACY_BARRIER = {"id": _BARRIER, "type": "start", "payload": {"query": "{ __typename }"}}


# Operations run in tasks of their own: after the barrier's answer, the
# answers of operations started before it (an error, a complete) may still be
# on their way. They are awaited this long; a live subscription sends nothing.
_GRACE_S = 0.25


def _started(conversation: list[Frame], start: str) -> set[str]:
    """The ids of the operations the conversation starts (as far as the client can tell)."""
    ids = set()
    for frame in conversation:
        try:
            message = json.loads(frame.data) if isinstance(frame.data, str) else None
        except (ValueError, RecursionError):
            continue
        if isinstance(message, dict) and message.get("type") == start and isinstance(message.get("id"), str):
            ids.add(message["id"])
    return ids


def converse(target: FuzzTarget, protocol: str, conversation: list[Frame], close_codes: frozenset[int]) -> None:
    """Send the frames and the barrier; check every message until the
    barrier's answer and the started operations' ends (or the grace after
    it), or until the server closes, and its close code."""
    legacy = protocol == "graphql-ws"
    pending = _started(conversation, "start" if legacy else "subscribe")
    with connect(
        target.ws_url,
        subprotocols=[protocol],  # type: ignore[list-item]
        compression=None,
        open_timeout=REQUEST_TIMEOUT_S,
        close_timeout=2,
        max_size=None,
    ) as ws:
        assert ws.subprotocol == protocol
        oversized = False
        try:
            for frame in conversation:
                ws.send(frame.payload())
                oversized = isinstance(frame.data, int)
                if oversized:
                    break  # the server fails the connection (1009): nothing more gets through
            else:
                ws.send(json.dumps(_LEGACY_BARRIER if legacy else _TRANSPORT_BARRIER))
            deadline = None
            while deadline is None or pending:
                timeout = REQUEST_TIMEOUT_S if deadline is None else deadline - time.monotonic()
                try:
                    message = check_message(ws.recv(timeout=max(timeout, 0)), conversation, legacy=legacy)
                except TimeoutError:
                    assert deadline is not None, ("no answer to the barrier", conversation)
                    return  # live subscriptions; the client closes (1000)
                if message.get("type") in ("error", "complete"):
                    pending.discard(message.get("id"))
                if deadline is None and (message["type"] == "pong" or message.get("id") == _BARRIER):
                    deadline = time.monotonic() + _GRACE_S
        except ConnectionClosed as closed:
            if oversized and closed.rcvd is None:
                # uvicorn fails the connection (RFC 6455, 7.1.7) with 1009 and
                # closes TCP at once; the rest of the frame still unread there,
                # the kernel resets the connection and the close frame may be lost.
                return
            # Else, no close frame at all (1006) is a server fault too.
            assert closed.rcvd is not None, (closed, conversation)
            assert closed.rcvd.code in close_codes, (closed.rcvd, conversation)


# graphql-ws (the older protocol the endpoint also speaks) closes with 1000
# on connection_terminate or a malformed init payload, 1002 (protocol error)
# on a binary frame, 4401 on a refused token or a start before init, 1009
# over the size limit, 4408 and 4429 as graphql-transport-ws does (no init in
# time, too many sockets for one token).
LEGACY_CLOSE_CODES = frozenset({1000, 1002, 1009, 4401, 4408, 4429})
PROTOCOLS = [
    pytest.param("graphql-transport-ws", "subscribe", "complete", CLOSE_CODES, id="graphql-transport-ws"),
    pytest.param("graphql-ws", "start", "stop", LEGACY_CLOSE_CODES, id="graphql-ws"),
]


@pytest.mark.parametrize(("protocol", "start", "stop", "close_codes"), PROTOCOLS)
@fuzz(75)
@given(data=st.data())
def test_generated_conversations_never_fail_the_socket(
    fuzz_target: FuzzTarget, protocol: str, start: str, stop: str, close_codes: frozenset[int], data: st.DataObject
) -> None:
    conversation = data.draw(conversations(fuzz_target.seeded, start, stop), label="conversation")
    with fuzz_target.stays_healthy():
        converse(fuzz_target, protocol, conversation, close_codes)


@fuzz(20)
@given(
    protocols=st.lists(st.sampled_from(["graphql-transport-ws", "graphql-ws", "nope", "GRAPHQL-WS", "x" * 300])),
    origin=st.none() | st.sampled_from(["http://evil.example", "null", "http://127.0.0.1"]),
    authorization=st.none() | st.sampled_from(["Bearer nope", "Basic eA==", "Bearer", "pbg_"]),
)
def test_odd_handshakes_are_refused_cleanly(
    fuzz_target: FuzzTarget, protocols: list[str], origin: str | None, authorization: str | None
) -> None:
    """Unknown, several or no subprotocols (the older graphql-ws among them),
    foreign origins and odd Authorization headers on the upgrade request:
    refused (an HTTP status below 500, or a documented close code) or
    accepted; never a server fault."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    with fuzz_target.stays_healthy():
        try:
            with connect(
                fuzz_target.ws_url,
                subprotocols=protocols,  # type: ignore[arg-type]
                origin=origin,  # type: ignore[arg-type]
                additional_headers=headers,
                compression=None,
                open_timeout=REQUEST_TIMEOUT_S,
                close_timeout=2,
            ) as ws:
                ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                check_message(ws.recv(timeout=REQUEST_TIMEOUT_S), protocols, legacy=ws.subprotocol == "graphql-ws")
        except InvalidStatus as refused:
            assert refused.response.status_code < 500, refused.response
        except ConnectionClosed as closed:
            # 4406 (graphql-ws's SubprotocolNotAcceptable): the client offered neither protocol.
            offered = {"graphql-transport-ws", "graphql-ws"} & set(protocols)
            assert closed.rcvd is not None and closed.rcvd.code in CLOSE_CODES | ({4406} if not offered else set())
