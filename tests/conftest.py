"""Test configuration. Service fixtures live in tests/fix_services.py.

The suite never skips for a missing service: a test that needs PostgreSQL/TimescaleDB or
Mosquitto fails with the command that provisions them (``sudo scripts/provision.sh``).
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.fix_services", "tests.fix_sims"]

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
