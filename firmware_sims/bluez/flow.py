"""Flow control for dbus-fast's writer under notification bursts.

dbus-fast (5.x) writes to the bus socket directly when its queue is empty; if the socket's
send buffer is exactly full at that moment, ``send()`` raises ``BlockingIOError`` (EAGAIN)
and the writer treats it as fatal: the bus connection is finalized and the daemon falls off
the bus. This wraps the writer's socket so EAGAIN means "nothing written yet, wait until
writable" (the writer then registers itself with the loop and resumes, exactly as after a
partial write). A ``sendmsg`` carrying file descriptors (AcquireNotify replies, rare) waits
for the socket instead, so the descriptors are not lost. Installed only in the simulated
BlueZ process.
"""

from __future__ import annotations

import select
import socket
from typing import Any

from dbus_fast.aio import message_bus as _mb

_installed = False


class _EagainSocket:
    """The two socket calls the writer makes, with EAGAIN turned into a zero-byte write."""

    __slots__ = ("real", "eagain", "stats")

    def __init__(self, real: socket.socket, stats: dict[str, int] | None) -> None:
        self.real = real
        self.eagain = False
        self.stats = stats

    def send(self, data: Any) -> int:
        try:
            return self.real.send(data)
        except BlockingIOError:
            self.eagain = True
            if self.stats is not None:
                self.stats["eagain"] = self.stats.get("eagain", 0) + 1
            return 0

    def sendmsg(self, *a: Any) -> int:
        for _ in range(1000):
            try:
                return self.real.sendmsg(*a)
            except BlockingIOError:
                select.select([], [self.real], [], 0.01)
        raise BlockingIOError("bus socket stayed full for 10 s")


def install_eagain_workaround(stats: dict[str, int] | None = None) -> None:
    """Patch dbus-fast's asyncio writer (idempotent)."""
    global _installed
    if _installed:
        return
    orig = _mb._MessageWriter.write_callback

    def write_callback(self: Any, remove_writer: bool = True) -> None:
        sock = self.sock
        if type(sock) is not _EagainSocket:
            sock = self.sock = _EagainSocket(sock, stats)
        sock.eagain = False
        orig(self, remove_writer)
        if sock.eagain:
            self.loop.add_writer(self.fd, self.write_callback)

    _mb._MessageWriter.write_callback = write_callback  # type: ignore[method-assign]
    _installed = True
