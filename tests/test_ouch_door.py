"""The OUCH door's login deadline, in process against a stand-in gateway port."""

from __future__ import annotations

import asyncio
import time

from harness.clients import SoupBinClient
from reference_impl.core import soupbin_codec as sb
from reference_impl.gateway import ouch_door


class _Port:
    """Just what a connection that never logs in could use of a ``GatewayPort``."""

    def check_login(self, account: str, password: str) -> bool:
        return (account, password) == ("ALICE", "pw")


def _never_log_in(port: int) -> tuple[float, list[str]]:
    """Send Debug packets (they keep the idle clock fresh) until the door closes the
    connection; how long that took and the Debug texts the door sent."""
    got: list[str] = []
    with SoupBinClient("127.0.0.1", port, timeout_s=0.1) as c:
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 4.0:
                c.send(sb.Debug("still here"))
                try:
                    p = c.packet()
                except TimeoutError:
                    continue
                if p is None:
                    break  # the door closed the connection
                if isinstance(p, sb.Debug):
                    got.append(p.text)
        except ConnectionError:
            pass
        return time.monotonic() - t0, got


def test_a_client_that_never_logs_in_is_dropped_at_the_login_deadline(run_loop) -> None:
    async def scenario() -> tuple[float, list[str], dict]:
        door = await ouch_door.start(_Port(), ouch_door.OuchSettings("1", login_timeout_s=0.6),
                                     "127.0.0.1", 0)
        port = door.server.sockets[0].getsockname()[1]
        elapsed, got = await asyncio.to_thread(_never_log_in, port)
        await door.close()
        return elapsed, got, door.counters

    elapsed, got, counters = run_loop(scenario())
    assert elapsed < 2.5, "an unauthenticated client held the connection past the deadline"
    assert any("no Login Request" in text for text in got)  # the Debug packet that says why
    assert counters["login_timeout"] == 1 and counters["idle_dropped"] == 0


def test_the_login_deadline_defaults_to_fifteen_seconds(run_loop) -> None:
    async def scenario() -> float:
        door = await ouch_door.start(_Port(), ouch_door.OuchSettings("1"), "127.0.0.1", 0)
        await door.close()
        return door.settings.login_timeout_s

    assert run_loop(scenario()) == ouch_door.LOGIN_TIMEOUT_S == 15.0
