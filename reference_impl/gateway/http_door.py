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
  (these two refusals are journalled by the gateway like the OUCH door's: the
  account's event stream shows them as ``rejected`` with ``seq`` 0;)
- 504 ``timeout``: no released outputs within the bound; the outcome is
  unknown, settle it with ``GET /v1/orders/{token}``.

A request that passes is sequenced; its response is 200 ``{"outputs": [...],
"stages": {...}}`` once the ack gate releases its input, so a 200 is always
durable under the configured policy. ``GET /v1/events`` is a Server-Sent
Events stream of the account's outbound messages; the event id is the
account's outbound sequence number (shared with SoupBinTCP), and
``Last-Event-ID`` (or ``?last_event_id=N``) resumes after N.

The door touches the gateway only through its ``GatewayPort``; its own
settings (``HttpSettings``) come in when it is built.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from reference_impl.core.gateway_desk import Answer, Forward
from reference_impl.core.gateway_orders import Outbound
from reference_impl.core.messages import Cancel, RejectReason
from reference_impl.core.replay_format import output_to_json
from reference_impl.gateway.http_parse import RequestError, parse_new_order, parse_replace, reject_field
from reference_impl.gateway.port import GatewayPort, Request

SSE_KEEPALIVE_S = 5.0
MAX_BODY = 64 << 10  #: request body limit (413 too_large above it)
SSE_QUEUE_MAX = 100_000
ORDER_STATES = ("open", "filled", "canceled", "replaced", "rejected")
REQUEST_TIMEOUT_S = 5.0
_ACCOUNT = web.AppKey("account", str)
_GATEWAY = web.AppKey("gateway", object)
_SETTINGS = web.AppKey("settings", object)
_STREAMS = web.AppKey("streams", set)


@dataclass(frozen=True)
class HttpSettings:
    """What the door is told when it is built (``main``)."""

    gateway_id: int
    durability: str
    request_timeout_s: float = REQUEST_TIMEOUT_S  #: 504 (outcome unknown) after this long
    #: test-only variant ``sse_resume_at_id``: resume from Last-Event-ID itself, not after it
    resume_at_id: bool = False


def error(status: int, code: str, field: str | None, message: str,
          headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "field": field, "message": message}},
                             status=status, headers=headers)


def _gateway(request: web.Request) -> GatewayPort:
    return request.app[_GATEWAY]  # type: ignore[return-value]


def _settings(request: web.Request) -> HttpSettings:
    return request.app[_SETTINGS]  # type: ignore[return-value]


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
    if not sep or not _gateway(request).check_login(user, password):
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


async def _submit(request: web.Request, body: Request, token_field: str) -> web.Response:
    timeout_s = _settings(request).request_timeout_s
    fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def on_answer(answer: Answer) -> None:
        if not fut.done():  # else timed out: the 504 is already sent
            fut.set_result(answer)

    result = _gateway(request).submit(request[_ACCOUNT], body, on_answer)
    if type(result) is not Forward:
        if result is RejectReason.BACKPRESSURE:
            return error(429, "backpressure", None, "the core is busy: retry later",
                         {"Retry-After": "1"})
        field = reject_field(result, body)
        return error(400, result.value, field, f"{field}: failed the {result.value} check")
    try:
        answer = await asyncio.wait_for(fut, timeout_s)
    except asyncio.TimeoutError:
        token = getattr(body, token_field)
        return error(504, "timeout", None,
                     f"no outcome within {timeout_s:g} s: the order's outcome is "
                     f"unknown; settle it with GET /v1/orders/{token}")
    return web.json_response({"outputs": [output_to_json(o.output) for o in answer.outputs],
                              "stages": answer.stages.to_json()})


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
    gateway = _gateway(request)
    account, token = request[_ACCOUNT], request.match_info["token"]
    acct = gateway.account(account)
    order = acct.order(token) if acct is not None else None
    if order is not None:
        return web.json_response(order.to_json())
    if gateway.pending(account, token):
        return web.json_response({"token": token, "state": "pending"})
    return error(404, "unknown_order", "token", f"account {account} has no order {token!r}")


async def list_orders(request: web.Request) -> web.Response:
    state = request.query.get("state", "all")
    if state != "all" and state not in ORDER_STATES:
        return error(400, "bad_value", "state", f"state must be all or one of {ORDER_STATES}")
    acct = _gateway(request).account(request[_ACCOUNT])
    orders = [] if acct is None else [o.to_json() for o in acct.orders.values()
                                      if state == "all" or o.state == state]
    return web.json_response({"orders": orders})


async def health(request: web.Request) -> web.Response:
    settings = _settings(request)
    return web.json_response({"ok": True, "component": "gateway", "id": settings.gateway_id,
                              "durability": settings.durability})


# ---------------------------------------------------------------------- SSE


def sse_event(entry: Outbound) -> bytes:
    obj = output_to_json(entry.output)
    return (f"id: {entry.out_seq}\nevent: {obj['type']}\n"
            f"data: {json.dumps(obj, separators=(',', ':'))}\n\n").encode()


async def events(request: web.Request) -> web.StreamResponse:
    gateway = _gateway(request)
    account = request[_ACCOUNT]
    raw = request.headers.get("Last-Event-ID", request.query.get("last_event_id"))
    if raw is None:  # new events only: from what the journal holds now
        journal = gateway.account(account)
        start = journal.next_out_seq if journal is not None else 1
    elif raw.isascii() and raw.isdigit():
        start = int(raw) + (0 if _settings(request).resume_at_id else 1)
    else:
        return error(400, "wrong_type", "Last-Event-ID", "expected a non-negative integer")
    queue: asyncio.Queue[Outbound | None] = asyncio.Queue()

    def sink(entries: Sequence[Outbound]) -> None:
        for entry in entries:
            if queue.qsize() >= SSE_QUEUE_MAX:  # a consumer this slow is cut off; it can resume
                gateway.unsubscribe(account, sink)
                queue.put_nowait(None)
                return
            queue.put_nowait(entry)

    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    backlog = gateway.subscribe(account, sink).since(start)  # then live: no gap, no overlap
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
        gateway.unsubscribe(account, sink)
        streams.discard(queue)
    return response


# --------------------------------------------------------------------- app


def make_app(gateway: GatewayPort, settings: HttpSettings) -> web.Application:
    app = web.Application(middlewares=[auth], client_max_size=MAX_BODY)
    app[_GATEWAY] = gateway
    app[_SETTINGS] = settings
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


async def start(gateway: GatewayPort, settings: HttpSettings, host: str, port: int) -> HttpDoor:
    runner = web.AppRunner(make_app(gateway, settings), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True, shutdown_timeout=1.0).start()
    return HttpDoor(runner)
