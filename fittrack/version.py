"""``fittrack version``: versions of the gateway and of the libraries it relies on."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

LIBS = ("numpy", "scipy", "numba", "protobuf", "grpcio", "psycopg", "bleak", "aiomqtt", "fitdecode")


def main(argv: list[str], prog: str = "fittrack version") -> int:
    argparse.ArgumentParser(prog=prog, description=__doc__).parse_args(argv)
    try:
        own = metadata.version("fittracker-gateway")
    except metadata.PackageNotFoundError:
        own = "(not installed; running from a checkout)"
    print(f"fittracker-gateway {own} on Python {platform.python_version()} ({platform.machine()})")
    for lib in LIBS:
        try:
            print(f"  {lib:<10} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            print(f"  {lib:<10} not installed")
    return 0
