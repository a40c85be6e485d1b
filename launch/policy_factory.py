"""Building the agent a config asks for, the same way in the learner, actors and evaluation."""

from __future__ import annotations

import gymnasium as gym

from agents import ActorCritic
from launch.config import ConfigError, TrainConfig


def build_policy(config: TrainConfig, observation_space: gym.Space, action_space: gym.Space) -> ActorCritic:
    """The ``ActorCritic`` of ``config`` for these (single-game) spaces, on the CPU.

    Raises:
        ConfigError: when the agent rejects the spaces or the core settings.
    """
    try:
        return ActorCritic(
            observation_space,
            action_space,
            core=config.core,
            core_kwargs=dict(config.core_kwargs) or None,  # empty -> the agent's default core size
            encoder=config.encoder,
            use_previous_action_reward=config.use_previous_action_reward,
            hidden_size=config.hidden_size,
            core_output_norm=config.core_output_norm,
            rmc_gate_input_pooling=config.rmc_gate_input_pooling,
        )
    except (ValueError, TypeError, NotImplementedError) as error:
        raise ConfigError(
            f"cannot build the {config.core!r} agent for {config.env!r} (observation space {observation_space}, "
            f"action space {action_space}): {error}"
        ) from None
