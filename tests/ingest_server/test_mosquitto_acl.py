"""The shipped Mosquitto configuration (deploy/mosquitto) on a private broker: what an agent can
and cannot do, with password entries written by ``fittrack ingest`` and the server still
checking identity and revocation behind the broker."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest

from ingest_server import mosquitto
from ingest_server.app import IngestApp
from ingest_server.config import IngestConfig

from .helpers import ROOT, MqttAgent, batch_statuses, cli, envelope, hr_batch, status

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ROOT_TOPIC = "fittrack/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker(tmp_path: Path):
    """A private Mosquitto with the shipped config, paths and port templated."""
    if not Path(MOSQUITTO).exists():
        pytest.fail(f"mosquitto binary not found at {MOSQUITTO}; install mosquitto (scripts/provision.sh)")
    port = _free_port()
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    shutil.copy(ROOT / "deploy/mosquitto/acl", acl)
    conf = (ROOT / "deploy/mosquitto/fittrack.conf").read_text()
    conf = re.sub(r"(?m)^password_file .*$", f"password_file {passwd}", conf)
    conf = re.sub(r"(?m)^acl_file .*$", f"acl_file {acl}", conf)
    conf = re.sub(r"(?m)^listener .*$", f"listener {port} 127.0.0.1", conf)
    conf = re.sub(r"(?m)^persistence .*$", "persistence false", conf)
    conf = re.sub(r"(?m)^persistence_location .*$", "", conf)
    import getpass

    conf += f"\nuser {getpass.getuser()}\n"  # as root, mosquitto would switch to 'mosquitto' and not read our 0600 files
    (tmp_path / "mosquitto.conf").write_text(conf)
    mosquitto.set_user(passwd, "ingest", "server-pw")

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private mosquitto did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.05)

    state = {"port": port, "passwd": passwd, "proc": start()}

    def restart() -> None:
        state["proc"].terminate()
        state["proc"].wait(10)
        state["proc"] = start()

    state["restart"] = restart
    yield state
    state["proc"].terminate()
    state["proc"].wait(10)


async def test_shipped_acl_confines_agents_and_server_checks_behind_the_broker(broker, pg_database_factory) -> None:
    dsn = pg_database_factory("acl")
    port, passwd = broker["port"], str(broker["passwd"])
    tok1 = cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-1", "--agent", "hub-1", "--mqtt-password-file", passwd).stdout.strip()
    tok2 = cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-2", "--agent", "hub-2", "--mqtt-password-file", passwd).stdout.strip()
    assert tok1.startswith("hub-1.") and tok2.startswith("hub-2.")
    assert tok1 not in Path(passwd).read_text()  # only the PBKDF2 hash is stored
    broker["proc"].send_signal(signal.SIGHUP)  # reload users
    await asyncio.sleep(0.3)
    cfg = IngestConfig(db=dsn, mqtt=f"127.0.0.1:{port}", mqtt_username="ingest", mqtt_password="server-pw", maintain_interval_s=0)
    async with IngestApp(cfg) as app:
        # wrong password: the broker refuses the connection
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", port, username="gym-1/hub-1", password=tok2, protocol=aiomqtt.ProtocolVersion.V5):
                pass
        with pytest.raises(aiomqtt.MqttError):  # no anonymous access
            async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5):
                pass
        async with MqttAgent("127.0.0.1", port, root=ROOT_TOPIC, tenant="gym-1", agent="hub-1", username="gym-1/hub-1", password=tok1) as a1, \
                MqttAgent("127.0.0.1", port, root=ROOT_TOPIC, tenant="gym-2", agent="hub-2", username="gym-2/hub-2", password=tok2) as a2:
            await a1.publish(envelope([hr_batch("s1", 1)], agent="hub-1", tenant="gym-1", seq=1))
            assert status((await a1.wait_acks({1}))[1]) == "ACK_STATUS_OK"
            # hub-1 publishing on hub-2's uplink is dropped by the broker: the server never sees it
            await a1.publish(envelope([hr_batch("s1", 2)], agent="hub-2", tenant="gym-2", seq=2), topic=a2.up)
            # hub-1 cannot read hub-2's acks nor anyone's uplink (Mosquitto 2.0 grants the SUBSCRIBE but
            # checks read access on delivery: the spy must receive nothing while hub-2 works)
            spy = aiomqtt.Client("127.0.0.1", port, username="gym-1/hub-1", password=tok1, protocol=aiomqtt.ProtocolVersion.V5,
                                 identifier="spy")
            await spy.__aenter__()
            await spy.subscribe(f"{ROOT_TOPIC}/ack/gym-2/hub-2", qos=1)
            await spy.subscribe(f"{ROOT_TOPIC}/up/#", qos=1)
            spied: list[str] = []

            async def watch() -> None:
                async for m in spy.messages:
                    spied.append(str(m.topic))

            watcher = asyncio.create_task(watch())
            # an envelope on hub-2's own topic claiming hub-1 passes the broker but not the server
            await a2.publish(envelope([hr_batch("s2", 3)], agent="hub-1", tenant="gym-1", seq=3))
            assert status((await a2.wait_acks({3}))[3]) == "ACK_STATUS_REJECTED"
            # another tenant's device
            await a2.publish(envelope([hr_batch("s1", 4)], agent="hub-2", tenant="gym-2", seq=4))
            assert batch_statuses((await a2.wait_acks({4}))[4]) == ["BATCH_STATUS_REJECTED"]
            await asyncio.sleep(0.5)
            assert 2 not in a1.acks and 2 not in a2.acks
            assert spied == []
            watcher.cancel()
            await spy.__aexit__(None, None, None)
            # revoked in the database while the broker still knows the user: the server refuses
            assert await app.store.revoke_agent("hub-2")
            await asyncio.sleep(app.config.auth_cache_s + 0.1)
            await a2.publish(envelope([hr_batch("s2", 5)], agent="hub-2", tenant="gym-2", seq=5))
            refused = (await a2.wait_acks({5}))[5]
            assert status(refused) == "ACK_STATUS_REJECTED" and "revoked" in refused.message
        rows = await app.store.query("SELECT device_id, seq FROM ledger ORDER BY seq")
        assert [tuple(r) for r in rows] == [("s1", 1)]
    # revoking with the password file removes the broker user too
    r = cli("ingest", "agent", "revoke", "--db", dsn, "--agent", "hub-1", "--mqtt-password-file", passwd)
    assert r.returncode == 0, r.stderr
    broker["proc"].send_signal(signal.SIGHUP)
    await asyncio.sleep(0.3)
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, username="gym-1/hub-1", password=tok1, protocol=aiomqtt.ProtocolVersion.V5):
            pass


async def test_server_keeps_ingesting_after_a_broker_restart(broker, pg_database_factory) -> None:
    dsn = pg_database_factory("brst")
    port, passwd = broker["port"], str(broker["passwd"])
    tok = cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-b", "--agent", "hub-b", "--mqtt-password-file", passwd).stdout.strip()
    broker["proc"].send_signal(signal.SIGHUP)
    await asyncio.sleep(0.3)
    cfg = IngestConfig(db=dsn, mqtt=f"127.0.0.1:{port}", mqtt_username="ingest", mqtt_password="server-pw", maintain_interval_s=0)
    async with IngestApp(cfg) as app:
        async with MqttAgent("127.0.0.1", port, root=ROOT_TOPIC, tenant="gym-b", agent="hub-b", username="gym-b/hub-b", password=tok) as a:
            await a.publish(envelope([hr_batch("b1", 1)], agent="hub-b", tenant="gym-b", seq=1))
            assert status((await a.wait_acks({1}))[1]) == "ACK_STATUS_OK"
        broker["restart"]()  # broker gone and back, sessions lost (persistence off)
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # the server reconnects and subscribes again by itself; the agent resends until acked
            try:
                async with MqttAgent("127.0.0.1", port, root=ROOT_TOPIC, tenant="gym-b", agent="hub-b",
                                     username="gym-b/hub-b", password=tok) as a:
                    await a.publish(envelope([hr_batch("b1", 2)], agent="hub-b", tenant="gym-b", seq=2))
                    ack = (await a.wait_acks({2}, timeout_s=2))[2]
                    break
            except (TimeoutError, aiomqtt.MqttError):
                assert asyncio.get_running_loop().time() < deadline, "server did not resume after the broker restart"
        assert status(ack) == "ACK_STATUS_OK"
        assert (await app.store.query("SELECT count(*) FROM ledger"))[0][0] == 2
