"""TLS and mutual TLS on gRPC; the embedded SQLite backend end to end; CLI and configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest

from ingest_server.app import IngestApp
from ingest_server.config import IngestConfig, load_config

from .helpers import UPLOAD, batch_statuses, cli, envelope, hr_batch, imu_batch, now_s_us, status, upload
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server cert for 127.0.0.1/localhost and a client cert, made with the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=fittrack test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.crt",
                 "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


async def _tls_upload(port: int, creds: grpc.ChannelCredentials, token: str, env: bytes) -> list[epb.Ack]:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
        call = ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)(
            metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        await call.write(env)
        await call.done_writing()
        return [a async for a in call]


async def test_tls_and_mutual_tls(pki: Path, tmp_path: Path) -> None:
    ca = (pki / "ca.crt").read_bytes()
    env = envelope([hr_batch("tls-strap", 1)], agent="hub-t", tenant="gym-t", seq=1)
    cfg = IngestConfig(db=f"sqlite:{tmp_path / 'tls.sqlite'}", grpc="127.0.0.1:0", tls_cert=str(pki / "server.crt"),
                       tls_key=str(pki / "server.key"), maintain_interval_s=0)
    async with IngestApp(cfg) as app:
        tok = await app.add_agent("gym-t", "hub-t")
        acks = await _tls_upload(app.grpc_port, grpc.ssl_channel_credentials(root_certificates=ca), tok, env)
        assert status(acks[0]) == "ACK_STATUS_OK"
        with pytest.raises(grpc.aio.AioRpcError):  # plaintext client against a TLS server
            await upload(app.grpc_port, tok, [env], timeout_s=3)
    cfg.tls_client_ca = str(pki / "ca.crt")
    cfg.db = f"sqlite:{tmp_path / 'mtls.sqlite'}"
    async with IngestApp(cfg) as app:
        tok = await app.add_agent("gym-t", "hub-t")
        with pytest.raises(grpc.aio.AioRpcError):  # no client certificate
            await _tls_upload(app.grpc_port, grpc.ssl_channel_credentials(root_certificates=ca), tok, env)
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=(pki / "client.key").read_bytes(),
                                             certificate_chain=(pki / "client.crt").read_bytes())
        acks = await _tls_upload(app.grpc_port, creds, tok, env)
        assert status(acks[0]) == "ACK_STATUS_OK"


async def test_sqlite_backend_end_to_end_with_dedup_tenancy_and_dead_letters(tmp_path: Path) -> None:
    cfg = IngestConfig(db=f"sqlite:{tmp_path / 'hub.sqlite'}", grpc="127.0.0.1:0", maintain_interval_s=0)
    async with IngestApp(cfg) as app:
        tok = await app.add_agent("gym-s", "hub-s")
        other = await app.add_agent("gym-x", "hub-x")
        base = now_s_us() - 600_000_000
        envs = [envelope([hr_batch("s-strap", s, t0_us=base + s * 10_000_000), imu_batch("s-imu", s, t0_us=base + s * 2_000_000)],
                         agent="hub-s", tenant="gym-s", seq=s) for s in range(5)]
        acks = await upload(app.grpc_port, tok, envs + envs[::-1])
        assert sorted(b for a in acks for b in batch_statuses(a)).count("BATCH_STATUS_STORED") == 10
        rows = await app.store.query("SELECT count(*), count(DISTINCT time_us || '/' || channel) FROM samples_all WHERE device_id = 's-imu'")
        assert tuple(rows[0]) == (3000, 3000)
        acks = await upload(app.grpc_port, other, [envelope([hr_batch("s-strap", 50), hr_batch("x-strap", 1, bpm=10)],
                                                            agent="hub-x", tenant="gym-x", seq=1)])
        assert batch_statuses(acks[0]) == ["BATCH_STATUS_REJECTED", "BATCH_STATUS_REJECTED"]
        dl = await app.store.dead_letters()
        assert {d["seq"] for d in dl} == {50, 1} and all(d["agent_id"] == "hub-x" for d in dl)


def test_cli_agent_lifecycle_and_dead_letters(tmp_path: Path) -> None:
    db = f"sqlite:{tmp_path / 'cli.sqlite'}"
    r = cli("ingest", "agent", "add", "--db", db, "--tenant", "gym-1", "--agent", "hub-1")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("hub-1.") and len(token.split(".", 1)[1]) >= 43
    assert token not in r.stderr
    again = cli("ingest", "agent", "add", "--db", db, "--tenant", "gym-1", "--agent", "hub-1")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = cli("ingest", "agent", "add", "--db", db, "--tenant", "gym/1", "--agent", "hub-2")
    assert bad.returncode == 1 and "tenant" in bad.stderr
    listing = cli("ingest", "agent", "list", "--db", db).stdout
    assert "hub-1" in listing and "active" in listing and token.split(".", 1)[1] not in listing
    assert cli("ingest", "agent", "revoke", "--db", db, "--agent", "hub-1").returncode == 0
    assert "revoked" in cli("ingest", "agent", "list", "--db", db).stdout
    assert cli("ingest", "agent", "revoke", "--db", db, "--agent", "hub-1").returncode == 1
    assert cli("ingest", "migrate", "--db", db).returncode == 0
    assert cli("ingest", "maintain", "--db", db).returncode == 0
    assert cli("ingest", "dead-letters", "--db", db).returncode == 0
    pw = tmp_path / "passwd"
    assert cli("ingest", "mqtt-user", "--password-file", str(pw), "--username", "ingest", stdin="s3cret\n").returncode == 0
    assert pw.read_text().startswith("ingest:$7$101$") and "s3cret" not in pw.read_text()
    r = cli("ingest", "serve", "--db", db)
    assert r.returncode == 2 and "--grpc" in r.stderr


def test_config_precedence_and_unknown_keys(tmp_path: Path) -> None:
    f = tmp_path / "ingest.toml"
    f.write_text('[ingest]\ndb = "sqlite:/from/toml"\ngrpc = "127.0.0.1:1"\nwriters = 3\nmqtt_live = false\n')
    cfg = load_config(f, env={"FITTRACK_INGEST_GRPC": "127.0.0.1:2", "FITTRACK_INGEST_MQTT_PASSWORD": "pw"},
                      overrides={"writers": 5, "db": None})
    assert (cfg.db, cfg.grpc, cfg.writers, cfg.mqtt_live, cfg.mqtt_password) == ("sqlite:/from/toml", "127.0.0.1:2", 5, False, "pw")
    assert cfg.redacted()["mqtt_password"] == "***"
    f.write_text('[ingest]\ndbb = "x"\n')
    with pytest.raises(ValueError, match="dbb"):
        load_config(f, env={})
    # the shipped example parses
    shipped = load_config(Path(__file__).resolve().parents[2] / "deploy/ingest/ingest.toml", env={})
    assert shipped.grpc and shipped.mqtt and shipped.metrics
