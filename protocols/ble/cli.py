"""``fittrack ble``: decode or encode one characteristic value from the command line.

    fittrack ble list                               every supported characteristic
    fittrack ble decode 2a37 16480004               a notification as hex -> JSON fields
    fittrack ble encode 2ad2 power_w=250 cadence_rpm=90   fields -> hex payload

Handy when a device "sends weird numbers": paste the hex from nRF Connect or btmon.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import BleError
from .registry import CODECS, decode, encode


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str], prog: str = "fittrack ble") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Decode/encode Bluetooth LE fitness characteristics.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list supported characteristics")
    d = sub.add_parser("decode", help="decode a hex payload")
    d.add_argument("uuid", help="e.g. 2a37, 0x2A37 or the 128-bit UUID")
    d.add_argument("hex", nargs="+", help="payload bytes in hex (spaces, ':' and '-' allowed)")
    e = sub.add_parser("encode", help="encode key=value fields (values as JSON: 90, 27.5, null, [800,810])")
    e.add_argument("uuid")
    e.add_argument("fields", nargs="*")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "list":
            for c in CODECS:
                print(f"0x{c.uuid:04X}  {c.name}")
        elif a.cmd == "decode":
            raw = bytes.fromhex("".join(a.hex).replace(":", "").replace("-", ""))
            m = decode(a.uuid, raw)
            print(json.dumps({"characteristic": f"{m.NAME} (0x{m.UUID:04X})", **m.to_dict()}, indent=2, default=str))
        else:
            kw = {}
            for item in a.fields:
                k, sep, v = item.partition("=")
                if not sep:
                    ap.error(f"field {item!r} is not key=value")
                kw[k] = _value(v)
            print(encode(a.uuid, **kw).hex(" "))
    except (BleError, TypeError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # bad hex
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0
