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
from typing import TYPE_CHECKING

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes_core.domain.errors import NotAuthenticated
from mes_core.domain.states import Role
from mes_core.persistence.base import utcnow
from mes_core.persistence.models import AuthToken, Person

if TYPE_CHECKING:
    from mes_core.persistence.auth_cache import CredentialCache

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
#: Who a failed login is recorded as: nobody has been authenticated.
ANONYMOUS = Actor(name="anonymous", roles=frozenset())


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """A hash no password matches, of the same cost as a real one (made once)."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def verify_password(session: Session, *, person: str, password: str) -> Person:
    """The active person ``person`` if ``password`` is theirs (login and e-signatures).

    The password is checked against a hash in every case, a dummy one for an unknown or
    password-less person, so that the answer takes as long whether the person exists or
    not (issue 21, item 3: timing told which usernames exist)."""
    row = session.execute(select(Person).where(Person.code == person)).scalar_one_or_none()
    stored = row.password_hash if row is not None and row.password_hash else None
    matches = check_password(password, stored or _dummy_hash())
    if row is None or stored is None or not row.active or not matches:
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


def issue_api_key(
    session: Session, *, name: str, role: Role, ttl: timedelta
) -> tuple[str, datetime]:
    """A new API key for the integration ``name``, expiring after ``ttl``."""
    key = "mtk_" + secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    session.add(
        AuthToken(
            token_hash=_digest(key), kind="api_key", name=name, role=role.value, expires_at=expires
        )
    )
    return key, expires


def revoke_secret(session: Session, secret: str) -> bool:
    """Revoke the token or API key ``secret`` (True if there was one). The row is
    deleted: every API worker's credential cache drops it when this commits (the
    ``auth_token`` trigger announces it; see ``auth_cache``)."""
    found = session.execute(
        delete(AuthToken).where(AuthToken.token_hash == _digest(secret)).returning(AuthToken.id)
    ).first()
    return found is not None


def revoke_api_keys(session: Session, name: str) -> int:
    """Revoke every API key named ``name``; how many there were."""
    rows = session.execute(
        delete(AuthToken)
        .where(AuthToken.kind == "api_key", AuthToken.name == name)
        .returning(AuthToken.id)
    ).all()
    return len(rows)


def revoke_person_tokens(session: Session, person_code: str) -> int | None:
    """Revoke every bearer token of the person ``person_code``: how many there were, or
    None if there is no such person."""
    person_id = session.execute(
        select(Person.id).where(Person.code == person_code)
    ).scalar_one_or_none()
    if person_id is None:
        return None
    rows = session.execute(
        delete(AuthToken).where(AuthToken.person_id == person_id).returning(AuthToken.id)
    ).all()
    return len(rows)


def digest(secret: str) -> str:
    """The stored form of ``secret`` (its sha256), as the credential cache keys it."""
    return _digest(secret)


def resolve(session: Session, secret: str, cache: CredentialCache | None = None) -> Actor:
    """The actor behind a bearer token or API key, or ``NotAuthenticated``.

    One query (the token with its person) of plain columns, no ORM objects: it runs on
    every request, unless ``cache`` (a worker's, on PostgreSQL; see ``auth_cache``) holds
    the answer."""
    digest = _digest(secret)
    generation = 0
    if cache is not None:
        hit = cache.get(digest)
        if hit is not None and (hit.expires_at is None or hit.expires_at > utcnow()):
            return hit.actor
        generation = cache.generation
    actor, expires_at = _resolve(session, digest)
    if cache is not None:
        cache.put(digest, actor, expires_at, generation)
    return actor


def _resolve(session: Session, digest: str) -> tuple[Actor, datetime | None]:
    found = session.execute(
        select(
            AuthToken.name,
            AuthToken.role,
            AuthToken.expires_at,
            AuthToken.person_id,
            Person.id,
            Person.code,
            Person.roles,
            Person.active,
        )
        .outerjoin(Person, Person.id == AuthToken.person_id)
        .where(AuthToken.token_hash == digest)
    ).first()
    if found is None:
        raise NotAuthenticated("unknown token or API key")
    name, token_roles, expires_at, person_id, pid, code, person_roles, active = found
    if expires_at is not None and expires_at <= utcnow():
        raise NotAuthenticated("token expired, log in again")
    if person_id is not None:
        if pid is None or not active:
            raise NotAuthenticated("the token's person is no longer active")
        roles = frozenset(r for r in person_roles.split(",") if r)
        return Actor(code, roles, pid, code), expires_at
    roles = frozenset(r for r in token_roles.split(",") if r)
    return Actor(f"api_key:{name}", roles), expires_at


def create_person_once(
    session: Session, *, code: str, name: str, roles: str, password_hash: str
) -> bool:
    """Insert a person unless one with ``code`` exists; True if this call inserted it.

    ``INSERT ... ON CONFLICT DO NOTHING``: when several API workers start at once on an
    empty database, one inserts and the others see the conflict as "already there" (on
    PostgreSQL they wait for the winner's commit), never as a UniqueViolation."""
    table = Person.__table__
    assert isinstance(table, Table)
    values = {
        "code": code,
        "name": name,
        "roles": roles,
        "password_hash": password_hash,
        "active": True,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = pg_insert(table).values(values).on_conflict_do_nothing(index_elements=["code"])
        return session.execute(pg.returning(table.c.id)).first() is not None
    if dialect == "sqlite":
        lite = sqlite_insert(table).values(values).on_conflict_do_nothing(index_elements=["code"])
        return session.execute(lite.returning(table.c.id)).first() is not None
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover
