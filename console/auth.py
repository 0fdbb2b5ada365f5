"""Console access: argon2 password hashes, signed session cookies, CSRF tokens, roles.

A session is a signed, timestamped cookie ``{"u": user, "e": epoch, "n": nonce}`` (anonymous
visitors get one with only the nonce, so the login form is CSRF-protected too). The user's
``session_epoch`` is part of it: logging out, or ``user add`` changing the password or role,
bumps the epoch and voids every cookie issued before. The signing key is
``BRIDGE_CONSOLE_SECRET`` or, when unset, a random key kept in ``bridge_state`` so every
replica (and every restart) shares it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bridge.storage import Storage
from bridge.storage.console import ROLES

_T = TypeVar("_T")

COOKIE = "passiton_console"
SECRET_KEY = "console_secret"  # noqa: S105 - the bridge_state key, not a secret
RANK = {role: rank for rank, role in enumerate(ROLES)}
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the user does not exist keeps the answer time the same;
    made at the first login, not when every process that imports the console starts."""
    return _hasher.hash("no such user, constant-time refusal")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


class Busy(Exception):
    """Too many password checks waiting: the login is refused without checking."""


class PasswordWork:
    """argon2 off the event loop, on a few threads of its own: a login no longer stalls the
    webhook, and a flood of logins cannot take every thread of the loop's default executor
    (which name resolution uses). At most ``pending`` checks run or wait; more raise Busy.
    argon2 releases the GIL while it hashes."""

    def __init__(self, workers: int = 2, pending: int = 8) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="console-argon2")
        self.pending = pending
        self.in_flight = 0

    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        if self.in_flight >= self.pending:
            raise Busy
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.in_flight -= 1

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(verify_password, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def valid_username(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._@-" for c in name)


async def console_secret(storage: Storage, configured: str, now: datetime) -> str:
    """The configured key, or the one stored in bridge_state (created on first use)."""
    if configured:
        return configured
    async with storage.transaction() as tx:
        await tx.init_state(SECRET_KEY, secrets.token_urlsafe(48), now)
        value = await tx.get_state(SECRET_KEY)
    assert value is not None
    return value


@dataclass(frozen=True)
class Session:
    nonce: str
    username: str = ""
    epoch: int = -1


class Sessions:
    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt="passiton-console-session")
        self._csrf_key = hashlib.sha256(b"passiton-console-csrf\0" + secret.encode()).digest()
        self.max_age = int(max_age_seconds)

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("n"), str):
            return None
        username, epoch = data.get("u", ""), data.get("e", -1)
        if not isinstance(username, str) or not isinstance(epoch, int):
            return None
        return Session(data["n"], username, epoch)

    def dump(self, session: Session) -> str:
        data: dict[str, Any] = {"n": session.nonce}
        if session.username:
            data.update(u=session.username, e=session.epoch)
        return self._serializer.dumps(data)

    def seal(self, data: dict[str, str], purpose: str) -> str:
        """Signed, timestamped ``data`` for another cookie (``purpose`` keeps each kind of
        cookie from passing for another, a session among them)."""
        return URLSafeTimedSerializer(self._secret, salt=f"passiton-console-{purpose}").dumps(data)

    def unseal(self, text: str | None, purpose: str, max_age: float) -> dict[str, str] | None:
        """What ``seal`` signed, if its signature holds and it is younger than ``max_age``."""
        if not text:
            return None
        serializer = URLSafeTimedSerializer(self._secret, salt=f"passiton-console-{purpose}")
        try:
            data: Any = serializer.loads(text, max_age=int(max_age))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return None
        return data

    @staticmethod
    def anonymous() -> Session:
        return Session(secrets.token_urlsafe(16))

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session), token or "")


def allowed(role: str, needed: str) -> bool:
    return RANK.get(role, -1) >= RANK[needed]
