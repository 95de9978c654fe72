"""The memory a request costs the server: resident bytes of its whole process group, sampled.

vLLM serves from several processes (API server, engine core), so one PID's RSS would miss most
of it; Linux /proc gives every member's VmRSS.
"""

from __future__ import annotations

import os
import threading

SAMPLE_HZ = 20.0


def stat_fields(stat: bytes) -> list[bytes]:
    """The fields of a /proc/<pid>/stat line after the parenthesised command: state ppid pgrp ..."""
    return stat.rsplit(b")", 1)[1].split()


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in the process group `pgid` (Linux /proc)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            if int(stat_fields(stat)[2]) != pgid:
                continue
            with open(f"/proc/{entry.name}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total


class RssSampler:
    """Samples a process group's total RSS in a thread while a request runs; keeps the peak."""

    def __init__(self, pgid: int, hz: float = SAMPLE_HZ) -> None:
        self.pgid = pgid
        self.period = 1.0 / hz
        self.baseline = group_rss(pgid)
        self.peak = self.baseline
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, group_rss(self.pgid))
            self.samples += 1
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, group_rss(self.pgid))
