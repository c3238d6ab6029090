"""``org.fittrack.SimControl1`` at ``/org/fittrack/sim``: the simulator's control interface.

Methods (JSON strings keep the interface small and the payloads self-describing):

* ``Devices() -> s``: JSON list of ``{address, name, kind, path, rates_hz}``.
* ``Fault(address s, kind s, params s) -> s``: inject a fault, ``params`` a JSON object.
  Kinds (durations in simulated seconds):

  - ``link_drop``: the link is lost now (ServicesResolved=False, GATT removed, Connected=False).
  - ``out_of_range`` ``{seconds}``: link lost, no adverts, and Connect fails until it is back.
  - ``refuse_connect`` ``{count, error}``: the next ``count`` Connect calls fail with
    ``org.bluez.Error.Failed`` and ``error`` as text (default ``le-connection-abort-by-remote``).
  - ``slow_discovery`` ``{seconds}``: the next connection resolves services that much later.
  - ``att_error`` ``{char, code, count}``: the next ``count`` reads/writes/StartNotify on ``char``
    (16-bit int or UUID string; default the main data characteristic) get ATT error ``code``.
  - ``burst`` ``{seconds}``: notifications are held back, then delivered all at once.
  - ``adapter_off`` ``{seconds}`` (address ignored): Powered=False, every link dropped; back on
    after ``seconds`` if given (else ``adapter_on``).
* ``GroundTruth(address s, since_s d) -> s``: the model's ground truth as JSON.
* ``Stats() -> s``: notifications delivered/dropped per device, signals, EAGAIN count.
* ``Clock() -> d``: simulated seconds since start.
* ``Shutdown()``: stop the daemon.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from dbus_fast import Message

if TYPE_CHECKING:  # pragma: no cover
    from .daemon import SimBluez


def handle_control(sim: "SimBluez", msg: Message) -> Message:
    from .daemon import E_DOES_NOT_EXIST, E_INVALID_ARGS, BluezError

    m = msg.member
    if m == "Devices":
        return Message.new_method_return(msg, "s", [json.dumps(sim.device_info())])
    if m == "Fault":
        address, kind, params = msg.body
        try:
            p: dict[str, Any] = json.loads(params or "{}")
        except ValueError as e:
            raise BluezError(E_INVALID_ARGS, f"params is not JSON: {e}") from None
        return Message.new_method_return(msg, "s", [json.dumps(sim.fault(address, kind, p))])
    if m == "GroundTruth":
        address, since = msg.body
        d = sim.devices.get(address.upper())
        if d is None:
            raise BluezError(E_DOES_NOT_EXIST, f"no simulated device {address}")
        d.model.advance(sim.now_s())  # ground truth up to now, even with nobody connected
        return Message.new_method_return(msg, "s", [json.dumps(d.model.ground_truth(float(since)))])
    if m == "Stats":
        return Message.new_method_return(msg, "s", [json.dumps(sim.stats_json())])
    if m == "Clock":
        return Message.new_method_return(msg, "d", [sim.now_s()])
    if m == "Shutdown":
        asyncio.get_running_loop().call_soon(sim.stop)
        return Message.new_method_return(msg)
    raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", f"Method \"{m}\" doesn't exist")
