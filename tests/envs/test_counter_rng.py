import numpy as np
import pytest

from envs import counter_rng


def test_scalar_and_array_versions_agree_bit_for_bit():
    keys = [0, 1, 12345, (1 << 64) - 1, 0xDEADBEEFCAFEBABE]
    counters = [0, 1, 7, 1000, (1 << 40) + 3]
    key_array = np.array(keys, dtype=np.uint64)[:, None]
    counter_array = np.array(counters, dtype=np.uint64)[None, :]
    hashed = counter_rng.hash_counter_array(key_array, counter_array)
    unit = counter_rng.uniform_array(key_array, counter_array)
    bounded = counter_rng.below_array(key_array, counter_array, 7)
    for i, key in enumerate(keys):
        for j, counter in enumerate(counters):
            assert int(hashed[i, j]) == counter_rng.hash_counter(key, counter)
            assert unit[i, j] == counter_rng.uniform(key, counter)
            assert bounded[i, j] == counter_rng.below(key, counter, 7)


def test_uniform_is_roughly_uniform_and_independent_across_keys():
    counters = np.arange(200_000, dtype=np.uint64)
    values = counter_rng.uniform_array(np.uint64(42), counters)
    assert values.min() >= 0.0 and values.max() < 1.0
    histogram, _ = np.histogram(values, bins=20, range=(0, 1))
    assert np.all(np.abs(histogram / len(values) - 0.05) < 0.003)
    other = counter_rng.uniform_array(np.uint64(43), counters)
    assert abs(np.corrcoef(values, other)[0, 1]) < 0.01


def test_draw_key_uses_the_seeded_generator():
    first = counter_rng.draw_key(np.random.default_rng(3))
    again = counter_rng.draw_key(np.random.default_rng(3))
    other = counter_rng.draw_key(np.random.default_rng(4))
    assert first == again != other
    assert 0 <= first < (1 << 64)


@pytest.mark.parametrize("bound", [1, 2, 5, 138])
def test_below_stays_in_range(bound):
    values = counter_rng.below_array(np.uint64(9), np.arange(10_000, dtype=np.uint64), bound)
    assert values.min() == 0 and values.max() == bound - 1
