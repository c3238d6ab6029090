"""``fittrack dsp``: end to end on real and generated files."""

from __future__ import annotations

import json

from dsp.cli import main

from .conftest import DATA


def test_hrv_on_the_polar_file(capsys):
    assert main(["hrv", str(DATA / "rr" / "kbroman_detectPVC_polar_h10.csv"), "--correct", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_intervals"] == 798 and rep["artifacts"]["ectopic"] > 200
    assert 70 < rep["time_domain"]["mean_hr_bpm"] < 90


def test_hrv_plain_text_and_table(capsys):
    assert main(["hrv", str(DATA / "rr" / "rhenanbartels_hrv_rest_rri.txt")]) == 0
    out = capsys.readouterr().out
    assert "910 intervals" in out and "rmssd" in out and "55.137" in out


def test_synth_then_reps(tmp_path, capsys):
    f = tmp_path / "gym.csv"
    assert main(["synth", "--fs", "25", "--sets", "curl:9,row:7", "--seed", "3", "--out", str(f)]) == 0
    capsys.readouterr()
    assert main(["reps", str(f), "--fs", "25", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["sets"]) == 2
    assert abs(res["sets"][0]["reps"] - 9) <= 1 and abs(res["sets"][1]["reps"] - 7) <= 1


def test_errors_are_clear(tmp_path, capsys):
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1,2\n")
    assert main(["hrv", str(f)]) == 2
    assert "no RR column" in capsys.readouterr().err
    assert main(["reps", str(tmp_path / "missing.csv"), "--fs", "50"]) == 2
