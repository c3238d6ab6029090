"""Structured logging: ``key=value`` text or JSON lines (``--log-json``), extras included.

Never pass secrets in ``extra``; tokens and passwords are not logged anywhere in this package.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in record.__dict__.items() if k not in _STD}
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        msg = record.getMessage()
        if self.as_json:
            d = {"ts": ts, "level": record.levelname.lower(), "logger": record.name, "msg": msg, **extra}
            if record.exc_info:
                d["exc"] = self.formatException(record.exc_info)
            return json.dumps(d, default=str)
        kv = " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in extra.items())
        out = f"{ts} {record.levelname:<7} {record.name}: {msg}" + (f" {kv}" if kv else "")
        if record.exc_info:
            out += "\n" + self.formatException(record.exc_info)
        return out


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(_Formatter(as_json))
    root = logging.getLogger("ingest_server")
    root.handlers[:] = [h]
    root.setLevel(level.upper())
    root.propagate = False
