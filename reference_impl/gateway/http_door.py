"""The HTTP/JSON door (aiohttp): orders, order state and an SSE event stream.

Every route but ``/v1/health`` needs HTTP Basic auth with an account and its
password from the config (401 otherwise); an account acts only on its own
orders. Bodies use the replay format's field names and responses carry
replay-format output objects (``core.replay_format.output_to_json``).
Errors are ``{"error": {"code", "field", "message"}}``:

- 400 ``malformed_json``, ``missing_field``, ``wrong_type``, ``unknown_field``,
  ``bad_value``: the request does not parse (``http_parse``);
- 413 ``too_large``: the body is over the app's 64 KiB limit;
- 400 with a core reject code (``unknown_symbol``, ``bad_price``, ``bad_qty``,
  ``min_qty_not_ioc``, ``bad_tif``, ``bad_token``): a stateless check failed;
- 429 ``backpressure`` with ``Retry-After: 1``: new orders and replaces only;
- 504 ``timeout``: no released outputs within the bound; the outcome is
  unknown, settle it with ``GET /v1/orders/{token}``.

A request that passes is sequenced; its response is 200 ``{"outputs": [...],
"stages": {...}}`` once the ack gate releases its input, so a 200 is always
durable under the configured policy. ``GET /v1/events`` is a Server-Sent
Events stream of the account's outbound messages; the event id is the
account's outbound sequence number (shared with SoupBinTCP), and
``Last-Event-ID`` (or ``?last_event_id=N``) resumes after N.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from typing import TYPE_CHECKING

from aiohttp import web

from reference_impl.core.gateway_desk import Answer, Forward
from reference_impl.core.gateway_orders import Outbound
from reference_impl.core.messages import Cancel, RejectReason
from reference_impl.core.replay_format import output_to_json
from reference_impl.gateway.http_parse import RequestError, parse_new_order, parse_replace, reject_field

if TYPE_CHECKING:
    from reference_impl.gateway.node import GatewayNode

SSE_KEEPALIVE_S = 5.0
MAX_BODY = 64 << 10  #: request body limit (413 too_large above it)
SSE_QUEUE_MAX = 100_000
ORDER_STATES = ("open", "filled", "canceled", "replaced", "rejected")
_ACCOUNT = web.AppKey("account", str)
_NODE = web.AppKey("node", object)
_STREAMS = web.AppKey("streams", set)


def error(status: int, code: str, field: str | None, message: str,
          headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "field": field, "message": message}},
                             status=status, headers=headers)


def _node(request: web.Request) -> GatewayNode:
    return request.app[_NODE]  # type: ignore[return-value]


# --------------------------------------------------------------------- auth


def _account_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    expected = _node(request).cfg.accounts.get(user)
    if not sep or expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        return None
    return user


@web.middleware
async def auth(request: web.Request, handler):
    if request.path == "/v1/health":
        return await handler(request)
    account = _account_of(request)
    if account is None:
        return error(401, "unauthorized", None, "HTTP Basic auth with an account and its password",
                     {"WWW-Authenticate": 'Basic realm="crucible"'})
    request[_ACCOUNT] = account
    return await handler(request)


# ----------------------------------------------------------------- requests


async def _json_body(request: web.Request) -> object:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestError("too_large", "body",
                           f"the body exceeds {MAX_BODY} bytes") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise RequestError("malformed_json", "body", f"not valid JSON: {exc}") from None


async def _submit(request: web.Request, body: object, token_field: str,
                  gate_backpressure: bool = True) -> web.Response:
    node = _node(request)
    account = request[_ACCOUNT]
    result = node.submit(account, body)
    if type(result) is not Forward:
        if result is RejectReason.BACKPRESSURE:
            return error(429, "backpressure", None, "the core is busy: retry later",
                         {"Retry-After": "1"})
        field = reject_field(result, body)
        return error(400, result.value, field, f"{field}: failed the {result.value} check")
    fut = node.wait_for(result.request_seq)
    try:
        answer: Answer = await asyncio.wait_for(fut, node.request_timeout_s)
    except asyncio.TimeoutError:
        node.forget(result.request_seq)
        token = getattr(body, token_field)
        return error(504, "timeout", None,
                     f"no outcome within {node.request_timeout_s:g} s: the order's outcome is "
                     f"unknown; settle it with GET /v1/orders/{token}")
    finally:
        node.forget(result.request_seq)
    stages = node.finish(answer)
    return web.json_response({"outputs": [output_to_json(o.output) for o in answer.outputs],
                              "stages": stages.to_json()})


def _guard(handler):
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except RequestError as exc:
            return error(413 if exc.code == "too_large" else 400, exc.code, exc.field, exc.message)
    return wrapped


@_guard
async def post_order(request: web.Request) -> web.Response:
    body = parse_new_order(await _json_body(request), request[_ACCOUNT])
    return await _submit(request, body, "token")


@_guard
async def delete_order(request: web.Request) -> web.Response:
    raw = request.query.get("qty", "0")
    if not raw.isascii() or not raw.isdigit():
        raise RequestError("wrong_type", "qty", f"expected a non-negative integer, got {raw!r}")
    return await _submit(request, Cancel(request.match_info["token"], int(raw)), "token")


@_guard
async def replace_order(request: web.Request) -> web.Response:
    body = parse_replace(await _json_body(request), request.match_info["token"])
    return await _submit(request, body, "new_token")


async def get_order(request: web.Request) -> web.Response:
    node = _node(request)
    account, token = request[_ACCOUNT], request.match_info["token"]
    order = node.book.order(account, token)
    if order is not None:
        return web.json_response(order.to_json())
    if node.book.pending_for(account, token) is not None:
        return web.json_response({"token": token, "state": "pending"})
    return error(404, "unknown_order", "token", f"account {account} has no order {token!r}")


async def list_orders(request: web.Request) -> web.Response:
    node = _node(request)
    state = request.query.get("state", "all")
    if state != "all" and state not in ORDER_STATES:
        return error(400, "bad_value", "state", f"state must be all or one of {ORDER_STATES}")
    acct = node.book.accounts.get(request[_ACCOUNT])
    orders = [] if acct is None else [o.to_json() for o in acct.orders.values()
                                      if state == "all" or o.state == state]
    return web.json_response({"orders": orders})


async def health(request: web.Request) -> web.Response:
    node = _node(request)
    return web.json_response({"ok": True, "component": "gateway", "id": node.gw.id,
                              "durability": node.cfg.durability})


# ---------------------------------------------------------------------- SSE


def sse_event(entry: Outbound) -> bytes:
    obj = output_to_json(entry.output)
    return (f"id: {entry.out_seq}\nevent: {obj['type']}\n"
            f"data: {json.dumps(obj, separators=(',', ':'))}\n\n").encode()


async def events(request: web.Request) -> web.StreamResponse:
    node = _node(request)
    account = request[_ACCOUNT]
    raw = request.headers.get("Last-Event-ID", request.query.get("last_event_id"))
    journal = node.book.account(account)
    if raw is None:
        start = journal.next_out_seq
    elif raw.isascii() and raw.isdigit():
        start = int(raw) + 1
    else:
        return error(400, "wrong_type", "Last-Event-ID", "expected a non-negative integer")
    queue: asyncio.Queue[Outbound | None] = asyncio.Queue()

    def sink(entry: Outbound) -> None:
        if queue.qsize() >= SSE_QUEUE_MAX:  # a consumer this slow is cut off; it can resume
            node.unsubscribe(account, sink)
            queue.put_nowait(None)
        else:
            queue.put_nowait(entry)

    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    backlog = journal.since(start)  # taken and subscribed in one step: no gap, no overlap
    node.subscribe(account, sink)
    streams = request.app[_STREAMS]
    streams.add(queue)
    try:
        if backlog:
            await response.write(b"".join(sse_event(e) for e in backlog))
        else:
            await response.write(b": connected\n\n")
        while True:
            try:
                entry = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if entry is None:
                break
            chunk = [sse_event(entry)]
            cut = False  # the end marker (slow consumer cut off, or door closing) came
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    cut = True
                    break
                chunk.append(sse_event(more))
            await response.write(b"".join(chunk))
            if cut:  # end the response: the client resumes with Last-Event-ID
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        node.unsubscribe(account, sink)
        streams.discard(queue)
    return response


# --------------------------------------------------------------------- app


def make_app(node: GatewayNode) -> web.Application:
    app = web.Application(middlewares=[auth], client_max_size=MAX_BODY)
    app[_NODE] = node
    app[_STREAMS] = set()
    app.add_routes([
        web.post("/v1/orders", post_order),
        web.get("/v1/orders", list_orders),
        web.get("/v1/orders/{token}", get_order),
        web.delete("/v1/orders/{token}", delete_order),
        web.post("/v1/orders/{token}/replace", replace_order),
        web.get("/v1/events", events),
        web.get("/v1/health", health),
    ])
    return app


class HttpDoor:
    """The running app; ``close`` ends open event streams, then stops the server."""

    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner

    async def close(self) -> None:
        for queue in list(self.runner.app[_STREAMS]):
            queue.put_nowait(None)
        await self.runner.cleanup()


async def start(node: GatewayNode, host: str, port: int) -> HttpDoor:
    runner = web.AppRunner(make_app(node), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True, shutdown_timeout=1.0).start()
    return HttpDoor(runner)
