"""TEST-ONLY broken variant: an engine whose same-price tie-break depends on a salt.

Switched on only by the config fault ``nondeterministic_tiebreak`` (see
docs/config.md). Each engine process salts with its own pid, so two replicas
fed identical input order equal-price orders differently, fill differently and
end with different state hashes: exactly the divergence the determinism suite
must catch. It lives outside ``core/`` so that the real engine carries no hook.
"""

from __future__ import annotations

import hashlib

from reference_impl.core.engine import Engine
from reference_impl.core.messages import NewOrder, Output, Replace, Sequenced


class SaltedTiebreakEngine(Engine):
    """After each resting order, a salted coin decides whether it jumps its level's queue."""

    __slots__ = ("_salt",)

    def __init__(self, instruments=None, *, salt: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(instruments)
        self._salt = salt.to_bytes(8, "big", signed=False)

    def apply(self, msg: Sequenced) -> list[Output]:
        out = super().apply(msg)
        body = msg.body
        token = body.token if type(body) is NewOrder else body.new_token if type(body) is Replace else None
        if token is not None:
            order = self.live_order(msg.account, token)
            if order is not None and hashlib.blake2b(token.encode(), key=self._salt).digest()[0] & 1:
                level = order.level
                level.remove(order)
                level.appendleft(order)
        return out
