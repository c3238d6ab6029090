"""The committed protobuf code in protocols/wire/gen is what tools/gen_proto.py makes of proto/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "tools" / "gen_proto.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_proto"] = mod
    spec.loader.exec_module(mod)
    out = tmp_path / "gen"
    mod.generate(out)
    committed = ROOT / "protocols" / "wire" / "gen"
    fresh = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    have = {p.relative_to(committed): p.read_bytes() for p in committed.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert sorted(map(str, fresh)) == sorted(map(str, have)), "files differ: run python tools/gen_proto.py"
    stale = [str(k) for k in fresh if fresh[k] != have[k]]
    assert not stale, f"stale generated code {stale}: run python tools/gen_proto.py and commit"


def test_every_proto_message_is_in_the_generated_code() -> None:
    from protocols.wire.gen.fittrack.v1 import batch_pb2, envelope_pb2, ingest_pb2, ingest_pb2_grpc

    names = set(batch_pb2.DESCRIPTOR.message_types_by_name) | set(envelope_pb2.DESCRIPTOR.message_types_by_name) | set(ingest_pb2.DESCRIPTOR.message_types_by_name)
    for proto in (ROOT / "proto").rglob("*.proto"):
        for line in proto.read_text().splitlines():
            if line.startswith("message "):
                assert line.split()[1] in names
    service = ingest_pb2.DESCRIPTOR.services_by_name["Ingest"]
    assert {m.name for m in service.methods} == {"Upload", "Subscribe"}
    up = service.methods_by_name["Upload"]
    assert up.client_streaming and up.server_streaming
    assert hasattr(ingest_pb2_grpc, "IngestServicer")


def test_deflate_dictionary_v1_never_changes() -> None:
    """COMPRESSION_DEFLATE_DICT_V1's dictionary is part of the published contract."""
    import hashlib

    from protocols.wire.codec import DEFLATE_DICT_V1

    pinned = "c0d3a29a2dee68e27c8a9022c383a056c2188201c36198c6012b143d8c04b335"
    canonical = (ROOT / "proto" / "fittrack" / "v1" / "deflate_dict_v1.bin").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == pinned
    assert DEFLATE_DICT_V1 == canonical
    assert pinned in (ROOT / "proto" / "fittrack" / "v1" / "envelope.proto").read_text()


def test_generated_grpc_floor_matches_pyproject() -> None:
    import re
    import tomllib

    text = (ROOT / "tools" / "gen_proto.py").read_text()
    floor = re.search(r'GRPC_FLOOR = "([^"]+)"', text).group(1)
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for deps in meta["project"]["optional-dependencies"].values() for d in deps if d.startswith("grpcio>=")]
    assert pins and all(d == f"grpcio>={floor}" for d in pins), (floor, pins)
