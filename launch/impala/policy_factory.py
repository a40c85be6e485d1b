"""Building the agent a config asks for, the same way in the learner, actors and evaluation."""

from __future__ import annotations

import multiprocessing

import gymnasium as gym

from agents import ActorCritic
from agents.spaces import left_out_leaves, path_name
from launch.impala.config import ConfigError, TrainConfig

_noticed_left_out: set[str] = set()
"""The left-out observation keys this process has already told the user about."""


def notice_left_out_observations(observation_space: gym.Space) -> None:
    """Print one line per observation leaf the agent leaves out (``agents.spaces.encodable_space``).

    Each key is named once per launcher process; actors and other helper processes, which
    build the same policy, stay quiet, so a run says it once.
    """
    if multiprocessing.parent_process() is not None:
        return
    for path, leaf in left_out_leaves(observation_space):
        name = path_name(path)
        if name not in _noticed_left_out:
            _noticed_left_out.add(name)
            print(f"observation key {name} ({type(leaf).__name__}) is not encoded by the agent; it is left out",
                  flush=True)


def build_policy(config: TrainConfig, observation_space: gym.Space, action_space: gym.Space) -> ActorCritic:
    """The ``ActorCritic`` of ``config`` for these (single-game) spaces, on the CPU.

    Raises:
        ConfigError: when the agent rejects the spaces or the core settings.
    """
    try:
        policy = ActorCritic(
            observation_space,
            action_space,
            core=config.core,
            core_kwargs=dict(config.core_kwargs) or None,  # empty -> the agent's default core size
            encoder=config.encoder,
            use_previous_action_reward=config.use_previous_action_reward,
            hidden_size=config.hidden_size,
            core_output_norm=config.core_output_norm,
            rmc_gate_input_pooling=config.rmc_gate_input_pooling,
            value_normalization=config.value_normalization,
            observation_normalization=config.observation_normalization,
            lstm_output_norm=config.lstm_output_norm,
            mlp_activation=config.mlp_activation,
            orthogonal_init=config.orthogonal_init,
            image_normalization=config.image_normalization,
        )
    except (ValueError, TypeError, NotImplementedError) as error:
        raise ConfigError(
            f"cannot build the {config.core!r} agent for {config.env!r} (observation space {observation_space}, "
            f"action space {action_space}): {error}"
        ) from None
    notice_left_out_observations(observation_space)
    return policy
