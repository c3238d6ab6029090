"""The simulated BlueZ daemon (``python -m firmware_sims.bluez``) and its control interface."""

from .daemon import CONTROL_IFACE, CONTROL_PATH, SimBluez

__all__ = ["CONTROL_IFACE", "CONTROL_PATH", "SimBluez"]
