"""launch.impala.exploration: actors that hold their previous action, with the behaviour
probability of that mixture recorded for V-trace."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.spaces import map_leaves
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.exploration import game_hold_shares, hold_previous_actions, hold_probability, holds_actions
from launch.impala.policy_factory import build_policy
from launch.impala.rollout import Rollout, record_unroll
from launch.train import Trainer
from tests.launch.helpers import cartpole_policy


def test_the_hold_probability_falls_linearly_to_zero_over_the_run():
    config = TrainConfig(env="CartPole-v1", total_steps=64_000, action_hold_probability=0.8)  # 640 steps/update
    assert config.steps_per_update == 640
    assert hold_probability(config, 0) == pytest.approx(0.8)
    assert hold_probability(config, 50) == pytest.approx(0.4)
    assert hold_probability(config, 100) == 0.0
    assert hold_probability(config, 150) == 0.0
    # over a horizon of frames shorter than the run, then 0 for the rest of it
    horizon = dataclasses.replace(config, action_hold_steps=32_000)
    assert hold_probability(horizon, 25) == pytest.approx(0.4)
    assert hold_probability(horizon, 50) == 0.0
    assert hold_probability(dataclasses.replace(config, action_hold_steps=640_000), 50) == pytest.approx(0.4)
    with pytest.raises(ConfigError, match="action_hold_steps"):
        TrainConfig(env="CartPole-v1", action_hold_steps=-1).validate()
    # a config saved before the horizon existed held over its whole run
    saved = {key: value for key, value in config.to_json().items() if key != "action_hold_steps"}
    assert TrainConfig.from_saved_json(saved).action_hold_steps == 0


def test_held_actions_and_their_behaviour_probabilities():
    torch.manual_seed(0)
    games, p = 20_000, 0.6
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1])).expand(games, 3)
    sampled = torch.distributions.Categorical(logits=logits).sample()
    previous = torch.full((games,), 2)
    reset = torch.zeros(games, dtype=torch.bool)
    reset[:1000] = True  # episode starts: never held
    taken, log_mu, log_pi_taken = hold_previous_actions(sampled, logits, previous, reset, p)
    assert torch.equal(taken[:1000], sampled[:1000])
    # mu(2) = p + (1 - p) pi(2) where the action may be held, pi elsewhere
    assert (taken[1000:] == 2).float().mean().item() == pytest.approx(p + (1 - p) * 0.1, abs=0.015)
    expected = torch.where(taken == 2, torch.tensor(math.log(p + (1 - p) * 0.1)),
                           torch.log((1 - p) * torch.tensor([0.7, 0.2, 0.1])[taken]))
    assert torch.allclose(log_mu[1000:], expected[1000:], atol=1e-6)
    assert torch.allclose(log_mu[:1000], torch.log(torch.tensor([0.7, 0.2, 0.1])[taken[:1000]]), atol=1e-6)
    assert torch.allclose(log_pi_taken, torch.log(torch.tensor([0.7, 0.2, 0.1])[taken]), atol=1e-6)  # held or not
    unchanged, log_pi, same_log_pi = hold_previous_actions(sampled, logits, previous, reset, 0.0)
    assert torch.equal(unchanged, sampled)
    assert torch.allclose(log_pi, torch.log_softmax(logits, -1).gather(-1, sampled[:, None])[:, 0], atol=1e-6)
    assert torch.equal(same_log_pi, log_pi)


def repeat_rate(trajectory) -> float:
    """Share of steps (within an episode, not its first) whose action repeats the previous one."""
    same = trajectory.action[1:] == trajectory.action[:-1]
    inside = ~trajectory.reset[1:-1] & trajectory.valid[1:] & trajectory.valid[:-1]
    return same[inside].float().mean().item()


def test_actors_hold_their_actions_and_record_the_mixtures_probability():
    plain = TrainConfig(env="CartPole-v1", hidden_size=32, action_hold_probability=0.0)
    held = TrainConfig(env="CartPole-v1", hidden_size=32, action_hold_probability=0.9, action_hold_spread=False)
    policy = cartpole_policy(plain)  # near uniform over the two actions
    base, _, _, _ = record_unroll(plain, policy.state_dict(), games=16, steps=30, seed=3)
    sticky, _, _, _ = record_unroll(held, policy.state_dict(), games=16, steps=30, seed=3)
    assert repeat_rate(base) < 0.65 and repeat_rate(sticky) > 0.85
    repeated = torch.zeros_like(sticky.valid)
    repeated[1:] = (sticky.action[1:] == sticky.action[:-1]) & ~sticky.reset[1:-1]
    # a held action's behaviour probability is at least p; a switch's at most 1 - p
    assert (sticky.behaviour_log_prob[repeated & sticky.valid] >= math.log(0.9) - 1e-6).all()
    switched = ~repeated & sticky.valid
    switched[0] = False
    assert (sticky.behaviour_log_prob[switched & ~sticky.reset[:-1]] <= math.log(0.1) + 1e-6).all()


def test_a_spread_hold_runs_from_the_policy_alone_to_p_over_each_actors_games():
    config = TrainConfig(env="CartPole-v1", hidden_size=32, envs_per_actor=5, action_hold_probability=0.9,
                         action_hold_spread=True)
    assert game_hold_shares(config).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert game_hold_shares(dataclasses.replace(config, envs_per_actor=1)).tolist() == [1.0]
    assert game_hold_shares(dataclasses.replace(config, action_hold_spread=False)).tolist() == [1.0] * 5
    policy = cartpole_policy(config)
    trajectory, _, _, _ = record_unroll(config, policy.state_dict(), games=16, steps=40, seed=5)
    on_policy, most_held = (map_leaves(lambda leaf: leaf[:, game:game + 1], trajectory) for game in (0, 15))
    # game 0 never holds: its behaviour is the policy; game 15 holds with p = 0.9
    assert torch.equal(on_policy.behaviour_log_prob, on_policy.policy_log_prob)
    assert repeat_rate(on_policy) < 0.75 and repeat_rate(most_held) > 0.85


def episodes_of(config: TrainConfig, unrolls: int) -> list:
    rollout = Rollout(config, seed=2)
    try:
        buffers = rollout.make_buffers(1, shared=False)
        return [episode for _ in range(unrolls) for episode in rollout.unroll(buffers, 0, 0)]
    finally:
        rollout.close()


def test_the_episodes_of_games_that_act_with_the_policy_itself_are_marked():
    config = TrainConfig(env="CartPole-v1", hidden_size=16, envs_per_actor=2, unroll_length=50,
                         action_hold_probability=0.8, action_hold_spread=True)
    # game 0 acts with the policy, game 1 holds: both end episodes of a near-uniform policy
    marks = {episode.on_policy for episode in episodes_of(config, 4)}
    assert marks == {True, False}
    assert not any(episode.on_policy for episode in episodes_of(dataclasses.replace(config, action_hold_spread=False), 4))
    assert all(episode.on_policy for episode in episodes_of(dataclasses.replace(config, action_hold_probability=0.0), 4))


def test_the_default_holds_spread_actions_on_discrete_spaces_only_and_says_so_elsewhere():
    config = TrainConfig(env="Pendulum-v1", hidden_size=16, num_actors=1, envs_per_actor=2, batch_size=2)
    defaults = (config.action_hold_probability, config.action_hold_spread, config.action_hold_steps)
    assert defaults == (0.8, True, 200_000)
    assert holds_actions(config, gym.spaces.Discrete(3))
    assert not holds_actions(config, gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
    assert not holds_actions(dataclasses.replace(config, action_hold_probability=0.0), gym.spaces.Discrete(3))
    lines: list[str] = []
    trainer = Trainer(config, run=None, log=lines.append)
    try:
        assert trainer.buffers.explores is False
    finally:
        trainer.close()
    assert any("needs a Discrete action space, not Box" in line for line in lines)
    policy = build_policy(config, gym.spaces.Box(-8.0, 8.0, (3,), np.float32), gym.spaces.Box(-2.0, 2.0, (1,)))
    trajectory, _, _, _ = record_unroll(config, policy.state_dict(), games=2, steps=5, seed=1)
    assert trajectory.policy_log_prob is None  # the actors sampled the policy at every step


def test_a_hold_probability_must_be_below_one():
    with pytest.raises(ConfigError, match="must be in"):
        TrainConfig(env="CartPole-v1", action_hold_probability=1.0).validate()


def test_the_recorded_behaviour_probability_is_the_mixture_of_the_learners_policy():
    # The learner recomputes pi over the stored unroll; the stored log mu must be
    # log(p [a = previous] + (1 - p) pi(a)) with that pi and the stored previous action.
    config = TrainConfig(env="CartPole-v1", hidden_size=32, action_hold_probability=0.7, action_hold_spread=False)
    policy = cartpole_policy(config)
    trajectory, state, _, _ = record_unroll(config, policy.state_dict(), games=8, steps=25, seed=11)
    with torch.no_grad():
        output, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                                  trajectory.reset, state)
    steps = trajectory.action.shape[0]
    pi = torch.softmax(output.policy_params[:steps], -1).gather(-1, trajectory.action[..., None])[..., 0]
    hold = 0.7 * (~trajectory.reset[:steps]).float()  # record_unroll acts at version 0: p = 0.7
    repeats = (trajectory.action == trajectory.previous_action[:steps]).float()
    expected = torch.log(hold * repeats + (1 - hold) * pi)
    assert torch.allclose(trajectory.behaviour_log_prob, expected, atol=1e-5)
    # beside it, the actors' own policy's log pi(a), what the learner's clip is taken against
    assert torch.allclose(trajectory.policy_log_prob, pi.log(), atol=1e-5)


def test_without_exploration_the_actors_policy_is_the_behaviour_and_not_handed_over():
    config = TrainConfig(env="CartPole-v1", hidden_size=32, action_hold_probability=0.0)
    policy = cartpole_policy(config)
    trajectory, _, _, _ = record_unroll(config, policy.state_dict(), games=4, steps=10, seed=3)
    assert trajectory.policy_log_prob is None
