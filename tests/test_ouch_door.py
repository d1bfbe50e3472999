"""The OUCH door's login deadline, in process against a stand-in gateway node."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from reference_impl.core import soupbin_codec as sb
from reference_impl.gateway import ouch_door


def _node() -> SimpleNamespace:
    return SimpleNamespace(ouch_idle_timeout_s=15.0, flush_out=lambda: None,
                           cfg=SimpleNamespace(accounts={"ALICE": "pw"}))


def test_a_client_that_never_logs_in_is_dropped_at_the_login_deadline(run_loop) -> None:
    async def scenario() -> tuple[float, bytes, dict]:
        door = await ouch_door.start(_node(), "127.0.0.1", 0, login_timeout_s=0.6)
        port = door.server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t0 = time.monotonic()
        got = b""
        try:
            while time.monotonic() - t0 < 4.0:  # Debug packets keep the idle clock fresh
                writer.write(sb.encode(sb.Debug("still here")))
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), 0.1)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break  # the door closed the connection
                got += data
        except ConnectionError:
            pass
        elapsed = time.monotonic() - t0
        writer.close()
        await door.close()
        return elapsed, got, door.counters

    elapsed, got, counters = run_loop(scenario())
    assert elapsed < 2.5, "an unauthenticated client held the connection past the deadline"
    assert b"no Login Request" in got  # the Debug packet that says why
    assert counters["login_timeout"] == 1 and counters["idle_dropped"] == 0


def test_the_login_deadline_defaults_to_fifteen_seconds(run_loop) -> None:
    async def scenario() -> float:
        door = await ouch_door.start(_node(), "127.0.0.1", 0)
        await door.close()
        return door.login_timeout_s

    assert run_loop(scenario()) == ouch_door.LOGIN_TIMEOUT_S == 15.0
