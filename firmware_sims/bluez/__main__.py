"""``python -m firmware_sims.bluez --bus ADDRESS --devices hr:3,imu:1 [--seed N] [--time-scale X]``.

Serves ``org.bluez`` on the given bus until SIGTERM/SIGINT or ``SimControl1.Shutdown``; prints
one line ``ready {json}`` on stdout (the devices) once the name is owned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from ..models import build_devices
from .daemon import SimBluez


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_sims.bluez", description=__doc__.splitlines()[0])
    ap.add_argument("--bus", required=True, help="D-Bus address of the private bus")
    ap.add_argument("--devices", default="hr:1", help="device spec, e.g. hr:3,imu:1,treadmill:1,bike:1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per wall second")
    ap.add_argument("--temporary-timeout", type=float, default=30.0,
                    help="BlueZ TemporaryTimeout: remove unseen, unconnected devices after this many wall seconds (0: never)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.WARNING, stream=sys.stderr)
    try:
        models = build_devices(a.devices, a.seed)
    except ValueError as e:
        ap.error(str(e))
    if a.time_scale <= 0:
        ap.error("--time-scale must be > 0")
    sim = SimBluez(a.bus, models, a.time_scale, temporary_timeout_s=a.temporary_timeout)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, sim.stop)

        def ready() -> None:
            print("ready " + json.dumps(sim.device_info()), flush=True)

        await sim.run(ready)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
