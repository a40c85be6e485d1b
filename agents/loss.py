"""The IMPALA learner loss (Espeholt et al. 2018): V-trace policy gradient, baseline and
entropy terms.

``total = policy_loss + baseline_cost * baseline_loss + entropy_cost * entropy_loss`` with

- ``policy_loss = -sum(log pi(a_t|x_t) * pg_advantage_t)``,
- ``baseline_loss = 0.5 * sum((v_t - V(x_t))^2)``,
- ``entropy_loss = -sum(H(pi(.|x_t)))``,

summed over time and batch as in the reference implementations (``reduction="sum"``);
``reduction="mean"`` divides every term by the number of valid transitions instead.

``pg_ratio_clip = c`` (off by default; a deliberate departure from IMPALA) replaces the
policy term by PPO's clipped surrogate on the V-trace advantage, as asynchronous PPO does
(Sample Factory's APPO): ``policy_loss = -sum(min(rho_t * A_t, clip(rho_t, 1 - c, 1 + c) * A_t))``
with ``rho_t = pi(a_t|x_t) / mu(a_t|x_t)`` against the actors' behaviour policy ``mu`` and
``A_t = r_t + gamma * v_{t+1} - V(x_t)`` (``v_{t+1}`` the V-trace target). Where ``rho_t`` is
inside the clip range the gradient is ``rho_t * A_t * grad log pi``, IMPALA's with the
importance weight unclipped; once the learner's policy has moved more than ``c`` from the
actors' on a sample, in the direction its advantage pushes, that sample stops pulling. With
one gradient step per batch it binds on few samples, those where the policy has moved fast
over the policy lag of a few updates (at c = 0.2 on easy Box-World: a median 0.1-4% of a
batch, up to 21% while the success rises fastest; docs/results.md, "Easy Box-World").
With several epochs per batch (``num_epochs``, the default 4) it binds on many more: it is
then what keeps the later epochs near the actors' policy.

``pg_clip_reference = "update"`` (decoupled PPO, Hilton et al. 2021, "Batch size-invariance
for policy optimization") clips the ratio against the *proximal* policy ``pi_prox``, the
learner's own policy at the start of the update, instead of the actors' ``mu``, and corrects
for the actors' policy with a separate, truncated importance weight:
``policy_loss = -sum(w_t * min(r_t * A_t, clip(r_t, 1 - c, 1 + c) * A_t))`` with
``r_t = pi / pi_prox`` and ``w_t = min(rho-bar_pg, pi_prox / mu)``. Clipped against ``mu``,
the clip range is spent on the policy lag before the update takes a step: the actors' data
is several updates old in an asynchronous run (4 updates of 4 gradient steps in the
learning suite's runs on 2 cores), and 40-60% of the samples of the early CartPole and
Acrobot updates were outside the clip (mean over their epochs). Clipped against
``pi_prox``, every update starts with all ratios at 1 and the clip bounds that update's own
movement, however old the data.
Actors that explore around their policy (``launch.impala.exploration``: a held previous
action) record two log-probabilities: the exploring mixture's, ``mu``, and their policy
network's, ``pi_actor`` (``Trajectory.policy_log_prob``). With the clip against the actors,
the clip is then taken against ``pi_actor`` and the exploration corrected by the same
truncated weight: ``r_t = pi / pi_actor``, ``w_t = min(rho-bar_pg, pi_actor / mu)``. Clipped
against ``mu`` itself, a held action's ratio is far below 1 from the start (about 0.4 for
``pi = 1/3`` and a hold probability of 0.8), so held actions with negative advantages gave no
gradient and those with positive ones did: the policy went to one action
(docs/learning.md, candidate N). Where nothing was held ``pi_actor = mu`` and the loss is
the plain clip's.
The caller passes ``pi_prox``'s log-probabilities (``proximal_log_prob``), taken at the
update's first epoch; without them the current policy is its own proximal policy (the first
epoch's ratio is 1 and its gradient ``w_t * A_t * grad log pi``). It is not the trainer's
default: on CartPole without a core it evaluated 98-445 where the clip against ``mu`` gave
500 (docs/learning.md, candidate E): freed from the lag, each update moved further, and the
learner drifted from data still several updates old, a drift the clip against ``mu`` bounds.

Episode boundaries (see ``agents.trajectory``): the discount is ``discount * (1 -
terminated)``, so termination cuts the return and truncation bootstraps from the value of
the episode's final observation (which NEXT_STEP autoreset stores at ``obs[t + 1]``). The
autoreset transition (``valid == False``) gets importance weight 0 (log-rho ``-inf``),
zero reward and zero discount: its V-trace target is its own value, so it contributes
nothing to the targets of the steps before it, and it is masked out of every loss term.
The core is reset at every episode's first observation by the policy's unroll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from agents import vtrace
from agents.policy import ActorCritic
from agents.trajectory import Trajectory

__all__ = ["LossConfig", "LossOutput", "impala_loss", "sampled_kl"]


@dataclass
class LossConfig:
    """Coefficients of the IMPALA loss."""

    discount: float = 0.99
    """Discount factor gamma."""
    baseline_cost: float = 0.5
    """Weight of the value (baseline) loss."""
    entropy_cost: float = 0.01
    """Weight of the entropy bonus."""
    clip_rho_threshold: float | None = 1.0
    """rho-bar of the V-trace value targets (None: no clipping)."""
    clip_pg_rho_threshold: float | None = 1.0
    """rho-bar of the policy-gradient advantages (None: no clipping)."""
    reward_clip: float | None = None
    """Clip learner rewards to [-reward_clip, reward_clip] (IMPALA Atari: 1.0); None: no clipping."""
    reduction: Literal["sum", "mean"] = "sum"
    """Sum the loss terms over time and batch (reference) or average over valid transitions."""
    pg_ratio_clip: float | None = None
    """PPO's clip ``c`` of the ratio pi/mu in the policy term (see the module docstring); None:
    IMPALA's V-trace policy gradient."""
    vtrace_lambda: float = 1.0
    """``lambda`` of V-trace's traces (``agents.vtrace.from_importance_weights``); 1: none."""
    advantage_normalization: bool = False
    """Normalise the policy-gradient advantages over the batch's valid transitions to mean 0
    and standard deviation 1 (as PPO and Sample Factory do); False: divide them by PopArt's
    scale (1 without PopArt)."""
    pg_clip_reference: Literal["behaviour", "update"] = "behaviour"
    """What ``pg_ratio_clip`` clips the ratio against: the actors' policy ``mu`` (asynchronous
    PPO) or the learner's policy at the start of the update, with a truncated importance
    weight for ``mu`` (decoupled PPO; see the module docstring)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if self.reward_clip is not None and not self.reward_clip > 0:
            raise ValueError(f"reward_clip must be > 0 or None, got {self.reward_clip}")
        if self.reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {self.reduction!r}")
        if self.pg_ratio_clip is not None and not 0.0 < self.pg_ratio_clip < 1.0:
            raise ValueError(f"pg_ratio_clip must be in (0, 1) or None, got {self.pg_ratio_clip}")
        if not 0.0 <= self.vtrace_lambda <= 1.0:
            raise ValueError(f"vtrace_lambda must be in [0, 1], got {self.vtrace_lambda}")
        if self.pg_clip_reference not in ("behaviour", "update"):
            raise ValueError(f"pg_clip_reference must be 'behaviour' or 'update', got {self.pg_clip_reference!r}")


class LossOutput(NamedTuple):
    """The loss and detached scalars for logging.

    Attributes:
        total: scalar loss with gradient.
        policy_loss: the policy-gradient term.
        baseline_loss: the value term (before ``baseline_cost``).
        entropy: mean policy entropy over valid transitions.
        mean_value: mean ``V(x_t)`` over valid transitions.
        mean_importance_weight: mean ``pi/mu`` over valid transitions.
        mean_vtrace_target: mean V-trace target over valid transitions.
        behaviour_kl: estimate of ``KL(mu || pi)``, how far the learner's policy has moved
            from the actors' over the policy lag, from the sampled actions alone (so it works
            for every action space): the mean of ``(rho - 1) - log rho`` over valid
            transitions, which is never negative and whose expectation under ``mu`` is the
            KL divergence. ``mean_importance_weight`` cannot show this: its expectation under
            ``mu`` is 1 whatever ``pi`` is. It rose before an easy Box-World collapse, but
            to values that healthy learning also reaches (docs/results.md, "Diagnostics").
            Where the actors explored around their policy (``Trajectory.policy_log_prob``)
            ``rho`` is taken against their policy network, not the exploring mixture, so it
            measures the lag and not the exploration (then an estimate at the actions taken).
        pg_clipped_fraction: share of valid transitions whose clipped ratio (pi/mu, pi over
            the actors' policy network where they explored around it, or pi/pi_prox with
            ``pg_clip_reference = "update"``) lies outside ``[1 - c, 1 + c]``
            for ``pg_ratio_clip = c`` (0 when it is None).
        value_scale: the scale ``sigma`` the value error was divided by (PopArt's; 1 for a
            policy without value normalisation), and the advantages too unless
            ``advantage_normalization`` normalised them per batch instead.
        value_targets: ``[T, B]`` the V-trace targets ``v_s`` (detached, unnormalised), which
            the learner feeds to PopArt's statistics after the step.
        log_prob: ``[T, B]`` ``log pi(a_t|x_t)`` of the policy that computed the loss
            (detached): the proximal policy of the later epochs when taken at the first.
    """

    total: torch.Tensor
    policy_loss: torch.Tensor
    baseline_loss: torch.Tensor
    entropy: torch.Tensor
    mean_value: torch.Tensor
    mean_importance_weight: torch.Tensor
    mean_vtrace_target: torch.Tensor
    behaviour_kl: torch.Tensor
    pg_clipped_fraction: torch.Tensor
    value_scale: torch.Tensor
    value_targets: torch.Tensor
    log_prob: torch.Tensor


def sampled_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """Per-sample estimate of ``KL(p || q)`` from ``log r = log q(a) - log p(a)`` at an action
    ``a`` drawn from ``p``: ``(r - 1) - log r``. Never negative, and its expectation under ``p``
    is the divergence (``E_p[r] = 1``), so it needs only the log-probabilities of the sampled
    actions, for any action space."""
    return torch.expm1(log_ratio) - log_ratio


def _off_policy_weight(reference: torch.Tensor, trajectory: Trajectory, config: LossConfig) -> torch.Tensor:
    """``min(rho-bar_pg, pi_ref / mu)`` per transition (1 where not valid): the importance
    weight from the behaviour policy to the policy the clip is taken against."""
    weight = torch.exp(torch.where(trajectory.valid, reference - trajectory.behaviour_log_prob, 0.0))
    return weight if config.clip_pg_rho_threshold is None else weight.clamp(max=config.clip_pg_rho_threshold)


def impala_loss(
    policy: ActorCritic,
    trajectory: Trajectory,
    initial_state: tuple[torch.Tensor, ...],
    config: LossConfig,
    proximal_log_prob: torch.Tensor | None = None,
) -> LossOutput:
    """Re-runs ``policy`` over ``trajectory`` and returns the IMPALA loss.

    Args:
        policy: the learner's policy.
        trajectory: ``T`` transitions, ``T + 1`` observations, time-major.
        initial_state: the core state at ``obs[0]`` (what the actor stored).
        config: loss coefficients.
        proximal_log_prob: ``[T, B]`` log-probabilities of the actions under the proximal
            policy (``pg_clip_reference = "update"`` only; None: the current policy's).

    Returns:
        ``LossOutput``.
    """
    output, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                              trajectory.reset, initial_state)
    values = output.value  # [T+1, B]: values[:-1] are V(x_t), values[-1] the bootstrap
    distribution = policy.distribution(output.policy_params[:-1])  # [T, B, P]
    target_log_prob = distribution.log_prob(trajectory.action)  # [T, B]
    entropy = distribution.entropy()  # [T, B]

    valid = trajectory.valid  # [T, B]
    weight = valid.to(values.dtype)
    rewards = trajectory.reward.to(values.dtype)
    if config.reward_clip is not None:
        rewards = rewards.clamp(-config.reward_clip, config.reward_clip)
    discounts = config.discount * (~trajectory.terminated).to(values.dtype)
    log_rhos = (target_log_prob - trajectory.behaviour_log_prob).detach()
    actors_log_prob = trajectory.behaviour_log_prob if trajectory.policy_log_prob is None else trajectory.policy_log_prob
    log_rhos = torch.where(valid, log_rhos, torch.full_like(log_rhos, -float("inf")))
    targets = vtrace.from_importance_weights(
        log_rhos=log_rhos,
        discounts=discounts * weight,
        rewards=rewards * weight,
        values=values[:-1].detach(),
        bootstrap_value=values[-1].detach(),
        clip_rho_threshold=config.clip_rho_threshold,
        clip_pg_rho_threshold=config.clip_pg_rho_threshold,
        lambda_=config.vtrace_lambda,
    )

    # PopArt (agents.normalization): the value error and the advantages in units of the
    # targets' running scale, so that one set of loss weights serves every reward scale.
    value_scale = policy.value_scale() if hasattr(policy, "value_scale") else None
    sigma = values.new_ones(()) if value_scale is None else value_scale.detach().to(values.dtype)
    num_valid = weight.sum().clamp(min=1.0)
    scale = 1.0 if config.reduction == "sum" else 1.0 / num_valid
    if config.pg_ratio_clip is None:
        advantages = targets.pg_advantages
    else:
        next_vs = torch.cat([targets.vs[1:], values[-1:].detach()], dim=0)  # v_{t+1}
        advantages = rewards * weight + discounts * weight * next_vs - values[:-1].detach()
    if config.advantage_normalization:
        advantage_mean = (advantages * weight).sum() / num_valid
        advantage_std = ((advantages - advantage_mean).square() * weight).sum().div(num_valid).sqrt()
        advantages = (advantages - advantage_mean) / (advantage_std + 1e-8)
    else:
        advantages = advantages / sigma
    if config.pg_ratio_clip is None:
        surrogate = target_log_prob * advantages
        clipped = torch.zeros_like(weight)
    else:
        reference = trajectory.behaviour_log_prob
        if config.pg_clip_reference == "behaviour" and trajectory.policy_log_prob is not None:
            # The actors explored around their policy: clip against that policy, and correct
            # for the exploration with a truncated importance weight (decoupled PPO).
            reference = trajectory.policy_log_prob
            advantages = advantages * _off_policy_weight(reference, trajectory, config)
        if config.pg_clip_reference == "update":
            reference = target_log_prob.detach() if proximal_log_prob is None else proximal_log_prob
            advantages = advantages * _off_policy_weight(reference, trajectory, config)
        ratio = torch.exp(torch.where(valid, target_log_prob - reference, 0.0))
        low, high = 1.0 - config.pg_ratio_clip, 1.0 + config.pg_ratio_clip
        surrogate = torch.minimum(ratio * advantages, ratio.clamp(low, high) * advantages)
        clipped = ((ratio.detach() < low) | (ratio.detach() > high)).to(weight.dtype)
    policy_loss = -torch.where(valid, surrogate, 0.0).sum() * scale
    baseline_loss = 0.5 * (((targets.vs - values[:-1]) / sigma).square() * weight).sum() * scale
    entropy_loss = -torch.where(valid, entropy, 0.0).sum() * scale
    total = policy_loss + config.baseline_cost * baseline_loss + config.entropy_cost * entropy_loss

    with torch.no_grad():
        return LossOutput(
            total=total,
            policy_loss=policy_loss.detach(),
            baseline_loss=baseline_loss.detach(),
            entropy=(entropy * weight).sum() / num_valid,
            mean_value=(values[:-1] * weight).sum() / num_valid,
            mean_importance_weight=(log_rhos.exp() * weight).sum() / num_valid,
            mean_vtrace_target=(targets.vs * weight).sum() / num_valid,
            behaviour_kl=torch.where(valid, sampled_kl(target_log_prob.detach() - actors_log_prob), 0.0).sum() / num_valid,
            pg_clipped_fraction=(clipped * weight).sum() / num_valid,
            value_scale=sigma,
            value_targets=targets.vs.detach(),
            log_prob=target_log_prob.detach(),
        )
