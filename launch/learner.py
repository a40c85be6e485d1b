"""The learner: IMPALA updates on each batch of unrolls (Espeholt et al. 2018).

``agents.loss.impala_loss`` re-runs the policy over the batch from the stored core states
and returns the V-trace loss; the learner clips the global gradient norm, sets the
learning rate from its schedule, steps RMSProp or Adam, and refuses to apply a non-finite
loss or gradient (``NonFiniteLossError``) so the weights stay as good as the last checkpoint.

With ``num_epochs = K > 1`` it takes K gradient steps on each batch, recomputing V-trace
and the importance weights each time (as Sample Factory's APPO takes several epochs over
each batch): more learning per frame, which matters where frames are few; the PPO-clipped
policy term (``pg_ratio_clip``) keeps the later epochs from moving the policy far from the
actors', and ``target_kl`` stops a batch's epochs early once the sampled KL divergence
between the actors' policy and the learner's exceeds it (as Stable-Baselines3's and
CleanRL's PPO do): the clip removes the gradient of samples that moved too far, but not the
pull of the others, and a recurrent policy can still jump. After the batch's steps, PopArt's
statistics (``agents.normalization``) move towards the batch's V-trace targets from its
first epoch, with the value head rescaled so that the values the actors see do not jump,
and the vector observations' statistics towards the batch's observations.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from agents.loss import LossConfig, impala_loss
from agents.trajectory import Trajectory
from launch.config import TrainConfig


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm was NaN or infinite; nothing was applied."""


def total_updates(config: TrainConfig) -> int:
    """Learner updates in a run of ``config.total_steps`` steps."""
    return max(1, math.ceil(config.total_steps / config.steps_per_update))


def loss_config(config: TrainConfig) -> LossConfig:
    """The loss settings of a run's config, as the learner applies them."""
    return LossConfig(
        discount=config.discount, baseline_cost=config.baseline_cost, entropy_cost=config.entropy_cost,
        clip_rho_threshold=config.clip_rho_threshold, clip_pg_rho_threshold=config.clip_pg_rho_threshold,
        reward_clip=config.reward_clip, reduction=config.loss_reduction, pg_ratio_clip=config.pg_ratio_clip,
        advantage_normalization=config.advantage_normalization, vtrace_lambda=config.vtrace_lambda,
    )


_NOT_LOGGED = frozenset({"total", "value_targets"})
"""LossOutput fields that are not scalar metrics."""


class Learner:
    """Optimiser, schedule and update counter around a policy on the learner device.

    Args:
        policy: the ``ActorCritic`` (already on its device).
        config: the run's config.
    """

    def __init__(self, policy: nn.Module, config: TrainConfig) -> None:
        self.policy = policy
        self.config = config
        self.updates = 0
        self.loss_config = loss_config(config)
        parameters = list(policy.parameters())
        if config.optimizer == "rmsprop":
            self.optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
                parameters, lr=config.learning_rate, alpha=config.rmsprop_alpha, eps=config.rmsprop_eps,
                momentum=config.rmsprop_momentum)
        else:
            self.optimizer = torch.optim.Adam(parameters, lr=config.learning_rate, eps=config.adam_eps,
                                              betas=(config.adam_beta1, config.adam_beta2))

    def learning_rate_factor(self, time_fraction: float = 0.0) -> float:
        """The schedule's multiplier of ``config.learning_rate`` for the next update.

        Args:
            time_fraction: the share of the run's time budget already used (its training time
                over the time trained before this invocation plus this invocation's limit; 0
                without a limit); 'linear' reaches 0 at whichever of the run's total steps and
                its time budget comes first.
        """
        if self.config.lr_schedule == "constant":
            return 1.0
        progress = max(self.updates / total_updates(self.config), time_fraction)
        return min(1.0, max(0.0, 1.0 - progress))

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def update(
        self, trajectory: Trajectory, initial_state: tuple[torch.Tensor, ...], time_fraction: float = 0.0,
    ) -> dict[str, float]:
        """``num_epochs`` gradient steps on a batch; returns scalar metrics (means over the epochs).

        ``time_fraction`` is the share of the time limit used so far (see
        :meth:`learning_rate_factor`).

        Raises:
            NonFiniteLossError: the loss or gradient is NaN/inf (that epoch's step was not
                taken, nor any after it).
        """
        self.policy.train()
        learning_rate = self.config.learning_rate * self.learning_rate_factor(time_fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        sums: dict[str, float] = {}
        first_targets = None
        epochs = 0
        for epoch in range(self.config.num_epochs):
            loss = impala_loss(self.policy, trajectory, initial_state, self.loss_config)
            if (epoch > 0 and self.config.target_kl is not None
                    and float(loss.behaviour_kl) > self.config.target_kl):
                break  # the policy has moved far enough from the actors' on this batch
            epochs += 1
            total = float(loss.total.detach())
            if not math.isfinite(total):
                raise NonFiniteLossError(f"the loss is {total} at update {self.updates + 1} (epoch {epoch + 1})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            grad_norm = float(nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_norm_clip))
            if not math.isfinite(grad_norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(
                    f"the gradient norm is {grad_norm} at update {self.updates + 1} (epoch {epoch + 1})")
            self.optimizer.step()
            if first_targets is None:
                first_targets = loss.value_targets
            for name in loss._fields:
                if name not in _NOT_LOGGED:
                    sums[name] = sums.get(name, 0.0) + float(getattr(loss, name))
            sums["loss_total"] = sums.get("loss_total", 0.0) + total
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm
        update_value_normalization = getattr(self.policy, "update_value_normalization", None)
        if update_value_normalization is not None and first_targets is not None:
            update_value_normalization(first_targets, trajectory.valid)
        update_observation_normalization = getattr(self.policy, "update_observation_normalization", None)
        if update_observation_normalization is not None:
            update_observation_normalization(trajectory.obs)
        self.updates += 1
        metrics = {name: total / epochs for name, total in sums.items()}  # means over the epochs taken
        metrics["learning_rate"] = learning_rate
        metrics["epochs"] = float(epochs)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the optimiser and the update count (the schedule follows from them; a
        ``scheduler`` entry of older checkpoints is not needed)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
