"""Box-World single env: Gymnasium conformance, rules, rendering, errors."""

import os
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.boxworld import BoxWorldEnv
from envs.boxworld_levels import AGENT_COLOUR, BACKGROUND_COLOUR, GEM_COLOUR, key_lock_palette, parse_level

BOXWORLD_IDS = ("rmc/BoxWorld-v0", "rmc/BoxWorldViewport-v0", "rmc/BoxWorldEasy-v0")
NORTH, SOUTH, WEST, EAST, NOOP = 0, 1, 2, 3, 4
PALETTE = key_lock_palette(20)
BLACK = (0, 0, 0)

# A 7x7 board (room 5): loose key a at (2,1); box (gem, lock A) at (4,2)-(4,3);
# box (key b, lock A) at (2,4)-(2,5), a distractor; agent at (3,1).
LEVEL = (
    "#######",
    "#.....#",
    "#a..bA#",
    "#@....#",
    "#.*A..#",
    "#.....#",
    "#######",
)
DISTRACTOR = [(2, 5)]


def play(rows=LEVEL, distractors=DISTRACTOR, **kwargs):
    env = BoxWorldEnv(room_size=len(rows) - 2, solution_length=1, num_distractors=0, **kwargs)
    observation, info = env.reset(seed=0, options={"level": parse_level(rows, distractors)})
    return env, observation, info


@pytest.mark.parametrize("env_id", BOXWORLD_IDS)
@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_check_env_passes_without_warnings(env_id, render_mode):
    env = gym.make(env_id, render_mode=render_mode).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=render_mode is None)
    assert [str(warning.message) for warning in caught] == []


@pytest.mark.parametrize("env_id", BOXWORLD_IDS)
def test_same_seed_same_episode_and_different_seeds_different_levels(env_id):
    def rollout(seed):
        env = gym.make(env_id)
        observation, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        frames, rewards = [observation], []
        for _ in range(300):
            observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            frames.append(observation)
            rewards.append(reward)
            if terminated or truncated:
                frames.append(env.reset()[0])
        return np.stack(frames), rewards

    first, rewards = rollout(3)
    again, rewards_again = rollout(3)
    assert np.array_equal(first, again) and rewards == rewards_again
    boards = {gym.make(env_id).unwrapped.reset(seed=seed)[0].tobytes() for seed in range(20)}
    assert len(boards) == 20


def test_observation_is_a_uint8_board_in_the_declared_space():
    env = gym.make("rmc/BoxWorld-v0")
    observation, _ = env.reset(seed=1)
    assert observation.dtype == np.uint8 and observation.shape == (14, 14, 3)
    assert env.observation_space.contains(observation)
    assert np.all(observation[0] == 0) and np.all(observation[:, 0] == 0)  # black border
    assert (observation.reshape(-1, 3) == AGENT_COLOUR).all(axis=1).sum() == 1
    assert (observation.reshape(-1, 3) == GEM_COLOUR).all(axis=1).sum() == 1


def test_walking_onto_a_loose_key_picks_it_up_and_shows_it_top_left():
    env, observation, info = play()
    assert info["held_key"] == -1 and tuple(observation[0, 0]) == BLACK
    observation, reward, terminated, truncated, info = env.step(NORTH)
    assert info["held_key"] == 0 and info["key_picked"] and reward == 0 and not terminated
    assert tuple(observation[0, 0]) == tuple(PALETTE[0])
    assert tuple(observation[2, 1]) == AGENT_COLOUR and tuple(observation[3, 1]) == BACKGROUND_COLOUR


def test_picking_a_second_key_replaces_the_held_one():
    rows = (
        "#######",
        "#.....#",
        "#a@c..#",
        "#.....#",
        "#.*A..#",
        "#.....#",
        "#######",
    )
    env, _, _ = play(rows, [])
    env.step(WEST)
    _, _, _, _, info = env.step(EAST)
    observation, _, _, _, info = env.step(EAST)
    assert info["held_key"] == 2 and info["key_picked"]
    assert tuple(observation[0, 0]) == tuple(PALETTE[2])
    assert tuple(observation[2, 1]) == BACKGROUND_COLOUR  # key a is gone for good


def test_lock_without_the_key_blocks_and_with_the_key_opens_for_plus_one():
    env, _, _ = play()
    env.step(SOUTH)  # (4,1), beside the gem which its lock still holds
    observation, reward, _, _, info = env.step(EAST)
    assert tuple(observation[4, 1]) == AGENT_COLOUR and reward == 0  # the gem is locked
    env.step(SOUTH)
    env.step(EAST)
    env.step(EAST)  # (5,3)
    observation, reward, _, _, _ = env.step(NORTH)  # lock A, no key held
    assert tuple(observation[5, 3]) == AGENT_COLOUR and reward == 0

    env, _, _ = play()
    env.step(NORTH)  # key a
    for action in (SOUTH, SOUTH, SOUTH, EAST, EAST):
        env.step(action)  # to (5,3)
    observation, reward, terminated, truncated, info = env.step(NORTH)
    assert reward == 1.0 and info["correct_lock_opened"] and not terminated
    assert info["held_key"] == -1 and tuple(observation[0, 0]) == BLACK  # the key is used up
    assert tuple(observation[4, 3]) == AGENT_COLOUR  # the agent stands on the opened lock
    observation, reward, terminated, truncated, info = env.step(WEST)
    assert reward == 10.0 and terminated and not truncated
    assert info["gem_collected"] and info["success"]


def test_opening_a_distractor_lock_terminates_with_minus_one():
    env, _, _ = play()
    env.step(NORTH)  # key a
    for action in (NORTH, EAST, EAST, EAST, EAST):
        env.step(action)  # to (1,5), above the distractor lock A at (2,5)
    observation, reward, terminated, truncated, info = env.step(SOUTH)
    assert reward == -1.0 and terminated and not truncated
    assert info["distractor_lock_opened"] and info["success"] is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step(NORTH)


def test_border_blocks_movement():
    env, _, _ = play()
    observation, _, _, _, _ = env.step(WEST)
    assert tuple(observation[3, 1]) == AGENT_COLOUR


def test_step_limit_truncates_after_exactly_max_steps():
    env, _, _ = play(max_steps=7)
    for step in range(1, 8):
        _, _, terminated, truncated, info = env.step(WEST)  # into the border
        assert info["steps"] == step and not terminated
        assert truncated == (step == 7)
    assert info["success"] is False


def test_noop_action_is_optional_and_counts_as_a_step():
    assert BoxWorldEnv().action_space.n == 4
    env, observation, _ = play(noop_action=True)
    assert env.action_space.n == 5
    after, reward, _, _, info = env.step(NOOP)
    assert np.array_equal(after, observation) and reward == 0 and info["steps"] == 1


def test_viewport_shows_the_window_around_the_agent_and_the_held_key_row():
    env, observation, _ = play(viewport=5)
    assert observation.shape == (6, 5, 3) and env.observation_space.shape == (6, 5, 3)
    assert np.all(observation[0] == BLACK)
    window = observation[1:]
    assert tuple(window[2, 2]) == AGENT_COLOUR  # centre
    assert np.all(window[:, :1] == BLACK)  # outside the board, column -1
    assert np.all(window[:, 1] == BLACK)  # the border column 0
    assert tuple(window[1, 2]) == tuple(PALETTE[0])  # key a above the agent
    assert tuple(window[3, 3]) == GEM_COLOUR  # the gem at (4,2)
    observation, _, _, _, _ = env.step(NORTH)
    assert np.all(observation[0] == PALETTE[0])


def test_every_render_mode(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = gym.make("rmc/BoxWorld-v0", render_mode="rgb_array")
    observation, _ = env.reset(seed=0)
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.shape == (14 * 32, 14 * 32, 3)
    assert np.all(picture[32 + 5, 32 + 5] == observation[1, 1])  # crisp cells
    env.close()
    human = gym.make("rmc/BoxWorldViewport-v0", render_mode="human")
    human.reset(seed=0)
    for action in (0, 1, 2, 3):
        human.step(action)
    assert human.render() is None
    human.close()
    assert os.environ["SDL_VIDEODRIVER"] == "dummy"


def test_pickled_env_continues_identically():
    env = gym.make("rmc/BoxWorldViewport-v0").unwrapped
    env.reset(seed=5)
    for action in (0, 3, 3, 1):
        env.step(action)
    copy = pickle.loads(pickle.dumps(env))
    for action in (2, 2, 0, 1, 3):
        first, second = env.step(action), copy.step(action)
        assert np.array_equal(first[0], second[0]) and first[1:4] == second[1:4]


def test_a_given_level_must_fit_the_env():
    env = BoxWorldEnv(room_size=5, solution_length=1, num_distractors=0, num_colours=2)
    with pytest.raises(ValueError, match="a 7x7 board"):
        env.reset(options={"level": parse_level(tuple(row[1:-1] for row in LEVEL[1:-1]))})
    with pytest.raises(ValueError, match="border of walls"):
        env.reset(options={"level": parse_level(LEVEL[:-1] + ("##.####",))})
    with pytest.raises(ValueError, match="uses colour 2, but num_colours is 2"):
        env.reset(options={"level": parse_level(tuple(row.replace("b", "c") for row in LEVEL), DISTRACTOR)})


@pytest.mark.parametrize("action", [4, -1, 1.5, "north", None])
def test_invalid_actions_are_rejected(action):
    env = BoxWorldEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an int in \\[0, 4\\)"):
        env.step(action)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"room_size": 0}, "room_size must be an int >= 1, got 0"),
        ({"solution_length": 0}, "solution_length values must be ints >= 1"),
        ({"solution_length": []}, "solution_length must be an int or a non-empty collection"),
        ({"num_distractors": -1}, "num_distractors values must be ints >= 0"),
        ({"distractor_length": 0}, "distractor_length must be an int >= 1, got 0"),
        ({"num_colours": 5}, "needs 8 key colours .* num_colours is 5"),
        ({"room_size": 6}, "need 9 objects .* room_size 6 holds at most 2"),
        ({"room_size": 10, "solution_length": 3, "num_distractors": 8}, "room_size 10 .* jams in"),
        ({"viewport": 4}, "viewport must be None or an odd int >= 1, got 4"),
        ({"max_steps": 0}, "max_steps must be an int >= 1, got 0"),
        ({"render_mode": "ansi"}, "render_mode must be one of"),
    ],
)
def test_invalid_kwargs_raise_a_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BoxWorldEnv(**kwargs)
