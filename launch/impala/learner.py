"""The learner: IMPALA updates on each batch of unrolls (Espeholt et al. 2018).

``agents.loss.impala_loss`` re-runs the policy over the batch from the stored core states
and returns the V-trace loss; the learner clips the global gradient norm, sets the
learning rate from its schedule, steps RMSProp or Adam, and refuses to apply a non-finite
loss or gradient (``NonFiniteLossError``) so the weights stay as good as the last checkpoint.
The gradient steps (``launch.impala.gradient_step``) never wait for the device: the update
reads it once, at its end; with ``compile_update`` they run compiled (as CUDA graphs on a
GPU).

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
and the vector observations' statistics towards the batch's observations. Before the run's
first step PopArt's statistics are set from the first batch's targets (Hessel et al. 2019
update them before each step), so no step sees the initial ``sigma = 1``.

With ``pg_clip_reference = "update"`` the clip is taken against the learner's policy at the
start of the update (decoupled PPO, ``agents.loss``): the first epoch's log-probabilities of
the batch's actions (with minibatches, each taken just before its own step) are kept and
passed to the later epochs' losses as the proximal policy's.

``num_minibatches = M > 1`` splits each epoch's unrolls at random into M minibatches and
steps on each (PPO's minibatches): M times the gradient steps for the same learner work.
``lr_kl_target`` adapts the learning rate to the measured actor-learner KL divergence after
every update (rl_games' adaptive schedule), so that a step moves the policy about the same
amount whatever the network and the env.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from agents.loss import LossConfig, impala_loss
from agents.normalization import PopArtValueHead
from agents.trajectory import Trajectory
from launch.impala.buffers import select_games
from launch.impala.config import TrainConfig
from launch.impala.gradient_step import (
    METRICS, GradientStep, initialise_optimizer_state, make_optimizer, place_step_counts, set_learning_rate,
)


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
        pg_clip_reference=config.pg_clip_reference,
    )


_MIN_KL_FACTOR = 1e-3
"""The KL-adaptive rate never falls below this share of the scheduled rate."""


def compiles_update(config: TrainConfig, device: torch.device) -> bool:
    """Whether the learner's gradient steps run compiled: ``compile_update`` 'on' or 'off', or
    for 'auto' on a CUDA device only. On a CPU the compiled step is faster per update (1.4x on
    the Box-World RMC preset), but its compile takes minutes for the RMC's unrolls (7 for
    that preset on a 2-core CPU), longer than many runs gain (docs/results.md, "Learner
    update")."""
    if config.compile_update == "auto":
        return device.type == "cuda"
    return config.compile_update == "on"


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
        self.kl_factor = 1.0  # the KL-adaptive multiplier of the scheduled rate (lr_kl_target)
        self.loss_config = loss_config(config)
        parameters = list(policy.parameters())
        device = parameters[0].device
        compiled = compiles_update(config, device)
        if config.optimizer == "rmsprop":
            settings: dict[str, Any] = {"alpha": config.rmsprop_alpha, "eps": config.rmsprop_eps,
                                        "momentum": config.rmsprop_momentum}
        else:
            settings = {"eps": config.adam_eps, "betas": (config.adam_beta1, config.adam_beta2)}
        self._capturable = compiled and device.type == "cuda"
        self.optimizer = make_optimizer(parameters, config.optimizer, config.learning_rate, tensor_rate=compiled,
                                        capturable=self._capturable, **settings)
        self.gradient_step = GradientStep(policy, self.optimizer, self.loss_config, config.grad_norm_clip,
                                          compiled=compiled)

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

    @property
    def compiled(self) -> bool:
        """Whether the gradient steps run compiled (``compile_update``)."""
        return self.gradient_step.compiled

    def update(
        self, trajectory: Trajectory, initial_state: tuple[torch.Tensor, ...], time_fraction: float = 0.0,
    ) -> dict[str, float]:
        """``num_epochs`` passes of ``num_minibatches`` gradient steps on a batch; returns scalar
        metrics (means over the steps taken).

        ``time_fraction`` is the share of the time limit used so far (see
        :meth:`learning_rate_factor`).

        Reads the device once, at the end, for the metrics and the non-finite guard.

        Raises:
            NonFiniteLossError: the loss or gradient of a step was NaN/inf (that step and
                those after it in this update were undone; the statistics were not moved).
        """
        self.policy.train()
        learning_rate = self.config.learning_rate * self.learning_rate_factor(time_fraction) * self.kl_factor
        set_learning_rate(self.optimizer, learning_rate)
        self._initialise_value_normalization(trajectory, initial_state)
        step = self.gradient_step
        step.begin_update()
        sums: torch.Tensor | None = None
        first_targets: list[tuple[torch.Tensor, torch.Tensor]] = []
        steps = epochs = 0
        batch_size = trajectory.reset.shape[1]
        num_minibatches = min(self.config.num_minibatches, batch_size)
        decoupled = self.loss_config.pg_ratio_clip is not None and self.loss_config.pg_clip_reference == "update"
        proximal = torch.zeros_like(trajectory.behaviour_log_prob) if decoupled else None  # [T, B]
        stop = False
        for epoch in range(self.config.num_epochs):
            order = torch.randperm(batch_size) if num_minibatches > 1 else None
            for part in range(num_minibatches):
                minibatch, minibatch_state = trajectory, initial_state
                index = None
                if order is not None:
                    index = order[part::num_minibatches].to(trajectory.reset.device)
                    minibatch, minibatch_state = select_games(trajectory, initial_state, index)
                minibatch_proximal = None  # the first epoch: the current policy is the proximal one
                if proximal is not None and epoch > 0:
                    minibatch_proximal = proximal if index is None else proximal[:, index]
                loss = step.loss(minibatch, minibatch_state, minibatch_proximal)
                if proximal is not None and epoch == 0:
                    if index is None:
                        proximal.copy_(loss.log_prob)
                    else:
                        proximal[:, index] = loss.log_prob
                if (epoch > 0 and self.config.target_kl is not None
                        and float(loss.behaviour_kl) > self.config.target_kl):
                    stop = True  # the policy has moved far enough from the actors' on this batch
                    break
                metrics = step.apply(loss)
                sums = metrics if sums is None else sums + metrics
                steps += 1
                if epoch == 0:
                    first_targets.append((loss.value_targets, minibatch.valid))
            if stop:
                break
            epochs += 1
        assert sums is not None  # the first epoch always steps
        *values, failed = torch.cat([sums / steps, step.failed.to(sums.dtype).reshape(1)]).tolist()  # one sync
        metrics = dict(zip(METRICS, values))  # means over the steps taken
        if failed:
            loss, grad_norm = metrics["loss_total"], metrics["grad_norm"]
            what = f"the loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {grad_norm}"
            raise NonFiniteLossError(f"{what} at update {self.updates + 1} (its steps were undone)")
        update_value_normalization = getattr(self.policy, "update_value_normalization", None)
        if update_value_normalization is not None and first_targets:
            update_value_normalization(torch.cat([targets for targets, _ in first_targets], dim=1),
                                       torch.cat([valid for _, valid in first_targets], dim=1))
        update_observation_normalization = getattr(self.policy, "update_observation_normalization", None)
        if update_observation_normalization is not None:
            update_observation_normalization(trajectory.obs)
        self.updates += 1
        self._adapt_to_kl(metrics["behaviour_kl"])
        metrics["learning_rate"] = learning_rate
        metrics["epochs"] = float(epochs)
        metrics["gradient_steps"] = float(steps)
        return metrics

    def _adapt_to_kl(self, behaviour_kl: float) -> None:
        """The ``lr_kl_target`` rule: divide the rate by 1.5 when the KL was above twice the
        target, multiply it by 1.5 (to at most the scheduled rate) when below half of it."""
        target = self.config.lr_kl_target
        if target is None:
            return
        if behaviour_kl > 2.0 * target:
            self.kl_factor = max(self.kl_factor / 1.5, _MIN_KL_FACTOR)
        elif behaviour_kl < 0.5 * target:
            self.kl_factor = min(self.kl_factor * 1.5, 1.0)

    def _initialise_value_normalization(self, trajectory: Trajectory,
                                        initial_state: tuple[torch.Tensor, ...]) -> None:
        """Set PopArt's statistics from the first batch's V-trace targets before the first step.

        Later batches move them after their steps, but before the first batch they are the
        initial ``mu = 0, sigma = 1``: with CartPole's returns of about 15 the first steps
        would see value errors 15 times their normalised size (100 times on Acrobot), which
        is what the normalisation exists to prevent. Those gradients also fill Adam's second
        moments, shrinking its steps for the next few hundred updates. As in Hessel et al.
        2019, whose statistics are updated before each step, the first batch's targets set
        them here, with the head rescaled so that no value changes.
        """
        value_head = getattr(self.policy, "value_head", None)
        if not isinstance(value_head, PopArtValueHead) or int(value_head.updates) > 0:
            return
        with torch.no_grad():
            targets = impala_loss(self.policy, trajectory, initial_state, self.loss_config).value_targets
        if bool(torch.isfinite(targets).all()):  # else the update's guard stops it, the head untouched
            value_head.update(targets, trajectory.valid)

    def state_dict(self) -> dict[str, Any]:
        """The optimiser (its rate as a number, whether the steps run compiled or not), the
        update count and the KL factor."""
        optimizer = self.optimizer.state_dict()
        for group in optimizer["param_groups"]:
            group["lr"] = float(group["lr"])
        return {"optimizer": optimizer, "updates": self.updates, "kl_factor": self.kl_factor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the optimiser and the update count (the schedule follows from them; a
        ``scheduler`` entry of older checkpoints is not needed). A checkpoint of a compiled
        learner loads into an eager one and the other way round."""
        rates = [group["lr"] for group in self.optimizer.param_groups]  # this learner's kind of rate
        self.optimizer.load_state_dict(state["optimizer"])
        saved = float(self.optimizer.param_groups[0]["lr"])  # the learner gives every group one rate
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"], group["capturable"] = rate, self._capturable
        set_learning_rate(self.optimizer, saved)
        place_step_counts(self.optimizer)
        initialise_optimizer_state(self.optimizer)
        self.updates = int(state["updates"])
        self.kl_factor = float(state.get("kl_factor", 1.0))
