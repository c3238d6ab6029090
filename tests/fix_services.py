"""Fixtures that give tests real services: a private TimescaleDB database per test run and an
MQTT topic prefix per test, on the services that ``scripts/provision.sh`` starts.

Environment:
    FITTRACK_TEST_PG_DSN   admin DSN (default postgresql://fittrack:fittrack@127.0.0.1:5432/postgres)
    FITTRACK_TEST_MQTT     host:port of the test broker (default 127.0.0.1:1884)
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

PROVISION_HINT = "start the test services with: sudo scripts/provision.sh"
PG_ADMIN_DSN = os.environ.get(
    "FITTRACK_TEST_PG_DSN", "postgresql://fittrack:fittrack@127.0.0.1:5432/postgres"
)
MQTT_ADDR = os.environ.get("FITTRACK_TEST_MQTT", "127.0.0.1:1884")


def _dsn_with_db(dsn: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """DSN of the provisioned server's maintenance database; fails (not skips) when unreachable."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_DSN!r} ({exc}); {PROVISION_HINT}")
    return PG_ADMIN_DSN


@pytest.fixture(scope="session")
def pg_database_factory(pg_admin_dsn: str) -> Iterator[Callable[[str], str]]:
    """Create throw-away databases with TimescaleDB; all are dropped at the end of the session."""
    import psycopg

    created: list[str] = []

    def create(tag: str = "t") -> str:
        name = f"ft_{tag}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        dsn = _dsn_with_db(pg_admin_dsn, name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET client_min_messages = warning")
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            except psycopg.Error as exc:
                pytest.fail(f"the TimescaleDB extension is not available ({exc}); {PROVISION_HINT}")
        return dsn

    yield create
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_dsn(pg_database_factory: Callable[[str], str]) -> str:
    """This test run's own database (TimescaleDB extension created; dropped after the run)."""
    return pg_database_factory("run")


@dataclass(frozen=True)
class MqttBroker:
    host: str
    port: int


@pytest.fixture(scope="session")
def mqtt_broker() -> MqttBroker:
    """The provisioned Mosquitto; fails (not skips) when it does not accept connections."""
    host, _, port = MQTT_ADDR.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"Mosquitto is not reachable at {MQTT_ADDR} ({exc}); {PROVISION_HINT}")
    return MqttBroker(host, int(port))


@pytest.fixture
def mqtt_prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix of this test's own, so concurrent runs and tests never see each other."""
    return f"test/{request.node.name[:40]}-{uuid.uuid4().hex[:10]}"
