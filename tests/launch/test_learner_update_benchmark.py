"""benchmarks/learner_update.py: its batch, its operation count, its bad input; a smoke run (slow)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from launch.impala.config import config_from_preset
from launch.impala.learner import Learner
from launch.impala.policy_factory import build_policy
from tests.benchmark_scripts import load_benchmark, run_benchmark

benchmark = load_benchmark("learner_update")
OBSERVATIONS = gym.spaces.Box(0, 255, (14, 14, 3), np.uint8)


def test_the_random_batch_has_the_learners_layout_with_episodes_ending_inside() -> None:
    batch = benchmark.random_batch(OBSERVATIONS, gym.spaces.Discrete(4), steps=6, batch_size=8,
                                   device=torch.device("cpu"))
    assert batch.obs.shape == (7, 8, 14, 14, 3) and batch.obs.dtype == torch.uint8
    assert batch.action.shape == (6, 8) and batch.previous_action.shape == (7, 8)
    assert torch.equal(batch.previous_action[1:], batch.action)
    assert batch.reset[0].all() and batch.reset[4, :2].all() and batch.terminated[3, :2].all()
    assert not batch.valid.all()  # the autoreset steps are masked


def test_an_eager_update_dispatches_operations_the_count_sees() -> None:
    config = config_from_preset("boxworld-easy-lstm", unroll_length=3, batch_size=4, envs_per_actor=4,
                                compile_update="off")
    torch.manual_seed(0)
    policy = build_policy(config, OBSERVATIONS, gym.spaces.Discrete(4))
    learner = Learner(policy, config)
    batch = benchmark.random_batch(OBSERVATIONS, gym.spaces.Discrete(4), 3, 4, torch.device("cpu"))
    outermost, every = benchmark.dispatched_operations(learner, batch, tuple(policy.initial_state(4)))
    assert 100 < outermost < every


def test_a_bad_preset_is_one_line_and_exit_code_2() -> None:
    result = run_benchmark("learner_update", "--preset", "nope", timeout=120)
    assert result.returncode == 2 and "--preset must be one of" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_smoke_run_prints_both_rates_and_operation_counts() -> None:
    result = run_benchmark("learner_update", "--preset", "boxworld-easy-lstm", "--rounds", "1", "--seconds", "0.5",
                           timeout=1100)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["eager_steps_per_s"] > 0 and summary["compiled_steps_per_s"] > 0
    assert summary["eager_operations"] > summary["compiled_operations"] > 0
