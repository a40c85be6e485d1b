"""launch.impala.policy_factory: which images the agent reads as symbols."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from launch.impala.config import TrainConfig
from launch.impala.policy_factory import build_policy, reads_images_as_symbols

minigrid = pytest.importorskip("minigrid")  # registers the MiniGrid envs

SYMBOLIC_VIEW = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
                                 "direction": gym.spaces.Discrete(4)})
RGB_VIEW = gym.spaces.Box(0, 255, (56, 56, 3), np.uint8)  # minigrid's RGBImgPartialObsWrapper


@pytest.mark.parametrize("env, space, expected", [
    ("MiniGrid-MemoryS7-v0", SYMBOLIC_VIEW, True),
    ("MiniGrid-MemoryS7-v0", RGB_VIEW, False),
    ("rmc/BoxWorld-v0", gym.spaces.Box(0, 255, (14, 14, 3), np.uint8), False),
    ("CartPole-v1", gym.spaces.Box(-1.0, 1.0, (4,), np.float32), False),
    ("NotRegistered-v0", SYMBOLIC_VIEW, False),
])
def test_auto_reads_minigrids_symbolic_views_as_symbols_and_nothing_else(env, space, expected):
    import envs  # noqa: F401  (registers rmc/*)

    assert reads_images_as_symbols(TrainConfig(env=env, image_encoding="auto"), space) is expected


def test_explicit_choices_and_normalised_images_win_over_auto():
    assert reads_images_as_symbols(TrainConfig(env="CartPole-v1", image_encoding="symbols"), SYMBOLIC_VIEW)
    assert not reads_images_as_symbols(TrainConfig(env="MiniGrid-MemoryS7-v0", image_encoding="pixels"),
                                       SYMBOLIC_VIEW)
    assert not reads_images_as_symbols(TrainConfig(env="MiniGrid-MemoryS7-v0", image_encoding="auto",
                                                   image_normalization=True), SYMBOLIC_VIEW)


def test_the_built_agent_embeds_the_symbols_and_old_configs_keep_pixels():
    policy = build_policy(TrainConfig(env="MiniGrid-MemoryS7-v0", image_encoding="auto"), SYMBOLIC_VIEW,
                          gym.spaces.Discrete(7))
    assert policy.encoder.image_encoders[0].symbols is not None
    saved = TrainConfig(env="MiniGrid-MemoryS7-v0", image_encoding="auto").to_json()
    saved.pop("image_encoding")  # a config saved before the field existed
    assert TrainConfig.from_saved_json(saved).image_encoding == "pixels"
