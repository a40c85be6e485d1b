"""PopArt: statistics that follow the targets, outputs that stay put, losses that ignore the reward scale."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import ActorCritic
from agents.loss import LossConfig, impala_loss
from agents.normalization import ObservationNormalizer, PopArtValueHead
from tests.agents.test_loss import TablePolicy, make_trajectory


def test_rescaling_preserves_every_output_while_the_statistics_move() -> None:
    torch.manual_seed(0)
    head = PopArtValueHead(6, step_size=0.1).double()
    features = torch.randn(50, 6, dtype=torch.float64)
    for scale, shift in [(1.0, 0.0), (100.0, 50.0), (0.01, -3.0), (1e4, 1e3)]:
        before = head(features)
        head.update(torch.randn(200, dtype=torch.float64) * scale + shift)
        torch.testing.assert_close(head(features), before, rtol=1e-10, atol=1e-10)


def test_first_update_takes_the_batch_statistics_then_a_moving_average() -> None:
    head = PopArtValueHead(3, step_size=0.01)
    targets = torch.tensor([10.0, 20.0, 30.0, 40.0])
    head.update(targets)
    assert head.mean.item() == pytest.approx(25.0)
    assert head.scale.item() == pytest.approx(targets.std(unbiased=False).item(), rel=1e-5)
    head.update(targets + 100.0)  # second update: step 1/2, the mean of both batches
    assert head.mean.item() == pytest.approx(75.0)
    for _ in range(1000):  # long after 1/k falls below the step size: tracks the latest batches
        head.update(torch.full((4,), 5.0))
    assert head.mean.item() == pytest.approx(5.0, abs=0.01)


def test_masked_targets_do_not_count_and_constant_targets_keep_a_floor() -> None:
    head = PopArtValueHead(3)
    head.update(torch.tensor([1.0, 1.0, 1e6]), mask=torch.tensor([True, True, False]))
    assert head.mean.item() == pytest.approx(1.0)
    assert head.scale.item() == pytest.approx(math.sqrt(head.min_variance))
    head.update(torch.tensor([7.0]), mask=torch.tensor([False]))  # nothing counted: nothing changes
    assert head.updates.item() == 1 and head.mean.item() == pytest.approx(1.0)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="step_size"):
        PopArtValueHead(3, step_size=0.0)
    with pytest.raises(ValueError, match="min_variance"):
        PopArtValueHead(3, min_variance=-1.0)


def test_actor_critic_values_are_unnormalised_and_the_statistics_travel_in_the_state_dict() -> None:
    spaces = gym.spaces.Box(-1.0, 1.0, (4,)), gym.spaces.Discrete(3)
    policy = ActorCritic(*spaces, core="none", hidden_size=16)
    assert {"value_head.mean", "value_head.mean_square", "value_head.updates"} <= set(policy.state_dict())
    obs = torch.randn(2, 5, 4)
    reset = torch.zeros(2, 5, dtype=torch.bool)
    zeros = torch.zeros(2, 5, dtype=torch.int64), torch.zeros(2, 5)
    before = policy.unroll(obs, *zeros, reset, ())[0].value
    policy.update_value_normalization(torch.randn(2, 5) * 300.0 + 1000.0, torch.ones(2, 5, dtype=torch.bool))
    assert policy.value_scale().item() > 100.0
    torch.testing.assert_close(policy.unroll(obs, *zeros, reset, ())[0].value, before, rtol=1e-4, atol=1e-3)

    plain = ActorCritic(*spaces, core="none", hidden_size=16, value_normalization="none")
    assert plain.value_scale() is None
    assert not any(name.startswith("value_head.m") for name in plain.state_dict())
    with pytest.raises(ValueError, match="value_normalization"):
        ActorCritic(*spaces, core="none", value_normalization="rescale")


def test_the_first_policy_is_close_to_uniform() -> None:
    policy = ActorCritic(gym.spaces.Box(-10.0, 10.0, (4,)), gym.spaces.Discrete(5), core="none", hidden_size=32)
    obs = torch.randn(1, 64, 4) * 10.0
    output, _ = policy.unroll(obs, torch.zeros(1, 64, dtype=torch.int64), torch.zeros(1, 64),
                              torch.zeros(1, 64, dtype=torch.bool), ())
    entropy = policy.distribution(output.policy_params).entropy()
    assert entropy.min().item() > 0.99 * math.log(5)


class ScaledTablePolicy(TablePolicy):
    """A table policy whose values are in units of ``scale`` (PopArt's sigma)."""

    def __init__(self, values: list[float], scale: float) -> None:
        super().__init__([value * scale for value in values])
        self.scale = scale

    def value_scale(self) -> torch.Tensor:
        return torch.tensor(self.scale)


@pytest.mark.parametrize("advantage_normalization", [False, True])
def test_the_loss_does_not_depend_on_the_reward_scale(advantage_normalization) -> None:
    # The same problem in units 1 and 1000: with the value scale known, every gradient that
    # reaches the policy is the same, and the value loss is the same number.
    results = []
    for scale in (1.0, 1000.0):
        policy = ScaledTablePolicy([0.5, -1.0, 2.0, 0.0], scale)
        trajectory = make_trajectory(policy, [0, 1, 2, 3], [False] * 4, [1, 0, 1],
                                     [1.0 * scale, -2.0 * scale, 3.0 * scale], [False, False, True], [False] * 3)
        config = LossConfig(discount=0.9, entropy_cost=0.01, pg_ratio_clip=0.2,
                            advantage_normalization=advantage_normalization)
        loss = impala_loss(policy, trajectory, (), config)
        loss.total.backward()
        results.append((loss, policy.logits.grad.clone()))
    (small, small_grad), (large, large_grad) = results
    torch.testing.assert_close(large_grad, small_grad)
    assert large.baseline_loss.item() == pytest.approx(small.baseline_loss.item(), rel=1e-5)
    assert large.value_scale.item() == 1000.0
    torch.testing.assert_close(large.value_targets, small.value_targets * 1000.0)


def test_advantage_normalization_gives_unit_advantages() -> None:
    # With the table's logits at 0 for the taken actions' competitors the policy term's
    # gradient is proportional to the advantages: check their mean and spread via the loss.
    policy = TablePolicy([0.0, 0.0, 0.0, 0.0])
    trajectory = make_trajectory(policy, [0, 1, 2, 3], [False] * 4, [1, 0, 1], [5.0, -40.0, 100.0],
                                 [False, False, True], [False] * 3)
    plain = impala_loss(policy, trajectory, (), LossConfig(discount=0.9, entropy_cost=0.0))
    normalised = impala_loss(policy, trajectory, (), LossConfig(discount=0.9, entropy_cost=0.0,
                                                                advantage_normalization=True))
    # plain: -sum(log pi * A) with |A| up to 100; normalised: advantages of mean 0, std 1
    log_pi = torch.stack([torch.log_softmax(policy.logits[o], -1)[a] for o, a in [(0, 1), (1, 0), (2, 1)]])
    advantages = torch.tensor([5.0, -40.0, 100.0])  # V = 0 everywhere and the last step terminates
    advantages[0] += 0.9 * -40.0 + 0.81 * 100.0
    advantages[1] += 0.9 * 100.0
    expected_plain = -(log_pi * advantages).sum()  # reduction "sum"
    unit = (advantages - advantages.mean()) / advantages.std(unbiased=False)
    expected_normalised = -(log_pi * unit).sum()
    assert plain.policy_loss.item() == pytest.approx(expected_plain.item(), rel=1e-4)
    assert normalised.policy_loss.item() == pytest.approx(expected_normalised.item(), rel=1e-4)


def test_observation_normalizer_follows_the_features_and_clips() -> None:
    normalizer = ObservationNormalizer(2, step_size=0.01)
    features = torch.tensor([[0.1, 100.0], [-0.1, 300.0], [0.3, 200.0], [-0.3, 400.0]])
    normalizer.update(features)  # the first batch sets the statistics
    out = normalizer(features)
    torch.testing.assert_close(out.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert normalizer(torch.tensor([[1e6, -1e6]])).tolist() == [[normalizer.clip, -normalizer.clip]]
    with pytest.raises(ValueError, match="step_size"):
        ObservationNormalizer(2, step_size=2.0)


def test_vector_observations_are_normalised_by_statistics_the_learner_moves() -> None:
    space = gym.spaces.Dict({"position": gym.spaces.Box(-1e3, 1e3, (3,)), "flags": gym.spaces.MultiBinary(2)})
    policy = ActorCritic(space, gym.spaces.Discrete(2), core="none", hidden_size=8, observation_normalization=True)
    names = [name for name in policy.state_dict() if "normalizer" in name]
    assert names and all("flat_encoders.0" in name or "flat_encoders.1" in name for name in names)
    assert len([name for name in names if name.endswith(".mean")]) == 1  # the Box leaf only
    obs = {"position": torch.randn(4, 5, 3) * 500.0 + 1000.0, "flags": torch.ones(4, 5, 2)}
    policy.update_observation_normalization(obs)
    normalizer = next(module for module in policy.modules() if isinstance(module, ObservationNormalizer))
    torch.testing.assert_close(normalizer.mean, obs["position"].reshape(20, 3).mean(0))
    plain = ActorCritic(space, gym.spaces.Discrete(2), core="none", hidden_size=8)  # off by default
    assert not any("normalizer" in name for name in plain.state_dict())
    plain.update_observation_normalization(obs)  # nothing to update: no error


def test_lstm_output_norm_brings_the_lstm_output_to_unit_scale() -> None:
    torch.manual_seed(0)
    spaces = gym.spaces.Box(-1.0, 1.0, (4,)), gym.spaces.Discrete(2)
    plain = ActorCritic(*spaces, core="lstm", hidden_size=32)
    normed = ActorCritic(*spaces, core="lstm", hidden_size=32, lstm_output_norm=True)
    assert isinstance(normed.core_output_norm, torch.nn.LayerNorm)
    assert isinstance(plain.core_output_norm, torch.nn.Identity)
    seen = {}
    normed.head_mlp.register_forward_hook(lambda module, inputs, output: seen.__setitem__("normed", inputs[0]))
    plain.head_mlp.register_forward_hook(lambda module, inputs, output: seen.__setitem__("plain", inputs[0]))
    obs = torch.randn(6, 4, 4)
    for policy in (plain, normed):
        policy.unroll(obs, torch.zeros(6, 4, dtype=torch.int64), torch.zeros(6, 4), torch.zeros(6, 4, dtype=torch.bool),
                      policy.initial_state(4))
    assert seen["plain"].std().item() < 0.2  # an untrained LSTM's h is small
    assert seen["normed"].std().item() == pytest.approx(1.0, abs=0.05)


def test_symbolic_uint8_images_reach_the_convolutions_at_unit_scale_per_channel() -> None:
    """MiniGrid-like cells (object 0-10, colour 0-5, state 0-2 in a uint8 image): normalised
    per channel by statistics the learner moves, the channels reach the convolutions with mean
    0 and standard deviation 1 instead of at 1/255 of their units."""
    space = gym.spaces.Box(0, 255, (7, 7, 3), dtype=np.uint8)
    policy = ActorCritic(space, gym.spaces.Discrete(3), core="lstm", hidden_size=8, image_normalization=True)
    generator = torch.Generator().manual_seed(0)
    images = torch.stack([torch.randint(0, 11, (4, 5, 7, 7), generator=generator),
                          torch.randint(0, 6, (4, 5, 7, 7), generator=generator),
                          torch.randint(0, 3, (4, 5, 7, 7), generator=generator)], dim=-1).to(torch.uint8)
    policy.update_observation_normalization(images)  # [T, B, H, W, C]
    encoder = policy.encoder.image_encoders[0]
    seen = {}
    encoder.convolutions.register_forward_pre_hook(lambda module, inputs: seen.update(x=inputs[0]))
    encoder(images.reshape(20, 7, 7, 3))
    per_channel = seen["x"].transpose(0, 1).reshape(3, -1)  # [C, N * H * W]
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1, correction=0), torch.ones(3), atol=1e-3, rtol=0)
    plain = ActorCritic(space, gym.spaces.Discrete(3), core="lstm", hidden_size=8)  # off by default
    assert not any("normalizer" in name for name in plain.state_dict())
    plain.update_observation_normalization(images)
