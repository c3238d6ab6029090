"""DESIGN §2 layering, checked on the source: pure layers stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "protocols": {"asyncio", "edge_agent", "ingest_server", "firmware_sims", "fittrack", "dsp", "bleak", "grpc", "psycopg", "aiomqtt", "paho", "socket", "sqlite3"},
    "dsp": {"asyncio", "edge_agent", "ingest_server", "firmware_sims", "fittrack", "bleak", "grpc", "psycopg", "aiomqtt", "paho", "socket", "sqlite3"},
    "edge_agent": {"ingest_server", "firmware_sims", "fittrack"},
    "ingest_server": {"edge_agent", "firmware_sims", "fittrack"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_layers_import_only_what_they_may() -> None:
    bad = []
    for pkg, forbidden in FORBIDDEN.items():
        for path in (ROOT / pkg).rglob("*.py"):
            if "gen" in path.relative_to(ROOT / pkg).parts and pkg == "protocols":
                hits = _imports(path) & (forbidden - {"grpc"})  # generated *_grpc.py stubs import grpc
            else:
                hits = _imports(path) & forbidden
            bad.extend(f"{path.relative_to(ROOT)} imports {h}" for h in sorted(hits))
    assert not bad, "\n".join(bad)


def test_no_package_named_proto() -> None:
    assert not (ROOT / "proto" / "__init__.py").exists()  # would collide with proto-plus
