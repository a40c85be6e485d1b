"""Mini PacMan's fixed rules and lookup tables, shared by the single and the vector env.

Mini PacMan is the ``PillEater`` game of Weber et al. 2017, "Imagination-Augmented Agents
for Deep Reinforcement Learning" (I2A), also used by Santoro et al. 2018, "Relational
recurrent neural networks" (RMC). Everything here is a constant of the game: the map,
the move tables, the ghosts' corridor rules, the reward table of each mode, the colours
and the layout of the counter-based random numbers (``envs.counter_rng``) that both envs
draw, so that they produce bit-identical trajectories.

Cells are numbered row-major on the 15x19 board: ``cell = row * WIDTH + col``.
Directions of motion are numbered 0 right, 1 up, 2 left, 3 down; the actions are
0 stay, 1 right, 2 up, 3 left, 4 down (action ``d + 1`` moves in direction ``d``).
"""

from __future__ import annotations

import numbers
from typing import Literal, NamedTuple

import numpy as np

Mode = Literal["regular", "avoid", "hunt", "ambush", "rush"]
MODES: tuple[str, ...] = ("regular", "avoid", "hunt", "ambush", "rush")

MAP_ROWS = (
    "###################",
    "#...#.........#...#",
    "#.#.#.#######.#.#.#",
    "#.................#",
    "#.#.#.#######.#.#.#",
    "#.#.............#.#",
    "#.####.#####.####.#",
    "#......#####......#",
    "#.####.#####.####.#",
    "#.#.............#.#",
    "#.#.#.#######.#.#.#",
    "#.................#",
    "#.#.#.#######.#.#.#",
    "#...#.........#...#",
    "###################",
)
HEIGHT = len(MAP_ROWS)
WIDTH = len(MAP_ROWS[0])
NUM_CELLS = HEIGHT * WIDTH

ACTION_NAMES: tuple[str, ...] = ("stay", "right", "up", "left", "down")
NUM_ACTIONS = len(ACTION_NAMES)
DIRECTION_OFFSETS: tuple[tuple[int, int], ...] = ((0, 1), (-1, 0), (0, -1), (1, 0))
REVERSE: tuple[int, ...] = (2, 3, 0, 1)

# --- game constants of the original engine ---------------------------------------------
NUM_PILLS = 2
POWER_DURATION = 20
GHOST_SAFE_DISTANCE = 5
GHOST_RANDOM_PROBABILITY = 0.05
AVOID_LEVEL_STEPS = 128
DEFAULT_FRAME_CAP = 3000


def ghost_count(level: int) -> int:
    """Number of ghosts on ``level`` (1-based): 1 + floor((level - 1) / 2)."""
    return 1 + (level - 1) // 2


def ghost_speed(level: int) -> float:
    """Probability that a ghost moves on a step of ``level`` while Pac-Man is not powered."""
    return 0.5 + 0.1 * (level - 1)


# --- map tables -------------------------------------------------------------------------
IS_WALL = np.array([[ch == "#" for ch in row] for row in MAP_ROWS], dtype=bool).reshape(-1)
OPEN_CELLS: tuple[int, ...] = tuple(int(c) for c in np.flatnonzero(~IS_WALL))
NUM_OPEN_CELLS = len(OPEN_CELLS)  # 138


def _build_moves() -> tuple[tuple[int, ...], ...]:
    moves = []
    for cell in range(NUM_CELLS):
        row, col = divmod(cell, WIDTH)
        targets = [cell]
        for d_row, d_col in DIRECTION_OFFSETS:
            target = (row + d_row) * WIDTH + (col + d_col)
            inside = 0 <= row + d_row < HEIGHT and 0 <= col + d_col < WIDTH
            targets.append(target if inside and not IS_WALL[cell] and not IS_WALL[target] else cell)
        moves.append(tuple(targets))
    return tuple(moves)


MOVES = _build_moves()
"""``MOVES[cell][action]``: the cell reached; a wall (or a wall cell) means staying."""

EXITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(d for d in range(4) if MOVES[cell][d + 1] != cell) for cell in range(NUM_CELLS)
)
"""Directions that leave ``cell``, in the order right, up, left, down."""


def _build_ghost_tables() -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Corridor rule: the forced direction, or -1 at a junction and its options.

    Indexed by ``cell * 4 + direction`` (the ghost's current heading):
    - one exit (dead end): take it;
    - two exits: keep the heading if it is open, else turn into the exit that is not
      the reverse of the heading (the original's rule, which also covers a fresh ghost
      whose heading points into a wall: it takes the first exit not behind it);
    - three or more exits (junction): the options are the exits minus the reverse.
    """
    forced, options = [], []
    for cell in range(NUM_CELLS):
        exits = EXITS[cell]
        for heading in range(4):
            if len(exits) == 0:
                forced.append(heading)
                options.append(())
            elif len(exits) == 1:
                forced.append(exits[0])
                options.append(())
            elif len(exits) == 2:
                if heading in exits:
                    forced.append(heading)
                elif REVERSE[heading] == exits[0]:
                    forced.append(exits[1])
                else:
                    forced.append(exits[0])
                options.append(())
            else:
                forced.append(-1)
                options.append(tuple(d for d in exits if d != REVERSE[heading]))
    return tuple(forced), tuple(options)


GHOST_FORCED, GHOST_OPTIONS = _build_ghost_tables()


def _build_ghost_spawn_cells() -> tuple[tuple[int, ...], ...]:
    spawn = []
    for cell in range(NUM_CELLS):
        row, col = divmod(cell, WIDTH)
        spawn.append(
            tuple(
                c
                for c in OPEN_CELLS
                if abs(c // WIDTH - row) > GHOST_SAFE_DISTANCE or abs(c % WIDTH - col) > GHOST_SAFE_DISTANCE
            )
        )
    return tuple(spawn)


GHOST_SPAWN_CELLS = _build_ghost_spawn_cells()
"""``GHOST_SPAWN_CELLS[pacman_cell]``: open cells outside the +-5 box around Pac-Man."""


# --- rewards and level rules of the five modes -------------------------------------------
class ModeRules(NamedTuple):
    """Rewards of one mode and the condition that starts the next level."""

    step: float
    food: float
    pill: float
    eat_ghost: float
    killed: float
    level_on_food: bool
    """Next level when all food is eaten."""
    level_on_ghosts: bool
    """Next level when all ghosts are eaten."""
    level_on_pills: bool
    """Next level when both power pills are eaten."""
    level_steps: int | None
    """Next level after this many steps on a level (avoid: 128), or never."""


MODE_RULES: dict[str, ModeRules] = {
    "regular": ModeRules(0.0, 1.0, 2.0, 5.0, 0.0, True, False, False, None),
    "avoid": ModeRules(0.1, -0.1, -5.0, -10.0, -20.0, True, False, False, AVOID_LEVEL_STEPS),
    "hunt": ModeRules(0.0, 0.0, 1.0, 10.0, -20.0, False, True, False, None),
    "ambush": ModeRules(0.0, -0.1, 0.0, 10.0, -20.0, False, True, False, None),
    "rush": ModeRules(0.0, -0.1, 10.0, 0.0, 0.0, False, False, True, None),
}


# --- colours (the original's RGB in [0, 1], scaled to 0..255) -----------------------------
EMPTY_COLOUR = np.array((0, 0, 0), dtype=np.uint8)
WALL_COLOUR = np.array((255, 255, 255), dtype=np.uint8)
FOOD_COLOUR = np.array((0, 0, 255), dtype=np.uint8)
PILL_COLOUR = np.array((0, 255, 255), dtype=np.uint8)
PACMAN_COLOUR = np.array((0, 255, 0), dtype=np.uint8)
GHOST_COLOURS = np.array(
    [(255, (power * 255 + POWER_DURATION // 2) // POWER_DURATION, 0) for power in range(POWER_DURATION + 1)],
    dtype=np.uint8,
)
"""``GHOST_COLOURS[power]``: red (1, 0, 0) when dangerous, shaded toward yellow
(1, power / 20, 0) while Pac-Man is powered, as in the original."""


# --- counter layout of the random numbers --------------------------------------------------
FRAME_STRIDE = 1 << 22
"""Counters of frame ``t`` (0 at reset) lie in ``[t * FRAME_STRIDE, (t + 1) * FRAME_STRIDE)``."""
PACMAN_SLOT = 0
PILL_SLOT = 1  # + pill index
GHOST_SPAWN_SLOT = 4  # + 2 * ghost index (cell), + 2 * ghost index + 1 (heading)
GHOST_STEP_SLOT = 1 << 21  # + 3 * ghost index + (0 move?, 1 random choice?, 2 which option)
MAX_GHOSTS = (GHOST_STEP_SLOT - GHOST_SPAWN_SLOT) // 2
"""The counter layout holds this many ghosts (level ~1.4 million), far beyond any run."""


def draw_episode_key(np_random: np.random.Generator) -> int:
    """A fresh 64-bit episode key: the next raw output of ``np_random``'s bit generator.

    One raw draw (about 0.7 us) instead of ``envs.counter_rng.draw_key`` (two bounded
    draws, about 7 us): the vector env draws one key per finished game at every step, so
    this is a visible share of its step time. All randomness still flows from Gymnasium's
    seeding of ``np_random``.
    """
    return int(np_random.bit_generator.random_raw())


# --- argument checks ----------------------------------------------------------------------
def check_mode(mode: str) -> None:
    """Raises ValueError unless ``mode`` is one of the five modes."""
    if mode not in MODE_RULES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def check_viewport(viewport: int | None) -> None:
    """Raises ValueError unless ``viewport`` is None or an odd int >= 1."""
    if viewport is None:
        return
    if isinstance(viewport, bool) or not isinstance(viewport, numbers.Integral) or viewport < 1 or viewport % 2 == 0:
        raise ValueError(f"viewport must be None (full view) or an odd int >= 1, got {viewport!r}")


def check_frame_cap(frame_cap: int | None) -> None:
    """Raises ValueError unless ``frame_cap`` is None (no cap) or an int >= 1."""
    if frame_cap is None:
        return
    if isinstance(frame_cap, bool) or not isinstance(frame_cap, numbers.Integral) or frame_cap < 1:
        raise ValueError(f"frame_cap must be None (no cap) or an int >= 1, got {frame_cap!r}")


def observation_shape(viewport: int | None) -> tuple[int, int, int]:
    """Shape of the observation: the full board, or the egocentric window."""
    return (HEIGHT, WIDTH, 3) if viewport is None else (int(viewport), int(viewport), 3)


def padded_cell_index(radius: int) -> np.ndarray:
    """Maps board cells to cells of the board padded by ``radius`` wall cells each side."""
    rows, cols = np.divmod(np.arange(NUM_CELLS), WIDTH)
    return (rows + radius) * (WIDTH + 2 * radius) + (cols + radius)


def static_board(radius: int) -> np.ndarray:
    """The level-start picture padded by ``radius`` wall cells: walls, and food everywhere.

    Returns:
        uint8 array [(HEIGHT + 2r) * (WIDTH + 2r), 3], flat over cells.
    """
    padded = np.empty(((HEIGHT + 2 * radius) * (WIDTH + 2 * radius), 3), dtype=np.uint8)
    padded[:] = WALL_COLOUR
    index = padded_cell_index(radius)
    padded[index[~IS_WALL]] = FOOD_COLOUR
    return padded
