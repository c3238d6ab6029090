"""Agent credentials: tokens ``<agent_id>.<secret>``, stored as SHA-256 of the secret.

Why SHA-256 and not scrypt: the secret is 256 bits from :func:`secrets.token_urlsafe`, not a
human password. Nobody can guess or brute-force 2**256 candidates, so a slow KDF would add
nothing but cost to a check made on every stream and (cached) on every MQTT envelope. The hash
still means a leaked database does not leak usable tokens. Comparison is constant-time.

The secret is shown once, by ``fittrack ingest agent add``; it is never logged (``repr`` of a
:class:`Principal` has no secret, and log lines carry only the agent id).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from .storage.base import AgentRecord, StorageBackend

#: agent ids and tenants: letters, digits, '-', '_', '.' not first; no '/', '+', '#' (MQTT topics)
ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")


class AuthError(Exception):
    """Credential refused. ``code``: "unauthenticated" (bad/unknown token) or "permission_denied"."""

    def __init__(self, message: str, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an agent (uploads) or a service (subscribes), in one tenant."""

    agent_id: str
    tenant: str
    role: str


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise ValueError(f"{what} {value!r}: use 1-128 letters, digits, '-', '_' or '.' (no '/', '+', '#', spaces)")
    return value


def new_secret() -> str:
    """256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def make_token(agent_id: str, secret: str) -> str:
    return f"{agent_id}.{secret}"


def split_token(token: str) -> tuple[str, str]:
    """``<agent_id>.<secret>`` -> (agent_id, secret); the secret is the part after the LAST dot."""
    agent_id, dot, secret = token.strip().rpartition(".")
    if not dot or not agent_id or not secret:
        raise AuthError("malformed token: expected '<agent_id>.<secret>' as issued by 'fittrack ingest agent add'")
    return agent_id, secret


async def issue(store: StorageBackend, tenant: str, agent_id: str, role: str = "agent") -> str:
    """Create a credential and return its token (the only time the secret exists in clear)."""
    check_id(tenant, "tenant")
    check_id(agent_id, "agent id")
    if role not in ("agent", "service"):
        raise ValueError(f"role must be 'agent' or 'service', got {role!r}")
    secret = new_secret()
    await store.add_agent(agent_id, tenant, hash_secret(secret), role)
    return make_token(agent_id, secret)


class Authenticator:
    """Checks tokens and agent status against the store.

    All agents are kept in memory and re-read in one query every ``ttl_s`` (default 2 s), which
    bounds how long a revocation takes to reach a running server; an agent not in memory (just
    added) is looked up on its own. Thousands of agents reconnecting at once cost one query,
    not thousands.
    """

    def __init__(self, store: StorageBackend, *, ttl_s: float = 2.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._agents: dict[str, AgentRecord] = {}
        self._loaded_at = -1e18
        self._misses: dict[str, float] = {}
        self._refreshing: "asyncio.Task[None] | None" = None

    async def _refresh(self) -> None:
        t = time.monotonic()
        self._agents = {a.agent_id: a for a in await self.store.list_agents()}
        self._loaded_at = t
        self._misses.clear()

    async def _record(self, agent_id: str) -> AgentRecord | None:
        now = time.monotonic()
        if now - self._loaded_at >= self.ttl_s:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self._refreshing)
        rec = self._agents.get(agent_id)
        if rec is not None:
            return rec
        missed = self._misses.get(agent_id)
        if missed is not None and now - missed < self.ttl_s:
            return None
        rec = await self.store.get_agent(agent_id)  # added since the last refresh?
        if rec is None:
            if len(self._misses) > 100_000:
                self._misses.clear()
            self._misses[agent_id] = now
        else:
            self._agents[agent_id] = rec
        return rec

    async def verify_token(self, token: str, *, role: str = "agent") -> Principal:
        """The principal of ``token``; raises :class:`AuthError` saying why not (never echoing it)."""
        agent_id, secret = split_token(token)
        rec = await self._record(agent_id)
        if rec is None or not hmac.compare_digest(rec.secret_sha256, hash_secret(secret)):
            raise AuthError(f"unknown agent or wrong secret for agent {agent_id!r}")
        if rec.revoked:
            raise AuthError(f"credential of agent {agent_id!r} was revoked")
        if rec.role != role:
            raise AuthError(f"agent {agent_id!r} is a {rec.role!r} credential; this call needs a {role!r} one", "permission_denied")
        return Principal(rec.agent_id, rec.tenant, rec.role)

    async def check_agent(self, agent_id: str, tenant: str) -> Principal:
        """For MQTT (the broker already checked the password): the agent exists in ``tenant``,
        is an uploader and is not revoked."""
        rec = await self._record(agent_id)
        if rec is None:
            raise AuthError(f"unknown agent {agent_id!r}")
        if rec.revoked:
            raise AuthError(f"credential of agent {agent_id!r} was revoked")
        if rec.tenant != tenant:
            raise AuthError(f"agent {agent_id!r} does not belong to tenant {tenant!r}", "permission_denied")
        if rec.role != "agent":
            raise AuthError(f"{agent_id!r} is a {rec.role!r} credential, not an uploading agent", "permission_denied")
        return Principal(rec.agent_id, rec.tenant, rec.role)
