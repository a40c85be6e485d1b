"""Box-World level generation: structure, solvability, reproducibility, fit checks."""

import numpy as np
import pytest

from envs.boxworld_levels import (
    GEM,
    KEY,
    LOCK,
    WALL,
    BoxWorldLevelConfig,
    colour_table,
    generate_levels,
    key_lock_palette,
    parse_level,
    placement_jam_rate,
    room_capacity,
)
from envs.boxworld_solver import solve_level

SETTINGS = {
    "default": {},
    "viewport preset": {"solution_length": range(1, 6), "num_distractors": range(6)},
    "easy preset": {"room_size": 7, "solution_length": (1, 2), "num_distractors": 0},
    "distractor length 3": {"num_distractors": (0, 1, 2), "distractor_length": 3},
    "tight room": {"room_size": 8, "solution_length": (2, 3), "num_distractors": (0, 1)},
}


def keys(count, salt=0):
    return (np.arange(count, dtype=np.uint64) + np.uint64(1 + salt * 1_000_003)) * np.uint64(0x9E3779B97F4A7C15)


def check_solvable(config, levels):
    for index in range(len(levels.agent)):
        solution = solve_level(levels, index)
        assert solution is not None, f"level {index} has no solution"
        path_locks = np.flatnonzero((levels.kind[index] == LOCK) & ~levels.distractor[index])
        assert sorted(solution.opened_locks) == sorted(path_locks.tolist())
        assert len(solution.opened_locks) == levels.solution_length[index]


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_generated_level_is_solvable_through_exactly_its_path_locks(setting):
    config = BoxWorldLevelConfig.create(**SETTINGS[setting])
    check_solvable(config, generate_levels(config, keys(2000)))


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS)
def test_many_more_generated_levels_are_solvable(setting):
    config = BoxWorldLevelConfig.create(**SETTINGS[setting])
    for batch in range(20):
        check_solvable(config, generate_levels(config, keys(2000, salt=batch + 1)))


def test_solver_reports_unsolvable_levels_and_avoids_distractor_dead_ends():
    walled_in = (
        "#######",
        "#a....#",
        "#.....#",
        "#.....#",
        "#.*B..#",
        "#....@#",
        "#######",
    )
    assert solve_level(parse_level(walled_in)) is None  # key a cannot open lock B
    # The distractor box (7,3)-(7,4) holds a copy of key c and is the shorter way to the
    # gem's lock C, but opening it ends the episode: the solution takes the path box.
    shortcut = (
        "#########",
        "#.......#",
        "#.......#",
        "#..cA...#",
        "#.......#",
        "#..*C...#",
        "#.......#",
        "#a.cA..@#",
        "#########",
    )
    solution = solve_level(parse_level(shortcut, distractor_locks=[(7, 4)]))
    assert solution is not None and solution.opened_locks == (3 * 9 + 4, 5 * 9 + 4)
    without_the_rule = solve_level(parse_level(shortcut))
    assert without_the_rule is not None and without_the_rule.opened_locks == (7 * 9 + 4, 5 * 9 + 4)
    assert len(without_the_rule.actions) < len(solution.actions)


@pytest.mark.parametrize("setting", SETTINGS)
def test_level_structure_matches_the_rules(setting):
    config = BoxWorldLevelConfig.create(**SETTINGS[setting])
    levels = generate_levels(config, keys(300, salt=7))
    size = config.board_size
    for index in range(300):
        kind = levels.kind[index].reshape(size, size)
        colour = levels.colour[index].reshape(size, size)
        assert np.all(kind[0] == WALL) and np.all(kind[-1] == WALL) and np.all(kind[:, 0] == WALL)
        assert (kind == GEM).sum() == 1
        locks = np.argwhere(kind == LOCK)
        assert len(locks) == levels.solution_length[index] + levels.num_distractors[index] * config.distractor_length
        # every lock has its content on the left
        assert np.all(np.isin(kind[locks[:, 0], locks[:, 1] - 1], (KEY, GEM)))
        # exactly one loose key, of the colour of the first path lock
        contents = kind == KEY
        loose = [(y, x) for y, x in np.argwhere(contents) if kind[y, x + 1] != LOCK]
        assert len(loose) == 1
        # objects never touch each other or the border (a free ring around each)
        occupied = np.isin(kind, (KEY, GEM, LOCK))
        for y, x in np.argwhere(occupied):
            neighbours = occupied[y - 1 : y + 2, x - 1 : x + 2].sum() - 1
            partner = (kind[y, x] == LOCK) or (x + 1 < size and kind[y, x + 1] == LOCK)
            assert neighbours == int(partner)
            assert 2 <= y <= size - 3 and 2 <= x <= size - 3
        # distractor keys carry distinct colours that no path key shares
        key_colours = colour[contents]
        assert len(set(key_colours.tolist())) == len(key_colours)
        assert kind.reshape(-1)[levels.agent[index]] == 0


def test_sampled_parameters_cover_their_choices():
    config = BoxWorldLevelConfig.create()
    levels = generate_levels(config, keys(2000, salt=3))
    assert set(levels.solution_length.tolist()) == {1, 2, 3, 4}
    assert set(levels.num_distractors.tolist()) == {0, 1, 2, 3, 4}
    used = set(levels.colour[levels.colour >= 0].tolist())
    assert used == set(range(20))  # colours are shuffled over the whole palette


def test_a_batch_equals_its_levels_generated_one_by_one():
    config = BoxWorldLevelConfig.create(solution_length=range(1, 6), num_distractors=range(6))
    batch = generate_levels(config, keys(64, salt=11))
    for index in range(64):
        single = generate_levels(config, keys(64, salt=11)[index : index + 1])
        for batch_field, single_field in zip(batch, single):
            assert np.array_equal(batch_field[index], single_field[0])


def test_room_capacity_matches_a_perfect_packing():
    assert room_capacity(12) == 15 and room_capacity(6) == 2 and room_capacity(7) == 6 and room_capacity(3) == 0
    assert placement_jam_rate(12, 8) == 0.0  # at most 7 placed objects cannot cover all 90 positions
    assert placement_jam_rate(12, 15) > 0.5


def test_palette_hues_are_distinct_and_never_grey():
    for count in (1, 20, 128):
        palette = key_lock_palette(count).astype(int)
        assert len({tuple(colour) for colour in palette}) == count
        assert np.all(palette.max(axis=1) - palette.min(axis=1) > 40)
    table = colour_table(20)
    assert len({tuple(colour) for colour in table}) == 23


def test_parse_level_rejects_malformed_boards():
    with pytest.raises(ValueError, match="exactly one agent"):
        parse_level(("###", "#.#", "###"))
    with pytest.raises(ValueError, match="unknown level character '\\?'"):
        parse_level(("###", "#?#", "###"))
