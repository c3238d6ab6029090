"""``fittrack edge``: run the agent, show its status, check its configuration.

::

    fittrack edge run --config edge.toml            # until SIGTERM/SIGINT (systemd: deploy/edge/)
    fittrack edge status --config edge.toml         # devices, live HR/zone/reps, outbox, uplink
    fittrack edge status --config edge.toml --live  # the same, refreshed every second
    fittrack edge status --status-file /var/lib/fittrack-edge/status.json --json
    fittrack edge check-config --config edge.toml   # every problem at once, exit 2 if any

``status`` reads the status file the running agent rewrites every ``status_interval_s``; it
never talks to the agent, so it works as any user who can read the file and while the agent
is busy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "JsonLogFormatter", "render_status"]

_STD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC ISO), ``level``, ``logger``, ``msg`` and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        d: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD_ATTRS and not k.startswith("_"):
                d[k] = v
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, default=str)


def setup_logging(level: str, fmt: str) -> None:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonLogFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(level.upper())
    logging.getLogger("bleak").setLevel(max(logging.WARNING, root.level))


def _load(path: str) -> Any:
    from .config import EdgeConfigError, load_config

    try:
        return load_config(path)
    except EdgeConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None


# ------------------------------------------------------------------------------------------ run
def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    setup_logging(args.log_level or cfg.agent.log_level, args.log_format or cfg.agent.log_format)
    from .agent import EdgeAgent
    from .metrics import METRICS, serve_metrics

    if cfg.metrics.listen:
        host, port = cfg.metrics.listen.rsplit(":", 1)
        try:
            serve_metrics(host, int(port), METRICS)
        except OSError as exc:
            print(f"fittrack edge run: cannot serve metrics on {cfg.metrics.listen}: {exc}", file=sys.stderr)
            return 1
    agent = EdgeAgent(cfg, metrics=METRICS)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stop, cfg.agent.shutdown_drain_s)
        await agent.run()

    asyncio.run(main())
    return 0


# --------------------------------------------------------------------------------------- status
def _age(us: int | None, now_us: int) -> str:
    if not us:
        return "-"
    s = (now_us - us) / 1e6
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min"


def render_status(doc: dict[str, Any], *, now_us: int | None = None) -> Any:
    """A rich renderable of a status document."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now_us = now_us or time.time_ns() // 1000
    updated = doc.get("wall_clock_us") or doc.get("updated_at_us") or 0
    stale = (now_us - updated) / 1e6 if updated else None
    head = Text(f"agent {doc.get('tenant')}/{doc.get('agent_id')}  pid {doc.get('pid')}  "
                f"status written {_age(updated, now_us)} ago")
    if stale is not None and stale > 30:
        head.append("  (stale: is the agent running?)", style="bold red")
    tb = doc.get("timebase") or {}
    if tb.get("pending_jump_us"):
        head.append(f"\nhost clock jump of {tb['pending_jump_us'] / 1e6:+.1f} s detected (not applied to samples)",
                    style="yellow")
    devs = Table(title="devices", expand=False)
    for col in ("name", "kind", "athlete", "state", "HR", "zone", "RMSSD", "reps/sets", "kcal", "batt", "seen", "notif", "reconn"):
        devs.add_column(col, justify="right" if col in ("HR", "zone", "notif", "reconn", "kcal", "batt") else "left")
    for d in doc.get("devices", []):
        lv = d.get("live") or {}
        state = d.get("state", "")
        style = {"connected": "green", "queued": "yellow", "unreachable": "red", "backoff": "yellow"}.get(state, "")
        devs.add_row(
            d.get("name") or d.get("address"), d.get("kind", ""), d.get("athlete", ""), Text(state, style=style),
            str(lv.get("hr_bpm") or "-"), str(lv["zone"]) if lv.get("zone") is not None else "-",
            f"{lv['rmssd_ms']:.0f} ms" if lv.get("rmssd_ms") else "-",
            f"{lv.get('reps', 0)}/{lv.get('sets', 0)}" if lv.get("reps") else "-",
            f"{lv.get('kcal', 0):.0f}" if lv.get("kcal") else "-",
            f"{d['battery_pct']}%" if d.get("battery_pct") is not None else "-",
            f"{d['last_seen_s']} s" if d.get("last_seen_s") is not None else "-",
            str(d.get("notifications", 0)), str(d.get("reconnects", 0)),
        )
    parts: list[Any] = [head, devs]
    for a in doc.get("adapters", []):
        if a.get("queued"):
            parts.append(Text(f"adapter {a['adapter']}: {a['allocated']}/{a['slots']} connection slots used, "
                              f"{len(a['queued'])} device(s) queued and rotated: {', '.join(a['queued'])}", style="yellow"))
    ob = doc.get("outbox")
    if ob:
        if "error" in ob:
            parts.append(Text(f"outbox: {ob['error']}", style="red"))
        else:
            parts.append(Text(
                f"outbox: {ob['batches']} batches / {ob['samples']} samples / {ob['bytes'] / 1e6:.2f} MB "
                f"(bound {ob['max_bytes'] / 1e6:.0f} MB), oldest {ob['oldest_age_s']:.0f} s, "
                f"in flight {ob['leased_batches']}, dropped {ob['dropped_samples']} samples",
                style="red" if ob["dropped_samples"] else ""))
    dl = doc.get("delivery")
    if dl:
        parts.append(Text(
            f"uplink {dl.get('transport')}: {'connected' if dl.get('connected') else 'DISCONNECTED'}, "
            f"{dl.get('in_flight_envelopes', 0)} envelopes in flight, {dl.get('acked_batches', 0)} batches acked, "
            f"{dl.get('rejected_batches', 0)} rejected, {dl.get('reconnects', 0)} reconnects"
            + (f", last error: {dl['last_error']}" if dl.get("last_error") else ""),
            style="" if dl.get("connected") else "red"))
    w = doc.get("watch")
    if w:
        parts.append(Text(f"FIT watch {w['folder']}: {w['imported_files']} files imported"))
    return Group(*parts)


def _status_path(args: argparse.Namespace) -> Path | None:
    if args.status_file:
        return Path(args.status_file)
    cfg = _load(args.config)
    return None if cfg is None else cfg.agent.status_path


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        print(f"fittrack edge status: {path} does not exist (is the agent running? it writes the file "
              f"every status_interval_s)", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"fittrack edge status: cannot read {path}: {exc}", file=sys.stderr)
    return None


def cmd_status(args: argparse.Namespace) -> int:
    path = _status_path(args)
    if path is None:
        return 2
    from rich.console import Console

    console = Console()
    if args.json:
        doc = _read_status(path)
        if doc is None:
            return 1
        print(json.dumps(doc, indent=1))
        return 0
    if not args.live:
        doc = _read_status(path)
        if doc is None:
            return 1
        console.print(render_status(doc))
        return 0
    from rich.live import Live

    doc = _read_status(path)
    if doc is None:
        return 1
    try:
        with Live(render_status(doc), console=console, refresh_per_second=2) as live:
            while True:
                time.sleep(args.interval)
                try:
                    doc = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue  # being replaced; next time
                live.update(render_status(doc))
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------------------------- check-config
def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    up = cfg.uplink
    print(f"{args.config}: OK")
    print(f"  agent {cfg.agent.tenant}/{cfg.agent.agent_id}, data in {cfg.agent.data_dir}")
    print(f"  {len(cfg.devices)} device(s), {len(cfg.athletes)} athlete(s); slots per adapter "
          f"{dict(cfg.bluetooth.slots_per_adapter) or cfg.bluetooth.default_slots}")
    print(f"  uplink: {f'{up.transport} {up.host}:{up.port} tls={up.tls}' if up else 'none (outbox only)'}")
    print(f"  outbox {cfg.outbox_path} ({cfg.outbox.max_mb:.0f} MB, synchronous={cfg.outbox.synchronous})")
    if cfg.watch.enabled:
        print(f"  FIT watch: {cfg.watch.folder}")
    return 0


def main(argv: list[str], prog: str = "fittrack edge") -> int:
    p = argparse.ArgumentParser(prog=prog, description="The FitTracker edge agent: BLE devices and FIT files -> "
                                "edge processing -> durable outbox -> MQTT/gRPC. docs/edge-agent.md")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT")
    r.add_argument("--config", "-c", required=True, help="edge.toml (docs/edge.example.toml has every key)")
    r.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="override [agent] log_level")
    r.add_argument("--log-format", choices=("json", "text"), help="override [agent] log_format")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("status", help="devices, live HR/zone/reps, outbox and uplink state")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", "-c", help="edge.toml (its status file is read)")
    g.add_argument("--status-file", help="the status JSON file itself")
    s.add_argument("--live", action="store_true", help="refresh until Ctrl-C")
    s.add_argument("--interval", type=float, default=1.0, help="refresh period with --live (s)")
    s.add_argument("--json", action="store_true", help="print the raw status document")
    s.set_defaults(fn=cmd_status)
    c = sub.add_parser("check-config", help="check edge.toml and report every problem at once")
    c.add_argument("--config", "-c", required=True)
    c.set_defaults(fn=cmd_check)
    args = p.parse_args(argv)
    return int(args.fn(args))
