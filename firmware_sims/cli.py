"""``fittrack sim``: simulated BlueZ for bleak without a radio, and the uplink load generator.

    fittrack sim bluez --devices hr:3,imu:1,treadmill:1,bike:1 [--seed N] [--time-scale X]
        starts a private dbus-daemon + the simulated org.bluez, prints
        ``export DBUS_SYSTEM_BUS_ADDRESS=...`` and runs until Ctrl-C (both stopped by PID).
    fittrack sim fault ADDRESS KIND [key=value ...]   inject a fault (link_drop, out_of_range seconds=10, ...)
    fittrack sim truth ADDRESS [--since S]            the model's ground truth as JSON
    fittrack sim load --transport grpc|mqtt --agents N --devices M ...   (see --help)

``fault`` and ``truth`` talk to the simulator on $DBUS_SYSTEM_BUS_ADDRESS (or --bus).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading


def _bluez(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Run a simulated BlueZ on a private D-Bus; point bleak at it "
                                 "with the printed DBUS_SYSTEM_BUS_ADDRESS.")
    ap.add_argument("--devices", default="hr:3,imu:1,treadmill:1,bike:1",
                    help="kinds and counts: hr, imu, treadmill, bike, rower, power, csc (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per wall second")
    ap.add_argument("--json", action="store_true", help="print one JSON line (address, pids, devices) instead")
    a = ap.parse_args(argv)
    from .models import parse_spec
    from .testing import SimStartError, running_sim

    try:
        parse_spec(a.devices)
    except ValueError as e:
        ap.error(str(e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with running_sim(a.devices, seed=a.seed, time_scale=a.time_scale) as sim:
            if a.json:
                print(json.dumps({"bus_address": sim.bus_address, "bus_pid": sim.bus_pid, "sim_pid": sim.sim_pid,
                                  "devices": [d.__dict__ for d in sim.devices]}), flush=True)
            else:
                print(f"export DBUS_SYSTEM_BUS_ADDRESS='{sim.bus_address}'")
                for d in sim.devices:
                    print(f"# {d.kind:<9} {d.address}  {d.name}", file=sys.stderr)
                print(f"# dbus-daemon pid {sim.bus_pid}, simulated BlueZ pid {sim.sim_pid}; Ctrl-C stops both",
                      file=sys.stderr, flush=True)
                sys.stdout.flush()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    except SimStartError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return 0


def _control(argv: list[str], prog: str, what: str) -> int:
    import asyncio
    import os

    from .testing import SimHandle

    ap = argparse.ArgumentParser(prog=prog, description="inject a fault into a running simulator" if what == "fault"
                                 else "print a simulated device's ground truth (JSON)")
    ap.add_argument("--bus", default=os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"),
                    help="bus address (default: $DBUS_SYSTEM_BUS_ADDRESS)")
    ap.add_argument("address", help="device address, e.g. E1:69:DB:28:89:49 (ignored by adapter_off)")
    if what == "fault":
        ap.add_argument("kind", choices=["link_drop", "out_of_range", "refuse_connect", "slow_discovery", "att_error",
                                         "burst", "adapter_off", "adapter_on"])
        ap.add_argument("params", nargs="*", help="key=value (numbers are parsed), e.g. seconds=10 code=0x0e")
    else:
        ap.add_argument("--since", type=float, default=0.0, help="simulated seconds")
    a = ap.parse_args(argv)
    if not a.bus:
        ap.error("no bus: run 'eval \"$(fittrack sim bluez ...)\"' first or pass --bus")
    h = SimHandle(a.bus, [], 0, 0, 1.0)
    try:
        if what == "fault":
            params: dict[str, object] = {}
            for kv in a.params:
                k, sep, v = kv.partition("=")
                if not sep:
                    ap.error(f"parameter {kv!r} is not key=value")
                try:
                    params[k] = int(v, 0)
                except ValueError:
                    try:
                        params[k] = float(v)
                    except ValueError:
                        params[k] = v
            out = asyncio.run(h.afault(a.address, a.kind, **params))
        else:
            out = asyncio.run(h.aground_truth(a.address, a.since))
    except (RuntimeError, OSError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1))
    return 0


def main(argv: list[str], prog: str = "fittrack sim") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0].replace("``", ""),
                                 epilog="run '%(prog)s bluez --help' or '%(prog)s load --help' for their options",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["bluez", "fault", "truth", "load"],
                    help="bluez: simulated BlueZ; fault/truth: talk to it; load: uplink load generator")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="options of the command")
    if not argv or argv[0] in ("-h", "--help"):
        ap.print_help()
        return 0 if argv else 2
    a = ap.parse_args(argv[:1])
    rest = argv[1:]
    if a.command == "bluez":
        return _bluez(rest, f"{prog} bluez")
    if a.command in ("fault", "truth"):
        return _control(rest, f"{prog} {a.command}", a.command)
    from .load import main as load_main

    return load_main(rest, f"{prog} load")
