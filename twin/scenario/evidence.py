"""The sealed evidence pack: a run's report folder as test evidence a QA reviewer signs.

After a run, :func:`seal` writes ``manifest.json`` into the report folder: the SHA-256 of
every file in it, the SHA-256 of the scenario and plant files the run read, the product
versions (mestwin, the system under test), the git commit of the checkout the bench ran
from (when it ran from one), the machine and the seed. The manifest's bytes are signed with
Ed25519 (``manifest.sig``) and the public key is written beside it (``manifest.pub.pem``).

The key is the user's (``--signing-key <PEM>``, an unencrypted PKCS#8 Ed25519 private key)
or made for the run and thrown away after signing. A per-run key proves the pack has not
changed since it was sealed only to a reviewer who keeps the public key (or its
fingerprint, printed and stored in the manifest) apart from the pack; a user's key proves
who sealed it too. :func:`verify` checks the signature and names every file changed,
added or missing since.

GAMP 5 (second edition) and FDA's computer software assurance accept automated tests as
evidence when the record is complete and tamper-evident: this is that record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "manifest.pub.pem"
SEAL_FILES = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})
FORMAT = "mestwin-evidence-pack/1"
_CHUNK = 1 << 16


class EvidenceError(Exception):
    """The pack cannot be sealed or verified (names the file and what is wrong with it)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pack_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (POSIX paths relative to it), except the
    seal itself."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in SEAL_FILES:
            out[rel] = sha256_file(path)
    return out


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The user's Ed25519 private key (unencrypted PEM)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise EvidenceError(f"signing key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise EvidenceError(
            f"signing key {path}: not an unencrypted PEM private key: {exc}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"signing key {path}: {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<hex>`` of the raw public key: what a reviewer records to trust a pack."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def _input_file(path_text: str, base: Path) -> dict[str, str | None]:
    path = Path(path_text)
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        return {"path": path_text, "sha256": None, "reason": "file not found at sealing"}
    return {"path": str(path.resolve()), "sha256": sha256_file(path)}


def git_commit(source: Path | None = None) -> dict[str, Any] | None:
    """The commit of the checkout the bench runs from, and whether it has local changes;
    None when it does not run from a git checkout."""
    where = source or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {
        "commit": head.stdout.strip(),
        "local_changes": bool(status.stdout.strip()) if status.returncode == 0 else None,
    }


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def build_manifest(folder: Path, base: Path | None = None) -> dict[str, Any]:
    """The manifest of the report folder ``folder`` (it holds ``report.json``); relative
    scenario and plant paths are taken from ``base`` (default: the working directory)."""
    report_path = folder / "report.json"
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvidenceError(f"{report_path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{report_path}:{exc.lineno}: not JSON: {exc.msg}") from None
    scenario = report.get("scenario", {})
    where = base or Path.cwd()
    return {
        "format": FORMAT,
        "sealed_at": datetime.now(UTC).isoformat(),
        "scenario": {
            "name": scenario.get("name"),
            "file": _input_file(scenario.get("file", ""), where),
            "plant": _input_file(scenario.get("plant", ""), where),
        },
        "seed": report.get("seed"),
        "versions": report.get("versions", {}),
        "system_under_test": report.get("system_under_test"),
        "verdict": "passed" if report.get("passed") else "failed",
        "git": git_commit(),
        "machine": machine(),
        "files": pack_files(folder),
    }


@dataclass
class Seal:
    """What :func:`seal` wrote."""

    manifest: Path
    fingerprint: str
    key: str  # "given" or "per-run"


def seal(folder: Path, signing_key: Path | None = None, base: Path | None = None) -> Seal:
    """Write ``manifest.json``, its Ed25519 signature and the public key into ``folder``."""
    private = load_signing_key(signing_key) if signing_key else Ed25519PrivateKey.generate()
    public = private.public_key()
    manifest = build_manifest(folder, base)
    manifest["signature"] = {
        "algorithm": "Ed25519",
        "key": "given" if signing_key else "per-run",
        "public_key_fingerprint": fingerprint(public),
    }
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (folder / MANIFEST).write_bytes(data)
    (folder / SIGNATURE).write_bytes(base64.b64encode(private.sign(data)) + b"\n")
    (folder / PUBLIC_KEY).write_bytes(public_key_pem(public))
    return Seal(folder / MANIFEST, fingerprint(public), manifest["signature"]["key"])


@dataclass
class Verification:
    """The outcome of :func:`verify`: ``ok`` only when the signature holds and no file
    changed, appeared or went missing."""

    signature_valid: bool
    fingerprint: str | None
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.signature_valid
            and not (self.changed or self.added or self.missing)
            and not self.problems
        )


def _public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise EvidenceError(f"public key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise EvidenceError(f"public key {path}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"public key {path}: {type(key).__name__}, not an Ed25519 key")
    return key


def verify(folder: Path, public_key: Path | None = None) -> Verification:
    """Check the pack in ``folder`` against its manifest and signature. ``public_key``
    (PEM) is the key the reviewer trusts; without it the key in the pack is used, which
    shows the pack is intact since sealing but not who sealed it."""
    manifest_path = folder / MANIFEST
    try:
        data = manifest_path.read_bytes()
        signature_text = (folder / SIGNATURE).read_bytes()
    except OSError as exc:
        raise EvidenceError(
            f"{exc.filename}: {exc.strerror} (not a sealed evidence pack)"
        ) from None
    try:
        signature = base64.b64decode(signature_text, validate=False)
    except binascii.Error:
        signature = b""  # not base64: no signature verifies
    key = _public_key(public_key or folder / PUBLIC_KEY)
    out = Verification(signature_valid=True, fingerprint=fingerprint(key))
    try:
        key.verify(signature, data)
    except InvalidSignature:
        out.signature_valid = False
        out.problems.append(
            f"{MANIFEST}: the signature does not match (the manifest changed, or it was "
            "sealed with another key)"
        )
    try:
        manifest = json.loads(data)
        sealed: dict[str, str] = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        out.problems.append(f"{MANIFEST}: not a manifest (no 'files' table)")
        return out
    now = pack_files(folder)
    out.changed = sorted(f for f in sealed.keys() & now.keys() if sealed[f] != now[f])
    out.added = sorted(now.keys() - sealed.keys())
    out.missing = sorted(sealed.keys() - now.keys())
    return out
