"""Building the agent a config asks for, the same way in the learner, actors and evaluation."""

from __future__ import annotations

import multiprocessing

import gymnasium as gym
import numpy as np

from agents import ActorCritic
from agents.encoders import SMALL_IMAGE_MAX_CELLS, is_image_space
from agents.spaces import encodable_space, left_out_leaves, path_name, space_leaves
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


def reads_images_as_symbols(config: TrainConfig, observation_space: gym.Space) -> bool:
    """Whether the agent of ``config`` reads uint8 images as symbols (``image_encoding``): 'auto'
    does for a MiniGrid env (its registered entry point is in the minigrid package) whose
    images have at most ``SMALL_IMAGE_MAX_CELLS`` cells (the symbolic views; minigrid's RGB
    renderings are larger)."""
    if config.image_encoding != "auto" or config.image_normalization:  # normalised images are pixels
        return config.image_encoding == "symbols"
    try:
        entry_point = gym.spec(config.env).entry_point
    except gym.error.Error:  # not registered (yet) under this id: nothing to go by
        return False
    if not (isinstance(entry_point, str) and entry_point.split(".")[0].split(":")[0] == "minigrid"):
        return False
    images = [leaf for _, leaf in space_leaves(encodable_space(observation_space)) if is_image_space(leaf)]
    return bool(images) and all(leaf.dtype == np.uint8 and leaf.shape[0] * leaf.shape[1] <= SMALL_IMAGE_MAX_CELLS
                                for leaf in images)


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
            image_symbols=reads_images_as_symbols(config, observation_space),
        )
    except (ValueError, TypeError, NotImplementedError) as error:
        raise ConfigError(
            f"cannot build the {config.core!r} agent for {config.env!r} (observation space {observation_space}, "
            f"action space {action_space}): {error}"
        ) from None
    notice_left_out_observations(observation_space)
    return policy
