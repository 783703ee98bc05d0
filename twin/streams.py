"""Random number streams: one independent, named substream per work unit and purpose.

Each stream's generator is seeded from the run's root ``SeedSequence`` plus a spawn key
derived from the stream's *name* (CRC32 of e.g. ``"BTL1-FILLER/cycle"``), not from its
position. Adding a work unit or a failure mode therefore leaves every other stream's draws
unchanged, and the same seed gives the same run bit for bit.

Samplers draw in blocks (numpy is fast per array, slow per scalar) and hand out one value
per call; the block size never changes the values drawn.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator

import numpy as np

from plant_models.distributions import (
    AnyDistribution,
    Deterministic,
    Empirical,
    Exponential,
    Lognormal,
    Normal,
    Triangular,
    Uniform,
)

BLOCK = 512

Sampler = Callable[[], float]


def root_seed(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    """The root ``SeedSequence`` of a run."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(seed)


def substream(root: np.random.SeedSequence, name: str) -> np.random.Generator:
    """The generator of the stream called ``name`` under ``root``."""
    key = zlib.crc32(name.encode("utf-8"))
    child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, key))
    return np.random.Generator(np.random.PCG64(child))


def _blocks(draw: Callable[[int], np.ndarray]) -> Sampler:
    """Serves values one by one from blocks drawn by ``draw(n)``, a block when the last
    one is used up (so a stream's draws do not depend on when values are asked for).

    The sampler is the ``__next__`` of a C iterator over the blocks: a call costs about
    half a Python-level ``__call__`` that pops from a list, and a cycle draws several.
    """

    def blocks() -> Iterator[list[float]]:
        while True:
            yield draw(BLOCK).tolist()

    values: Iterator[float] = itertools.chain.from_iterable(blocks())
    return values.__next__


def _const(value: float) -> Sampler:
    def sample() -> float:
        return value

    return sample


def sampler(dist: AnyDistribution, rng: np.random.Generator, *, duration: bool) -> Sampler:
    """A zero-argument function returning draws of ``dist`` from ``rng``.

    ``duration`` clips draws below zero to zero (a time cannot be negative).
    """
    draw: Callable[[int], np.ndarray]
    if isinstance(dist, Deterministic):
        return _const(max(dist.value, 0.0) if duration else dist.value)
    if isinstance(dist, Exponential):
        mean = dist.mean_

        def draw(n: int) -> np.ndarray:
            return rng.exponential(mean, n)

    elif isinstance(dist, Normal):
        lo = dist.min if dist.min is not None else (0.0 if duration else None)
        hi = dist.max
        mu, sd = dist.mean_, dist.sd

        def draw(n: int) -> np.ndarray:
            x = rng.normal(mu, sd, n)
            if lo is not None or hi is not None:
                x = np.clip(x, lo, hi)
            return x

    elif isinstance(dist, Lognormal):
        m, s = dist.log_params()

        def draw(n: int) -> np.ndarray:
            return rng.lognormal(m, s, n)

    elif isinstance(dist, Triangular):
        low, mode, high = dist.low, dist.mode, dist.high

        def draw(n: int) -> np.ndarray:
            return rng.triangular(low, mode, high, n)

    elif isinstance(dist, Uniform):
        ulow, uhigh = dist.low, dist.high

        def draw(n: int) -> np.ndarray:
            return rng.uniform(ulow, uhigh, n)

    elif isinstance(dist, Empirical):
        values = np.asarray(dist.values, dtype=float)
        probs = np.asarray(dist.probabilities())

        def draw(n: int) -> np.ndarray:
            return rng.choice(values, size=n, p=probs)

    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unknown distribution {dist!r}")
    if duration and not isinstance(dist, Exponential | Lognormal | Normal):
        inner = draw

        def draw(n: int) -> np.ndarray:
            return np.maximum(inner(n), 0.0)

    return _blocks(draw)


def uniform01(rng: np.random.Generator) -> Sampler:
    """Uniform [0, 1) draws (for Bernoulli decisions such as scrap)."""
    return _blocks(lambda n: rng.random(n))
