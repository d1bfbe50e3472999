"""Nemesis: pure ``plan_*`` fault schedules from a seed, and the actors that carry them out.

- ``udp_plan``: per-datagram drop / duplicate / reorder / delay decisions (pure).
- ``udp_relay``: the fault-injecting UDP relay between the sequencer and the
  input-stream subscribers, and ``relayed()`` to wire a cluster through it.
"""
