"""``fittrack dsp``: HRV of an RR file, reps in an accelerometer CSV, a generated gym session.

  fittrack dsp hrv tests/data/rr/rhenanbartels_hrv_rest_rri.txt
  fittrack dsp hrv tests/data/rr/kbroman_detectPVC_polar_h10.csv --column rr --correct
  fittrack dsp synth --fs 50 --sets curl:10,squat:8 --out /tmp/gym.csv
  fittrack dsp reps /tmp/gym.csv --fs 50
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


def _read_rr(path: Path, column: str | None) -> np.ndarray:
    text = path.read_text()
    first = text.lstrip().split("\n", 1)[0]
    if column or any(c.isalpha() for c in first):
        rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise ValueError(f"{path}: no rows")
        col = column or next((c for c in rows[0] if c.lower() in ("rr", "rr_ms", "rri", "nn")), None)
        if col is None or col not in rows[0]:
            raise ValueError(f"{path}: no RR column (have {list(rows[0])}); name one with --column")
        vals = [r[col] for r in rows if r[col] not in ("", None)]
    else:
        vals = [v for v in text.replace(",", "\n").split() if v]
    return np.asarray([float(v) for v in vals], dtype=np.float64)


def _read_acc(path: Path) -> np.ndarray:
    rows = []
    with open(path) as fh:
        for r in csv.reader(fh):
            try:
                rows.append([float(v) for v in r[-3:]])
            except ValueError:
                continue  # header or a bad line
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{path}: no numeric rows with 3 columns (x, y, z in g)")
    return a


def _cmd_hrv(args: argparse.Namespace) -> int:
    from . import artifacts, hrv

    rr = _read_rr(Path(args.file), args.column)
    report: dict[str, object] = {"n_intervals": int(rr.size), "duration_s": float(rr.sum() / 1000)}
    det = artifacts.detect(rr)
    report["artifacts"] = {k: int(v.size) for k, v in det.items()}
    if args.correct:
        rr, _ = artifacts.correct(rr)
        report["n_after_correction"] = int(rr.size)
    report["time_domain"] = hrv.time_domain(rr)
    report["poincare"] = hrv.poincare(rr)
    report["welch"] = hrv.frequency_domain(rr)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"{args.file}: {report['n_intervals']} intervals, {report['duration_s'] / 60:.1f} min; "
              f"artifacts {report['artifacts']}" + (" (corrected)" if args.correct else ""))
    for title in ("time_domain", "poincare", "welch"):
        t = Table(title=title)
        t.add_column("measure")
        t.add_column("value", justify="right")
        for k, v in report[title].items():  # type: ignore[union-attr]
            t.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
        con.print(t)
    return 0


def _cmd_reps(args: argparse.Namespace) -> int:
    from .reps import count_reps

    acc = _read_acc(Path(args.file))
    res = count_reps(acc, args.fs)
    if args.json:
        print(json.dumps({"count": res.count, "work_s": res.work_s, "rest_s": res.rest_s,
                          "sets": [{"start_s": s.start_s, "end_s": s.end_s, "reps": s.reps} for s in res.sets]}))
        return 0
    print(f"{args.file}: {acc.shape[0] / args.fs / 60:.1f} min at {args.fs:g} Hz -> {len(res.sets)} sets, "
          f"{res.count} reps (work {res.work_s:.0f} s, rest {res.rest_s:.0f} s)")
    for s in res.sets:
        print(f"  set {s.index + 1}: {s.reps:3d} reps  {s.start_s:8.1f} - {s.end_s:8.1f} s")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import generate_session

    plan = []
    for item in args.sets.split(","):
        name, _, n = item.partition(":")
        plan.append((name.strip(), int(n or 10)))
    sess = generate_session(args.fs, plan, seed=args.seed)
    out = Path(args.out)
    np.savetxt(out, sess.acc_g, delimiter=",", fmt="%.5f", header="x_g,y_g,z_g", comments="")
    print(f"wrote {out}: {sess.duration_s / 60:.1f} min at {args.fs:g} Hz; true sets: "
          + ", ".join(f"{s.exercise} x{s.n_reps} at {s.start_s:.0f}-{s.end_s:.0f} s" for s in sess.sets))
    return 0


def main(argv: list[str], prog: str = "fittrack dsp") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hrv", help="HRV (time, Poincaré, Welch) and artifact counts of an RR file (ms)")
    p.add_argument("file", help="one RR interval (ms) per line, or a CSV with an rr column")
    p.add_argument("--column", help="CSV column with the RR intervals (default: rr/rr_ms/rri/nn)")
    p.add_argument("--correct", action="store_true", help="correct artifacts (Lipponen-Tarvainen) first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_cmd_hrv)
    p = sub.add_parser("reps", help="count reps and sets in a CSV of x,y,z acceleration (g)")
    p.add_argument("file")
    p.add_argument("--fs", type=float, required=True, help="sample rate (Hz), 12.5-200 tested")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_cmd_reps)
    p = sub.add_parser("synth", help="write a generated gym session (x,y,z in g) to a CSV")
    p.add_argument("--fs", type=float, default=50.0)
    p.add_argument("--sets", default="curl:10,squat:8,row:12", help="exercise:reps,... (" +
                   "curl, lateral_raise, shoulder_press, squat, row, bench_press)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=_cmd_synth)
    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except (ValueError, OSError) as exc:
        print(f"{prog} {args.cmd}: error: {exc}", file=sys.stderr)
        return 2
