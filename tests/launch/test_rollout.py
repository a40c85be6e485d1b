"""launch.impala.rollout.record_unroll: one unroll of fresh games, for the tools that judge checkpoints."""

from __future__ import annotations

import torch

from launch.impala.config import TrainConfig
from launch.impala.rollout import record_unroll
from tests.launch.helpers import cartpole_policy

CONFIG = TrainConfig(env="CartPole-v1", hidden_size=32)


def test_recorded_unroll_has_the_learner_layout_and_follows_the_seed() -> None:
    policy = cartpole_policy(CONFIG)
    first, state, observation_space, action_space = record_unroll(CONFIG, policy.state_dict(), games=3, steps=7, seed=5)
    again, _, _, _ = record_unroll(CONFIG, policy.state_dict(), games=3, steps=7, seed=5)
    assert first.obs.shape == (8, 3, 4) and first.action.shape == (7, 3) and first.reset[0].all()
    assert torch.equal(first.obs, again.obs) and torch.equal(first.action, again.action)
    assert observation_space.shape == (4,) and action_space.n == 2
    assert [part.shape[0] for part in state] == [3] * len(state)


def test_warmup_unrolls_start_the_kept_unroll_mid_episode() -> None:
    torch.manual_seed(0)
    policy = cartpole_policy(CONFIG)
    fresh, fresh_state, _, _ = record_unroll(CONFIG, policy.state_dict(), games=16, steps=5, seed=5)
    warm, warm_state, _, _ = record_unroll(CONFIG, policy.state_dict(), games=16, steps=5, seed=5, warmup_unrolls=2)
    initial = policy.initial_state(16)
    assert fresh.reset[0].all() and all(torch.equal(part, start) for part, start in zip(fresh_state, initial))
    # After 10 steps most CartPole games are still in their first episode, carrying a core state.
    carried = ~warm.reset[0]
    assert carried.sum() >= 8
    assert all(not torch.allclose(part[carried], start[carried]) for part, start in zip(warm_state, initial))
