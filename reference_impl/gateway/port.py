"""The one port a door may touch: ``GatewayPort``.

A door (``ouch_door``, ``http_door``) turns a client protocol into calls on
this port and the port's deliveries back into bytes; it sees nothing else of
the gateway (no node, no desk, no config: its own settings come in when it is
built, in ``main``). ``GatewayNode`` implements the port; a test can stand in
for it with a few lines.

Each answer crosses the port once: a door calls ``submit``; the gateway later
calls the door back once per answer (``on_answer``) and once per datagram per
subscriber (a ``Subscriber`` gets every entry of its account that datagram
released, in journal order). A request the desk refuses is journalled and
delivered to the account's subscribers before ``submit`` returns, whichever
door sent it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from reference_impl.core.gateway_desk import Answer, Forward
from reference_impl.core.gateway_orders import Account, Outbound
from reference_impl.core.messages import Cancel, NewOrder, RejectReason, Replace

Request = NewOrder | Cancel | Replace
#: gets each batch of its account's journal entries (do not keep or change the list)
Subscriber = Callable[[Sequence[Outbound]], None]
#: gets the answer to one submitted request, its gateway-out already stamped
AnswerSink = Callable[[Answer], None]


class GatewayPort(Protocol):
    """What a door may ask of the gateway."""

    def check_login(self, account: str, password: str) -> bool:
        """True when ``password`` is ``account``'s (the config's accounts)."""
        ...

    def submit(self, account: str, body: Request,
               on_answer: AnswerSink | None = None) -> Forward | RejectReason:
        """Forward ``body`` to the sequencer, or refuse it (journalled and delivered at once).

        ``on_answer`` is called once, when the ack gate releases the answer;
        a door that no longer waits for it ignores the call.
        """
        ...

    def subscribe(self, account: str, subscriber: Subscriber) -> Account:
        """From now on deliver ``account``'s entries to ``subscriber``; returns its journal.

        Entries journalled before this call are in the returned journal and
        never reach ``subscriber``; later ones reach it. So the caller replays
        from the journal at once, then goes live: no gap, no overlap.
        """
        ...

    def unsubscribe(self, account: str, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber`` (unknown subscribers are ignored)."""
        ...

    def account(self, name: str) -> Account | None:
        """``name``'s orders and journal, as released so far; None if it has none yet."""
        ...

    def pending(self, account: str, token: str) -> bool:
        """Whether a request of ``account`` naming ``token`` is still unanswered."""
        ...
