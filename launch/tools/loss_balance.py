"""How hard each term of the IMPALA loss pulls on the layers the policy and the value share.

Usage::

    python -m launch.tools.loss_balance --run runs/RUN
    python -m launch.tools.loss_balance --run runs/RUN --from-step 2000000 --to-step 8000000 --every 10 --batches 16

The actor-critic's two heads sit on one encoder, core and hidden layer. Every update moves
those shared layers along the sum of three gradients: the policy gradient, the value loss
(times ``baseline_cost``) and the entropy bonus (times ``entropy_cost``). When one term's
gradient is many times the others', it decides where the shared layers go, and the policy
moves as a side effect of fitting the value (or the other way round). Adam scales each
parameter's step to about the learning rate whatever the gradient's size, so the costs
set this mix on the shared layers and nothing else: the heads' own weights learn at the
same speed whatever their cost.

For each checkpoint (in the step range), the checkpoint's own policy plays ``--batches``
times the run's ``batch_size`` fresh games for ``--warmup-unrolls`` unrolls of the run's
unroll length and then one more, which is kept: batches like the learner's, starting
mid-episode with the core state the policy carried there. The run's loss (its discount,
clipping, reduction and costs, as ``launch.impala.learner`` applies them) is taken over each
batch once per term, and the tool prints, averaged over the batches, the norm of each
term's gradient on the shared layers, the value term's norm over the policy gradient's,
and the cosine between the two. The last line holds the table as JSON.

The measure is per learner batch on purpose: with the loss averaged over a batch, a
gradient's noise shrinks with the batch's size, and an update sees one batch's. The data
is on-policy (the importance weights are 1), where the learner's batches lag the actors
by a few updates. Single batches are noisy: read the trend over checkpoints, or raise
``--batches``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from agents.loss import LossConfig, impala_loss
from agents.spaces import map_leaves
from agents.trajectory import Trajectory
from launch.cli import first_paragraph, parse_options, require_at_least, run_command
from launch.impala.checkpoint import CheckpointRange, checkpoint_step, checkpoints_in_range
from launch.impala.config import TrainConfig
from launch.impala.learner import loss_config
from launch.impala.rollout import record_unroll
from launch.impala.trained import load_trained, trained_policy

if TYPE_CHECKING:
    from agents import ActorCritic

HEADS = ("action_head.", "value_head.")
"""Parameter-name prefixes of the two heads; every other parameter is shared by both."""

TERMS = ("policy", "value", "entropy")


class LossGradients:
    """Each loss term's gradient, per parameter name, for one batch.

    Attributes:
        gradients: ``{term: {parameter name: gradient}}`` for the terms in ``TERMS``; the
            value and entropy terms include their costs, so the three add up to the
            gradient of the learner's total loss.
    """

    def __init__(self, gradients: dict[str, dict[str, torch.Tensor]]) -> None:
        self.gradients = gradients

    def norm(self, term: str, names: list[str]) -> float:
        """The term's gradient norm over the parameters ``names``."""
        return float(sum(self.gradients[term][name].square().sum() for name in names)) ** 0.5

    def cosine(self, first: str, second: str, names: list[str]) -> float:
        """Cosine between two terms' gradients over ``names`` (0 where either is zero)."""
        dot = float(sum((self.gradients[first][name] * self.gradients[second][name]).sum() for name in names))
        scale = self.norm(first, names) * self.norm(second, names)
        return dot / scale if scale > 0 else 0.0


def shared_parameter_names(policy: ActorCritic) -> list[str]:
    """The parameters both heads' losses reach: all but the action and value heads'."""
    return [name for name, _ in policy.named_parameters() if not name.startswith(HEADS)]


def loss_gradients(policy: ActorCritic, trajectory: Trajectory, state: tuple[torch.Tensor, ...],
                   config: LossConfig) -> LossGradients:
    """Each term's gradient of ``impala_loss`` with ``config`` over one batch.

    The loss is taken three times: with both costs at 0 (the policy gradient alone), with
    only ``baseline_cost`` and with only ``entropy_cost``; the value and entropy terms are
    the differences from the first.
    """
    settings = {
        "policy": dataclasses.replace(config, baseline_cost=0.0, entropy_cost=0.0),
        "value": dataclasses.replace(config, entropy_cost=0.0),
        "entropy": dataclasses.replace(config, baseline_cost=0.0),
    }
    gradients: dict[str, dict[str, torch.Tensor]] = {}
    for term, setting in settings.items():
        policy.zero_grad(set_to_none=False)
        impala_loss(policy, trajectory, state, setting).total.backward()
        gradients[term] = {name: parameter.grad.detach().clone() for name, parameter in policy.named_parameters()}
    for term in ("value", "entropy"):
        gradients[term] = {name: gradients[term][name] - gradients["policy"][name] for name in gradients[term]}
    policy.zero_grad(set_to_none=True)
    return LossGradients(gradients)


def batch_columns(trajectory: Trajectory, state: tuple[torch.Tensor, ...], columns: slice
                  ) -> tuple[Trajectory, tuple[torch.Tensor, ...]]:
    """The games ``columns`` of a recorded batch (time-major leaves, batch-first state)."""
    sliced = Trajectory(*(map_leaves(lambda leaf: leaf[:, columns], field) for field in trajectory))
    return sliced, tuple(part[columns] for part in state)


def balance_row(config: TrainConfig, model_state: dict[str, torch.Tensor], batches: int, warmup_unrolls: int,
                seed: int) -> dict[str, Any]:
    """The loss terms' pull on the shared layers for one checkpoint's policy (see the module docstring).

    Returns:
        The mean over ``batches`` learner-sized batches of each term's gradient norm on
        the shared layers (``<term>_norm``), of the value term's norm over the policy
        gradient's (``value_over_policy``) and of their cosine (``cosine_policy_value``).
    """
    torch.manual_seed(seed)
    size = config.batch_size
    trajectory, state, observation_space, action_space = record_unroll(
        config, model_state, batches * size, config.unroll_length, seed, warmup_unrolls)
    policy = trained_policy(config, model_state, observation_space, action_space)
    policy.train()
    shared = shared_parameter_names(policy)
    settings = loss_config(config)
    totals: dict[str, float] = dict.fromkeys([*(f"{term}_norm" for term in TERMS), "value_over_policy",
                                              "cosine_policy_value"], 0.0)
    for index in range(batches):
        batch, batch_state = batch_columns(trajectory, state, slice(index * size, (index + 1) * size))
        gradients = loss_gradients(policy, batch, batch_state, settings)
        norms = {term: gradients.norm(term, shared) for term in TERMS}
        for term, value in norms.items():
            totals[f"{term}_norm"] += value
        totals["value_over_policy"] += norms["value"] / norms["policy"] if norms["policy"] > 0 else float("inf")
        totals["cosine_policy_value"] += gradients.cosine("policy", "value", shared)
    return {name: value / batches for name, value in totals.items()}


@dataclass
class LossBalanceOptions(CheckpointRange):
    """What ``python -m launch.tools.loss_balance`` measures."""

    batches: int = 8
    """Learner-sized batches (the run's batch_size games each) per checkpoint."""
    warmup_unrolls: int = 5
    """Unrolls played and thrown away before the kept one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, batches=1, warmup_unrolls=0)


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.tools.loss_balance``."""

    def body() -> None:
        options = parse_options(LossBalanceOptions, argv, prog="python -m launch.tools.loss_balance",
                                description=first_paragraph(__doc__))
        torch.set_num_threads(options.threads)
        paths = checkpoints_in_range(options.run, options.from_step, options.to_step, minimum=1, every=options.every)
        rows = []
        for path in paths:
            config, model_state = load_trained(path)
            rows.append({"step": checkpoint_step(path),
                         **balance_row(config, model_state, options.batches, options.warmup_unrolls, options.seed)})
        print(f"gradient norms on the layers both heads share, mean of {options.batches} learner batches per "
              f"checkpoint of {options.run}")
        print(f"{'step':>14}  {'policy':>8}  {'value':>8}  {'entropy':>8}  {'value/policy':>12}  {'cosine':>6}")
        for row in rows:
            print(f"{row['step']:>14,}  {row['policy_norm']:8.4f}  {row['value_norm']:8.4f}  "
                  f"{row['entropy_norm']:8.4f}  {row['value_over_policy']:12.2f}  {row['cosine_policy_value']:+6.2f}")
        print(json.dumps(rows))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
