"""``fittrack import fit PATH...``: import FIT files into a store or the edge agent's outbox.

PATHs are files, folders (searched recursively for ``*.fit``) or glob patterns. Each file is
read with :func:`protocols.fit.read` (valid part of damaged files kept, problems listed) and its
batches go to one sink:

- ``--db sqlite:PATH`` or ``--db postgresql://...``: the ingest server's store (SQLite, or
  TimescaleDB with its migrations applied), one transaction per file; its (device, stream, seq)
  ledger makes batches already stored DUPLICATE;
- ``--outbox PATH`` or ``--edge-config edge.toml``: the edge agent's durable outbox
  (``edge_agent.outbox``), which delivers them upstream; batches keep the importer's
  content-derived seqs, so an older file of a device is accepted and a batch already queued is
  skipped (anything sent before is a DUPLICATE at the server);
- with neither, the default agent outbox ``/var/lib/fittrack-edge/outbox.sqlite`` when it exists;
- ``--dry-run``: read and summarise only.

Re-importing the same content is a no-op: the SHA-256 of every imported file is kept in a small
ledger (``fit_imports`` table: in the SQLite store itself, ``fit-imports.sqlite`` beside the
outbox, or ``~/.local/state/fittrack/fit-imports.sqlite`` for PostgreSQL; ``--ledger`` overrides). Exit status: 0 when every file was read (damaged files are
imported partially and reported), 1 when a file could not be imported at all (or had problems
under ``--strict``), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import hashlib
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from protocols.wire import SampleBatch

DEFAULT_AGENT_OUTBOX = Path("/var/lib/fittrack-edge/outbox.sqlite")
#: Ledger of imported file hashes for a PostgreSQL store (it has no file of its own to hold it).
DEFAULT_LEDGER = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "fittrack" / "fit-imports.sqlite"


class ImportSink(Protocol):
    """Where imported batches go. ``write`` stores one file's batches (atomically if it can) and
    returns (batches stored, batches skipped as already present)."""

    name: str

    def write(self, batches: Sequence[SampleBatch]) -> tuple[int, int]: ...

    def close(self) -> None: ...


class StoreSink:
    """A storage backend of the ingest server (``--db sqlite:PATH`` or ``--db postgresql://...``)."""

    def __init__(self, db: str, *, tenant: str, agent_id: str) -> None:
        from ingest_server.storage.base import WriteStatus

        if db.startswith("sqlite:"):
            from ingest_server.storage.sqlite import SqliteBackend

            backend = SqliteBackend(Path(db.partition(":")[2]))
            self.name = db
        else:
            from ingest_server.storage.timescale import TimescaleBackend

            backend = TimescaleBackend(db)
            # no credentials in reports
            self.name = "timescale:" + (db.rsplit("@", 1)[-1] if "://" in db else
                                        " ".join(w for w in db.split() if w.split("=")[0] in ("host", "port", "dbname")))
        self._dup = WriteStatus.DUPLICATE
        self._tenant, self._agent = tenant, agent_id
        self._runner = asyncio.Runner()
        self._db = backend
        try:
            self._runner.run(self._db.open())
        except BaseException:
            self._runner.close()
            raise

    def write(self, batches: Sequence[SampleBatch]) -> tuple[int, int]:
        if not batches:
            return 0, 0
        out = self._runner.run(self._db.write_batches(self._tenant, self._agent, list(batches)))
        dup = sum(1 for o in out if o.status is self._dup)
        return len(out) - dup, dup

    def close(self) -> None:
        try:
            self._runner.run(self._db.close())
        finally:
            self._runner.close()


class OutboxSink:
    """The edge agent's outbox; batches keep the importer's deterministic seqs."""

    def __init__(self, path: Path) -> None:
        from edge_agent.outbox import Outbox

        self.name = f"outbox:{path}"
        self.path = path
        self._ob = Outbox(path)

    def write(self, batches: Sequence[SampleBatch]) -> tuple[int, int]:
        # seqs are content-derived keys (first sample time): an older file of a device is
        # accepted; batches already queued are skipped and the server's ledger dedups the rest.
        keys = self._ob.append(list(batches), assign_seq=False, allow_past=True) if batches else []
        return len(keys), len(batches) - len(keys)

    def close(self) -> None:
        self._ob.close()


class Ledger:
    """SHA-256 of every file imported into a sink (``fit_imports`` table)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS fit_imports (sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL,"
            " device_id TEXT NOT NULL, records INTEGER NOT NULL, samples INTEGER NOT NULL, batches INTEGER NOT NULL,"
            " problems TEXT NOT NULL, sink TEXT NOT NULL, imported_at_us INTEGER NOT NULL)")

    def seen(self, sha: str) -> bool:
        return self._db.execute("SELECT 1 FROM fit_imports WHERE sha256=?", (sha,)).fetchone() is not None

    def add(self, sha: str, path: Path, size: int, device_id: str, records: int, samples: int, batches: int,
            problems: str, sink: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO fit_imports VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (sha, str(path), size, device_id, records, samples, batches, problems, sink,
                          time.time_ns() // 1000))

    def close(self) -> None:
        self._db.close()


@dataclass
class FileOutcome:
    path: Path
    status: str  # imported | partial | duplicate | error | read
    device_id: str = ""
    records: int = 0
    samples: int = 0
    stored: int = 0
    skipped: int = 0
    problems: str = ""
    decoder: str = ""
    seconds: float = 0.0
    size: int = 0


def expand_paths(specs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files of ``specs`` (files, folders searched recursively for ``*.fit``, globs), sorted and
    without repeats; plus the specs that matched nothing."""
    out: list[Path] = []
    missing: list[str] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = [q for q in p.rglob("*") if q.is_file() and q.suffix.lower() == ".fit"]
        elif p.is_file():
            found = [p]
        else:
            found = [Path(x) for x in glob.glob(spec, recursive=True) if Path(x).is_file()]
        if not found:
            missing.append(spec)
        out.extend(sorted(found))
    seen: set[Path] = set()
    uniq = []
    for q in out:
        r = q.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(q)
    return uniq, missing


def import_file(path: Path, sink: ImportSink | None, ledger: Ledger | None, *, strict: bool = False) -> FileOutcome:
    """Import one file (see module docstring); never raises for a bad file."""
    from protocols.fit import FitError, read

    t0 = time.perf_counter()
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileOutcome(path, "error", problems=f"cannot read: {exc}")
    sha = hashlib.sha256(data).hexdigest()
    if ledger is not None and ledger.seen(sha):
        return FileOutcome(path, "duplicate", size=len(data), seconds=time.perf_counter() - t0)
    try:
        r = read(data, strict=strict)
    except FitError as exc:
        return FileOutcome(path, "error", problems=str(exc), size=len(data), seconds=time.perf_counter() - t0)
    problems = "; ".join(str(p) for p in r.problems)
    samples = sum(len(b) for b in r.batches)
    out = FileOutcome(path, "partial" if r.problems else "imported", r.device_id, r.record_count, samples,
                      problems=problems, decoder=r.decoder, size=len(data))
    if sink is None:
        out.status = "read" if not r.problems else "partial"
    else:
        try:
            out.stored, out.skipped = sink.write(r.batches)
        except Exception as exc:  # noqa: BLE001 - a store error is reported per file, others go on
            out.status, out.problems = "error", f"{type(exc).__name__}: {exc}"
            out.seconds = time.perf_counter() - t0
            return out
        if ledger is not None:
            ledger.add(sha, path, len(data), r.device_id, r.record_count, samples, len(r.batches), problems,
                       sink.name)
    out.seconds = time.perf_counter() - t0
    return out


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description="Import files into the gateway.")
    sub = ap.add_subparsers(dest="kind", required=True, metavar="KIND")
    f = sub.add_parser("fit", help="FIT files (watches, bike computers, gym equipment)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("paths", nargs="+", metavar="PATH", help="FIT files, folders or glob patterns")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--db", metavar="URL", help="store into sqlite:PATH, or TimescaleDB: postgresql://... or 'dbname=...'")
    g.add_argument("--outbox", type=Path, metavar="PATH", help="append to this edge agent outbox file")
    g.add_argument("--edge-config", type=Path, metavar="TOML", help="append to the outbox of this edge agent config")
    g.add_argument("--dry-run", action="store_true", help="read and summarise only")
    f.add_argument("--ledger", type=Path, help="file of imported content hashes (default: beside the sink)")
    f.add_argument("--tenant", default="default", help="tenant for --db (default: %(default)s)")
    f.add_argument("--agent-id", default="fittrack-import", help="agent id for --db (default: %(default)s)")
    f.add_argument("--strict", action="store_true", help="refuse damaged files instead of keeping their valid part")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def _open_sink(args: argparse.Namespace) -> tuple[ImportSink | None, Ledger | None, str | None]:
    if args.dry_run:
        return None, None, None
    if args.db:
        kind, _, rest = args.db.partition(":")
        if kind == "sqlite" and rest:
            sink: ImportSink = StoreSink(args.db, tenant=args.tenant, agent_id=args.agent_id)
            return sink, Ledger(args.ledger or Path(rest)), None
        if (kind in ("postgresql", "postgres") and rest.startswith("//")) or "dbname=" in args.db:
            sink = StoreSink(args.db, tenant=args.tenant, agent_id=args.agent_id)
            return sink, Ledger(args.ledger or DEFAULT_LEDGER), None
        return None, None, f"--db must be sqlite:PATH, postgresql://... or a libpq 'dbname=...' string, got {args.db!r}"
    outbox = args.outbox
    if args.edge_config:
        from edge_agent.config import load_config

        outbox = load_config(args.edge_config).outbox_path
    if outbox is None:
        if not DEFAULT_AGENT_OUTBOX.exists():
            return None, None, (f"no sink: give --db sqlite:PATH, --outbox PATH or --edge-config edge.toml "
                                f"(no edge agent outbox at {DEFAULT_AGENT_OUTBOX}), or --dry-run")
        outbox = DEFAULT_AGENT_OUTBOX
    sink = OutboxSink(Path(outbox))
    return sink, Ledger(args.ledger or Path(outbox).parent / "fit-imports.sqlite"), None


def main(argv: list[str], prog: str = "fittrack import") -> int:
    args = _parser(prog).parse_args(argv)
    files, missing = expand_paths(args.paths)
    for m in missing:
        print(f"{prog}: {m}: no such file, folder or matching FIT file", file=sys.stderr)
    if not files:
        return 2
    try:
        sink, ledger, err = _open_sink(args)
    except Exception as exc:  # noqa: BLE001 - cannot open the store/outbox: say which and why
        print(f"{prog}: cannot open the sink: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    outcomes: list[FileOutcome] = []
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        total = sum(os.path.getsize(p) for p in files)
        with Progress(TextColumn("[bold]import fit"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[name]}"), console=console,
                      disable=args.no_progress or not console.is_terminal) as prog_bar:
            task = prog_bar.add_task("fit", total=len(files), name="", bytes_total=total)
            for p in files:
                prog_bar.update(task, name=p.name)
                outcomes.append(import_file(p, sink, ledger, strict=args.strict))
                prog_bar.advance(task)
    finally:
        if sink is not None:
            sink.close()
        if ledger is not None:
            ledger.close()
    _report(outcomes, sink.name if sink else "dry run")
    bad = any(o.status == "error" for o in outcomes)
    return 1 if bad or missing else 0


def _report(outcomes: list[FileOutcome], sink: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"FIT import -> {sink}")
    for h in ("file", "status", "device", "records", "samples", "batches stored", "skipped", "decoder", "MB/s",
              "problems"):
        t.add_column(h, justify="right" if h in ("records", "samples", "batches stored", "skipped", "MB/s") else "left",
                     overflow="fold")
    for o in outcomes:
        mbps = f"{o.size / o.seconds / 1e6:.1f}" if o.seconds > 0 and o.status not in ("duplicate", "error") else ""
        t.add_row(o.path.name, o.status, o.device_id, str(o.records), str(o.samples), str(o.stored), str(o.skipped),
                  o.decoder, mbps, o.problems[:160])
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    t.caption = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + (
        f"; {sum(o.records for o in outcomes)} records, {sum(o.samples for o in outcomes)} samples")
    Console(width=200).print(t)
