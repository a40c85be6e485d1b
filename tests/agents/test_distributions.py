"""Action distributions and heads against torch.distributions and the action spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import distributions as td

from agents.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagonalGaussianDistribution,
    MultiCategoricalDistribution,
)
from agents.heads import make_action_head
from agents.spaces import UnsupportedSpaceError


@pytest.fixture
def generator():
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


def test_categorical_matches_torch(generator):
    logits = torch.randn(3, 4, 6, generator=generator)
    ours, reference = CategoricalDistribution(logits), td.Categorical(logits=logits)
    action = torch.randint(0, 6, (3, 4), generator=generator)
    torch.testing.assert_close(ours.log_prob(action), reference.log_prob(action))
    torch.testing.assert_close(ours.entropy(), reference.entropy())
    torch.testing.assert_close(ours.mode(), logits.argmax(-1))
    assert ours.sample().shape == (3, 4)


def test_categorical_samples_follow_the_probabilities():
    torch.manual_seed(1)
    probs = torch.tensor([0.1, 0.6, 0.3])
    samples = CategoricalDistribution(probs.log().expand(20000, 3)).sample()
    frequencies = torch.bincount(samples, minlength=3).float() / samples.numel()
    torch.testing.assert_close(frequencies, probs, atol=0.02, rtol=0)


def test_multi_categorical_sums_its_components(generator):
    logits = torch.randn(5, 2 + 3 + 4, generator=generator)
    ours = MultiCategoricalDistribution(logits, (2, 3, 4), (3,))
    parts = [td.Categorical(logits=p) for p in logits.split([2, 3, 4], dim=-1)]
    action = torch.stack([torch.randint(0, n, (5,), generator=generator) for n in (2, 3, 4)], dim=-1)
    expected = sum(p.log_prob(action[:, i]) for i, p in enumerate(parts))
    torch.testing.assert_close(ours.log_prob(action), expected)
    torch.testing.assert_close(ours.entropy(), sum(p.entropy() for p in parts))
    sample = ours.sample()
    assert sample.shape == (5, 3) and (sample < torch.tensor([2, 3, 4])).all() and (sample >= 0).all()
    with pytest.raises(ValueError, match="expected 9 logits"):
        MultiCategoricalDistribution(logits[:, :8], (2, 3, 4), (3,))


def test_bernoulli_matches_torch(generator):
    logits = torch.randn(4, 6, generator=generator)
    ours = BernoulliDistribution(logits, (2, 3))
    reference = td.Bernoulli(logits=logits)
    bits = torch.randint(0, 2, (4, 2, 3), generator=generator)
    torch.testing.assert_close(ours.log_prob(bits), reference.log_prob(bits.reshape(4, 6).float()).sum(-1))
    torch.testing.assert_close(ours.entropy(), reference.entropy().sum(-1))
    assert ours.sample().shape == (4, 2, 3)
    torch.testing.assert_close(ours.mode(), (logits > 0).long().reshape(4, 2, 3))


def test_gaussian_matches_torch(generator):
    params = torch.randn(4, 2 * 3, generator=generator)
    ours = DiagonalGaussianDistribution(params, (3,))
    mean, log_std = params.chunk(2, -1)
    reference = td.Normal(mean, log_std.exp())
    action = torch.randn(4, 3, generator=generator)
    torch.testing.assert_close(ours.log_prob(action), reference.log_prob(action).sum(-1))
    torch.testing.assert_close(ours.entropy(), reference.entropy().sum(-1))
    torch.testing.assert_close(ours.mode(), mean)


def test_heads_layout_and_env_actions():
    discrete = make_action_head(gym.spaces.Discrete(4, start=-1), 8)
    assert discrete.action_shape == () and discrete.action_dtype == torch.int64
    np.testing.assert_array_equal(discrete.to_env_action(torch.tensor([0, 3])), [-1, 2])
    torch.testing.assert_close(discrete.encode_action(torch.tensor([2])), torch.tensor([[0.0, 0.0, 1.0, 0.0]]))

    multi = make_action_head(gym.spaces.MultiDiscrete([3, 2], start=[1, 5]), 8)
    assert multi.action_shape == (2,) and multi(torch.zeros(1, 8)).shape == (1, 5)
    np.testing.assert_array_equal(multi.to_env_action(torch.tensor([[2, 1]])), [[3, 6]])
    torch.testing.assert_close(multi.encode_action(torch.tensor([[2, 1]])), torch.tensor([[0.0, 0, 1, 0, 1]]))

    binary = make_action_head(gym.spaces.MultiBinary(3), 8)
    assert binary.action_shape == (3,) and binary.action_dtype == torch.int64
    assert gym.spaces.MultiBinary(3).contains(binary.to_env_action(torch.tensor([[1, 0, 1]]))[0])

    box_space = gym.spaces.Box(np.array([-1.0, 0.0], dtype=np.float32), np.array([1.0, 2.0], dtype=np.float32))
    box = make_action_head(box_space, 8)
    assert box.action_shape == (2,) and box.action_dtype == torch.float32
    params = box(torch.zeros(3, 8))
    assert params.shape == (3, 4)
    env_action = box.to_env_action(torch.tensor([[-5.0, 5.0], [0.5, 1.0]]))
    np.testing.assert_allclose(env_action, [[-1.0, 2.0], [0.5, 1.0]])
    assert env_action.dtype == np.float32 and all(box_space.contains(a) for a in env_action)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (gym.spaces.Text(5), "unsupported action space Text"),
        (gym.spaces.Box(0, 3, (2,), dtype=np.int64), "needs a floating dtype"),
        (gym.spaces.Tuple((gym.spaces.Discrete(2),)), "unsupported action space Tuple"),
    ],
)
def test_unsupported_action_spaces_are_named(space, message):
    with pytest.raises(UnsupportedSpaceError, match=message):
        make_action_head(space, 8)
