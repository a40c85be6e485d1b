"""The learner's gradient steps: compiled as eager, the non-finite guard, resume across the two.

The compiled update is compared with the eager one in float64: the compiled graph fuses
operations and so rounds differently in float32 on each CPU. One difference stays: compiled,
Adam computes its bias corrections in float32 from its step count (0.999 ** 1 is 1.3e-5 off
in float32), eagerly in Python floats, so each step differs by a relative 1e-5; the compiled
comparisons allow 1e-4 of each tensor's largest value.
"""

from __future__ import annotations

import io

import gymnasium as gym
import pytest
import torch

from agents import ActorCritic
from agents.spaces import map_leaves
from agents.trajectory import Trajectory
from launch.impala.config import TrainConfig
from launch.impala.learner import Learner, NonFiniteLossError
from tests.agents.test_policy import random_trajectory

STEPS, BATCH = 4, 4


def make_learner(compile_update: str, **overrides) -> Learner:
    torch.manual_seed(0)
    policy = ActorCritic(gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Discrete(3), core="rmc",
                         core_kwargs={"mem_slots": 2, "head_size": 4, "num_heads": 2}, hidden_size=8,
                         use_previous_action_reward=False).double()
    values = {"env": "CartPole-v1", "core": "rmc", "envs_per_actor": BATCH, "batch_size": BATCH,
              "unroll_length": STEPS, "total_steps": 10 * STEPS * BATCH, "learning_rate": 1e-2,
              "lr_schedule": "linear", "num_epochs": 2, "pg_ratio_clip": 0.2, "compile_update": compile_update,
              **overrides}
    return Learner(policy, TrainConfig(**values))


def batch(learner: Learner, seed: int) -> tuple[Trajectory, tuple[torch.Tensor, ...]]:
    trajectory = random_trajectory(learner.policy, steps=STEPS, batch_size=BATCH, seed=seed)
    trajectory = map_leaves(lambda leaf: leaf.double() if leaf.is_floating_point() else leaf, trajectory)
    return trajectory, tuple(learner.policy.initial_state(BATCH))


def weights_and_state(learner: Learner) -> dict[str, torch.Tensor]:
    tensors = {f"weight {name}": value.detach().clone() for name, value in learner.policy.state_dict().items()}
    for index, state in learner.optimizer.state_dict()["state"].items():
        tensors.update({f"optimizer {index} {key}": torch.as_tensor(value).detach().clone().cpu()
                        for key, value in state.items()})
    return tensors


def assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], rtol: float = 1e-9) -> None:
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        scale = float(value.detach().double().abs().max()) if value.numel() else 0.0
        torch.testing.assert_close(actual[name], value, rtol=rtol, atol=rtol * max(scale, 1e-3), msg=name)


COMPILED_RTOL = 1e-4


@pytest.mark.timeout(900)  # compiling the loss and the step takes a minute or two on a CPU
def test_compiled_updates_equal_eager_ones_and_resume_across_the_two() -> None:
    eager, compiled = make_learner("off"), make_learner("on")
    assert not eager.compiled and compiled.compiled
    for seed in range(3):  # three updates of two epochs each, the rate falling linearly
        results = []
        for learner in (eager, compiled):
            torch.manual_seed(seed)
            results.append(learner.update(*batch(learner, seed)))
        for name, value in results[0].items():
            assert results[1][name] == pytest.approx(value, rel=COMPILED_RTOL, abs=COMPILED_RTOL * 1e-3), name
        assert_same(weights_and_state(compiled), weights_and_state(eager), COMPILED_RTOL)
    assert results[1]["learning_rate"] == pytest.approx(1e-2 * 0.8)
    # a compiled learner's checkpoint goes on eagerly, and an eager one's compiled
    resumed_eager, resumed_compiled = make_learner("off"), make_learner("on")
    for resumed, source in ((resumed_eager, compiled), (resumed_compiled, eager)):
        resumed.policy.load_state_dict(source.policy.state_dict())
        resumed.load_state_dict(saved_and_loaded(source.state_dict()))
    for learner in (eager, compiled, resumed_eager, resumed_compiled):
        torch.manual_seed(3)
        learner.update(*batch(learner, 3))
    expected = weights_and_state(eager)
    for learner in (compiled, resumed_eager, resumed_compiled):
        assert_same(weights_and_state(learner), expected, COMPILED_RTOL)
    # compiled, a non-finite step is undone on the device
    before = weights_and_state(compiled)
    with pytest.raises(NonFiniteLossError):
        compiled.update(*poisoned(compiled, 7))
    assert_same(weights_and_state(compiled), before)


def saved_and_loaded(state: dict) -> dict:
    """``state`` through torch.save and torch.load, as a checkpoint takes it (loading the
    object itself would share its tensors between the two learners)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def poisoned(learner: Learner, seed: int) -> tuple[Trajectory, tuple[torch.Tensor, ...]]:
    trajectory, state = batch(learner, seed)
    reward = trajectory.reward.clone()
    reward[1, 2] = float("nan")
    return trajectory._replace(reward=reward), state


@pytest.mark.parametrize("name", ["adam", "radam"])
@pytest.mark.parametrize("good_updates", [0, 2])
def test_a_non_finite_update_changes_neither_the_weights_nor_the_optimiser(good_updates: int, name: str) -> None:
    learner = make_learner("off", optimizer=name)
    for seed in range(good_updates):
        learner.update(*batch(learner, seed))
    before = weights_and_state(learner)
    with pytest.raises(NonFiniteLossError, match=f"update {good_updates + 1}"):
        learner.update(*poisoned(learner, 7))
    assert_same(weights_and_state(learner), before)
    assert learner.updates == good_updates
    learner.update(*batch(learner, 8))  # the next good batch is applied
    assert not torch.equal(weights_and_state(learner)["weight action_head.linear.weight"],
                           before["weight action_head.linear.weight"])


def test_a_non_finite_step_after_a_finite_one_undoes_only_itself_and_later_steps(monkeypatch) -> None:
    learner = make_learner("off", num_epochs=3)
    trajectory, state = batch(learner, 0)
    after_one_step = make_learner("off", num_epochs=1, lr_schedule="constant")
    after_one_step.update(trajectory, state)
    calls = []
    step_loss = learner.gradient_step.loss

    def second_step_not_finite(*args):
        loss = step_loss(*args)
        calls.append(1)
        return loss._replace(total=loss.total * float("nan")) if len(calls) == 2 else loss

    monkeypatch.setattr(learner.gradient_step, "loss", second_step_not_finite)
    with pytest.raises(NonFiniteLossError):
        learner.update(trajectory, state)
    assert len(calls) == 3  # the steps ran on without waiting for the device
    assert_same(dict(learner.policy.named_parameters()), dict(after_one_step.policy.named_parameters()))


@pytest.mark.parametrize("name", ["adam", "radam"])
def test_the_optimiser_state_exists_before_the_first_step_and_matches_a_fresh_optimisers(name: str) -> None:
    learner = make_learner("off", num_epochs=1, lr_schedule="constant", optimizer=name)
    assert isinstance(learner.optimizer, {"adam": torch.optim.Adam, "radam": torch.optim.RAdam}[name])
    assert all(learner.optimizer.state[p] for p in learner.policy.parameters())
    reference = make_learner("off", num_epochs=1, lr_schedule="constant", optimizer=name)
    kind = torch.optim.Adam if name == "adam" else torch.optim.RAdam
    reference_optimizer = kind(reference.policy.parameters(), lr=1e-2, eps=reference.config.adam_eps)
    trajectory, state = batch(learner, 0)
    learner.update(trajectory, state)
    reference.policy.train()
    reference._initialise_value_normalization(trajectory, state)  # as the learner's update does first
    loss = reference.gradient_step._loss_eager(trajectory, state)
    loss.total.backward()
    torch.nn.utils.clip_grad_norm_(reference.policy.parameters(), reference.config.grad_norm_clip)
    reference_optimizer.step()
    for mine, theirs in zip(learner.policy.parameters(), reference.policy.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12)
