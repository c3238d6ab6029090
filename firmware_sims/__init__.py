"""Simulated devices, the simulated BlueZ bus, the load generator and the demo (top layer)."""
