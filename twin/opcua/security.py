"""Security of the twin's OPC UA server (OPC 10000-2 and 10000-4, 7.37).

Two settings, as an automation engineer expects them:

- ``none``: SecurityPolicy None, anonymous access. For the embedded demo on loopback.
- ``sign-encrypt``: only ``Basic256Sha256`` with ``SignAndEncrypt``; the server presents an
  application instance certificate, self-signed and generated on first use into a PKI
  folder (kept, so clients can pin it); anonymous access is refused and only the
  configured username/password pairs are accepted.

The client certificate is not checked against a trust list: access control is the
username/password (a plant IT department would add a trust list; see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import hmac
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

log = logging.getLogger(__name__)

SecurityMode = Literal["none", "sign-encrypt"]
APPLICATION_URI = "urn:mestwin:twin:server"


@dataclass(frozen=True)
class SecurityConfig:
    """How the server is secured; ``users`` maps username -> password."""

    mode: SecurityMode = "none"
    users: dict[str, str] = field(default_factory=dict)
    pki_dir: Path = Path("mestwin-data/pki")

    def __post_init__(self) -> None:
        if self.mode == "sign-encrypt" and not self.users:
            raise ValueError(
                "security 'sign-encrypt' needs at least one username/password "
                "(--user NAME:PASSWORD)"
            )


class PasswordUserManager(UserManager):
    """asyncua user manager: only the configured username/password pairs get in."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None or password is None:
            log.warning("OPC UA: refused a session without username/password")
            return None
        expected = self._users.get(username)
        # Compare in constant time so the answer time does not tell how much matched.
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            log.warning("OPC UA: refused user %r (wrong username or password)", username)
            return None
        return User(role=UserRole.User, name=username)


async def ensure_certificate(pki_dir: Path, host: str) -> tuple[Path, Path]:
    """The server's certificate and key, generated self-signed on first use."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pki_dir.mkdir(parents=True, exist_ok=True)
    cert = pki_dir / "server-cert.der"
    key = pki_dir / "server-key.pem"
    existed = cert.is_file() and key.is_file()
    await setup_self_signed_certificate(
        key,
        cert,
        APPLICATION_URI,
        host,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {
            "countryName": "DE",
            "organizationName": "mestwin",
            "commonName": "mestwin twin OPC UA server",
        },
    )
    if not existed:
        log.info("OPC UA: generated a self-signed server certificate in %s", pki_dir)
    return cert, key


async def apply_security(server: Server, config: SecurityConfig) -> None:
    """Configure ``server`` (initialised, not started) for ``config``."""
    if config.mode == "none":
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        return
    cert, key = await ensure_certificate(config.pki_dir, socket.gethostname())
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    server.iserver.set_user_manager(PasswordUserManager(config.users))
