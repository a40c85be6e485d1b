"""The policy on real Gymnasium vector envs: CartPole and the project's Box-World / Mini PacMan.

Rollouts follow the Trajectory contract (NEXT_STEP autoreset: the step after an episode
ends returns the next episode's first observation), then one learner step on them.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the rmc/ ids)
from agents import ActorCritic
from agents.loss import LossConfig, impala_loss
from agents.trajectory import Trajectory

SMALL_CORES = {"rmc": {"mem_slots": 2, "head_size": 8, "num_heads": 2}, "lstm": {"hidden_size": 16}, "none": None}


def collect(policy: ActorCritic, vector_env: gym.vector.VectorEnv, steps: int, seed: int):
    """Runs ``steps`` vector steps with ``policy.act``; returns (trajectory, initial_state)."""
    num_envs = vector_env.num_envs
    observation, _ = vector_env.reset(seed=seed)
    reset = torch.ones(num_envs, dtype=torch.bool)
    previous_action = torch.zeros(num_envs, *policy.action_shape, dtype=policy.action_dtype)
    previous_reward = torch.zeros(num_envs)
    initial_state = state = policy.initial_state(num_envs)
    record = {key: [] for key in ("obs", "reset", "previous_action", "previous_reward", "action",
                                  "behaviour_log_prob", "reward", "terminated", "truncated")}
    episode_ended = torch.zeros(num_envs, dtype=torch.bool)
    for t in range(steps + 1):
        record["obs"].append(torch.as_tensor(observation))
        record["reset"].append(reset)
        record["previous_action"].append(previous_action)
        record["previous_reward"].append(previous_reward)
        if t == steps:
            break
        output, state = policy.act(observation, previous_action, previous_reward, reset, state)
        observation, reward, terminated, truncated, _ = vector_env.step(policy.to_env_action(output.action))
        terminated, truncated = torch.as_tensor(terminated), torch.as_tensor(truncated)
        reward = torch.as_tensor(reward, dtype=torch.float32)
        record["action"].append(output.action)
        record["behaviour_log_prob"].append(output.log_prob)
        record["reward"].append(reward)
        record["terminated"].append(terminated)
        record["truncated"].append(truncated)
        reset = episode_ended  # this step's observation starts an episode iff the last step ended one
        episode_ended = terminated | truncated
        keep = (~reset).view(-1, *[1] * len(policy.action_shape))
        previous_action = torch.where(keep, output.action, torch.zeros_like(output.action))
        previous_reward = torch.where(reset, torch.zeros_like(reward), reward)
    trajectory = Trajectory(**{key: torch.stack(values) for key, values in record.items()})
    return trajectory, initial_state


def learner_step_changes_outputs(policy: ActorCritic, trajectory: Trajectory, initial_state) -> None:
    def outputs():
        with torch.no_grad():
            return policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                                 trajectory.reset, initial_state)[0]

    before = outputs()
    loss = impala_loss(policy, trajectory, initial_state, LossConfig())
    assert torch.isfinite(loss.total)
    # on-policy data: every importance weight of a valid transition is 1
    assert loss.mean_importance_weight.item() == pytest.approx(1.0, abs=1e-4)
    optimizer = torch.optim.SGD(policy.parameters(), lr=1e-3)
    loss.total.backward()
    optimizer.step()
    after = outputs()
    assert not torch.allclose(before.value, after.value)
    assert not torch.allclose(before.policy_params, after.policy_params)


@pytest.mark.parametrize("core", ["rmc", "lstm", "none"])
def test_cartpole_with_truncations_inside_the_unroll(core):
    torch.manual_seed(0)
    vector_env = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1", max_episode_steps=5)] * 2)
    policy = ActorCritic(vector_env.single_observation_space, vector_env.single_action_space, core=core,
                         core_kwargs=SMALL_CORES[core], hidden_size=16)
    trajectory, initial_state = collect(policy, vector_env, steps=14, seed=0)
    vector_env.close()
    assert trajectory.truncated.any()
    assert not trajectory.valid.all()  # autoreset steps are present ...
    ended = (trajectory.terminated | trajectory.truncated)[:-1]
    assert torch.equal(trajectory.reset[2:], ended)  # ... exactly one step after each episode end
    learner_step_changes_outputs(policy, trajectory, initial_state)


@pytest.mark.parametrize(
    "env_id", ["rmc/BoxWorld-v0", "rmc/BoxWorldViewport-v0", "rmc/MiniPacman-v0", "rmc/MiniPacmanViewport-v0"]
)
def test_project_envs(env_id):
    torch.manual_seed(0)
    vector_env = gym.vector.SyncVectorEnv([lambda: gym.make(env_id)] * 2)
    policy = ActorCritic(vector_env.single_observation_space, vector_env.single_action_space,
                         core_kwargs=SMALL_CORES["rmc"], hidden_size=16)
    height, width = vector_env.single_observation_space.shape[:2]
    assert policy.encoder.feature_map_shapes == [(24, height - 2, width - 2)]  # the paper's small encoder
    trajectory, initial_state = collect(policy, vector_env, steps=6, seed=1)
    vector_env.close()
    assert trajectory.obs.dtype == torch.uint8 and trajectory.obs.shape == (7, 2, height, width, 3)
    learner_step_changes_outputs(policy, trajectory, initial_state)
