"""Which MoldUDP64 session carries the output stream of each epoch.

Every epoch's primary publishes its own output session, numbered from seq 1:
epoch 1 (the first primary) uses the configured ``output.session``; epoch
``e >= 2`` uses the configured session's first four characters, ``E`` and
``e`` in five digits (``CRUCOUT001`` -> ``CRUCE00002``). A new session, not a
continuation of the old primary's numbering, because the new primary cannot
know the exact tail of the old stream (it may have missed the last packets a
gateway did see): continuing it could reuse a seq a gateway already holds,
and a receiver keeps the first copy of a seq. A zombie (a deposed primary
that still publishes) also writes only into its old session, which gateways
have closed to live traffic (``gateway.output_feed``). docs/protocols-bus.md,
"Promotion", has the whole hand-over.
"""

from __future__ import annotations

from .mold_codec import SESSION_LEN

MAX_EPOCH = 99_999  #: the most epochs a session name can tell apart


def _prefix(base: bytes) -> bytes:
    return base[:4] + b"E"


def session_for(base: bytes, epoch: int) -> bytes:
    """The 10-byte output session of ``epoch`` (the configured ``base`` for epochs 0 and 1)."""
    if epoch <= 1:
        return base
    if epoch > MAX_EPOCH:
        raise ValueError(f"epoch {epoch} has no output session (at most {MAX_EPOCH})")
    return _prefix(base) + b"%05d" % epoch


def epoch_of(base: bytes, session: bytes) -> int | None:
    """The epoch whose output session is ``session``, or None for another stream's."""
    if session == base:
        return 1
    digits = session[5:]
    if (len(session) == SESSION_LEN and session[:5] == _prefix(base) and digits.isdigit()
            and int(digits) >= 2):
        return int(digits)
    return None
