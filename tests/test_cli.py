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
    db = tmp_path / "demo.sqlite"
    chart = tmp_path / "hr.png"
    res = _run("demo", "--minutes", "2", "--straps", "2", "--imu", "1", "--db", str(db), "--chart", str(chart), "--resend-rate", "0.5", "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "every sample stored exactly once" in res.stdout
    assert chart.stat().st_size > 10_000 and chart.read_bytes()[:4] == b"\x89PNG"
    import sqlite3

    with sqlite3.connect(db) as conn:
        hr = conn.execute("SELECT count(*), min(raw), max(raw) FROM samples WHERE stream = 'heart_rate'").fetchone()
        dup = conn.execute("SELECT count(*) FROM (SELECT device_id, stream, t_us, channel FROM samples GROUP BY 1, 2, 3, 4 HAVING count(*) > 1)").fetchone()[0]
        ledger = conn.execute("SELECT count(*) FROM ledger").fetchone()[0]
    assert hr[0] == 2 * 120  # 2 straps x 1 Hz x 2 min
    assert 40 <= hr[1] and hr[2] <= 220  # physiological range
    assert dup == 0
    assert ledger == 12 * (2 * 2 + 1)  # 12 windows x (HR + RR per strap + IMU accel)
