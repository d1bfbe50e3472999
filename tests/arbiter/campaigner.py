"""A campaigner process for the lease tests: ``python -m tests.arbiter.campaigner PORT NAME TTL KEY``.

It runs one ``ActiveLease`` and answers each line on stdin at once: ``?`` with
``A <fence>`` (active) or ``S`` (standby); ``q`` resigns and exits. It prints
``ready`` first. A process of its own, so a test can kill -9 or SIGSTOP it.
"""

from __future__ import annotations

import sys

from reference_impl.arbiter.lease import ActiveLease


def main(argv: list[str]) -> int:
    port, name, ttl, key = int(argv[0]), argv[1], int(argv[2]), argv[3]
    lease = ActiveLease(port, name, ttl_s=ttl, key=key, poll_s=0.05).start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "q":
            break
        tenure = lease.tenure()
        print(f"A {tenure.fence}" if tenure is not None else "S", flush=True)
    lease.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
