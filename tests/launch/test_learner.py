"""The learner's optimiser and learning-rate schedule: constant, or linear to 0 at the run's end (steps or clock)."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents import ActorCritic
from launch.impala.buffers import select_games
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.learner import Learner, total_updates
from tests.agents.test_policy import random_trajectory


def make_learner(observation_normalization: bool = False, **overrides) -> Learner:
    torch.manual_seed(0)
    policy = ActorCritic(gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Discrete(2), core="lstm",
                         core_kwargs={"hidden_size": 8}, hidden_size=8,
                         observation_normalization=observation_normalization)
    # 4 unrolls of 5 steps per update: total_steps 200 is 10 updates
    values = {"env": "CartPole-v1", "core": "lstm", "envs_per_actor": 2, "batch_size": 4, "unroll_length": 5,
              "total_steps": 200, "learning_rate": 1e-3, "lr_kl_target": None, **overrides}  # the schedule alone
    return Learner(policy, TrainConfig(**values))


def update(learner: Learner, time_fraction: float = 0.0) -> dict[str, float]:
    trajectory = random_trajectory(learner.policy, steps=5, batch_size=4, seed=learner.updates)
    return learner.update(trajectory, learner.policy.initial_state(4), time_fraction)


def test_constant_schedule_keeps_the_rate() -> None:
    learner = make_learner(lr_schedule="constant")
    rates = [update(learner, time_fraction=0.9)["learning_rate"] for _ in range(3)]
    assert rates == [pytest.approx(1e-3)] * 3
    assert learner.learning_rate == pytest.approx(1e-3)


def test_linear_schedule_reaches_zero_at_total_steps() -> None:
    learner = make_learner(lr_schedule="linear")
    assert total_updates(learner.config) == 10
    rates = [update(learner)["learning_rate"] for _ in range(10)]
    assert rates == pytest.approx([1e-3 * (1 - i / 10) for i in range(10)])
    assert learner.learning_rate_factor() == 0.0
    learner.updates = 25  # past the end (a resumed run given more steps): never negative
    assert learner.learning_rate_factor() == 0.0


def test_linear_schedule_follows_the_clock_when_the_time_limit_comes_first() -> None:
    learner = make_learner(lr_schedule="linear")
    assert update(learner, time_fraction=0.25)["learning_rate"] == pytest.approx(0.75e-3)
    # one update of ten done (0.1) but 60% of the time used: the time decides
    assert update(learner, time_fraction=0.6)["learning_rate"] == pytest.approx(0.4e-3)
    # the steps are further along than the clock: the steps decide
    learner.updates = 8
    assert update(learner, time_fraction=0.5)["learning_rate"] == pytest.approx(0.2e-3)
    assert learner.learning_rate_factor(time_fraction=1.0) == 0.0


def test_the_schedule_survives_a_checkpoint_round_trip() -> None:
    learner = make_learner(lr_schedule="linear")
    for _ in range(4):
        update(learner)
    restored = make_learner(lr_schedule="linear")
    restored.load_state_dict(learner.state_dict())
    assert restored.updates == 4
    assert update(restored)["learning_rate"] == pytest.approx(0.6e-3)
    # checkpoints written before the schedule was computed here carry a scheduler entry
    older = make_learner(lr_schedule="linear")
    older.load_state_dict({**learner.state_dict(), "scheduler": {"last_epoch": 4}})
    assert older.updates == 4


def largest_relative_step(learner: Learner, gradient_scale: float, generator: torch.Generator) -> float:
    """One optimiser step on random gradients of ``gradient_scale``: largest |weight change| / learning rate."""
    parameters = list(learner.policy.parameters())
    before = [parameter.detach().clone() for parameter in parameters]
    for parameter in parameters:
        parameter.grad = gradient_scale * torch.randn(parameter.shape, generator=generator).abs()
    learner.optimizer.step()
    rate = learner.optimizer.param_groups[0]["lr"]
    return max(float((parameter.detach() - old).abs().max()) / rate for parameter, old in zip(parameters, before))


@pytest.mark.parametrize(("betas", "bounded"), [((0.9, 0.999), False), ((0.9, 0.9), True)])
def test_equal_adam_betas_bound_each_step_by_the_learning_rate(betas: tuple[float, float], bounded: bool) -> None:
    learner = make_learner(adam_beta1=betas[0], adam_beta2=betas[1])
    assert learner.optimizer.param_groups[0]["betas"] == betas
    generator = torch.Generator().manual_seed(0)
    for _ in range(1000):  # a long history of small gradients ...
        largest_relative_step(learner, 1e-4, generator)
    # ... then gradients 100x larger (the data changed under the policy)
    steps = [largest_relative_step(learner, 1e-2, generator) for _ in range(3)]
    if bounded:
        assert max(steps) <= 1.0 + 1e-3
    else:
        assert max(steps) > 2.0  # Adam's default betas: up to (1 - 0.9) / sqrt(1 - 0.999) = 3.2x the rate


def test_the_ratio_clip_reaches_the_loss_and_its_share_is_logged() -> None:
    assert make_learner(pg_ratio_clip=None).loss_config.pg_ratio_clip is None
    learner = make_learner(pg_ratio_clip=0.2)
    assert learner.loss_config.pg_ratio_clip == 0.2
    for _ in range(3):
        metrics = update(learner)
    assert 0.0 <= metrics["pg_clipped_fraction"] <= 1.0


def test_each_batch_takes_num_epochs_steps_and_moves_the_running_statistics_once() -> None:
    learner = make_learner(observation_normalization=True, num_epochs=3, pg_ratio_clip=0.2)
    head = learner.policy.value_head
    normalizer = learner.policy.encoder.flat_encoders[0].normalizer
    metrics = update(learner)
    steps = {int(state["step"]) for state in learner.optimizer.state.values()}
    assert steps == {3}  # three Adam steps ...
    assert learner.updates == 1  # ... one update of the schedule's counter
    # PopArt: set from the first batch's targets before its steps, moved once after them
    assert int(head.updates) == 2 and int(normalizer.updates) == 1
    assert metrics["value_scale"] != pytest.approx(1.0)  # not the initial scale
    update(learner)
    assert int(head.updates) == 3 and int(normalizer.updates) == 2
    assert {"loss_total", "grad_norm", "value_scale", "learning_rate"} <= set(metrics)
    assert "value_targets" not in metrics


def test_value_and_observation_normalisation_can_be_turned_off() -> None:
    config = TrainConfig(env="CartPole-v1", value_normalization="none", observation_normalization=False)
    from launch.impala.policy_factory import build_policy

    policy = build_policy(config, gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Discrete(2))
    assert policy.value_scale() is None
    assert not any("normalizer" in name or name.endswith(".mean") for name in policy.state_dict())


def test_target_kl_stops_a_batchs_epochs_once_the_policy_moved_that_far() -> None:
    strict = make_learner(num_epochs=4, pg_ratio_clip=0.2, target_kl=1e-12, learning_rate=1e-2)
    metrics = update(strict)
    assert metrics["epochs"] == 1.0  # the first epoch always runs; after it the policy has moved
    assert {int(state["step"]) for state in strict.optimizer.state.values()} == {1}
    free = make_learner(num_epochs=4, pg_ratio_clip=0.2, target_kl=None)
    assert update(free)["epochs"] == 4.0
    with pytest.raises(ConfigError, match="target_kl"):
        TrainConfig(env="CartPole-v1", target_kl=0.0).validate()


def test_the_first_batch_sets_the_value_statistics_before_its_steps() -> None:
    learner = make_learner(num_epochs=1, learning_rate=0.0)
    trajectory = random_trajectory(learner.policy, steps=5, batch_size=4, seed=0)
    trajectory = trajectory._replace(reward=trajectory.reward * 0.0 + 50.0)  # returns far from mu=0, sigma=1
    metrics = learner.update(trajectory, learner.policy.initial_state(4))
    assert metrics["value_scale"] > 10.0  # the loss saw the targets' own scale, not sigma = 1
    assert metrics["baseline_loss"] < 10.0


def test_minibatches_take_that_many_steps_per_epoch_on_disjoint_games() -> None:
    learner = make_learner(num_epochs=3, num_minibatches=2, pg_ratio_clip=0.2)
    metrics = update(learner)
    assert {int(state["step"]) for state in learner.optimizer.state.values()} == {6}
    assert metrics["gradient_steps"] == 6.0 and metrics["epochs"] == 3.0 and learner.updates == 1
    with pytest.raises(ConfigError, match="num_minibatches"):
        TrainConfig(env="CartPole-v1", batch_size=4, envs_per_actor=4, num_minibatches=5).validate()


@pytest.mark.parametrize("num_minibatches", [1, 2])
def test_clipped_against_the_update_start_later_epochs_get_the_first_epochs_log_probs(num_minibatches: int) -> None:
    learner = make_learner(num_epochs=3, num_minibatches=num_minibatches, pg_ratio_clip=0.2,
                           pg_clip_reference="update")
    assert learner.loss_config.pg_clip_reference == "update"
    step, calls = learner.gradient_step, []
    compute = step.loss

    def recording_loss(minibatch, state, proximal_log_prob=None):
        loss = compute(minibatch, state, proximal_log_prob)
        calls.append((minibatch.behaviour_log_prob, proximal_log_prob, loss.log_prob))
        return loss

    step.loss = recording_loss
    update(learner)
    first = calls[:num_minibatches]
    assert all(proximal is None for _, proximal, _ in first)  # the first epoch is its own proximal policy
    by_game = {tuple(behaviour[:, game].tolist()): log_prob[:, game]  # a game's unroll: its first-epoch log-probs
               for behaviour, _, log_prob in first for game in range(behaviour.shape[1])}
    assert len(by_game) == 4
    for behaviour, proximal, log_prob in calls[num_minibatches:]:
        for game in range(behaviour.shape[1]):
            torch.testing.assert_close(proximal[:, game], by_game[tuple(behaviour[:, game].tolist())])
        assert not torch.equal(log_prob, proximal)  # the policy moved since the update's start
    assert len(calls) == 3 * num_minibatches
    behaviour_learner = make_learner(num_epochs=2, pg_ratio_clip=0.2)
    assert behaviour_learner.loss_config.pg_clip_reference == "behaviour"


def test_select_games_takes_the_same_games_from_every_leaf_and_the_core_state() -> None:
    learner = make_learner()
    trajectory = random_trajectory(learner.policy, steps=5, batch_size=4, seed=3)
    trajectory = trajectory._replace(policy_log_prob=-torch.rand(5, 4))  # the optional field too
    state = tuple(torch.randn_like(tensor) for tensor in learner.policy.initial_state(4))
    index = torch.tensor([3, 1])
    part, part_state = select_games(trajectory, state, index)
    for whole, selected in zip(trajectory, part):
        assert torch.equal(selected, whole[:, index])
    for whole, selected in zip(state, part_state):
        assert torch.equal(selected, whole[index])


def test_the_kl_adaptive_rate_falls_when_the_policy_moves_too_far_and_recovers_when_it_does_not() -> None:
    learner = make_learner(lr_schedule="constant", lr_kl_target=0.01)
    learner._adapt_to_kl(0.05)  # above twice the target
    assert learner.kl_factor == pytest.approx(1 / 1.5)
    assert update(learner)["learning_rate"] == pytest.approx(1e-3 / 1.5)  # the next update's rate
    learner.kl_factor = 1 / 1.5
    learner._adapt_to_kl(0.01)  # within [target / 2, 2 * target]: unchanged
    assert learner.kl_factor == pytest.approx(1 / 1.5)
    for _ in range(3):
        learner._adapt_to_kl(0.001)
    assert learner.kl_factor == 1.0  # never above the scheduled rate
    for _ in range(100):
        learner._adapt_to_kl(10.0)
    assert learner.kl_factor == pytest.approx(1e-3)  # nor below a thousandth of it
    restored = make_learner(lr_schedule="constant", lr_kl_target=0.01)
    restored.load_state_dict(learner.state_dict())
    assert restored.kl_factor == learner.kl_factor


def test_without_a_kl_target_the_rate_is_the_schedules() -> None:
    learner = make_learner(lr_schedule="constant")
    learner._adapt_to_kl(10.0)
    assert learner.kl_factor == 1.0
    with pytest.raises(ConfigError, match="lr_kl_target"):
        TrainConfig(env="CartPole-v1", lr_kl_target=0.0).validate()
