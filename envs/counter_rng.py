"""Counter-based random numbers shared by the single and the batch-native vector games.

A vector env cannot hold one ``np.random.Generator`` per game and still step every game
with array operations, yet it must reproduce the trajectories of single envs seeded the
same way. Both therefore draw their in-episode randomness from a stateless hash of
``(episode_key, counter)``: the single env with Python integers, the vector env with
uint64 arrays, bit for bit the same. The ``episode_key`` itself is drawn from the env's
``np_random`` at every reset, so all randomness still flows from Gymnasium's seeding.

The hash is SplitMix64's finaliser (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014), which passes BigCrush as a counter-based
generator when fed distinct inputs.
"""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_TO_UNIT = 1.0 / float(1 << 53)


def mix64(value: int) -> int:
    """SplitMix64 finaliser of a Python int (taken modulo 2**64)."""
    z = value & MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & MASK64
    return z ^ (z >> 31)


def hash_counter(key: int, counter: int) -> int:
    """64 random bits for ``counter`` under ``key`` (Python ints)."""
    return mix64(key + (counter + 1) * GOLDEN_GAMMA)


def uniform(key: int, counter: int) -> float:
    """A float in [0, 1) for ``counter`` under ``key``; equals ``uniform_array``."""
    return (hash_counter(key, counter) >> 11) * _TO_UNIT


def below(key: int, counter: int, bound: int) -> int:
    """An int in [0, bound) for ``counter`` under ``key``; equals ``below_array``."""
    return int(uniform(key, counter) * bound)


def mix64_array(value: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of a uint64 array (wrapping arithmetic)."""
    z = np.asarray(value, dtype=np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def hash_counter_array(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Elementwise ``hash_counter`` over broadcast uint64 arrays."""
    key = np.asarray(key, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    return mix64_array(key + (counter + np.uint64(1)) * np.uint64(GOLDEN_GAMMA))


def uniform_array(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Elementwise ``uniform`` over broadcast arrays, float64 in [0, 1)."""
    return (hash_counter_array(key, counter) >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def below_array(key: np.ndarray, counter: np.ndarray, bound: np.ndarray | int) -> np.ndarray:
    """Elementwise ``below`` over broadcast arrays, int64 in [0, bound)."""
    return (uniform_array(key, counter) * np.asarray(bound)).astype(np.int64)


def draw_key(np_random: np.random.Generator) -> int:
    """A fresh 64-bit episode key from a Gymnasium ``np_random`` generator."""
    return int(np_random.integers(0, 1 << 63, dtype=np.int64)) * 2 + int(np_random.integers(0, 2))
