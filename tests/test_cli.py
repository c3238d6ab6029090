"""The `fittrack` command: fast help, lazy subcommands, clear errors."""

from __future__ import annotations

import subprocess
import sys

from fittrack.cli import COMMANDS, main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fittrack", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from fittrack.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf): rc = main(['--help'])\n"
        "heavy = sorted(m for m in ('numpy', 'grpc', 'psycopg', 'bleak', 'aiomqtt', 'numba', 'google.protobuf') if m in sys.modules)\n"
        "print(rc, heavy)\n"
        "print(buf.getvalue())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    first, _, helptext = out.stdout.partition("\n")
    assert first == "0 []", out.stdout + out.stderr
    for cmd in COMMANDS:
        assert f"  {cmd.name}" in helptext


def test_every_registered_command_has_a_main_and_help() -> None:
    import importlib

    for cmd in COMMANDS:
        mod = importlib.import_module(cmd.module)
        assert callable(mod.main)
        res = _run(cmd.name, "--help")
        assert res.returncode == 0, res.stderr
        assert "usage: fittrack " + cmd.name in res.stdout


def test_unknown_command_says_what_to_do(capsys) -> None:
    assert main(["dmeo"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'dmeo'" in err and "demo" in err and "--help" in err


def test_demo_end_to_end_on_sqlite(tmp_path) -> None:
    """models -> edge agent (derived streams, outbox, delivery) -> gRPC -> ingest server -> SQLite,
    with lost Acks and a server restart: every sample the models produced is in the database exactly once."""
    import sqlite3

    from firmware_sims.demo import make_models, produced, reps_vs_truth
    from firmware_sims.streams import device_id_for

    db = tmp_path / "demo.sqlite"
    chart = tmp_path / "hr.png"
    minutes, straps, seed = 2.5, 2, 3
    res = _run("demo", "--minutes", str(minutes), "--straps", str(straps), "--imu", "1", "--seed", str(seed), "--speed", "0",
               "--drop-acks", "0.3", "--restart-server-at", "1", "--db", str(db), "--chart", str(chart), "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "every sample stored exactly once" in res.stdout and "ingest server restarted 1x" in res.stdout
    assert chart.stat().st_size > 10_000 and chart.read_bytes()[:4] == b"\x89PNG"

    # the same models, run alone: what they produced
    models = make_models(straps, 1, seed)
    for m in models:
        m.advance(minutes * 60)
    with sqlite3.connect(db) as conn:
        q = conn.execute
        got = {(d, s): (n, total, nt) for d, s, n, total, nt in q(
            "SELECT device_id, stream, count(*), sum(raw), count(DISTINCT t_us) FROM samples WHERE channel = 0 GROUP BY 1, 2")}
        dup = q("SELECT count(*) FROM (SELECT device_id, stream, t_us, channel FROM samples GROUP BY 1, 2, 3, 4 HAVING count(*) > 1)").fetchone()[0]
        assert dup == 0
        ledger_samples = q("SELECT sum(samples) FROM ledger").fetchone()[0]
        assert ledger_samples == q("SELECT count(*) FROM samples WHERE channel = 0").fetchone()[0]
        for m in models:
            did = device_id_for(m)
            for stream, (n, total) in produced(m).items():
                n_db, total_db, n_t = got[(did, stream)]
                assert n_db == n == n_t, (did, stream, n, n_db, n_t)
                if total >= 0:
                    assert total_db == total, (did, stream)
            if m.kind == "hr":
                assert got[(did, "heart_rate")][0] >= 0.9 * minutes * 60
                for stream in ("hr_zone", "time_in_zone", "trimp", "calories", "hrv_rmssd"):
                    assert got.get((did, stream), (0,))[0] > 0, (did, stream)
                assert got[(did, "hr_zone")][0] == got[(did, "heart_rate")][0]
                lo, hi = q("SELECT min(raw), max(raw) FROM samples WHERE device_id = ? AND stream = 'heart_rate'", (did,)).fetchone()
                assert 40 <= lo and hi <= 220
            else:
                t0 = q("SELECT min(t_us) FROM samples WHERE device_id = ? AND stream = 'accel'", (did,)).fetchone()[0]
                reps = q("SELECT t_us, raw FROM samples WHERE device_id = ? AND stream = 'rep' ORDER BY t_us", (did,)).fetchall()
                sets = [s for s in m.ground_truth()["sets"] if s["end_s"] <= m.t_s]
                assert len(sets) >= 2
                for ex, counted, true in reps_vs_truth(reps, sets, t0):
                    assert abs(counted - true) <= 1, (ex, counted, true)
