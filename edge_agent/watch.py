"""FIT folder watch: new ``*.fit`` files in a folder are imported through ``protocols.fit``, once each.

Polling (works on every filesystem, including a watch mounted over USB/MTP or a network share,
where inotify does not): every ``poll_interval_s`` the folder is listed; a file is read once its
size and mtime have not changed for ``settle_s`` (a watch still copying it is left alone).

*Once each* is by content: the SHA-256 of the bytes is recorded in a small SQLite state file
(``watch.sqlite``), so a file renamed, copied again or seen after a restart is not imported twice,
and two different files with the same name are both imported. The order is:

1. ``protocols.fit.read(path)`` -> batches (the valid part of a damaged file, with its problems);
2. ``outbox.append(batches, assign_seq=False, allow_past=True)``: the FIT importer gives every batch a
   deterministic seq (its first sample's time in ms), so the same file always yields the same
   ``(device_id, stream, seq)`` and the server deduplicates a re-import;
3. record the hash as imported.

A crash between 2 and 3 re-imports the file on restart; step 2 then finds those batches already
queued and skips them, and anything already delivered is a DUPLICATE at the server: nothing is
stored twice. Files that fail are recorded with their error (and not retried until they change).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .metrics import EdgeMetrics

log = logging.getLogger("edge_agent.watch")

__all__ = ["FitFolderWatch", "ImportResult"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS imported (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    imported_at_us INTEGER NOT NULL,
    outcome TEXT NOT NULL,          -- ok | partial | error
    device_id TEXT NOT NULL,
    samples INTEGER NOT NULL,
    batches INTEGER NOT NULL,
    skipped_batches INTEGER NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What importing one file did."""

    path: Path
    sha256: str
    outcome: str          # ok | partial (problems, valid part imported) | error | duplicate
    device_id: str = ""
    samples: int = 0
    batches: int = 0
    skipped_batches: int = 0
    message: str = ""


class FitFolderWatch:
    """See module docstring.

    Args:
        folder: watched folder (created if missing).
        state_path: SQLite file of imported hashes.
        outbox: an :class:`edge_agent.outbox.Outbox` (anything with ``append(batches, assign_seq=...)``).
        metrics: counts ``fittrack_edge_fit_files_imported{outcome}``.
    """

    def __init__(self, folder: Path, state_path: Path, outbox: Any, metrics: EdgeMetrics, *,
                 poll_interval_s: float = 5.0, settle_s: float = 2.0) -> None:
        self.folder = Path(folder)
        self.outbox = outbox
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self.settle_s = settle_s
        state_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(state_path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._seen: dict[Path, tuple[int, int, float]] = {}   # path -> (size, mtime_ns, stable since)
        self._done: dict[Path, tuple[int, int]] = {}          # path -> (size, mtime_ns) already handled
        self.results: list[ImportResult] = []

    def close(self) -> None:
        self._db.close()

    def imported_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM imported WHERE outcome != 'error'").fetchone()[0])

    # ------------------------------------------------------------------------------------------
    def scan_once(self, now_s: float | None = None) -> list[ImportResult]:
        """One poll: import every settled new file. Synchronous (run it in a thread)."""
        now = time.monotonic() if now_s is None else now_s
        self.folder.mkdir(parents=True, exist_ok=True)
        out: list[ImportResult] = []
        present = set()
        for p in sorted(self.folder.iterdir()):
            if not p.is_file() or p.suffix.lower() != ".fit" or p.name.startswith("."):
                continue
            present.add(p)
            try:
                st = p.stat()
            except OSError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if self._done.get(p) == sig:
                continue
            prev = self._seen.get(p)
            if prev is None or prev[:2] != sig:
                self._seen[p] = (*sig, now)
                if self.settle_s > 0:
                    continue
            elif now - prev[2] < self.settle_s:
                continue
            r = self.import_file(p)
            self._done[p] = sig
            self._seen.pop(p, None)
            out.append(r)
        for p in list(self._seen):
            if p not in present:
                del self._seen[p]
        self.results += out
        return out

    def import_file(self, path: Path) -> ImportResult:
        """Import one file unless its content was imported before."""
        from protocols.fit import read as fit_read

        try:
            data = path.read_bytes()
        except OSError as exc:
            return ImportResult(path, "", "error", message=f"cannot read: {exc.strerror}")
        digest = hashlib.sha256(data).hexdigest()
        row = self._db.execute("SELECT outcome, path FROM imported WHERE sha256=?", (digest,)).fetchone()
        if row is not None:
            self.metrics.fit_files_imported_total.labels("duplicate").inc()
            log.info("%s: same content as %s (imported before, %s); skipped", path, row[1], row[0])
            return ImportResult(path, digest, "duplicate", message=f"same content as {row[1]}")
        try:
            imp = fit_read(data)
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the watch
            return self._record(ImportResult(path, digest, "error", message=f"{type(exc).__name__}: {exc}"), len(data))
        batches = [b for b in imp.batches if len(b)]
        skipped = 0
        try:
            # seqs are the importer's content-derived keys (first sample time): an older file of
            # the same device is accepted; a batch already queued is skipped (not an error).
            keys = self.outbox.append(batches, assign_seq=False, allow_past=True)
            skipped = len(batches) - len(keys)
        except Exception as exc:  # noqa: BLE001 - e.g. a batch over the limits: batch by batch
            log.info("%s: appending all batches at once failed (%s); appending one by one", path, exc)
            for b in batches:
                try:
                    if not self.outbox.append([b], assign_seq=False, allow_past=True):
                        skipped += 1
                except Exception as exc2:  # noqa: BLE001
                    skipped += 1
                    log.info("%s: batch %s/%s seq %d skipped: %s", path, b.device_id, b.stream, b.seq, exc2)
        samples = sum(len(b) for b in batches)
        problems = "; ".join(f"{p.kind}@{p.offset}: {p.message}" for p in imp.problems[:5]) if imp.problems else ""
        outcome = "partial" if imp.problems else "ok"
        r = ImportResult(path, digest, outcome, imp.device_id, samples, len(batches) - skipped, skipped, problems)
        return self._record(r, len(data))

    def _record(self, r: ImportResult, size: int) -> ImportResult:
        self._db.execute(
            "INSERT OR REPLACE INTO imported VALUES (?,?,?,?,?,?,?,?,?,?)",
            (r.sha256, str(r.path), size, time.time_ns() // 1000, r.outcome, r.device_id, r.samples, r.batches,
             r.skipped_batches, r.message),
        )
        self.metrics.fit_files_imported_total.labels("error" if r.outcome == "error" else "ok").inc()
        if r.outcome == "error":
            log.warning("%s: FIT import failed: %s", r.path, r.message, extra={"event": "fit_import_error"})
        else:
            log.info("%s: imported %d samples in %d batches from %s%s", r.path, r.samples, r.batches, r.device_id,
                     f" (problems: {r.message})" if r.message else "", extra={"event": "fit_imported"})
        return r

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.scan_once)
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("FIT folder watch: a scan failed")
            try:
                await asyncio.wait_for(stop.wait(), self.poll_interval_s)
            except asyncio.TimeoutError:
                pass
