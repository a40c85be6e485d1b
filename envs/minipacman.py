"""Mini PacMan (Weber et al. 2017, I2A; Santoro et al. 2018, RMC) as a Gymnasium environment.

The rules follow DeepMind's ``PillEater`` engine released with I2A; the tables they rest
on (map, corridor rules, reward modes, colours) live in ``envs.minipacman_rules`` and are
shared with the batch-native ``envs.minipacman_vector``, which reproduces this env's
trajectories bit for bit.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.counter_rng import below, uniform
from envs.minipacman_rules import (
    ACTION_NAMES,
    DEFAULT_FRAME_CAP,
    EMPTY_COLOUR,
    FOOD_COLOUR,
    FRAME_STRIDE,
    GHOST_COLOURS,
    GHOST_FORCED,
    GHOST_OPTIONS,
    GHOST_RANDOM_PROBABILITY,
    GHOST_SPAWN_CELLS,
    GHOST_SPAWN_SLOT,
    GHOST_STEP_SLOT,
    HEIGHT,
    IS_WALL,
    MODE_RULES,
    MOVES,
    NUM_ACTIONS,
    NUM_CELLS,
    NUM_OPEN_CELLS,
    NUM_PILLS,
    OPEN_CELLS,
    PACMAN_COLOUR,
    PACMAN_SLOT,
    PILL_COLOUR,
    PILL_SLOT,
    POWER_DURATION,
    WIDTH,
    Mode,
    check_frame_cap,
    draw_episode_key,
    check_mode,
    check_viewport,
    ghost_count,
    ghost_speed,
    observation_shape,
    padded_cell_index,
    static_board,
)
from envs.rendering import HumanWindow, upscale

__all__ = ["ACTION_NAMES", "MiniPacmanEnv"]

CELL_PIXELS = 32
_ROW_COL: tuple[tuple[int, int], ...] = tuple(divmod(cell, WIDTH) for cell in range(NUM_CELLS))
_FULL_FOOD = (~IS_WALL).astype(np.uint8).tobytes()
_GHOST_COLOUR_ROWS = tuple(GHOST_COLOURS[power] for power in range(POWER_DURATION + 1))


class MiniPacmanEnv(gym.Env[np.ndarray, np.int64]):
    """Mini PacMan: eat food and power pills, flee or hunt the ghosts, in five reward modes.

    ## Description
    Pac-Man moves on a fixed 15x19 maze (138 open cells, no dead ends). Every open cell
    starts a level with food. Each level places 2 power pills, Pac-Man, and
    ``1 + floor((level - 1) / 2)`` ghosts at uniformly random open cells, the ghosts
    outside the +-5 box around Pac-Man. A step runs, as in the original engine:

    1. the power counter drops by one (down to 0);
    2. Pac-Man moves (into a wall = stays) and eats the food of the cell he is on, then at
       most one power pill there (power = 20 steps);
    3. each ghost in turn: if it is on Pac-Man it kills him (not powered) or is eaten
       (powered); otherwise it moves with probability ``0.5 + 0.1 * (level - 1)`` (halved
       while powered) and is checked against Pac-Man again. Ghosts never reverse, follow
       corridors, and at a junction take the exit whose direction has the largest dot
       product with the unit vector toward Pac-Man (the smallest while he is powered),
       except that with probability 0.05 an unpowered ghost picks a random exit. An eaten
       ghost is removed, and eating one ends the ghost phase of that step (the original's
       "one ghost per turn");
    4. the next level starts when the mode says so (below): food refilled, new pills,
       Pac-Man and ghosts placed anew, power 0.

    ## Action Space
    ``Discrete(5)``: 0 stay, 1 right, 2 up, 3 left, 4 down (``ACTION_NAMES``). Anything
    else raises ``ValueError``.

    ## Observation Space
    ``Box(0, 255, (15, 19, 3), uint8)``, one cell per pixel, the original's colours scaled
    to 0..255: Pac-Man green (0, 255, 0), ghost red (255, 0, 0) shaded toward yellow
    (255, 255 * power / 20, 0) while edible, power pill cyan (0, 255, 255), food blue
    (0, 0, 255), wall white, empty black (Pac-Man drawn over ghost over pill over food).
    With ``viewport=v``: ``Box(0, 255, (v, v, 3), uint8)``, the window centred on Pac-Man,
    cells outside the map drawn as wall.

    ## Rewards
    Per step plus per event, simultaneous events adding up; the next level starts when:

    ======= ===== ===== ==== ========= ====== ========================================
    mode    step  food  pill eat ghost killed next level when
    ======= ===== ===== ==== ========= ====== ========================================
    regular 0     1     2    5         0      all food eaten
    avoid   0.1   -0.1  -5   -10       -20    all food eaten, or 128 steps on a level
    hunt    0     0     1    10        -20    all ghosts eaten
    ambush  0     -0.1  0    10        -20    all ghosts eaten
    rush    0     -0.1  10   0         0      both pills eaten
    ======= ===== ===== ==== ========= ====== ========================================

    There is no reward for clearing a level.

    ## Termination & Truncation
    ``terminated`` when a ghost catches Pac-Man; ``truncated`` (and not terminated) after
    ``frame_cap`` steps. Stepping a finished episode raises ``RuntimeError``.

    ## Info
    ``level``, ``power`` (powered steps left), ``food_left``, ``pills_left``,
    ``pill_positions`` and ``ghost_positions`` (tuples of (row, col)), and the events of the step: ``ate_food``,
    ``ate_pill``, ``ghosts_eaten`` (0 or 1), ``killed``, ``level_cleared``.

    ## Arguments
    - ``mode`` ("regular"): one of "regular", "avoid", "hunt", "ambush", "rush".
    - ``viewport`` (None): None for the full board, or an odd int >= 1 for an egocentric
      window (the RMC paper uses 5).
    - ``frame_cap`` (3000, the original's default; the I2A notebooks use 1000): steps
      before truncation, or None for no cap.
    - ``render_mode`` (None): "rgb_array" or "human".

    ## Registered ids
    ``rmc/MiniPacman-v0`` (regular), ``rmc/MiniPacmanAvoid-v0``, ``rmc/MiniPacmanHunt-v0``,
    ``rmc/MiniPacmanAmbush-v0``, ``rmc/MiniPacmanRush-v0``, ``rmc/MiniPacmanViewport-v0``
    (regular, 5x5 viewport).

    ## Deliberate deviations from the original engine
    - Randomness is seedable: every reset draws an episode key from ``np_random``, and all
      in-episode draws are counter-based (``envs.counter_rng``), so the vector env
      reproduces this env exactly. The original uses the unseeded global numpy RNG.
    - Ghosts spawn outside the symmetric box ``|row - r| <= 5 and |col - c| <= 5`` around
      Pac-Man (r, c); the original's slice excludes rows/cols r-5..r+4 only (off by one).
    - A ghost's initial heading is uniform over the 4 directions; the original draws
      ``randint(4)`` in a 2..5 direction code, giving invalid headings half the time.
    - Death is rewarded once per step; the original adds the death reward again for
      every further ghost on Pac-Man in the same step.
    - A level started after 128 steps (avoid) shows in the observation of that step; the
      original shows it one step late (the picture was drawn before the level change). As
      in the original's pictures, no level starts on the step Pac-Man dies.

    Choices where the original is followed on purpose: food also lies under the pills
    and under Pac-Man's start cell (eaten on the first step, even when staying); the two
    pills are placed independently (they may share a cell; then one is eaten per step);
    ghosts may overlap each other; after a food or pill level change the new level's ghosts already move in that
    step, after a ghost level change (hunt, ambush) they do not.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 10}

    def __init__(
        self,
        mode: Mode = "regular",
        viewport: int | None = None,
        frame_cap: int | None = DEFAULT_FRAME_CAP,
        render_mode: str | None = None,
    ) -> None:
        check_mode(mode)
        check_viewport(viewport)
        check_frame_cap(frame_cap)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.mode = mode
        self.viewport = None if viewport is None else int(viewport)
        self.frame_cap = None if frame_cap is None else int(frame_cap)
        self.render_mode = render_mode
        self.rules = MODE_RULES[mode]
        self.observation_space = gym.spaces.Box(0, 255, observation_shape(self.viewport), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)

        self._radius = 0 if self.viewport is None else self.viewport // 2
        self._padded_width = WIDTH + 2 * self._radius
        self._static = static_board(self._radius)
        self._canvas = self._static.copy()  # [padded cells, 3]
        self._canvas_index_array = padded_cell_index(self._radius)
        self._canvas_index: list[int] = self._canvas_index_array.tolist()
        self._key = 0
        self._frame = 0
        self._level = 1
        self._level_steps = 0
        self._power = 0
        self._speed = ghost_speed(1)
        self._pacman = OPEN_CELLS[0]
        self._food = bytearray(NUM_CELLS)
        self._food_left = 0
        self._pills: list[int] = []
        self._ghosts: list[list[int]] = []  # [ghost index in its level, cell, heading]
        self._return = 0.0
        self._done = True
        self._window: HumanWindow | None = None

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode at level 1 with a fresh episode key drawn from ``np_random``."""
        super().reset(seed=seed)
        self._key = draw_episode_key(self.np_random)
        self._frame = 0
        self._return = 0.0
        self._done = False
        self._start_level(1)
        self._repaint_all()
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info(False, False, 0, False, False)

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        try:
            move = operator.index(action)
        except TypeError:
            raise ValueError(f"action must be an int in [0, {NUM_ACTIONS}) {ACTION_NAMES}, got {action!r}") from None
        if not 0 <= move < NUM_ACTIONS:
            raise ValueError(f"action must be an int in [0, {NUM_ACTIONS}) {ACTION_NAMES}, got {action!r}")
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step()")
        rules = self.rules
        self._frame += 1
        self._level_steps += 1
        if self._power > 0:
            self._power -= 1
        reward = rules.step
        level_cleared = ate_pill = killed = False
        ghosts_eaten = 0
        old_pacman = self._pacman
        old_ghost_cells = [ghost[1] for ghost in self._ghosts]

        # Pac-Man moves, eats the food and at most one pill under him.
        pacman = self._pacman = MOVES[old_pacman][move]
        ate_food = self._food[pacman] == 1
        if ate_food:
            self._food[pacman] = 0
            self._food_left -= 1
            reward += rules.food
            if self._food_left == 0 and rules.level_on_food:
                self._start_level(self._level + 1)
                level_cleared = True
                pacman = self._pacman
        pills = self._pills
        for index, pill in enumerate(pills):
            if pill == pacman:
                del pills[index]
                reward += rules.pill
                self._power = POWER_DURATION
                ate_pill = True
                if not pills and rules.level_on_pills:
                    self._start_level(self._level + 1)
                    level_cleared = True
                    pacman = self._pacman
                break

        # Ghosts: collision, move, collision; eating one ends the phase.
        power = self._power
        speed = self._speed * 0.5 if power else self._speed
        key = self._key
        counter_base = self._frame * FRAME_STRIDE + GHOST_STEP_SLOT
        ghosts = self._ghosts
        for index, ghost in enumerate(ghosts):
            if ghost[1] == pacman:
                if not power:
                    killed = True
                else:
                    ghosts_eaten = 1
                    break
            counter = counter_base + 3 * ghost[0]
            if uniform(key, counter) < speed:
                self._move_ghost(ghost, pacman, power, counter)
                if ghost[1] == pacman:
                    if not power:
                        killed = True
                    else:
                        ghosts_eaten = 1
                        break
        if ghosts_eaten:
            del ghosts[index]
            reward += rules.eat_ghost
            if not ghosts and rules.level_on_ghosts:
                self._start_level(self._level + 1)
                level_cleared = True
        if killed:
            reward += rules.killed
        elif self._level_steps == rules.level_steps:
            self._start_level(self._level + 1)
            level_cleared = True

        if level_cleared:
            self._repaint_all()
        else:
            self._repaint(old_pacman, old_ghost_cells)
        terminated = killed
        truncated = not killed and self.frame_cap is not None and self._frame >= self.frame_cap
        self._done = terminated or truncated
        self._return += reward
        if self.render_mode == "human":
            self.render()
        return (
            self._observation(),
            reward,
            terminated,
            truncated,
            self._info(ate_food, ate_pill, ghosts_eaten, killed, level_cleared),
        )

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the full board upscaled (outside the viewport dimmed, if any);
        ``human``: that picture in a window with score, level, steps, food and power."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode to gymnasium.make")
            return None
        board = self.board.copy()
        if self.viewport is not None:
            row, col = _ROW_COL[self._pacman]
            radius = self._radius
            outside = np.ones((HEIGHT, WIDTH), dtype=bool)
            outside[max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1] = False
            board[outside] //= 2
        picture = upscale(board, CELL_PIXELS)
        if self.render_mode == "rgb_array":
            return picture
        if self._window is None:
            self._window = HumanWindow(f"Mini PacMan ({self.mode})", self.metadata["render_fps"])
        cap = "none" if self.frame_cap is None else str(self.frame_cap)
        lines = (
            f"return {self._return:g}",
            f"level {self._level}",
            f"steps {self._frame} / {cap}",
            f"food left {self._food_left}",
            f"ghosts {len(self._ghosts)}",
            f"power {self._power} / {POWER_DURATION}",
        )
        power_swatch = tuple(int(v) for v in GHOST_COLOURS[self._power]) if self._power else None
        self._window.show(picture, lines, swatches=(("power", power_swatch),))
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    # --- state access ----------------------------------------------------------------------
    @property
    def board(self) -> np.ndarray:
        """The full 15x19 board picture (uint8 [15, 19, 3]), a read-only view."""
        radius = self._radius
        padded = self._canvas.reshape(HEIGHT + 2 * radius, self._padded_width, 3)
        view = padded[radius : radius + HEIGHT, radius : radius + WIDTH]
        view.flags.writeable = False
        return view

    @property
    def level(self) -> int:
        """The current level (1-based)."""
        return self._level

    @property
    def pacman_position(self) -> tuple[int, int]:
        """Pac-Man's (row, col)."""
        return _ROW_COL[self._pacman]

    def set_state(
        self,
        *,
        pacman: tuple[int, int] | None = None,
        ghosts: Iterable[tuple[tuple[int, int], int]] | None = None,
        pills: Iterable[tuple[int, int]] | None = None,
        food: Iterable[tuple[int, int]] | None = None,
        power: int | None = None,
        level: int | None = None,
        level_steps: int | None = None,
        ghost_speed_override: float | None = None,
        key: int | None = None,
    ) -> None:
        """Overwrites parts of the game state, to build a situation (tests, demos).

        Call after ``reset``; whatever is not given keeps its value. Positions are
        (row, col) on open cells.

        Args:
            pacman: Pac-Man's cell.
            ghosts: ((row, col), heading) per ghost, heading 0 right, 1 up, 2 left, 3 down.
            pills: cells of the remaining power pills.
            food: the cells that hold food (all others are emptied).
            power: powered steps left (0..20).
            level: the level number; also sets the ghost speed of that level.
            level_steps: steps already played on this level (avoid's 128-step rule).
            ghost_speed_override: the probability that a ghost moves (before halving
                while powered), e.g. 0 to freeze the ghosts or 2 to move them always.
            key: the episode key of the counter-based random numbers.
        """

        def cell_of(position: tuple[int, int]) -> int:
            row, col = position
            if not (0 <= row < HEIGHT and 0 <= col < WIDTH) or IS_WALL[row * WIDTH + col]:
                raise ValueError(f"position must be an open (row, col) cell, got {position!r}")
            return row * WIDTH + col

        if pacman is not None:
            self._pacman = cell_of(pacman)
        if ghosts is not None:
            self._ghosts = [[index, cell_of(position), int(heading)] for index, (position, heading) in enumerate(ghosts)]
        if pills is not None:
            self._pills = [cell_of(position) for position in pills]
        if food is not None:
            self._food = bytearray(NUM_CELLS)
            for position in food:
                self._food[cell_of(position)] = 1
            self._food_left = sum(self._food)
        if power is not None:
            if not 0 <= power <= POWER_DURATION:
                raise ValueError(f"power must be in [0, {POWER_DURATION}], got {power}")
            self._power = power
        if level is not None:
            self._level = level
            self._speed = ghost_speed(level)
        if level_steps is not None:
            self._level_steps = level_steps
        if ghost_speed_override is not None:
            self._speed = float(ghost_speed_override)
        if key is not None:
            self._key = key
        self._repaint_all()

    # --- internals -------------------------------------------------------------------------
    def _start_level(self, level: int) -> None:
        """Refills the food and places pills, Pac-Man and ghosts from frame counters."""
        key = self._key
        counter = self._frame * FRAME_STRIDE
        self._level = level
        self._level_steps = 0
        self._power = 0
        self._speed = ghost_speed(level)
        self._food = bytearray(_FULL_FOOD)
        self._food_left = NUM_OPEN_CELLS
        self._pills = [OPEN_CELLS[below(key, counter + PILL_SLOT + i, NUM_OPEN_CELLS)] for i in range(NUM_PILLS)]
        self._pacman = OPEN_CELLS[below(key, counter + PACMAN_SLOT, NUM_OPEN_CELLS)]
        spawn = GHOST_SPAWN_CELLS[self._pacman]
        self._ghosts = [
            [
                index,
                spawn[below(key, counter + GHOST_SPAWN_SLOT + 2 * index, len(spawn))],
                below(key, counter + GHOST_SPAWN_SLOT + 2 * index + 1, 4),
            ]
            for index in range(ghost_count(level))
        ]

    def _move_ghost(self, ghost: list[int], pacman: int, power: int, counter: int) -> None:
        """Moves one ghost (``[index, cell, heading]``, updated in place) by the corridor
        and junction rules; ``counter`` is the ghost's first counter of this step."""
        _, cell, heading = ghost
        forced = GHOST_FORCED[cell * 4 + heading]
        if forced >= 0:
            heading = forced
        else:
            pacman_row, pacman_col = _ROW_COL[pacman]
            row, col = _ROW_COL[cell]
            d_row, d_col = pacman_row - row, pacman_col - col
            if d_row or d_col:  # on Pac-Man's cell the heading is kept, as in the original
                options = GHOST_OPTIONS[cell * 4 + heading]
                if not power and uniform(self._key, counter + 1) < GHOST_RANDOM_PROBABILITY:
                    heading = options[below(self._key, counter + 2, len(options))]
                else:
                    # Dot products with the unit vector toward Pac-Man, in the order right,
                    # up, left, down; the common 1/norm factor does not change the order.
                    scores = (d_col, -d_row, -d_col, d_row)
                    heading = options[0]
                    best = scores[heading]
                    for option in options[1:]:
                        score = scores[option]
                        if (score < best) if power else (score > best):
                            heading, best = option, score
        ghost[1] = MOVES[cell][heading + 1]
        ghost[2] = heading

    def _base_colour(self, cell: int) -> np.ndarray:
        if cell in self._pills:
            return PILL_COLOUR
        return FOOD_COLOUR if self._food[cell] else EMPTY_COLOUR

    def _repaint(self, old_pacman: int, old_ghost_cells: Sequence[int]) -> None:
        """Updates the cells that may have changed: old and new Pac-Man and ghost cells."""
        canvas, index = self._canvas, self._canvas_index
        canvas[index[old_pacman]] = self._base_colour(old_pacman)
        for cell in old_ghost_cells:
            canvas[index[cell]] = self._base_colour(cell)
        colour = _GHOST_COLOUR_ROWS[self._power]
        for ghost in self._ghosts:
            canvas[index[ghost[1]]] = colour
        canvas[index[self._pacman]] = PACMAN_COLOUR

    def _repaint_all(self) -> None:
        canvas, index = self._canvas, self._canvas_index
        canvas[:] = self._static  # walls, and food on every open cell
        if self._food_left < NUM_OPEN_CELLS:
            eaten = (np.frombuffer(self._food, dtype=np.uint8) == 0) & ~IS_WALL
            canvas[self._canvas_index_array[eaten]] = EMPTY_COLOUR
        for pill in self._pills:
            canvas[index[pill]] = PILL_COLOUR
        self._repaint(self._pacman, [])

    def _observation(self) -> np.ndarray:
        if self.viewport is None:
            return self._canvas.reshape(HEIGHT, WIDTH, 3).copy()
        row, col = _ROW_COL[self._pacman]
        size = self.viewport
        padded = self._canvas.reshape(HEIGHT + 2 * self._radius, self._padded_width, 3)
        return padded[row : row + size, col : col + size].copy()

    def _info(self, ate_food: bool, ate_pill: bool, ghosts_eaten: int, killed: bool, level_cleared: bool) -> dict[str, Any]:
        return {
            "level": self._level,
            "power": self._power,
            "food_left": self._food_left,
            "pills_left": len(self._pills),
            "pill_positions": tuple(_ROW_COL[pill] for pill in self._pills),
            "ghost_positions": tuple(_ROW_COL[ghost[1]] for ghost in self._ghosts),
            "ate_food": ate_food,
            "ate_pill": ate_pill,
            "ghosts_eaten": ghosts_eaten,
            "killed": killed,
            "level_cleared": level_cleared,
        }
