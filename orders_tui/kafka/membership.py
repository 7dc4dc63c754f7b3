"""Who this pipeline is in its consumer group: a static member id that survives a crash.

A consumer that restarts under a new member id waits out its dead predecessor's session
(45 s by default) before it gets partitions. With static membership
(`group.instance.id`) the broker hands the restarted member its partitions back at once.
The id must be stable across restarts on one machine, yet two pipelines running at once
must not share it (they would fence each other). So each running pipeline holds a slot:
the lowest n whose lock file it can lock, `<host>-<n>`. The operating system releases the
lock when the process dies, however it dies, so a restarted pipeline takes its old slot.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
from pathlib import Path

SLOTS_DIR = Path.home() / ".cache" / "orders-tui" / "members"
MAX_SLOTS = 256


class MemberSlot:
    """A locked slot; `release` (or the process's death) frees it."""

    def __init__(self, instance_id: str, lock_fd: int | None) -> None:
        self.instance_id = instance_id
        self._lock_fd = lock_fd

    @classmethod
    def take(cls, group: str, given: str | None = None, folder: Path = SLOTS_DIR) -> MemberSlot:
        """`given` when set (the user names the instance); else the lowest free slot."""
        if given:
            return cls(given, None)
        folder.mkdir(parents=True, exist_ok=True)
        host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
        safe_group = re.sub(r"[^A-Za-z0-9_.-]", "_", group)
        for n in range(MAX_SLOTS):
            fd = os.open(folder / f"{safe_group}.{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(f"{host}-{n}", fd)
        raise RuntimeError(f"more than {MAX_SLOTS} pipelines of group {group!r} on this host")

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
