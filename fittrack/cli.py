"""``fittrack``: one command, many subcommands, each imported lazily from its own package.

A subcommand module exposes ``main(argv: list[str], prog: str) -> int`` and builds its own
argparse parser; the table below is all the dispatcher knows about it.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str


#: Subcommands in the order ``--help`` lists them. Add a line to add a command.
COMMANDS: tuple[Command, ...] = (
    Command("demo", "firmware_sims.demo", "the whole chain on one machine: simulated devices -> edge agent -> gRPC -> ingest -> SQLite"),
    Command("ble", "protocols.ble.cli", "decode/encode Bluetooth LE fitness characteristics (hex <-> fields)"),
    Command("import", "fittrack.import_fit", "import FIT files (files, folders, globs) into a store or the agent outbox"),
    Command("edge", "edge_agent.cli", "run the edge agent (BLE devices, FIT folder -> DSP -> outbox -> MQTT/gRPC), its status"),
    Command("pair", "edge_agent.pair", "scan for BLE fitness devices and add the chosen ones to the agent's edge.toml"),
    Command("sim", "firmware_sims.cli", "simulated BlueZ for bleak without a radio (sim bluez); uplink load generator (sim load)"),
    Command("ingest", "ingest_server.cli", "run the ingest server (gRPC + MQTT -> TimescaleDB/SQLite); manage agent credentials"),
    Command("dsp", "dsp.cli", "HRV and artifacts of an RR file, reps and sets in an accelerometer CSV, generated gym data"),
    Command("version", "fittrack.version", "print versions of the gateway and its key libraries"),
)

EPILOG = """\
examples:
  fittrack demo                      simulated straps + IMU -> agent -> gRPC -> ingest -> SQLite
  fittrack demo --minutes 30 --straps 12
  fittrack <command> --help          options of one command

docs: README.md and docs/ (start with docs/architecture.md)
"""


def _usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = [
        "usage: fittrack <command> [options]",
        "",
        "FitTracker Pro device gateway: wearables and gym machines -> edge processing -> the platform.",
        "",
        "commands:",
        *[f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS],
        "",
        EPILOG,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        if len(argv) >= 2 and argv[0] == "help":
            argv = [argv[1], "--help"]
        else:
            print(_usage())
            return 0 if argv else 2
    if argv[0] == "--version":
        argv = ["version"]
    name, rest = argv[0], argv[1:]
    cmd = next((c for c in COMMANDS if c.name == name), None)
    if cmd is None:
        close = difflib.get_close_matches(name, [c.name for c in COMMANDS], n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        print(f"fittrack: unknown command {name!r}.{hint} Run 'fittrack --help' for the list.", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(cmd.module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        print(
            f"fittrack {name}: a dependency is not installed ({missing}). "
            f"Install the extra that provides it, e.g. pip install 'fittracker-gateway[all]'.",
            file=sys.stderr,
        )
        return 3
    try:
        return int(module.main(rest, prog=f"fittrack {name}") or 0)
    except KeyboardInterrupt:
        print(f"fittrack {name}: interrupted", file=sys.stderr)
        return 130
