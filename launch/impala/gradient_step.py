"""One gradient step of the learner with no host synchronisation inside, eager or compiled.

A step is two calls: :meth:`GradientStep.loss` re-runs the policy over a (mini)batch and
returns the IMPALA loss (``agents.loss.impala_loss``); :meth:`GradientStep.apply`
back-propagates it, clips the global gradient norm and steps the optimiser. Neither reads a
tensor on the host: the loss and the gradient norm stay on the device, and the non-finite
guard is applied there too. Before the optimiser's step the weights and the optimiser's
state are copied; after it, wherever the loss or the gradient norm was NaN or infinite (or an
earlier step of the same update was), they are put back from the copy, and a device flag
(:attr:`GradientStep.failed`) records it for the learner to read once, with the update's
metrics. So a non-finite step changes nothing, and neither does any step after it in that
update. (Eager on a CPU, where reading a tensor waits for nothing, such a step is simply not
taken, which saves the copies: 15% of a CartPole update.)

``compiled=True`` passes both calls through ``torch.compile``: the loss (the whole unroll of
the policy over T steps, V-trace and the loss terms) becomes one graph whose backward is
compiled with it, and the clip, the guard and the optimiser's step a second graph. On a CUDA
device both are compiled in "reduce-overhead" mode, which records them as CUDA graphs and
replays them: the update's hundreds of small kernels per time step are launched by one call
each (as LeanRL does for PPO). That needs static shapes (a new unroll length or batch size
compiles and records again), an optimiser whose step count lives on the device
(``capturable=True``) and the learning rate as a device tensor changed in place
(:func:`set_learning_rate`), all of which the learner arranges. The compile is paid once,
at the first update, and it is long for the RMC: the unrolled graph of the Box-World preset
(T = 40) took 7 minutes to compile on a 2-core CPU, seconds from the inductor's cache
afterwards (docs/results.md, "Learner update").
"""

from __future__ import annotations

import torch
from torch import nn

from agents.loss import LossConfig, LossOutput, impala_loss
from agents.trajectory import Trajectory

METRICS = ("loss_total", "policy_loss", "baseline_loss", "entropy", "mean_value", "mean_importance_weight",
           "mean_vtrace_target", "behaviour_kl", "pg_clipped_fraction", "value_scale", "grad_norm")
"""Names of the entries of the vector :meth:`GradientStep.apply` returns, in order."""


class GradientStep:
    """The loss and the optimiser step of one gradient step, without host synchronisation.

    Args:
        policy: the ``ActorCritic`` on the learner device.
        optimizer: its optimiser; with ``compiled=True`` on CUDA it must be capturable and
            hold its learning rate as a device tensor (see :func:`make_optimizer`).
        loss_config: the loss settings.
        grad_norm_clip: the global gradient-norm clip.
        compiled: compile the loss and the step (see the module docstring).
    """

    def __init__(self, policy: nn.Module, optimizer: torch.optim.Optimizer, loss_config: LossConfig,
                 grad_norm_clip: float, compiled: bool = False) -> None:
        self.policy = policy
        self.optimizer = optimizer
        self.loss_config = loss_config
        self.grad_norm_clip = grad_norm_clip
        self.parameters = [p for group in optimizer.param_groups for p in group["params"]]
        device = self.parameters[0].device
        self.failed = torch.zeros((), dtype=torch.bool, device=device)
        """True once a step of the current update was not finite (reset by :meth:`begin_update`)."""
        self.compiled = compiled
        self._cuda_graphs = compiled and device.type == "cuda"
        # Compiled, or on an accelerator, the step is undone on the device (no branch on a
        # tensor's value); eager on the CPU, skipping it is free and saves the copies.
        self._undo_on_device = compiled or device.type != "cpu"
        initialise_optimizer_state(optimizer)
        if compiled:
            mode = "reduce-overhead" if self._cuda_graphs else None
            self._loss = torch.compile(self._loss_eager, mode=mode, dynamic=False)
            self._step = torch.compile(self._step_eager, mode=mode, dynamic=False)
        else:
            self._loss, self._step = self._loss_eager, self._step_eager

    def begin_update(self) -> None:
        """Clears the non-finite flag: call before an update's first step."""
        self.failed.zero_()

    def loss(self, trajectory: Trajectory, initial_state: tuple[torch.Tensor, ...],
             proximal_log_prob: torch.Tensor | None = None) -> LossOutput:
        """The IMPALA loss of the current weights on a (mini)batch (with its graph);
        ``proximal_log_prob`` as in ``agents.loss.impala_loss``."""
        if self._cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss = self._loss(trajectory, tuple(initial_state), proximal_log_prob)
        if self._cuda_graphs:  # a graph's outputs are overwritten by its next replay
            loss = LossOutput(*(value if name == "total" else value.clone()
                                for name, value in zip(LossOutput._fields, loss)))
        return loss

    def apply(self, loss: LossOutput) -> torch.Tensor:
        """Back-propagates ``loss.total``, clips, guards and steps; returns the step's metrics
        as one device vector in the order of :data:`METRICS`."""
        self.optimizer.zero_grad(set_to_none=True)  # the backward then writes the gradients, no adding
        loss.total.backward()
        total = loss.total.detach()
        grad_norm = self._step(total)
        if self._cuda_graphs:
            grad_norm = grad_norm.clone()
        return torch.stack([total] + [getattr(loss, name) for name in METRICS[1:-1]] + [grad_norm])

    def _loss_eager(self, trajectory: Trajectory, initial_state: tuple[torch.Tensor, ...],
                    proximal_log_prob: torch.Tensor | None = None) -> LossOutput:
        return impala_loss(self.policy, trajectory, initial_state, self.loss_config, proximal_log_prob)

    def _step_eager(self, total: torch.Tensor) -> torch.Tensor:
        grad_norm = nn.utils.clip_grad_norm_(self.parameters, self.grad_norm_clip)
        finite = torch.isfinite(total) & torch.isfinite(grad_norm) & ~self.failed
        if self._undo_on_device:
            tensors = self._weights_and_state()
            saved = [tensor.clone() for tensor in tensors]
            self.optimizer.step()
            for tensor, before in zip(tensors, saved):
                tensor.copy_(torch.where(finite, tensor, before))
        elif bool(finite):  # eager on the CPU: reading a CPU tensor waits for nothing
            self.optimizer.step()
        self.failed.logical_or_(~finite)
        return grad_norm

    def _weights_and_state(self) -> list[torch.Tensor]:
        """The tensors an optimiser step writes: the weights and the optimiser's state."""
        tensors = [p.detach() for p in self.parameters]
        for p in self.parameters:
            tensors.extend(value for value in self.optimizer.state[p].values()
                           if isinstance(value, torch.Tensor))
        return tensors


def make_optimizer(parameters: list[nn.Parameter], name: str, learning_rate: float, tensor_rate: bool,
                   capturable: bool, **settings: float | tuple[float, float]) -> torch.optim.Optimizer:
    """RMSProp, Adam or RAdam over ``parameters``.

    Args:
        tensor_rate: hold the learning rate as a device tensor (for a compiled step, so that a
            new rate changes the tensor instead of compiling the step again).
        capturable: the optimiser's step count lives on the device (CUDA graphs need it).
        settings: the optimiser's other arguments (``alpha``, ``eps``, ``momentum``, ``betas``).
    """
    rate: float | torch.Tensor = learning_rate
    if tensor_rate:
        rate = torch.tensor(learning_rate, dtype=parameters[0].dtype, device=parameters[0].device)
    kind = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam, "radam": torch.optim.RAdam}[name]
    return kind(parameters, lr=rate, capturable=capturable, foreach=capturable or None, **settings)


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Sets every group's rate: a tensor rate is changed in place (a compiled step keeps it)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value


def initialise_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Creates the optimiser's state (moments, step counts) now, as its first step would, so
    that a step can be undone from the very first: one step at rate 0 on zero gradients, which
    changes no weight and leaves every moment at 0, then the step counts back to 0."""
    if any(optimizer.state[p] for group in optimizer.param_groups for p in group["params"]):
        return
    grads, rates = [], []
    for group in optimizer.param_groups:
        rates.append(group["lr"])
        group["lr"] = group["lr"] * 0 if isinstance(group["lr"], torch.Tensor) else 0.0
        for p in group["params"]:
            grads.append(p.grad)
            p.grad = torch.zeros_like(p)
    optimizer.step()
    index = 0
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
        for p in group["params"]:
            p.grad = grads[index]
            index += 1
            step = optimizer.state[p].get("step")
            if isinstance(step, torch.Tensor):
                step.zero_()
            elif step is not None:
                optimizer.state[p]["step"] = 0


def place_step_counts(optimizer: torch.optim.Optimizer) -> None:
    """Moves each step count where the optimiser's ``capturable`` setting wants it (on the
    weight's device, or on the CPU), after loading a state saved with the other setting."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            step = optimizer.state[p].get("step")
            if isinstance(step, torch.Tensor):
                device = p.device if group.get("capturable") else torch.device("cpu")
                optimizer.state[p]["step"] = step.to(device=device, dtype=torch.float32)
