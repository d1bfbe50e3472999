"""The declared in-flight limit: the reference gateway's own figure, and an external descriptor's key.

The reference's figure is ``GatewayDesk.in_flight_limit`` (what its gateway
reports in its digest and ``ReferenceSut.in_flight_limit`` reads): with
nothing sequenced, the desk admits exactly that many new orders, then
refuses. An external SUT declares it with the descriptor's
``in_flight_limit`` key; without it the capability is not offered.
"""

from __future__ import annotations

import pytest

from harness.sut.base import NotSupported
from harness.sut.descriptor import DescriptorError, parse
from harness.sut.external import ExternalSut
from reference_impl.core.gateway_desk import Forward, GatewayDesk
from reference_impl.core.messages import NewOrder, RejectReason, Side
from reference_impl.core.rules import Instruments
from tests.harness.test_external_sut import descriptor


@pytest.mark.parametrize("capacity, ratio, limit", [(65536, 0.9, 3584), (1000, 0.9, 900)])
def test_the_desk_admits_exactly_its_in_flight_limit_while_nothing_is_sequenced(
        capacity, ratio, limit):
    desk = GatewayDesk(1, 7, "fsync", Instruments({"ACME": 100}), capacity=capacity, ratio=ratio)
    assert desk.in_flight_limit == limit and desk.digest(0)["in_flight_limit"] == limit
    answers = [desk.admit("A1", NewOrder(f"T{i}", "ACME", Side.BUY, 1, 100), 0)
               for i in range(limit + 5)]
    assert all(type(a) is Forward for a in answers[:limit])
    assert answers[limit:] == [RejectReason.BACKPRESSURE] * 5


def test_a_descriptor_may_declare_it(tmp_path):
    d = parse({**descriptor(tmp_path), "in_flight_limit": 500})
    assert d.in_flight_limit == 500
    assert ExternalSut(d, tmp_path / "run").in_flight_limit() == 500


def test_without_the_key_it_is_not_offered(tmp_path):
    sut = ExternalSut(parse(descriptor(tmp_path)), tmp_path / "run")
    with pytest.raises(NotSupported):
        sut.in_flight_limit()


@pytest.mark.parametrize("value, words", [(0, "integer >= 1"), ("many", "must be int"),
                                          (True, "must be int")])
def test_a_bad_value_names_the_key(tmp_path, value, words):
    with pytest.raises(DescriptorError) as info:
        parse({**descriptor(tmp_path), "in_flight_limit": value})
    assert info.value.key == "in_flight_limit" and words in str(info.value)
