"""Electronic signatures in the spirit of 21 CFR Part 11: pure rules, no I/O.

- §11.50 (signature manifestations): a signed record shows the signer's printed name, the
  date and time of signing, and the meaning of the signature (review, approval,
  responsibility...).
- §11.70 (signature/record linking): the signature is bound to its record so it cannot be
  excised, copied or transferred: here by a SHA-256 over the record's canonical content and
  the manifestation together; any change to either breaks the hash.
- §11.200(a)(1)(i): a non-biometric signature needs the password again at signing, even in
  a logged-in session (the service checks it; this module states what is signed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class SignatureMeaning(StrEnum):
    """What the signer means by signing (§11.50(a)(3))."""

    APPROVAL = "approval"
    REVIEW = "review"
    RESPONSIBILITY = "responsibility"


#: Shortest reason accepted: a signature needs a stated reason, not a keystroke.
MIN_REASON_LENGTH = 5


class SignatureError(ValueError):
    """A signature request that cannot be accepted (the service maps it to 422)."""


def canonical(value: Any) -> str:
    """The canonical JSON of ``value`` (sorted keys, no spaces) that hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the signed record's canonical content."""
    return hashlib.sha256(canonical(record).encode()).hexdigest()


@dataclass(frozen=True)
class SignatureManifest:
    """What a signature shows and binds (§11.50, §11.70)."""

    signer: str
    printed_name: str
    signed_at: datetime
    meaning: SignatureMeaning
    reason: str
    record_ref: str
    record_hash: str

    def binding_hash(self) -> str:
        """SHA-256 binding the manifestation to the record hash (§11.70)."""
        body = asdict(self)
        body["signed_at"] = self.signed_at.isoformat(timespec="microseconds")
        body["meaning"] = self.meaning.value
        return hashlib.sha256(canonical(body).encode()).hexdigest()

    def display(self) -> str:
        """The human-readable manifestation, as shown on screens and printouts."""
        return (
            f"Signed by {self.printed_name} ({self.signer}) on "
            f"{self.signed_at.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}, "
            f"meaning: {self.meaning.value}; reason: {self.reason}"
        )


def check_request(meaning: str, reason: str) -> SignatureMeaning:
    """Validate the meaning and the reason of a signature request."""
    try:
        parsed = SignatureMeaning(meaning)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in SignatureMeaning)
        raise SignatureError(f"signature meaning {meaning!r} is not one of: {allowed}") from exc
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise SignatureError(
            f"a signature needs a reason of at least {MIN_REASON_LENGTH} characters"
        )
    return parsed


def verify_binding(manifest: SignatureManifest, record: dict[str, Any], stored: str) -> bool:
    """True when ``record`` still hashes to the manifest's record hash and the manifest
    still hashes to ``stored`` (neither record nor signature altered)."""
    return record_hash(record) == manifest.record_hash and manifest.binding_hash() == stored
