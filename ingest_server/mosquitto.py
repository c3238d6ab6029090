"""Mosquitto password-file entries for agents, written without putting tokens on a command line.

Mosquitto 2.x verifies ``user:$7$<iterations>$<salt b64>$<hash b64>`` (PBKDF2-HMAC-SHA512), the
format ``mosquitto_passwd`` writes; tests check the broker accepts what we write. Agents log in as
``<tenant>/<agent_id>`` with their token as password; the shipped ACL (deploy/mosquitto/acl)
lets that user publish only to ``fittrack/v1/up/<tenant>/<agent_id>`` and read only its acks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

ITERATIONS = 101  # mosquitto_passwd's default for $7$


def password_line(username: str, password: str) -> str:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"{username}:$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def agent_username(tenant: str, agent_id: str) -> str:
    return f"{tenant}/{agent_id}"


def set_user(path: str | Path, username: str, password: str) -> None:
    """Add or replace ``username`` in the password file (created 0600 if missing), atomically."""
    p = Path(path)
    lines = p.read_text().splitlines() if p.exists() else []
    lines = [ln for ln in lines if ln.split(":", 1)[0] != username]
    lines.append(password_line(username, password))
    _write(p, lines)


def remove_user(path: str | Path, username: str) -> bool:
    p = Path(path)
    if not p.exists():
        return False
    lines = p.read_text().splitlines()
    kept = [ln for ln in lines if ln.split(":", 1)[0] != username]
    _write(p, kept)
    return len(kept) != len(lines)


def _write(p: Path, lines: list[str]) -> None:
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    os.replace(tmp, p)
