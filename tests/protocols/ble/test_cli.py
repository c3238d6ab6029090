"""``fittrack ble`` through the real dispatcher."""

from __future__ import annotations

import json

from fittrack.cli import main


def test_decode_encode_list(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ble", "decode", "2a37", "16 48 00 04"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["heart_rate_bpm"] == 72 and out["rr_intervals_ms"] == [1000.0] and out["sensor_contact"] is True
    assert main(["ble", "encode", "0x2AD2", "power_w=250", "cadence_rpm=90"]) == 0
    assert capsys.readouterr().out.strip() == "45 00 b4 00 fa 00"
    assert main(["ble", "list"]) == 0
    assert "0x2AD9  Fitness Machine Control Point" in capsys.readouterr().out


def test_errors_are_reported_not_raised(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ble", "decode", "2a63", "2000 6400"]) == 1
    assert "offset 4" in capsys.readouterr().err
    assert main(["ble", "decode", "2a37", "zz"]) == 2
    assert main(["ble", "encode", "2ad2", "power_w=99999"]) == 1
    assert "power_w" in capsys.readouterr().err
