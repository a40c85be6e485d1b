"""How a run's policy moved from checkpoint to checkpoint, measured on one fixed set of states.

Usage::

    python -m launch.tools.policy_drift --run runs/RUN
    python -m launch.tools.policy_drift --run runs/RUN --from-step 9000000 --to-step 9600000 --games 64 --steps 120
    python -m launch.tools.policy_drift --run runs/RUN --every 8     # a whole run, every 8th checkpoint

The first checkpoint in the range plays ``--games`` fresh games for ``--steps`` steps with
sampled actions, through the actors' own acting code (``launch.impala.rollout.Rollout``), and
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

For an RMC policy whose core reads several input rows (the cells of a conv feature map) it
also splits the spread of the memory rows' attention over the input rows into a part that
follows what the cells hold and a part tied to fixed positions. With ``c`` the attention
logit of input row ``r`` at state ``s`` minus its mean over the input rows (read from the
softmax weights as ``log w`` centred over those rows, which cancels the normaliser),
``content = E_r Var_s c`` and ``position = Var_r E_s c``, averaged over blocks, heads and
memory rows; their sum is the mean spread ``E_s Var_r c`` (near 0: attention spread evenly
over the cells). A memory whose attention tips from what the cells hold to fixed positions,
as one collapse in docs/results.md ("Diagnostics") did, shows as content falling and position
rising between two checkpoints.

It sees a swing only if the checkpoints are close together: train with, e.g.,
``--checkpoint-interval-s 5 --keep-checkpoints 200`` (checkpoints of the small easy Box-World
agent are about 0.6 MB). ``launch.train`` logs ``behaviour_kl_mean`` / ``_max``, the same
divergence between the actors' policy and the learner's over the policy lag.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from agents.loss import sampled_kl
from agents.spaces import map_leaves
from agents.trajectory import Trajectory
from launch.cli import first_paragraph, parse_options, require_at_least, run_command
from launch.impala.checkpoint import CheckpointRange, checkpoint_step, checkpoints_in_range
from launch.impala.rollout import record_unroll
from launch.impala.trained import load_trained, trained_policy
from rmc_core import RelationalMemory

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


def centred_input_logits(weights: torch.Tensor, mem_slots: int) -> torch.Tensor:
    """The memory rows' attention logits over the input rows, centred over those rows.

    Args:
        weights: ``[..., blocks, H, N + R, N + R]`` softmax weights (memory rows first).
        mem_slots: N.

    Returns:
        ``[..., blocks * H * N, R]``: ``log w`` minus its mean over the R input rows, which is
        the logit minus its mean (the softmax's normaliser cancels). Weights that underflowed
        to 0 count as the smallest positive float.
    """
    to_inputs = weights[..., :mem_slots, mem_slots:]  # [..., blocks, H, N, R]
    logs = to_inputs.clamp_min(torch.finfo(weights.dtype).tiny).log()
    centred = logs - logs.mean(-1, keepdim=True)
    return centred.flatten(-4, -2)


@torch.no_grad()
def attention_spread(policy: ActorCritic, trajectory: Trajectory, state: tuple[torch.Tensor, ...],
                     mask: torch.Tensor, games_per_pass: int = 8) -> dict[str, float] | None:
    """The content and position parts of the memory's attention over the input rows (see the
    module docstring), on the ``mask``-ed states; None unless the core is an RMC reading
    two or more input rows.

    The policy re-runs the unroll with the attention weights ``games_per_pass`` games at a
    time (all ``[N + R] x [N + R]`` weights of every step are kept for a pass).
    """
    if not isinstance(policy.core, RelationalMemory):
        return None
    games = mask.shape[1]
    count, first, second = 0.0, None, 0.0
    for start in range(0, games, games_per_pass):
        part = slice(start, start + games_per_pass)
        piece = Trajectory(*(map_leaves(lambda leaf: leaf[:, part], field) for field in trajectory))
        output, _ = policy.unroll(piece.obs, piece.previous_action, piece.previous_reward, piece.reset,
                                  tuple(tensor[part] for tensor in state), return_attention=True)
        centred = centred_input_logits(output.attention[:-1], policy.core.mem_slots)  # [T, b, K, R]
        if centred.shape[-1] < 2:
            return None
        weight = mask[:, part].to(centred.dtype)[..., None, None]
        count += float(weight.sum())
        summed = (centred * weight).sum((0, 1))  # [K, R]
        first = summed if first is None else first + summed
        second += float((centred.square() * weight).sum())
    if first is None or count == 0.0:
        return None
    position = float((first / count).square().mean())
    spread = second / (count * first.numel())
    return {"attention_content": max(spread - position, 0.0), "attention_position": position}


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
    for index, path in enumerate(paths):
        model_state = first_state if index == 0 else load_trained(path)[1]
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
        row.update(attention_spread(policy, trajectory, state, mask) or {})
        rows.append(row)
        previous = params
        first = params if first is None else first
    return rows


def _kl(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@dataclass
class PolicyDriftOptions(CheckpointRange):
    """What ``python -m launch.tools.policy_drift`` compares."""

    games: int = 64
    """Games recorded with the first checkpoint."""
    steps: int = 120
    """Steps each recorded game plays."""
    samples: int = 16
    """Actions drawn per state for the KL."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, games=1, steps=1, samples=1)


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.tools.policy_drift``."""

    def body() -> None:
        options = parse_options(PolicyDriftOptions, argv, prog="python -m launch.tools.policy_drift",
                                description=first_paragraph(__doc__))
        torch.set_num_threads(options.threads)
        paths = checkpoints_in_range(options.run, options.from_step, options.to_step, every=options.every)
        rows = drift_table(paths, options.games, options.steps, options.seed, options.samples)
        print(f"{len(rows)} checkpoints of {options.run}, on {options.games} games x {options.steps} steps recorded "
              "with the first")
        attention = "attention_content" in rows[0]
        header = f"{'step':>14}  {'KL prev':>8}  {'KL first':>8}  {'entropy':>7}  {'value':>7}"
        print(header + ("  att content  att position" if attention else "") + "  action probabilities")
        for row in rows:
            probs = " ".join(f"{value:.3f}" for value in row.get("action_probs", []))
            columns = f"  {row['attention_content']:11.3f}  {row['attention_position']:12.3f}" if attention else ""
            print(f"{row['step']:>14,}  {_kl(row['kl_from_previous']):>8}  {_kl(row['kl_from_first']):>8}  "
                  f"{row['entropy']:7.3f}  {row['mean_value']:7.2f}{columns}  {probs}")
        print(json.dumps(rows))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
