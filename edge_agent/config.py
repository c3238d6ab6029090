"""The agent's configuration file (``edge.toml``): TOML via :mod:`tomllib` -> frozen dataclasses.

Every problem is reported at once, each with its key path (``devices[2].address: ...``), so an
operator fixes a file in one go. Unknown keys are errors (a typo must not silently fall back to
a default). ``docs/edge.example.toml`` shows every key with its default; ``docs/edge-agent.md``
explains them. Relative paths are resolved against the config file's folder.

Sections: ``[agent]``, ``[timebase]``, ``[bluetooth]``, ``[[devices]]``, ``[athletes.<id>]``,
``[pipeline]``, ``[watch]``, ``[outbox]``, ``[uplink]`` (:class:`edge_agent.uplink.config.UplinkConfig`,
whose ``tenant``/``agent_id`` default to ``[agent]``'s), ``[metrics]``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .devices.profiles import device_id_for

__all__ = [
    "AgentSettings", "AthleteConfig", "BluetoothConfig", "DeviceConfig", "EdgeConfig", "EdgeConfigError",
    "MetricsConfig", "OutboxConfig", "PipelineConfig", "TimebaseConfig", "WatchConfig", "load_config",
    "parse_config",
]

ADDRESS_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class EdgeConfigError(ValueError):
    """The configuration has problems; ``problems`` lists each as ``key.path: what is wrong``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class AgentSettings:
    """``[agent]``: who the agent is and where it keeps its state."""

    agent_id: str
    tenant: str
    data_dir: Path = Path("/var/lib/fittrack-edge")
    status_file: Path | None = None      # default: <data_dir>/status.json
    status_interval_s: float = 2.0
    log_level: str = "info"
    log_format: str = "json"             # json | text
    shutdown_drain_s: float = 5.0        # on SIGTERM, give the uplink this long to deliver what is left

    @property
    def status_path(self) -> Path:
        return self.status_file or self.data_dir / "status.json"


@dataclass(frozen=True)
class TimebaseConfig:
    """``[timebase]``: see :mod:`edge_agent.timebase`."""

    jump_threshold_s: float = 2.0
    max_slew_ppm: float = 500.0
    jump_confirm_s: float = 600.0
    resync_interval_s: float = 1.0


@dataclass(frozen=True)
class BluetoothConfig:
    """``[bluetooth]``: adapters, connection slots, reconnects."""

    enabled: bool = True
    default_adapter: str = "hci0"
    slots_per_adapter: Mapping[str, int] = field(default_factory=dict)
    default_slots: int = 7
    rotation_s: float = 120.0
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 30.0
    connect_attempts: int = 3
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    give_up_after: int = 5
    wheel_circumference_m: float = 2.105


@dataclass(frozen=True)
class DeviceConfig:
    """One ``[[devices]]`` entry: a sensor to connect to, and whose data it is."""

    address: str
    device_id: str
    name: str = ""
    kind: str = ""
    adapter: str = ""
    athlete: str = ""      # key of [athletes.<id>] (hub mode: the member wearing it)
    session: str = ""      # free label (class, lane, bike number)
    enabled: bool = True
    imu_rate_hz: float = 0.0   # IMU devices: sample rate to configure (12.5..200 Hz; 0 = keep the device's)
    imu_gyro: bool = True      # IMU devices: also stream the gyroscope (with imu_rate_hz)


@dataclass(frozen=True)
class AthleteConfig:
    """``[athletes.<id>]``: what derived streams need (zones, TRIMP, calories)."""

    athlete_id: str
    name: str = ""
    sex: str = "male"                 # male | female (Banister TRIMP, Keytel calories)
    age_years: float = 35.0
    weight_kg: float = 75.0
    hr_rest_bpm: float = 60.0
    hr_max_bpm: float | None = None   # default: Tanaka 208 - 0.7 * age
    zone_model: str = "karvonen"      # karvonen | hrmax

    @property
    def hr_max(self) -> float:
        return self.hr_max_bpm if self.hr_max_bpm is not None else 208.0 - 0.7 * self.age_years


@dataclass(frozen=True)
class PipelineConfig:
    """``[pipeline]``: batching and derived streams."""

    batch_s: float = 10.0
    imu_batch_s: float = 2.0
    derived: bool = True
    derived_interval_s: float = 5.0
    rmssd_window_s: float = 60.0
    reps: bool = True


@dataclass(frozen=True)
class WatchConfig:
    """``[watch]``: a folder whose new FIT files are imported once each."""

    enabled: bool = False
    folder: Path | None = None
    poll_interval_s: float = 5.0
    settle_s: float = 2.0
    athlete: str = ""
    state_file: Path | None = None     # default: <data_dir>/watch.sqlite


@dataclass(frozen=True)
class OutboxConfig:
    """``[outbox]``: see :mod:`edge_agent.outbox` and docs (fsync setting and its cost)."""

    path: Path | None = None           # default: <data_dir>/outbox.sqlite
    max_mb: float = 256.0
    synchronous: str = "FULL"          # FULL | NORMAL


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: Prometheus endpoint (``listen = ""`` disables it)."""

    listen: str = "127.0.0.1:9464"


@dataclass(frozen=True)
class EdgeConfig:
    agent: AgentSettings
    timebase: TimebaseConfig
    bluetooth: BluetoothConfig
    devices: tuple[DeviceConfig, ...]
    athletes: Mapping[str, AthleteConfig]
    pipeline: PipelineConfig
    watch: WatchConfig
    outbox: OutboxConfig
    metrics: MetricsConfig
    uplink: Any        # edge_agent.uplink.config.UplinkConfig, or None without [uplink]
    source: str = ""

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.agent.data_dir / "outbox.sqlite"

    @property
    def watch_state_path(self) -> Path:
        return self.watch.state_file or self.agent.data_dir / "watch.sqlite"


# --------------------------------------------------------------------------------------- reader
class _Table:
    """Typed access to one TOML table; problems are collected in ``out`` with the key path."""

    def __init__(self, data: Any, path: str, out: list[str], base_dir: Path) -> None:
        self.path = path
        self.out = out
        self.base_dir = base_dir
        if data is None:
            data = {}
        if not isinstance(data, dict):
            out.append(f"{path}: must be a table, got {type(data).__name__}")
            data = {}
        self.data = data
        self.used: set[str] = set()

    def _key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def _get(self, k: str, default: Any, required: bool) -> tuple[Any, bool]:
        self.used.add(k)
        if k not in self.data:
            if required:
                self.out.append(f"{self._key(k)}: required")
            return default, False
        return self.data[k], True

    def str(self, k: str, default: str = "", *, required: bool = False, choices: tuple[str, ...] = (),
            pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        v, present = self._get(k, default, required)
        if not present:
            return default
        if not isinstance(v, str):
            self.out.append(f"{self._key(k)}: must be a string, got {v!r}")
            return default
        if choices and v not in choices:
            self.out.append(f"{self._key(k)}: must be one of {', '.join(choices)}, got {v!r}")
            return default
        if pattern is not None and not pattern.match(v):
            self.out.append(f"{self._key(k)}: {v!r} is not {what or 'valid'}")
            return default
        return v

    def num(self, k: str, default: float, *, lo: float | None = None, hi: float | None = None,
            integer: bool = False, required: bool = False) -> Any:
        v, present = self._get(k, default, required)
        if not present:
            return default
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            self.out.append(f"{self._key(k)}: must be {'an integer' if integer else 'a number'}, got {v!r}")
            return default
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
            self.out.append(f"{self._key(k)}: {v!r} is outside {rng}")
            return default
        return v if integer else float(v)

    def bool(self, k: str, default: bool) -> bool:
        v, present = self._get(k, default, False)
        if present and not isinstance(v, bool):
            self.out.append(f"{self._key(k)}: must be true or false, got {v!r}")
            return default
        return v

    def path_(self, k: str, default: Path | None = None) -> Path | None:
        v, present = self._get(k, default, False)
        if not present:
            return default
        if not isinstance(v, str) or not v:
            self.out.append(f"{self._key(k)}: must be a non-empty path string, got {v!r}")
            return default
        p = Path(v).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def sub(self, k: str) -> Any:
        self.used.add(k)
        return self.data.get(k)

    def done(self) -> None:
        for k in sorted(set(self.data) - self.used):
            self.out.append(f"{self._key(k)}: unknown key (known: {', '.join(sorted(self.used))})")


def _agent(t: _Table) -> AgentSettings:
    return AgentSettings(
        agent_id=t.str("agent_id", "agent", required=True, pattern=ID_RE, what="an id (letters, digits, _ . -)"),
        tenant=t.str("tenant", "tenant", required=True, pattern=ID_RE, what="an id (letters, digits, _ . -)"),
        data_dir=t.path_("data_dir", Path("/var/lib/fittrack-edge")) or Path("/var/lib/fittrack-edge"),
        status_file=t.path_("status_file"),
        status_interval_s=t.num("status_interval_s", 2.0, lo=0.1, hi=3600),
        log_level=t.str("log_level", "info", choices=("debug", "info", "warning", "error")),
        log_format=t.str("log_format", "json", choices=("json", "text")),
        shutdown_drain_s=t.num("shutdown_drain_s", 5.0, lo=0, hi=3600),
    )


def _timebase(t: _Table) -> TimebaseConfig:
    return TimebaseConfig(
        jump_threshold_s=t.num("jump_threshold_s", 2.0, lo=0.01, hi=86400),
        max_slew_ppm=t.num("max_slew_ppm", 500.0, lo=0, hi=100_000),
        jump_confirm_s=t.num("jump_confirm_s", 600.0, lo=0, hi=10 * 86400),
        resync_interval_s=t.num("resync_interval_s", 1.0, lo=0.05, hi=3600),
    )


def _bluetooth(t: _Table, out: list[str]) -> BluetoothConfig:
    slots_raw = t.sub("slots_per_adapter") or {}
    slots: dict[str, int] = {}
    if not isinstance(slots_raw, dict):
        out.append(f"bluetooth.slots_per_adapter: must be a table like {{ hci0 = 7 }}, got {slots_raw!r}")
    else:
        for a, n in slots_raw.items():
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 64:
                out.append(f"bluetooth.slots_per_adapter.{a}: must be an integer in 1..64, got {n!r}")
            else:
                slots[a] = n
    return BluetoothConfig(
        enabled=t.bool("enabled", True),
        default_adapter=t.str("default_adapter", "hci0"),
        slots_per_adapter=slots,
        default_slots=t.num("default_slots", 7, lo=1, hi=64, integer=True),
        rotation_s=t.num("rotation_s", 120.0, lo=0, hi=86400),
        scan_timeout_s=t.num("scan_timeout_s", 10.0, lo=0.5, hi=600),
        connect_timeout_s=t.num("connect_timeout_s", 30.0, lo=1, hi=600),
        connect_attempts=t.num("connect_attempts", 3, lo=1, hi=100, integer=True),
        backoff_initial_s=t.num("backoff_initial_s", 1.0, lo=0.01, hi=3600),
        backoff_max_s=t.num("backoff_max_s", 60.0, lo=0.01, hi=86400),
        give_up_after=t.num("give_up_after", 5, lo=1, hi=10_000, integer=True),
        wheel_circumference_m=t.num("wheel_circumference_m", 2.105, lo=0.5, hi=4.0),
    )


def _device(t: _Table, default_adapter: str) -> DeviceConfig:
    address = t.str("address", "00:00:00:00:00:00", required=True, pattern=ADDRESS_RE,
                    what="a Bluetooth address like AA:BB:CC:DD:EE:FF").upper()
    return DeviceConfig(
        address=address,
        device_id=t.str("device_id", "", pattern=ID_RE, what="an id (letters, digits, _ . -)") or device_id_for(address),
        name=t.str("name"),
        kind=t.str("kind"),
        adapter=t.str("adapter") or default_adapter,
        athlete=t.str("athlete"),
        session=t.str("session"),
        enabled=t.bool("enabled", True),
        imu_rate_hz=_imu_rate(t),
        imu_gyro=t.bool("imu_gyro", True),
    )


def _imu_rate(t: _Table) -> float:
    v = t.num("imu_rate_hz", 0.0, lo=0, hi=200)
    if v and v < 12.5:
        t.out.append(f"{t.path}.imu_rate_hz: {v} Hz is below 12.5 Hz (the IMU's slowest rate; 0 keeps the device's)")
        return 0.0
    return v


def _athlete(aid: str, t: _Table) -> AthleteConfig:
    return AthleteConfig(
        athlete_id=aid,
        name=t.str("name"),
        sex=t.str("sex", "male", choices=("male", "female")),
        age_years=t.num("age_years", 35.0, lo=5, hi=110),
        weight_kg=t.num("weight_kg", 75.0, lo=15, hi=300),
        hr_rest_bpm=t.num("hr_rest_bpm", 60.0, lo=25, hi=120),
        hr_max_bpm=t.num("hr_max_bpm", None, lo=100, hi=240),
        zone_model=t.str("zone_model", "karvonen", choices=("karvonen", "hrmax")),
    )


def _pipeline(t: _Table) -> PipelineConfig:
    return PipelineConfig(
        batch_s=t.num("batch_s", 10.0, lo=0.1, hi=3600),
        imu_batch_s=t.num("imu_batch_s", 2.0, lo=0.1, hi=3600),
        derived=t.bool("derived", True),
        derived_interval_s=t.num("derived_interval_s", 5.0, lo=0.5, hi=3600),
        rmssd_window_s=t.num("rmssd_window_s", 60.0, lo=10, hi=3600),
        reps=t.bool("reps", True),
    )


def _watch(t: _Table, out: list[str]) -> WatchConfig:
    w = WatchConfig(
        enabled=t.bool("enabled", False),
        folder=t.path_("folder"),
        poll_interval_s=t.num("poll_interval_s", 5.0, lo=0.05, hi=3600),
        settle_s=t.num("settle_s", 2.0, lo=0, hi=3600),
        athlete=t.str("athlete"),
        state_file=t.path_("state_file"),
    )
    if w.enabled and w.folder is None:
        out.append("watch.folder: required when watch.enabled = true")
    return w


def _outbox(t: _Table) -> OutboxConfig:
    return OutboxConfig(
        path=t.path_("path"),
        max_mb=t.num("max_mb", 256.0, lo=0.01, hi=1_000_000),
        synchronous=t.str("synchronous", "FULL", choices=("FULL", "NORMAL")),
    )


def _metrics(t: _Table) -> MetricsConfig:
    v = t.str("listen", "127.0.0.1:9464")
    if v and not re.match(r"^[^:\s]+:\d{1,5}$", v):
        t.out.append(f"metrics.listen: {v!r} is not HOST:PORT (or \"\" to disable)")
        v = "127.0.0.1:9464"
    return MetricsConfig(listen=v)


def parse_config(data: Mapping[str, Any], *, base_dir: Path = Path("."), source: str = "<config>") -> EdgeConfig:
    """Build an :class:`EdgeConfig` from parsed TOML; raises :class:`EdgeConfigError` listing every problem."""
    out: list[str] = []
    top = _Table(dict(data), "", out, base_dir)
    agent_t = _Table(top.sub("agent"), "agent", out, base_dir)
    if top.sub("agent") is None:
        out.append("agent: required table ([agent] with agent_id and tenant)")
    agent = _agent(agent_t)
    agent_t.done()
    tb_t = _Table(top.sub("timebase"), "timebase", out, base_dir)
    timebase = _timebase(tb_t)
    tb_t.done()
    bt_t = _Table(top.sub("bluetooth"), "bluetooth", out, base_dir)
    bluetooth = _bluetooth(bt_t, out)
    bt_t.done()
    athletes: dict[str, AthleteConfig] = {}
    ath_raw = top.sub("athletes") or {}
    if not isinstance(ath_raw, dict):
        out.append("athletes: must be tables [athletes.<id>]")
        ath_raw = {}
    for aid, body in ath_raw.items():
        if not ID_RE.match(aid):
            out.append(f"athletes.{aid}: {aid!r} is not an id (letters, digits, _ . -)")
        at = _Table(body, f"athletes.{aid}", out, base_dir)
        athletes[aid] = _athlete(aid, at)
        at.done()
    devices: list[DeviceConfig] = []
    dev_raw = top.sub("devices") or []
    if not isinstance(dev_raw, list):
        out.append("devices: must be an array of tables ([[devices]])")
        dev_raw = []
    seen_addr: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    for i, body in enumerate(dev_raw):
        dt = _Table(body, f"devices[{i}]", out, base_dir)
        d = _device(dt, bluetooth.default_adapter)
        dt.done()
        if d.address in seen_addr and d.address != "00:00:00:00:00:00":
            out.append(f"devices[{i}].address: {d.address} is already devices[{seen_addr[d.address]}]")
        if d.device_id in seen_id:
            out.append(f"devices[{i}].device_id: {d.device_id} is already devices[{seen_id[d.device_id]}]'s")
        seen_addr.setdefault(d.address, i)
        seen_id.setdefault(d.device_id, i)
        if d.athlete and d.athlete not in ath_raw:
            out.append(f"devices[{i}].athlete: no [athletes.{d.athlete}] table")
        devices.append(d)
    pl_t = _Table(top.sub("pipeline"), "pipeline", out, base_dir)
    pipeline = _pipeline(pl_t)
    pl_t.done()
    w_t = _Table(top.sub("watch"), "watch", out, base_dir)
    watch = _watch(w_t, out)
    w_t.done()
    if watch.athlete and watch.athlete not in ath_raw:
        out.append(f"watch.athlete: no [athletes.{watch.athlete}] table")
    ob_t = _Table(top.sub("outbox"), "outbox", out, base_dir)
    outbox = _outbox(ob_t)
    ob_t.done()
    m_t = _Table(top.sub("metrics"), "metrics", out, base_dir)
    metrics = _metrics(m_t)
    m_t.done()
    uplink = None
    up_raw = top.sub("uplink")
    if up_raw is not None:
        if not isinstance(up_raw, dict):
            out.append("uplink: must be a table")
        else:
            from .uplink.config import ConfigError as UplinkConfigError, UplinkConfig

            up = dict(up_raw)
            up.setdefault("tenant", agent.tenant)
            up.setdefault("agent_id", agent.agent_id)
            try:
                uplink = UplinkConfig.from_mapping(up, base_dir=base_dir)
            except (UplinkConfigError, TypeError, ValueError) as exc:
                msg = str(exc)
                out.append(msg if msg.startswith("uplink") else f"uplink: {msg}")
    top.done()
    if out:
        raise EdgeConfigError(source, out)
    return EdgeConfig(agent, timebase, bluetooth, tuple(devices), athletes, pipeline, watch, outbox, metrics, uplink, source)


def load_config(path: str | Path) -> EdgeConfig:
    """Read and check ``path`` (TOML). Raises :class:`EdgeConfigError` (every problem listed)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise EdgeConfigError(str(p), [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgeConfigError(str(p), [f"not valid TOML: {exc}"]) from exc
    return parse_config(data, base_dir=p.resolve().parent, source=str(p))
