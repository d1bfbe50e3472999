"""ReferenceSut against the real nodes: description, every capability, the bus relay, a cold restart.

One cluster (ports +8000, or any free block if another run holds it), with
the bus relay wired in and checkpoints every 2 seqs; skipped with the reason
when the nodes are missing or do not start. Every test stops what it starts.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.clients import HttpClient
from harness.sut import NotSupported, SutError, journal_orders
from harness.sut.ports import NoFreePorts
from harness.sut.reference import ReferenceSut
from reference_impl import config

ROOT = Path(__file__).resolve().parents[2]
NODES = ("sequencer/node", "engine/node", "logger/node", "gateway/node", "launch/cluster")
MISSING = [n for n in NODES if not (ROOT / "reference_impl" / f"{n}.py").exists()]


def test_construction_validates_and_describes_without_starting(tmp_path):
    sut = ReferenceSut(tmp_path, durability="replicated", fsync_delay_ms=7, faults=["skip_dedup"])
    assert sut.durability == "replicated" and sut.base_config.logger.fsync_delay_ms == 7
    assert sut.base_config.faults == ("skip_dedup",)
    assert sut.roles() == {"logger": ["logger"], "secondary": ["engine-2"],
                           "primary": ["engine-1"], "sequencer": ["sequencer"],
                           "gateway": ["gateway-1"]}
    assert sut.data_dirs() == {"logger": tmp_path.resolve() / "wal"}
    assert not sut.offers("bus_relay") and sut.offers("journal") and not sut.offers("recover")
    assert all(sut.offers(f) for f in ("wal", "wal_damage", "output_streams", "rerequest",
                                       "offline_replay", "health", "stages"))
    with pytest.raises(NotSupported, match="no bus relay"):
        sut.set_bus_faults(None)
    with pytest.raises(RuntimeError, match="not started"):
        sut.endpoints()
    with pytest.raises(ValueError, match="durability"):
        ReferenceSut(tmp_path, durability="sometimes")
    with pytest.raises(ValueError, match="unicast"):
        ReferenceSut(tmp_path, transport="multicast", bus_relay=True)
    with pytest.raises(ValueError, match="unknown feature"):
        sut.offers("teleport")


@pytest.fixture(scope="module")
def sut(tmp_path_factory):
    if MISSING:
        pytest.skip(f"reference nodes not written yet: {', '.join(MISSING)}")
    run_dir = tmp_path_factory.mktemp("reference-sut")
    cfg = config.load().with_overrides(checkpoint_every=2)
    s = ReferenceSut(run_dir, seed=3, config=cfg, bus_relay=True, port_offset=8000)
    try:
        try:
            s.start()
        except NoFreePorts:  # another run holds +8000
            s = ReferenceSut(run_dir, seed=3, config=cfg, bus_relay=True)
            s.start()
    except (SutError, NoFreePorts) as exc:
        pytest.skip(f"the reference cluster does not start: {exc}")
    try:
        yield s
    finally:
        s.stop()


def test_state_windows_and_cold_restart(sut):
    assert sut.offers("bus_relay") and sut.relay is not None
    offset = sut.config.gateways[0].http_port - 18080
    assert sut.endpoints()["ouch"] == ("127.0.0.1", 15000 + offset)
    with HttpClient(sut.endpoints()["http"], "DEMO1", "demo1pw") as c:
        for i in range(5):
            assert c.new_order(f"RF{i}", "ACME", "B", 1, 100 * (i + 1)).ok
        assert c.replace("RF0", "RF9", 1, 900).ok
    journal = sut.journal()
    assert [e["seq"] for e in journal] == list(range(1, 7))
    assert journal_orders(journal) == {("DEMO1", f"RF{i}") for i in (*range(5), 9)}
    assert [s for s, _ in sut.wal_records()] == list(range(1, 7))
    primary, secondary = sut.role("primary"), sut.role("secondary")
    assert sut.digest(primary)["applied_seq"] == 6
    assert sut.checkpoints(primary) == sut.checkpoints(secondary)
    assert [s for s, _ in sut.checkpoints(primary)] == [2, 4, 6]
    with pytest.raises(NotSupported):
        sut.checkpoints("logger")
    assert sut.bus_fault_counts()["received"] > 0  # the input stream went through the relay
    assert sut.health("sequencer") and "stages" in sut.stages("gateway-1", 5)
    assert sut.stream_port("sequencer").session == b"CRUCIN0001"

    coverage: dict = {}
    streams = sut.output_streams(coverage)
    assert list(streams) == [primary]  # the secondary publishes nothing
    assert coverage[primary]["first_missing"] is None
    assert [o["type"] for o in streams[primary]][:5] == ["accepted"] * 5

    lines = sut.offline_replay(journal, sut.run_dir / "replay")
    end = lines[-1]
    assert '"type":"end"' in end and sut.digest(primary)["state_hash"] in end

    outcome = sut.stop()
    assert set(outcome.values()) == {"stopped"} and sut.components() == {}
    assert sut.relay is None and sut.relay_counts is not None
    sut.start()  # cold restart on the same data: the previous port block is tried first
    assert sut.config.gateways[0].http_port - 18080 == offset
    assert [e["seq"] for e in sut.journal()] == list(range(1, 7))
    assert sut.digest("logger")["next_seq"] == 7


class _PortThief(ReferenceSut):
    """Takes the logger's admin port of the first block the SUT chose, as another process would
    between the allocator's check and the nodes' bind."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stolen: list[tuple[int, socket.socket]] = []

    def _start_on(self, block):
        if not self.stolen:
            thief = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            thief.bind(("127.0.0.1", self.base_config.logger.admin_port + block.offset))
            self.stolen.append((block.offset, thief))
        return super()._start_on(block)


def test_a_port_taken_while_starting_moves_the_cluster_to_another_block(tmp_path):
    if MISSING:
        pytest.skip(f"reference nodes not written yet: {', '.join(MISSING)}")
    sut = _PortThief(tmp_path, seed=5)
    try:
        sut.start()
        ((first, _),) = sut.stolen
        assert sut._last_offset != first  # started again elsewhere, and it runs there
        assert sut.health("logger")
    finally:
        sut.stop()
        for _, sock in sut.stolen:
            sock.close()
