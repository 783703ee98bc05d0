"""The load profile (``loadtests/profile.yaml``): user mix, pace, seed sizes and SLOs.

Validated with pydantic so that a typo in the profile is refused with the field's path
before a load test spends minutes running with a default nobody chose.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PROFILE = Path(__file__).with_name("profile.yaml")
PROFILE_ENV = "MESTWIN_LOADTEST_PROFILE"

USER_KINDS = ("operator", "quality", "erp", "dashboard", "connector")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserMix(_Strict):
    """One kind of simulated user: its share of the users and its pace."""

    weight: Annotated[int, Field(ge=0, le=1000)]
    pace_seconds: Annotated[float, Field(gt=0, le=3600)]
    batch_events: Annotated[int, Field(ge=1, le=10_000)] = 500


class Users(_Strict):
    operator: UserMix
    quality: UserMix
    erp: UserMix
    dashboard: UserMix
    connector: UserMix


class Seed(_Strict):
    work_units_per_class: Annotated[int, Field(ge=1, le=10_000)] = 40
    operators: Annotated[int, Field(ge=1, le=10_000)] = 40
    lot_quantity: Annotated[float, Field(gt=0)] = 1e9


class RequestSlo(_Strict):
    p95_ms: Annotated[float | None, Field(gt=0)] = None
    p99_ms: Annotated[float | None, Field(gt=0)] = None


class Slo(_Strict):
    """Service-level objectives of one run (ISO 25010 time behaviour / capacity)."""

    max_error_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    p95_ms: Annotated[float | None, Field(gt=0)] = None
    p99_ms: Annotated[float | None, Field(gt=0)] = None
    min_throughput_rps: Annotated[float | None, Field(ge=0)] = None
    requests: dict[str, RequestSlo] = Field(default_factory=dict)


class LoadProfile(_Strict):
    users: Users
    seed: Seed = Field(default_factory=Seed)
    slo: Slo = Field(default_factory=Slo)


class ProfileError(ValueError):
    """The profile file cannot be read or does not validate; the message names the field."""


def load_profile(path: Path | None = None) -> LoadProfile:
    """Read a profile (default: ``$MESTWIN_LOADTEST_PROFILE`` or the shipped one)."""
    path = path or Path(os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read the load profile: {exc}") from exc
    try:
        return LoadProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ProfileError(f"{path}: {problems}") from exc
