"""Rule tests for Mini PacMan: rewards of every mode, ghosts, power, levels, spawning.

Situations are built with ``MiniPacmanEnv.set_state`` (the env's documented helper for
overwriting its state); ``situation`` below wraps it with a quiet default board.
Expected numbers are written out here from the original's reward table, not read back
from the implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.minipacman import MiniPacmanEnv
from envs.minipacman_rules import GHOST_SPAWN_CELLS, MAP_ROWS, MOVES, NUM_OPEN_CELLS, OPEN_CELLS, WIDTH

STAY, RIGHT, UP, LEFT, DOWN = range(5)
H_RIGHT, H_UP, H_LEFT, H_DOWN = range(4)

# mode: (step, food, pill, eat ghost, killed), the I2A PillEater table
REWARDS = {
    "regular": (0.0, 1.0, 2.0, 5.0, 0.0),
    "avoid": (0.1, -0.1, -5.0, -10.0, -20.0),
    "hunt": (0.0, 0.0, 1.0, 10.0, -20.0),
    "ambush": (0.0, -0.1, 0.0, 10.0, -20.0),
    "rush": (0.0, -0.1, 10.0, 0.0, 0.0),
}
MODES = tuple(REWARDS)
FAR_PILLS = [(13, 17), (13, 16)]  # bottom-right corner, away from the scenes below
FAR_GHOST = ((13, 1), H_UP)  # bottom-left corner


def situation(mode: str = "regular", seed: int = 0, **state) -> MiniPacmanEnv:
    """A reset env with Pac-Man at (3, 9) on an empty board, two far pills, one frozen far
    ghost, and whatever ``state`` overrides (passed to ``set_state``)."""
    env = MiniPacmanEnv(mode=mode)
    env.reset(seed=seed)
    defaults = dict(pacman=(3, 9), ghosts=[FAR_GHOST], pills=FAR_PILLS, food=[], power=0, ghost_speed_override=0.0)
    defaults.update(state)
    env.set_state(**defaults)
    return env


# --- map and movement ---------------------------------------------------------------------
def test_map_has_138_open_cells_and_walls_block_moves():
    assert len(MAP_ROWS) == 15 and all(len(row) == 19 for row in MAP_ROWS)
    assert NUM_OPEN_CELLS == 138
    corner = 1 * WIDTH + 1  # (1, 1): walls up and left
    assert MOVES[corner][UP] == corner and MOVES[corner][LEFT] == corner
    assert MOVES[corner][RIGHT] == corner + 1 and MOVES[corner][DOWN] == corner + WIDTH
    assert MOVES[corner][STAY] == corner


def test_pacman_moves_and_stays_at_walls():
    env = situation(pacman=(1, 1))
    env.step(UP)
    assert env.pacman_position == (1, 1)
    env.step(RIGHT)
    assert env.pacman_position == (1, 2)
    env.step(DOWN)  # (2, 2) is wall
    assert env.pacman_position == (1, 2)


def test_reset_fills_food_and_places_two_pills_and_one_ghost():
    env = MiniPacmanEnv()
    _, info = env.reset(seed=5)
    assert info["food_left"] == 138 and info["pills_left"] == 2 and info["level"] == 1
    assert len(info["ghost_positions"]) == 1 and info["power"] == 0


# --- rewards of every mode ------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_plain_step_reward(mode):
    env = situation(mode)
    _, reward, terminated, truncated, info = env.step(RIGHT)
    assert reward == pytest.approx(REWARDS[mode][0])
    assert not (terminated or truncated or info["ate_food"] or info["ate_pill"] or info["killed"])


@pytest.mark.parametrize("mode", MODES)
def test_food_reward(mode):
    env = situation(mode, food=[(3, 10), (1, 1)])
    _, reward, _, _, info = env.step(RIGHT)
    step, food, *_ = REWARDS[mode]
    assert reward == pytest.approx(step + food)
    assert info["ate_food"] and info["food_left"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_pill_reward_and_power(mode):
    env = situation(mode, pills=[(3, 10), (13, 17)])
    _, reward, _, _, info = env.step(RIGHT)
    step, _, pill, *_ = REWARDS[mode]
    assert reward == pytest.approx(step + pill)
    assert info["ate_pill"] and info["power"] == 20 and info["pills_left"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_food_under_a_pill_adds_both_rewards(mode):
    env = situation(mode, pills=[(3, 10), (13, 17)], food=[(3, 10), (1, 1)])
    _, reward, _, _, info = env.step(RIGHT)
    step, food, pill, *_ = REWARDS[mode]
    assert reward == pytest.approx(step + food + pill)
    assert info["ate_food"] and info["ate_pill"]


@pytest.mark.parametrize("mode", MODES)
def test_eating_a_powered_ghost(mode):
    env = situation(mode, power=5, ghosts=[((3, 10), H_LEFT), FAR_GHOST])
    _, reward, terminated, _, info = env.step(RIGHT)
    step, _, _, eat, _ = REWARDS[mode]
    assert reward == pytest.approx(step + eat)
    assert info["ghosts_eaten"] == 1 and not terminated
    assert info["ghost_positions"] == ((13, 1),)  # the eaten ghost is removed


@pytest.mark.parametrize("mode", MODES)
def test_killed_by_a_ghost_terminates(mode):
    env = situation(mode, ghosts=[((3, 10), H_LEFT)])
    _, reward, terminated, truncated, info = env.step(RIGHT)
    step, *_, killed = REWARDS[mode]
    assert reward == pytest.approx(step + killed)
    assert terminated and not truncated and info["killed"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(STAY)


def test_two_ghosts_on_pacman_reward_the_death_once():
    env = situation("avoid", ghosts=[((3, 10), H_LEFT), ((3, 10), H_RIGHT)])
    _, reward, terminated, _, _ = env.step(RIGHT)
    assert terminated and reward == pytest.approx(0.1 - 20.0)


def test_one_ghost_eaten_per_step():
    env = situation("hunt", power=5, ghosts=[((3, 10), H_LEFT), ((3, 10), H_RIGHT)])
    _, reward, _, _, info = env.step(RIGHT)
    assert info["ghosts_eaten"] == 1 and reward == pytest.approx(10.0)
    assert info["ghost_positions"] == ((3, 10),)
    _, reward, _, _, info = env.step(STAY)  # the second one is eaten the next step
    assert info["ghosts_eaten"] == 1 and info["level_cleared"]


# --- power --------------------------------------------------------------------------------
def test_power_lasts_20_steps_and_shades_the_ghosts():
    env = situation(pills=[(3, 10)], ghosts=[((13, 1), H_UP)])
    powers = []
    _, _, _, _, info = env.step(RIGHT)
    powers.append(info["power"])
    ghost_colours = [tuple(env.board[13, 1])]
    for _ in range(20):
        _, _, _, _, info = env.step(STAY)
        powers.append(info["power"])
        ghost_colours.append(tuple(env.board[13, 1]))
    assert powers == list(range(20, -1, -1))
    assert ghost_colours[0] == (255, 255, 0)  # fully edible: (1, 20/20, 0)
    assert ghost_colours[10] == (255, 128, 0)  # power 10: (1, 0.5, 0)
    assert ghost_colours[-1] == (255, 0, 0)  # dangerous again


def test_ghost_kills_again_once_power_runs_out():
    env = situation(power=1, ghosts=[((3, 10), H_LEFT)])
    _, _, terminated, _, info = env.step(RIGHT)  # power drops to 0 before the collision
    assert terminated and info["killed"]


# --- collisions -----------------------------------------------------------------------------
def test_collision_after_the_ghost_moves():
    env = situation(ghosts=[((3, 11), H_LEFT)], ghost_speed_override=2.0)
    _, _, terminated, _, info = env.step(STAY)  # ghost walks (3, 11) -> (3, 10): no contact
    assert not terminated and info["ghost_positions"] == ((3, 10),)
    _, _, terminated, _, info = env.step(STAY)  # ghost walks onto Pac-Man
    assert terminated and info["killed"]


def test_ghost_walking_onto_powered_pacman_is_eaten():
    env = situation("hunt", power=10, ghosts=[((3, 10), H_LEFT), FAR_GHOST], ghost_speed_override=4.0)
    _, reward, terminated, _, info = env.step(STAY)
    assert not terminated and info["ghosts_eaten"] == 1 and reward == pytest.approx(10.0)


def test_walking_onto_a_ghost_is_caught_before_it_moves_away():
    # Pac-Man moves first, so a ghost walking toward him is met on its own cell: no
    # passing through each other.
    env = situation(ghosts=[((3, 11), H_LEFT)], ghost_speed_override=2.0, pacman=(3, 10))
    _, _, terminated, _, info = env.step(RIGHT)
    assert terminated and info["killed"]


# --- ghost movement -------------------------------------------------------------------------
def test_ghost_follows_a_corridor_without_reversing():
    # (3, 1)..(3, 17) is a corridor row; start heading right at (7, 2) in the corridor
    # (7, 1)-(7, 6) and check it keeps going even though Pac-Man is behind it.
    env = situation(pacman=(1, 1), ghosts=[((7, 2), H_RIGHT)], ghost_speed_override=2.0)
    positions = []
    for _ in range(4):
        _, _, _, _, info = env.step(STAY)
        positions.append(info["ghost_positions"][0])
    assert positions == [(7, 3), (7, 4), (7, 5), (7, 6)]


def test_ghost_turns_corners():
    # (13, 1) has exits up and right; a ghost heading down turns right (not back up)
    env = situation(pacman=(1, 1), ghosts=[((12, 1), H_DOWN)], ghost_speed_override=2.0)
    env.step(STAY)
    _, _, _, _, info = env.step(STAY)
    assert info["ghost_positions"] == ((13, 2),)


def _junction_choices(power: int, keys: range) -> list[tuple[int, int]]:
    """Where a ghost at the junction (3, 13) heading up goes, for many episode keys.

    Exits of (3, 13): right, up, left, down; heading up, the reverse (down) is excluded.
    Pac-Man at (1, 17) is up-right: dot products right 4/norm, up 2/norm, left -4/norm.
    """
    moves = []
    for key in keys:
        env = situation(pacman=(1, 17), ghosts=[((3, 13), H_UP)], ghost_speed_override=4.0, power=power, key=key)
        _, _, _, _, info = env.step(STAY)
        moves.append(info["ghost_positions"][0])
    return moves


def test_junction_choice_toward_pacman_with_5_percent_random():
    moves = _junction_choices(power=0, keys=range(600))
    toward = moves.count((3, 14))
    assert set(moves) == {(3, 14), (2, 13), (3, 12)}  # never (4, 13): no reversing
    # 95% + 5%/3 toward Pac-Man; random picks spread over the three options
    assert 0.93 < toward / len(moves) < 0.99
    assert moves.count((2, 13)) >= 3 and moves.count((3, 12)) >= 3


def test_junction_choice_away_from_powered_pacman_is_deterministic():
    moves = _junction_choices(power=10, keys=range(200))
    assert set(moves) == {(3, 12)}  # smallest dot product: left


def test_ghost_move_probability_by_level_and_power():
    def move_rate(level: int, power: int) -> float:
        moved = 0
        for key in range(400):
            env = situation(pacman=(1, 1), ghosts=[((7, 2), H_RIGHT)], power=power, key=key)
            env.set_state(level=level)
            _, _, _, _, info = env.step(STAY)
            moved += info["ghost_positions"][0] != (7, 2)
        return moved / 400

    assert move_rate(1, 0) == pytest.approx(0.5, abs=0.08)
    assert move_rate(1, 10) == pytest.approx(0.25, abs=0.07)
    assert move_rate(4, 0) == pytest.approx(0.8, abs=0.07)
    assert move_rate(6, 0) == 1.0


# --- levels ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["regular", "avoid"])
def test_eating_the_last_food_starts_the_next_level(mode):
    env = situation(mode, food=[(3, 10)])
    _, reward, _, _, info = env.step(RIGHT)
    step, food, *_ = REWARDS[mode]
    assert reward == pytest.approx(step + food)  # no reward for clearing a level
    assert info["level_cleared"] and info["level"] == 2
    assert info["food_left"] == 138 and info["pills_left"] == 2 and info["power"] == 0


@pytest.mark.parametrize("mode", ["hunt", "ambush", "rush"])
def test_eating_the_last_food_does_not_change_level_in_other_modes(mode):
    env = situation(mode, food=[(3, 10)])
    _, _, _, _, info = env.step(RIGHT)
    assert not info["level_cleared"] and info["level"] == 1 and info["food_left"] == 0


@pytest.mark.parametrize("mode", ["hunt", "ambush"])
def test_eating_the_last_ghost_starts_the_next_level(mode):
    env = situation(mode, power=5, ghosts=[((3, 10), H_LEFT)])
    _, reward, _, _, info = env.step(RIGHT)
    assert reward == pytest.approx(10.0)
    assert info["level_cleared"] and info["level"] == 2 and len(info["ghost_positions"]) == 1


@pytest.mark.parametrize("mode", ["regular", "avoid", "rush"])
def test_eating_the_last_ghost_does_not_change_level_in_other_modes(mode):
    env = situation(mode, power=5, ghosts=[((3, 10), H_LEFT)])
    _, _, _, _, info = env.step(RIGHT)
    assert not info["level_cleared"] and info["ghost_positions"] == ()


def test_rush_next_level_after_both_pills():
    env = situation("rush", pills=[(3, 10), (3, 11)])
    _, reward, _, _, info = env.step(RIGHT)
    assert reward == pytest.approx(10.0) and not info["level_cleared"]
    _, reward, _, _, info = env.step(RIGHT)
    assert reward == pytest.approx(10.0) and info["level_cleared"] and info["level"] == 2
    assert info["pills_left"] == 2


def test_avoid_next_level_every_128_steps():
    env = situation("avoid")
    levels, rewards = [], []
    for _ in range(130):
        _, reward, terminated, _, info = env.step(STAY)
        assert not terminated
        levels.append(info["level"])
        rewards.append(reward)
        env.set_state(ghosts=[FAR_GHOST], ghost_speed_override=0.0)  # keep the scene quiet
    assert levels.index(2) == 127  # the 128th step starts level 2
    assert levels.count(1) == 127
    assert rewards[:128] == pytest.approx([0.1] * 128)  # no reward for the new level


def test_regular_mode_never_levels_up_on_time():
    env = situation("regular", food=[(1, 1)])
    for _ in range(130):
        _, _, _, _, info = env.step(STAY)
        env.set_state(ghosts=[FAR_GHOST], ghost_speed_override=0.0)
    assert info["level"] == 1


@pytest.mark.parametrize("level", range(1, 9))
def test_ghost_count_and_speed_per_level(level):
    env = situation("regular", food=[(3, 10)])
    env.set_state(level=level)
    _, _, _, _, info = env.step(RIGHT)
    new_level = level + 1
    assert info["level"] == new_level
    expected_ghosts = {2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4, 8: 4, 9: 5}[new_level]
    assert len(info["ghost_positions"]) == expected_ghosts
    assert env._speed == pytest.approx(0.5 + 0.1 * level)


def test_ghosts_spawn_outside_the_box_around_pacman():
    env = MiniPacmanEnv("hunt")
    for seed in range(60):
        _, info = env.reset(seed=seed)
        row, col = env.pacman_position
        for ghost_row, ghost_col in info["ghost_positions"]:
            assert abs(ghost_row - row) > 5 or abs(ghost_col - col) > 5
    for cell in OPEN_CELLS:
        assert len(GHOST_SPAWN_CELLS[cell]) > 0


def test_food_lies_under_pacmans_start_cell():
    env = MiniPacmanEnv()
    env.reset(seed=1)
    env.set_state(ghosts=[], pills=FAR_PILLS)
    _, reward, _, _, info = env.step(STAY)
    assert info["ate_food"] and reward == 1.0 and info["food_left"] == 137


def test_observation_colours():
    env = situation(food=[(1, 1)], pills=[(1, 2)], ghosts=[((1, 3), H_UP)], pacman=(3, 9))
    board = env.board
    assert tuple(board[0, 0]) == (255, 255, 255)  # wall
    assert tuple(board[1, 1]) == (0, 0, 255)  # food
    assert tuple(board[1, 2]) == (0, 255, 255)  # pill
    assert tuple(board[1, 3]) == (255, 0, 0)  # ghost
    assert tuple(board[3, 9]) == (0, 255, 0)  # Pac-Man
    assert tuple(board[1, 5]) == (0, 0, 0)  # empty
    assert np.array_equal(board, env._observation())
