"""agents.spaces: the part of an observation space the agent encodes, and the matching observations."""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np
import pytest

from agents.spaces import UnsupportedSpaceError, encodable_observation, encodable_space, left_out_leaves, map_leaves

IMAGE = gym.spaces.Box(0, 255, (5, 5, 3), np.uint8)


def test_numeric_spaces_are_kept_as_they_are() -> None:
    space = gym.spaces.Dict({"image": IMAGE, "pair": gym.spaces.Tuple((gym.spaces.Discrete(3),
                                                                       gym.spaces.MultiBinary(2)))})
    assert encodable_space(space) is space and left_out_leaves(space) == []
    observation = space.sample()
    assert encodable_observation(observation, space) is observation


def test_text_and_other_non_numeric_leaves_are_left_out_of_dicts_and_tuples() -> None:
    space = gym.spaces.Dict({
        "image": IMAGE,
        "mission": gym.spaces.Text(8),
        "extra": gym.spaces.Tuple((gym.spaces.Discrete(4), gym.spaces.Sequence(gym.spaces.Discrete(2)),
                                   gym.spaces.Box(-1.0, 1.0, (2,), np.float32))),
        "notes": gym.spaces.Dict({"text": gym.spaces.Text(3)}),  # nothing numeric inside: dropped whole
    })
    numeric_extra = gym.spaces.Tuple((gym.spaces.Discrete(4), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)))
    assert encodable_space(space) == gym.spaces.Dict({"image": IMAGE, "extra": numeric_extra})
    assert [path for path, _ in left_out_leaves(space)] == [("extra", 1), ("mission",), ("notes", "text")]
    # a batch of 2, as a vector env gives it
    raw = {"image": np.ones((2, 5, 5, 3), np.uint8), "mission": ("go", "stay"),
           "extra": (np.array([1, 2]), ((0,), (1, 1)), np.zeros((2, 2), np.float32)), "notes": {"text": ("a", "b")}}
    kept = encodable_observation(raw, space)
    assert set(kept) == {"image", "extra"} and kept["image"] is raw["image"]
    assert len(kept["extra"]) == 2 and kept["extra"][0] is raw["extra"][0] and kept["extra"][1] is raw["extra"][2]
    again = encodable_observation(kept, space)  # an already reduced observation passes unchanged
    assert set(again) == {"image", "extra"} and all(a is b for a, b in zip(again["extra"], kept["extra"], strict=True))
    with pytest.raises(ValueError, match="3 parts \\(2 once reduced\\) was expected, got 1"):
        encodable_observation({"image": raw["image"], "extra": (raw["extra"][0],)}, space)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (gym.spaces.Text(8), r"unsupported observation space Text\(.*\): the agent encodes Box"),
        (gym.spaces.Sequence(gym.spaces.Discrete(2)), "unsupported observation space Sequence"),
        (gym.spaces.Graph(gym.spaces.Discrete(2), None), "unsupported observation space Graph"),
        (gym.spaces.Dict({"mission": gym.spaces.Text(8)}),
         r"none of its parts can be encoded \('mission' \(Text\)\)"),
        (gym.spaces.Tuple((gym.spaces.Text(8), gym.spaces.Dict({"words": gym.spaces.Text(3)}))),
         r"none of its parts can be encoded \('0' \(Text\), '1/words' \(Text\)\)"),
    ],
)
def test_a_space_with_nothing_numeric_is_refused_naming_it_and_a_wrapper(space: gym.Space, message: str) -> None:
    with pytest.raises(UnsupportedSpaceError, match=message) as error:
        encodable_space(space)
    assert "--wrappers minigrid.wrappers:ImgObsWrapper" in str(error.value)


class Pair(NamedTuple):
    first: int
    second: list


def test_map_leaves_keeps_the_structure_and_zips_trees_of_the_same_shape() -> None:
    tree = {"a": Pair(1, [2, 3]), "b": (4,)}
    assert map_leaves(lambda leaf: leaf * 10, tree) == {"a": Pair(10, [20, 30]), "b": (40,)}
    assert isinstance(map_leaves(lambda leaf: leaf, tree)["a"], Pair)
    other = {"a": Pair(5, [6, 7]), "b": (8,)}
    assert map_leaves(lambda x, y: x + y, tree, other) == {"a": Pair(6, [8, 10]), "b": (12,)}
