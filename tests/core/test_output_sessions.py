"""Each epoch's output session: distinct, valid MoldUDP64 names that map back to the epoch."""

from __future__ import annotations

import pytest

from reference_impl.core import mold_codec
from reference_impl.core.output_sessions import MAX_EPOCH, epoch_of, session_for

BASE = b"CRUCOUT001"


def test_epoch_one_keeps_the_configured_session() -> None:
    assert session_for(BASE, 1) == BASE and epoch_of(BASE, BASE) == 1


@pytest.mark.parametrize("epoch", [2, 3, 17, MAX_EPOCH])
def test_later_epochs_have_their_own_session(epoch: int) -> None:
    session = session_for(BASE, epoch)
    assert session != BASE and mold_codec.valid_session(session)
    assert epoch_of(BASE, session) == epoch


def test_other_streams_and_impossible_epochs_are_not_sessions_of_this_stream() -> None:
    assert epoch_of(BASE, b"CRUCIN0001") is None
    assert epoch_of(BASE, b"CRUCE00001") is None  # epoch 1 is the configured name only
    assert epoch_of(BASE, b"CRUCEXXXXX") is None
    with pytest.raises(ValueError):
        session_for(BASE, MAX_EPOCH + 1)
