"""``fittrack import fit``: files/folders/globs, SQLite store and edge outbox sinks, re-import no-op."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from fittrack.cli import main as cli
from fittrack.import_fit import expand_paths

DATA = Path(__file__).resolve().parent / "data" / "fit"
SOME = ["garmin-fenix-5-run.fit", "Activity.fit", "activity-unexpected-eof.fit", "garmin-edge-820-bike.fit"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "in" / "sub"
    d.mkdir(parents=True)
    for n in SOME:
        shutil.copy(DATA / n, d / n)
    (d / "notes.txt").write_text("not a fit file")
    return tmp_path / "in"


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


def test_import_to_sqlite_then_reimport_is_a_no_op(folder: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "store.sqlite"
    assert cli(["import", "fit", str(folder), "--db", f"sqlite:{db}", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 imported, 1 partial" in out and "truncated @ byte 751" in out
    n_samples = _rows(db, "SELECT count(*) FROM samples")[0][0]
    n_ledger = _rows(db, "SELECT count(*) FROM ledger")[0][0]
    # every stored HR sample of the fenix 5 run is physical bpm at the right time
    hr = _rows(db, "SELECT count(*), min(value), max(value) FROM samples_physical "
                   "WHERE device_id='fit-garmin-2697-3945849289' AND stream='heart_rate'")[0]
    assert hr[0] == 21 and 40 <= hr[1] <= hr[2] <= 220
    rr = _rows(db, "SELECT count(*), min(value), max(value) FROM samples_physical WHERE stream='rr_interval'")[0]
    assert rr[0] > 100 and 0.25 < rr[1] <= rr[2] < 2.0
    assert _rows(db, "SELECT count(*) FROM fit_imports")[0][0] == 4
    # same files again (by glob, and a renamed copy): nothing new
    shutil.copy(folder / "sub" / "Activity.fit", folder / "renamed.FIT")
    assert cli(["import", "fit", str(folder / "sub" / "*.fit"), str(folder / "renamed.FIT"),
                "--db", f"sqlite:{db}", "--no-progress"]) == 0
    assert "5 duplicate" in capsys.readouterr().out
    assert _rows(db, "SELECT count(*) FROM samples")[0][0] == n_samples
    assert _rows(db, "SELECT count(*) FROM ledger")[0][0] == n_ledger
    # without the file ledger, the store's (device, stream, seq) ledger still stores nothing twice
    assert cli(["import", "fit", str(folder), "--db", f"sqlite:{db}", "--ledger", str(tmp_path / "l2.sqlite"),
                "--no-progress"]) == 0
    assert _rows(db, "SELECT count(*) FROM samples")[0][0] == n_samples


def test_import_to_edge_outbox(folder: Path, tmp_path: Path, capsys) -> None:
    from edge_agent.outbox import Outbox

    ob = tmp_path / "agent" / "outbox.sqlite"
    assert cli(["import", "fit", str(folder), "--outbox", str(ob), "--no-progress"]) == 0
    with Outbox(ob) as o:
        keys = o.keys()
        assert keys and all(k[0].startswith("fit-") for k in keys)
        streams = {k[1] for k in keys}
    assert {"heart_rate", "rr_interval", "position", "speed"} <= streams
    assert (tmp_path / "agent" / "fit-imports.sqlite").exists()
    assert cli(["import", "fit", str(folder), "--outbox", str(ob), "--no-progress"]) == 0
    assert "4 duplicate" in capsys.readouterr().out
    with Outbox(ob) as o:
        assert o.keys() == keys


def test_strict_dry_run_and_usage_errors(folder: Path, tmp_path: Path, capsys) -> None:
    assert cli(["import", "fit", str(folder), "--dry-run", "--strict", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "error" in out and "truncated" in out
    assert cli(["import", "fit", str(tmp_path / "missing.fit"), "--dry-run"]) == 2
    assert cli(["import", "fit", str(folder), "--db", "postgres:x", "--no-progress"]) == 2
    assert "sqlite:PATH, postgresql://" in capsys.readouterr().err


def test_expand_paths(folder: Path) -> None:
    files, missing = expand_paths([str(folder), str(folder / "sub" / "*.fit"), "nope*.fit"])
    assert sorted(p.name for p in files) == sorted(SOME) and missing == ["nope*.fit"]


@pytest.mark.services
def test_import_into_timescaledb(folder: Path, tmp_path: Path, pg_dsn: str, capsys) -> None:
    import psycopg

    ledger = tmp_path / "ledger.sqlite"
    assert cli(["import", "fit", str(folder), "--db", pg_dsn, "--ledger", str(ledger), "--no-progress"]) == 0
    assert "3 imported, 1 partial" in capsys.readouterr().out
    with psycopg.connect(pg_dsn) as c:
        n = c.execute("SELECT count(*) FROM samples_all").fetchone()[0]
        hr = c.execute("SELECT count(*), min(value), max(value) FROM samples_all "
                       "WHERE device_id='fit-garmin-2697-3945849289' AND stream='heart_rate'").fetchone()
        keys = c.execute("SELECT count(*) FROM ledger").fetchone()[0]
    assert n > 500 and hr[0] == 21 and 40 <= hr[1] <= hr[2] <= 220 and keys > 10
    # the same content again: the file ledger skips it; with a fresh ledger the store's own
    # (device, stream, seq) ledger still stores nothing twice
    assert cli(["import", "fit", str(folder), "--db", pg_dsn, "--ledger", str(ledger), "--no-progress"]) == 0
    assert "4 duplicate" in capsys.readouterr().out
    assert cli(["import", "fit", str(folder), "--db", pg_dsn, "--ledger", str(tmp_path / "fresh.sqlite"),
                "--no-progress"]) == 0
    with psycopg.connect(pg_dsn) as c:
        assert c.execute("SELECT count(*) FROM samples_all").fetchone()[0] == n
        assert c.execute("SELECT count(*) FROM ledger").fetchone()[0] == keys
