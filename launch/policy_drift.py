"""How a run's policy moved from checkpoint to checkpoint, measured on one fixed set of states.

Usage::

    python -m launch.policy_drift --run runs/RUN
    python -m launch.policy_drift --run runs/RUN --from-step 9000000 --to-step 9600000 --games 64 --steps 120

The first checkpoint in the range plays ``--games`` fresh games for ``--steps`` steps with
sampled actions, through the actors' own acting code (``launch.rollout.Rollout``), and
every checkpoint's policy is then run over that recorded unroll from the same initial core
state, as the learner re-runs the actors' unrolls. So every checkpoint is judged on the
same states, and a change in what it does is the policy's change, not the games'.

For each checkpoint it prints the KL divergence from the previous checkpoint's policy and
from the first one's (mean over the recorded states; ``KL(p || q)`` estimated from
``--samples`` actions drawn from the earlier policy ``p`` per state as the mean of
``(q/p - 1) - log(q/p)``, which works for every action space), the entropy, the mean value,
and, for a Discrete action space, the mean probability of each action. A policy that swings
shows as a KL from the previous checkpoint many times its usual size, one that drifts as a
KL from the first that keeps growing. The last line holds the table as JSON.

It sees a swing only if the checkpoints are close together: train with, e.g.,
``--checkpoint-interval-s 5 --keep-checkpoints 200`` (checkpoints of the small easy Box-World
agent are about 0.6 MB). ``launch.train`` logs ``behaviour_kl_mean`` / ``_max``, the same
divergence between the actors' policy and the learner's over the policy lag.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from agents.loss import sampled_kl
from agents.trajectory import Trajectory
from launch.checkpoint import CheckpointError, add_checkpoint_range_arguments, checkpoint_step, checkpoints_in_range
from launch.config import ConfigError
from launch.env_factory import EnvConfigError
from launch.evaluate import load_trained, trained_policy
from launch.rollout import record_unroll

if TYPE_CHECKING:
    from agents import ActorCritic

@torch.no_grad()
def policy_on(policy: ActorCritic, trajectory: Trajectory,
              state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``policy``'s ``[T, B, P]`` distribution parameters and ``[T, B]`` values on the recorded states."""
    output, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                              trajectory.reset, state)
    return output.policy_params[:-1], output.value[:-1]


@torch.no_grad()
def kl_divergence(policy: ActorCritic, earlier: torch.Tensor, later: torch.Tensor, mask: torch.Tensor,
                  samples: int) -> float:
    """Mean over the ``mask``-ed states of ``KL(earlier || later)``, from ``samples`` actions per
    state drawn from ``earlier``: the mean of ``(r - 1) - log r`` with ``r = later / earlier``
    at those actions (never negative, and its expectation is the divergence)."""
    p, q = policy.distribution(earlier), policy.distribution(later)
    weight = mask.to(earlier.dtype)
    total = 0.0
    for _ in range(samples):
        action = p.sample()
        total += float((sampled_kl(q.log_prob(action) - p.log_prob(action)) * weight).sum())
    return total / (samples * float(weight.sum().clamp(min=1.0)))


def drift_table(paths: list[Path], games: int = 64, steps: int = 120, seed: int = 1000,
                samples: int = 16) -> list[dict[str, Any]]:
    """One row per checkpoint in ``paths`` (see the module docstring); the first is the reference.

    Raises:
        CheckpointError: a checkpoint is unreadable or does not fit the first one's agent.
    """
    config, first_state = load_trained(paths[0])
    torch.manual_seed(seed)
    trajectory, state, observation_space, action_space = record_unroll(config, first_state, games, steps, seed)
    mask = trajectory.valid
    weight = mask.float()
    count = float(weight.sum().clamp(min=1.0))
    rows: list[dict[str, Any]] = []
    first = previous = None
    for path in paths:
        _, model_state = load_trained(path)
        policy = trained_policy(config, model_state, observation_space, action_space)
        params, values = policy_on(policy, trajectory, state)
        distribution = policy.distribution(params)
        row: dict[str, Any] = {
            "checkpoint": path.name,
            "step": checkpoint_step(path),
            "kl_from_previous": None if previous is None else kl_divergence(policy, previous, params, mask, samples),
            "kl_from_first": None if first is None else kl_divergence(policy, first, params, mask, samples),
            "entropy": float((distribution.entropy() * weight).sum()) / count,
            "mean_value": float((values * weight).sum()) / count,
        }
        if isinstance(action_space, gym.spaces.Discrete):
            probs = torch.softmax(params, dim=-1)
            mean_probs = (probs * weight.unsqueeze(-1)).sum((0, 1)) / count  # [A]
            row["action_probs"] = [round(float(value), 4) for value in mean_probs]
        rows.append(row)
        previous = params
        first = params if first is None else first
    return rows


def _kl(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.policy_drift``."""
    parser = argparse.ArgumentParser(prog="python -m launch.policy_drift", description=__doc__.split("\n\n")[0])
    add_checkpoint_range_arguments(parser)
    parser.add_argument("--games", type=int, default=64, help="games recorded with the first checkpoint (default: 64)")
    parser.add_argument("--steps", type=int, default=120, help="steps each recorded game plays (default: 120)")
    parser.add_argument("--samples", type=int, default=16, help="actions drawn per state for the KL (default: 16)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the recorded games and samples (default: 1000)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args(argv)
    try:
        for name in ("games", "steps", "samples", "threads"):
            if getattr(args, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
        torch.set_num_threads(args.threads)
        rows = drift_table(checkpoints_in_range(args.run, args.from_step, args.to_step), args.games, args.steps,
                           args.seed, args.samples)
    except (ConfigError, EnvConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(rows)} checkpoints of {args.run}, on {args.games} games x {args.steps} steps recorded with the first")
    print(f"{'step':>14}  {'KL prev':>8}  {'KL first':>8}  {'entropy':>7}  {'value':>7}  action probabilities")
    for row in rows:
        probs = " ".join(f"{value:.3f}" for value in row.get("action_probs", []))
        print(f"{row['step']:>14,}  {_kl(row['kl_from_previous']):>8}  {_kl(row['kl_from_first']):>8}  "
              f"{row['entropy']:7.3f}  {row['mean_value']:7.2f}  {probs}")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
