"""edge.toml: the documented example loads; every problem is reported at once with its key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge_agent.config import EdgeConfigError, load_config, parse_config
from edge_agent.devices.profiles import device_id_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "edge.example.toml"


def test_documented_example_loads_with_every_section(tmp_path: Path) -> None:
    (tmp_path / "agent.token").write_text("gym-hub-1.s3cret\n")
    cfg_path = tmp_path / "edge.toml"
    cfg_path.write_text(EXAMPLE.read_text())
    cfg = load_config(cfg_path)
    assert cfg.agent.agent_id == "gym-hub-1" and cfg.agent.tenant == "acme-gym"
    assert cfg.agent.status_path == Path("/var/lib/fittrack-edge/status.json")
    (d,) = cfg.devices
    assert d.address == "C0:FF:EE:00:00:01" and d.device_id == device_id_for(d.address) and d.adapter == "hci0"
    assert cfg.athletes["alice"].hr_max == pytest.approx(208 - 0.7 * 34)
    assert cfg.bluetooth.slots_per_adapter == {"hci0": 7}
    assert cfg.uplink.transport == "mqtt" and cfg.uplink.tenant == "acme-gym" and cfg.uplink.agent_id == "gym-hub-1"
    assert cfg.uplink.token.reveal() == "gym-hub-1.s3cret"
    assert cfg.outbox_path == Path("/var/lib/fittrack-edge/outbox.sqlite") and cfg.outbox.synchronous == "FULL"


def test_example_documents_every_key() -> None:
    """Every key the parser knows appears in the example (commented or not)."""
    import dataclasses

    from edge_agent import config as c

    text = EXAMPLE.read_text()
    for cls in (c.AgentSettings, c.TimebaseConfig, c.BluetoothConfig, c.PipelineConfig, c.WatchConfig,
                c.OutboxConfig, c.MetricsConfig, c.AthleteConfig, c.DeviceConfig):
        for f in dataclasses.fields(cls):
            if f.name == "athlete_id":
                continue
            assert f"{f.name} =" in text, f"{cls.__name__}.{f.name} is not in docs/edge.example.toml"


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config({"agent": {"agent_id": "a1", "tenant": "t1", "data_dir": "/tmp/x"}})
    assert cfg.devices == () and cfg.uplink is None and cfg.watch.enabled is False
    assert cfg.outbox_path == Path("/tmp/x/outbox.sqlite")
    assert cfg.metrics.listen == "127.0.0.1:9464"


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    bad = """
    [agent]
    tenant = "t/1"
    log_level = "loud"
    [bluetooth]
    default_slots = 0
    slots_per_adapter = { hci0 = "seven" }
    rotaton_s = 5
    [[devices]]
    address = "not-an-address"
    [[devices]]
    address = "AA:BB:CC:DD:EE:FF"
    athlete = "bob"
    [[devices]]
    address = "aa:bb:cc:dd:ee:ff"
    [athletes.carol]
    sex = "x"
    age_years = 200
    [watch]
    enabled = true
    [outbox]
    synchronous = "OFF"
    [metrics]
    listen = "nowhere"
    [uplink]
    transport = "carrier-pigeon"
    host = "x"
    port = 1
    """
    with pytest.raises(EdgeConfigError) as ei:
        parse_config(tomllib.loads(bad), source="edge.toml")
    p = "\n".join(ei.value.problems)
    for expected in (
        "agent.agent_id: required", "agent.tenant:", "agent.log_level:", "bluetooth.default_slots:",
        "bluetooth.slots_per_adapter.hci0:", "bluetooth.rotaton_s: unknown key", "devices[0].address:",
        "devices[1].athlete: no [athletes.bob]", "devices[2].address: AA:BB:CC:DD:EE:FF is already devices[1]",
        "athletes.carol.sex:", "athletes.carol.age_years:", "watch.folder: required", "outbox.synchronous:",
        "metrics.listen:", "uplink",
    ):
        assert expected in p, f"missing {expected!r} in:\n{p}"
    assert len(ei.value.problems) >= 15
    assert str(ei.value).startswith("edge.toml: ")


def test_unreadable_and_invalid_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(EdgeConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    f = tmp_path / "bad.toml"
    f.write_text("[agent\n")
    with pytest.raises(EdgeConfigError, match="not valid TOML"):
        load_config(f)


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    f = tmp_path / "edge.toml"
    f.write_text('[agent]\nagent_id="a"\ntenant="t"\ndata_dir="state"\n[watch]\nenabled=true\nfolder="inbox"\n')
    cfg = load_config(f)
    assert cfg.agent.data_dir == tmp_path / "state" and cfg.watch.folder == tmp_path / "inbox"
