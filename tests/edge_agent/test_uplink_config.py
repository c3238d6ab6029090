"""UplinkConfig, Secret, backoff and Ack parsing (pure parts of the uplinks)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from edge_agent.uplink import AckStatus, BatchStatus, ConfigError, Secret, UplinkConfig, UplinkError, backoff_s, parse_ack
from protocols.wire.gen.fittrack.v1 import envelope_pb2


def _cfg(**kw) -> dict:
    d = dict(transport="mqtt", host="broker.local", port=8883, tenant="gym-1", agent_id="pi-7")
    d.update(kw)
    return d


def test_secret_never_shows_its_value() -> None:
    c = UplinkConfig(**_cfg(token="pi-7.s3cr3t-value"))
    assert isinstance(c.token, Secret) and c.token.reveal() == "pi-7.s3cr3t-value"
    for text in (repr(c), str(c), repr(c.token), str(c.token), f"{c.token}"):
        assert "s3cr3t" not in text


def test_from_mapping_topics_and_paths(tmp_path, monkeypatch) -> None:
    (tmp_path / "token").write_text("pi-7.abc\n")
    c = UplinkConfig.from_mapping(_cfg(token_file="token", tls=True, ca_file="ca.pem"), base_dir=tmp_path)
    assert c.token.reveal() == "pi-7.abc" and c.ca_file == tmp_path / "ca.pem"
    assert c.up_topic == "fittrack/v1/up/gym-1/pi-7" and c.ack_topic == "fittrack/v1/ack/gym-1/pi-7"
    assert c.mqtt_username == "gym-1/pi-7"
    monkeypatch.setenv("FT_TOKEN", "pi-7.env")
    assert UplinkConfig.from_mapping(_cfg(token_env="FT_TOKEN")).token.reveal() == "pi-7.env"


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        (dict(transport="http"), "transport must be 'mqtt' or 'grpc'"),
        (dict(port=0), "port must be an integer"),
        (dict(tenant="a/b"), "tenant must be a non-empty string without"),
        (dict(ack_timeout_s=0), "ack_timeout_s must be a positive number"),
        (dict(max_in_flight=0), "max_in_flight must be a positive integer"),
        (dict(cert_file="c.pem"), "cert_file and uplink.key_file go together"),
        (dict(ack_timeout=3), "unknown uplink key"),
        (dict(token="x", token_env="Y"), "give only one of"),
        (dict(token_env="NO_SUCH_VAR_FT"), "NO_SUCH_VAR_FT is not set"),
    ],
)
def test_bad_settings_name_the_key(kw, msg) -> None:
    with pytest.raises(ConfigError, match=msg):
        UplinkConfig.from_mapping(_cfg(**kw))


def test_missing_required_key() -> None:
    d = _cfg()
    del d["host"]
    with pytest.raises(ConfigError, match="uplink.host is required"):
        UplinkConfig.from_mapping(d)


@given(st.integers(0, 200), st.floats(0.01, 5), st.floats(0.1, 600), st.floats(0, 1))
def test_backoff_bounds(attempt, base, cap, jitter) -> None:
    d = backoff_s(attempt, base=base, cap=cap, jitter=jitter, rng=random.Random(attempt))
    top = min(cap, base * 2.0 ** min(attempt, 62))
    assert top * (1 - jitter) - 1e-9 <= d <= top + 1e-9


def test_backoff_grows_then_caps() -> None:
    no_jitter = [backoff_s(a, base=0.5, cap=30, jitter=0) for a in range(10)]
    assert no_jitter[:4] == [0.5, 1.0, 2.0, 4.0] and no_jitter[-1] == 30
    with pytest.raises(ValueError):
        backoff_s(-1)


def test_parse_ack() -> None:
    pb = envelope_pb2.Ack(envelope_seq=7, status=envelope_pb2.ACK_STATUS_PARTIAL, message="m")
    pb.batches.add(device_id="d", stream="heart_rate", seq=3, status=envelope_pb2.BATCH_STATUS_REJECTED, reason="bad")
    a = parse_ack(pb.SerializeToString())
    assert a.envelope_seq == 7 and a.status == AckStatus.PARTIAL
    assert a.batches[0].key == ("d", "heart_rate", 3) and a.batches[0].status == BatchStatus.REJECTED
    with pytest.raises(UplinkError, match="malformed Ack"):
        parse_ack(b"\xff\xff\xff")


@given(st.binary(max_size=200))
def test_parse_ack_never_crashes_on_garbage(data) -> None:
    try:
        parse_ack(data)
    except UplinkError:
        pass
