"""Passwords (scrypt, stdlib), bearer tokens and API keys, and the acting user.

Tokens and API keys are random secrets stored only as their sha256, in the database, so
that any API worker can check any token (the API is stateless across workers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import NotAuthenticated
from mes_core.domain.states import Role
from mes_core.persistence.base import utcnow
from mes_core.persistence.models import AuthToken, Person

# scrypt cost: ~50 ms on this project's machines; enough against offline guessing for a
# test bench, cheap enough for e-signatures that re-enter the password.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches the stored scrypt hash (constant-time compare)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got.hex(), digest)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who is acting: a person (by code) or an API key, with the roles it holds."""

    name: str
    roles: frozenset[str]
    person_id: int | None = None
    person_code: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(self.roles & roles)


SYSTEM = Actor(name="system", roles=frozenset({Role.ADMIN.value}))


def verify_password(session: Session, *, person: str, password: str) -> Person:
    """The active person ``person`` if ``password`` is theirs (login and e-signatures)."""
    row = session.execute(select(Person).where(Person.code == person)).scalar_one_or_none()
    if row is None or not row.active or not check_password(password, row.password_hash):
        raise NotAuthenticated("wrong username or password", object_ref=f"person:{person}")
    return row


def issue_token(session: Session, *, person: Person, ttl: timedelta) -> tuple[str, datetime]:
    token = "mtt_" + secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    session.add(
        AuthToken(
            token_hash=_digest(token),
            kind="token",
            name=person.code,
            person_id=person.id,
            role=person.roles,
            expires_at=expires,
        )
    )
    return token, expires


def issue_api_key(session: Session, *, name: str, role: Role) -> str:
    key = "mtk_" + secrets.token_urlsafe(32)
    session.add(AuthToken(token_hash=_digest(key), kind="api_key", name=name, role=role.value))
    return key


def resolve(session: Session, secret: str) -> Actor:
    """The actor behind a bearer token or API key, or ``NotAuthenticated``."""
    row = session.execute(
        select(AuthToken).where(AuthToken.token_hash == _digest(secret))
    ).scalar_one_or_none()
    if row is None:
        raise NotAuthenticated("unknown token or API key")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise NotAuthenticated("token expired, log in again")
    roles = frozenset(r for r in row.role.split(",") if r)
    if row.person_id is not None:
        person = session.get(Person, row.person_id)
        if person is None or not person.active:
            raise NotAuthenticated("the token's person is no longer active")
        return Actor(person.code, frozenset(person.role_list), person.id, person.code)
    return Actor(f"api_key:{row.name}", roles)
