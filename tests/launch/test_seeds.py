"""What ``--seed`` decides: the initial weights and every actor's own env and sampling seeds."""

from __future__ import annotations

import torch

from launch.impala.config import TrainConfig
from launch.impala.rollout import actor_seed
from launch.train import Trainer


def test_actors_of_neighbouring_runs_share_no_games() -> None:
    games = 64  # a vector env seeds game i with seed + i
    starts = {(run, generation): actor_seed(run, generation) for run in range(8) for generation in range(4)}
    assert len(set(starts.values())) == len(starts)
    ranges = sorted((seed, seed + games) for seed in starts.values())
    assert all(end <= next_start for (_, end), (next_start, _) in zip(ranges, ranges[1:]))
    assert actor_seed(3, 1) == actor_seed(3, 1)  # a function of the run seed and the actor start only


def initial_weights(seed: int) -> dict[str, torch.Tensor]:
    config = TrainConfig(env="CartPole-v1", core="lstm", core_kwargs={"hidden_size": 8}, hidden_size=8,
                         num_actors=1, envs_per_actor=2, batch_size=2, seed=seed)
    trainer = Trainer(config, run=None, log=lambda text: None)
    try:
        return {name: value.clone() for name, value in trainer.policy.state_dict().items()}
    finally:
        trainer.close()


def test_the_run_seed_sets_the_initial_weights() -> None:
    first, again, other = initial_weights(7), initial_weights(7), initial_weights(8)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)
