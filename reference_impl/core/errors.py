"""Exceptions that say whose fault it is.

``DecodeError`` is a malformed peer: every codec raises it, and only it, for
bytes it cannot accept, naming the field and the offending value so that a
reject or a log line can say exactly what was wrong. ``SequenceGapError`` is a
broken invariant of the caller: the engine was handed a message out of order,
which is the receiver's job to prevent.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that do not form a valid frame of the named protocol."""

    def __init__(self, protocol: str, field: str, value: object, reason: str) -> None:
        self.protocol = protocol
        self.field = field
        self.value = value
        self.reason = reason
        shown = value if not isinstance(value, (bytes, bytearray)) else bytes(value[:32])
        super().__init__(f"{protocol}: field {field}: {reason} (got {shown!r})")


class SequenceGapError(RuntimeError):
    """The engine was given seq N+k (k > 1) after N: ordering is the receiver's job."""

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"sequence gap: expected seq {expected}, got {got}")
