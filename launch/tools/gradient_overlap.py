"""How much a policy-gradient step at one state moves the policy at every other state.

Usage::

    python -m launch.tools.gradient_overlap --flags "--env Acrobot-v1 --core lstm"
    python -m launch.tools.gradient_overlap --flags "--env Acrobot-v1 --mlp-activation tanh --orthogonal-init"
    python -m launch.tools.gradient_overlap --checkpoint runs/RUN

The policy plays ``--states`` fresh games for ``--warmup-steps`` steps; at the state each
game has then reached (with the core state the policy carried there) the tool takes the
gradient, with respect to every parameter, of the difference between the policy's first two
outputs (two actions' logits for a Discrete action space) and prints the mean cosine between
the gradients of different states. Near 1, a step that raises one action's probability at
one state raises it at every state alike: a batch whose advantages are noise then moves the
whole policy towards one action (or the entropy bonus holds it at uniform), and a policy
that acts differently in different states forms slowly. Near 0, each state's policy moves
on its own.

With ``--flags`` the agent is untrained, built from launch.train's flags (the preset's and
default values for the rest), once per ``--inits`` seed; with ``--checkpoint`` it is a
trained run's policy (a run directory's latest checkpoint, or a checkpoint file). The last
line holds the figures as JSON.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass

import torch

from launch.cli import BadInput, first_paragraph, parse_options, require_at_least, run_command
from launch.impala.config import TrainConfig, parse_train_args
from launch.impala.env_factory import make_single_env
from launch.impala.policy_factory import build_policy
from launch.impala.rollout import record_unroll
from launch.impala.trained import load_trained, resolve_checkpoint, trained_policy


def mean_gradient_cosine(gradients: torch.Tensor) -> float:
    """The mean cosine between the rows of ``[S, D]`` gradients, over all pairs of rows."""
    count = gradients.shape[0]
    if count < 2:
        raise ValueError(f"need at least 2 gradients, got {count}")
    unit = gradients / gradients.norm(dim=1, keepdim=True).clamp(min=1e-30)
    cosines = unit @ unit.T
    return float((cosines.sum() - cosines.diagonal().sum()) / (count * (count - 1)))


def policy_gradient_overlap(config: TrainConfig, model_state: dict[str, torch.Tensor], states: int, warmup_steps: int,
                            seed: int) -> float:
    """The mean gradient cosine (module docstring) of the policy ``model_state`` of ``config``
    at the states ``states`` fresh games reach after ``warmup_steps`` steps of its own play."""
    trajectory, state, observation_space, action_space = record_unroll(
        config, model_state, games=states, steps=1, seed=seed, warmup_unrolls=warmup_steps)
    policy = trained_policy(config, model_state, observation_space, action_space)
    output, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                              trajectory.reset, state)
    params = output.policy_params[0]  # [states, P]: the first step of the kept unroll
    if params.shape[-1] < 2:
        raise BadInput(f"the action space {action_space} gives the policy {params.shape[-1]} output; "
                       "the overlap needs two")
    parameters = [parameter for parameter in policy.parameters() if parameter.requires_grad]
    rows = []
    for index in range(states):
        difference = params[index, 0] - params[index, 1]
        gradient = torch.autograd.grad(difference, parameters, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(gradient, parameters)]))
    return mean_gradient_cosine(torch.stack(rows))


@dataclass
class GradientOverlapOptions:
    """What ``python -m launch.tools.gradient_overlap`` measures."""

    flags: str = ""
    """launch.train flags of an untrained agent, as one string (e.g. "--env CartPole-v1 --core lstm")."""
    checkpoint: str | None = None
    """A trained agent instead: a run directory (its latest checkpoint) or a checkpoint file."""
    states: int = 20
    """States (one per game) whose gradients are compared."""
    warmup_steps: int = 20
    """Steps each game is played before its state is taken."""
    inits: int = 3
    """Untrained agents measured, initialised with seeds 0, 1, ... (with --flags)."""
    seed: int = 1000
    """Seed of the games."""

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (not self.flags.strip()):
            raise BadInput("give either --flags (an untrained agent) or --checkpoint (a trained one)")
        require_at_least(self, states=2, warmup_steps=0, inits=1)


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.tools.gradient_overlap``."""

    def body() -> None:
        options = parse_options(GradientOverlapOptions, argv, prog="python -m launch.tools.gradient_overlap",
                                description=first_paragraph(__doc__))
        torch.set_num_threads(1)
        if options.checkpoint is not None:
            path = resolve_checkpoint(options.checkpoint)
            config, model_state = load_trained(path)
            agents = [(str(path), model_state)]
        else:
            config, _, _, _ = parse_train_args(shlex.split(options.flags))
            if config is None:
                raise BadInput("--flags describe a new agent; --resume is not taken here")
            env = make_single_env(config.env, config.env_kwargs, config.wrappers, config.env_package)
            try:
                spaces = env.observation_space, env.action_space
            finally:
                env.close()
            agents = []
            for init in range(options.inits):
                torch.manual_seed(init)
                agents.append((f"init seed {init}", build_policy(config, *spaces).state_dict()))
        rows = [{"agent": name, "overlap": policy_gradient_overlap(config, state, options.states,
                                                                    options.warmup_steps, options.seed)}
                for name, state in agents]
        print(f"mean cosine between the policy gradients of {options.states} states ({config.env}, core {config.core})")
        for row in rows:
            print(f"  {row['agent']}: {row['overlap']:.3f}")
        print(json.dumps(rows))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
