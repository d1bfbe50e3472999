"""lossyfs: a LazyFS-style FUSE passthrough that can lose what was never fsynced.

Run it as ``python -m harness.nemesis.lossyfs BACKING_DIR MOUNTPOINT --control
SOCKET_PATH``. ``MOUNTPOINT`` may be ``BACKING_DIR`` itself: the backing
directory is opened before the mount and every operation goes through that
descriptor (``*at`` calls), so a SUT's data dir can be covered in place and,
once unmounted, holds the post-power-loss state under its own name.

Every operation is applied to the backing directory at once (through
``lossy_backing``); before each change the rollback journal
(``lossy_journal``) records how to take it back.
The mount uses direct I/O (no page cache), so every ``write(2)`` of the SUT
reaches this process, and shared writable ``mmap`` is refused by the kernel
rather than silently bypassing the journal. ``fsync``/``fdatasync`` of a file
commit that file's content and the namespace log; ``fsync`` of a directory
commits the namespace log. docs/nemesis-power-off.md lists what is and is not
modelled.

Control: a Unix socket served by a thread (Python signal handlers do not run
while FUSE's C loop holds the main thread). One command per line, one JSON
reply per line:

- ``crash``: roll every file and the namespace back to the last-synced state,
  then refuse every change (and every open for writing) with EIO; a flush in
  flight at that instant is cut (its data rolled back, EIO);
- ``arm SECONDS``: crash as the next flush of un-synced data would complete; the reply
  (``crashed``) comes once crashed, or after SECONDS without a crash;
- ``stats``: pending files/bytes/records, namespace ops, syncs seen, crashed;
- ``reset``: accept changes again; the backing dir as it is now is "synced";
- ``slow MS``: from now on every file flush takes MS longer;
- ``durable``: every file commit so far, ``[st_ino, end of the highest write, monotonic ns]``.

A clean unmount (``fusermount3 -u``) without ``crash`` keeps everything, like
a clean shutdown. The process prints ``ready`` on stdout once mounted.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import socket
import sys
import threading

import mfusepy

from harness.nemesis.lossy_ops import LossyOperations


class _LossyFUSE(mfusepy.FUSE):
    """mfusepy drops ``write``'s flags, ``rename``'s flags and ``truncate``'s handle; forward them.

    The write flags matter: the kernel sends no FUSE fsync for an O_DSYNC/O_SYNC
    write (or pwritev2 with RWF_DSYNC) under direct I/O, it only sets O_DSYNC
    in that write's flags.
    """

    def write(self, path, buf, size: int, offset: int, fip) -> int:
        fi = fip.contents
        return self.operations.write(None if path is None else path.decode(self.encoding, self.errors),
                                     ctypes.string_at(buf, size), offset, fi.fh, fi.flags)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return self.operations.rename(old.decode(self.encoding, self.errors),
                                      new.decode(self.encoding, self.errors), flags)

    def truncate_fuse_3(self, path, length, fip) -> int:
        fh = fip.contents.fh if fip else None
        return self.operations.truncate(None if path is None else path.decode(self.encoding, self.errors),
                                        length, fh)


# ------------------------------------------------------------------ control channel

def serve_control(ops: LossyOperations, path: str) -> threading.Thread:
    """Bind the control socket now (so it exists once ``ready`` is printed) and serve it in a thread."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(8)
    commands = {"crash": ops.crash, "stats": ops.stats, "reset": ops.reset, "durable": ops.durable_log,
                "arm": lambda timeout: ops.arm(float(timeout)), "slow": lambda ms: ops.slow(float(ms))}

    def handle(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                cmd, *args = line.decode(errors="replace").split() or [""]
                try:
                    reply = (commands[cmd](*args) if cmd in commands
                             else {"ok": False, "error": f"unknown command {cmd!r}"})
                except Exception as e:   # report, never kill the control thread
                    reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                f.write((json.dumps(reply, sort_keys=True) + "\n").encode())
                f.flush()

    def loop() -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True, name="lossyfs-control-conn").start()

    t = threading.Thread(target=loop, daemon=True, name="lossyfs-control")
    t.start()
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.nemesis.lossyfs", description=__doc__.split("\n")[0])
    ap.add_argument("backing", help="the directory that holds the data (may equal MOUNTPOINT)")
    ap.add_argument("mountpoint")
    ap.add_argument("--control", required=True, help="Unix socket path for crash/stats/reset")
    ap.add_argument("--allow-other", action="store_true", help="let other users reach the mount")
    ap.add_argument("--no-real-sync", action="store_true",
                    help="do not pass fsync/fdatasync through to the backing filesystem")
    ap.add_argument("--fsync-delay-ms", type=float, default=0.0,
                    help="slow every file fsync/fdatasync by this long (the slow-fsync nemesis)")
    ap.add_argument("--debug", action="store_true", help="libfuse debug output on stderr")
    args = ap.parse_args(argv)

    root = os.open(args.backing, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)   # before the mount covers it
    ops = LossyOperations(root, real_sync=not args.no_real_sync, fsync_delay_s=args.fsync_delay_ms / 1000)
    serve_control(ops, args.control)
    options = dict(foreground=True, direct_io=True, use_ino=True, default_permissions=True,
                   fsname="lossyfs", attr_timeout=0, entry_timeout=0, negative_timeout=0)
    if args.allow_other:
        options["allow_other"] = True
    if args.debug:
        options["debug"] = True
    _LossyFUSE(ops, args.mountpoint, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
