"""Batch-native Mini PacMan: N games stepped together with array operations.

Same rules, tables and counter-based random numbers as ``envs.minipacman`` (see
``envs.minipacman_rules``), so game ``i`` of ``MiniPacmanVectorEnv(N).reset(seed=s)`` plays
exactly like ``MiniPacmanEnv().reset(seed=s + i)`` under the same actions, across
episode boundaries. ``step`` has no Python loop over games: the only loops run over
ghost slots (the ghosts of one game act in turn, as in the original) and, at an
autoreset, over the games being reset to draw their episode keys from their own
``np_random`` streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.lib.stride_tricks import sliding_window_view

from envs.counter_rng import below_array, uniform_array
from envs.minipacman_rules import (
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
    observation_shape,
    padded_cell_index,
    static_board,
)
from envs.rendering import upscale

__all__ = ["MiniPacmanVectorEnv"]

CELL_PIXELS = 32

# --- the shared tables as arrays ----------------------------------------------------------
_MOVES = np.array(MOVES, dtype=np.int64)  # [cell, action]
_ROW, _COL = (array.astype(np.int64) for array in np.divmod(np.arange(NUM_CELLS), WIDTH))
_OPEN = np.array(OPEN_CELLS, dtype=np.int64)
_OPEN_MASK = ~IS_WALL
_FORCED = np.array(GHOST_FORCED, dtype=np.int64)  # [cell * 4 + heading]
_OPTION_MASK = np.zeros((NUM_CELLS * 4, 4), dtype=bool)
_OPTION_LIST = np.zeros((NUM_CELLS * 4, 4), dtype=np.int64)
_OPTION_COUNT = np.ones(NUM_CELLS * 4, dtype=np.int64)
for _index, _options in enumerate(GHOST_OPTIONS):
    if _options:
        _OPTION_MASK[_index, list(_options)] = True
        _OPTION_LIST[_index, : len(_options)] = _options
        _OPTION_COUNT[_index] = len(_options)
_SPAWN_COUNT = np.array([max(len(cells), 1) for cells in GHOST_SPAWN_CELLS], dtype=np.int64)
_SPAWN_TABLE = np.zeros((NUM_CELLS, NUM_OPEN_CELLS), dtype=np.int64)
for _cell, _cells in enumerate(GHOST_SPAWN_CELLS):
    _SPAWN_TABLE[_cell, : len(_cells)] = _cells
_NO_OPTION = np.int64(-(1 << 40))
_PIXEL = np.dtype("V3")  # one RGB cell as a single 3-byte item
_EMPTY_PIXEL = EMPTY_COLOUR.view(_PIXEL)[0]
_FOOD_PIXEL = FOOD_COLOUR.view(_PIXEL)[0]
_PILL_PIXEL = PILL_COLOUR.view(_PIXEL)[0]
_PACMAN_PIXEL = PACMAN_COLOUR.view(_PIXEL)[0]
_GHOST_PIXELS = np.ascontiguousarray(GHOST_COLOURS).view(_PIXEL)[:, 0]


class MiniPacmanVectorEnv(VectorEnv):
    """``num_envs`` Mini PacMan games stepped at once (see ``envs.minipacman.MiniPacmanEnv``).

    ## Action Space
    ``MultiDiscrete([5] * num_envs)`` (single: ``Discrete(5)``: stay, right, up, left,
    down). An array of another shape, a non-integer dtype or a value outside [0, 5)
    raises ``ValueError``.

    ## Observation Space
    ``Box(0, 255, (num_envs, 15, 19, 3), uint8)``, or ``(num_envs, v, v, 3)`` with
    ``viewport=v``; each game's picture exactly as the single env's.

    ## Autoreset
    ``AutoresetMode.NEXT_STEP`` (Gymnasium's default): the step after a game terminated
    or was truncated resets that game, ignores its action and returns its first
    observation with reward 0 and terminated = truncated = False.

    ## Info
    Gymnasium's vector convention: for every key an array over games and a boolean mask
    ``"_" + key`` (all True: every game reports every key). Keys as in the single env:
    ``level``, ``power``, ``food_left``, ``pills_left``, ``ate_food``, ``ate_pill``,
    ``ghosts_eaten``, ``killed``, ``level_cleared``; ``pill_positions`` is an int array
    [num_envs, 2, 2] and ``ghost_positions`` one [num_envs, G, 2] of (row, col), with
    (-1, -1) for an eaten pill or a slot without a ghost, G being the largest ghost count
    so far (it grows when a level with more ghosts starts). In list order, the rows that
    are not -1 equal the single env's tuples.

    ## Seeding
    ``reset(seed=s)`` seeds game ``i`` like ``MiniPacmanEnv.reset(seed=s + i)``;
    ``reset(seed=[s_0, ..., s_{N-1}])`` seeds each game explicitly; ``reset()`` continues
    every game's stream (fresh entropy on the first reset).

    Args:
        num_envs: number of games, >= 1.
        mode: reward mode (see the single env).
        viewport: None (full board) or an odd int >= 1.
        frame_cap: steps before truncation, or None for no cap.
        render_mode: None or "rgb_array" (a tuple of every game's upscaled board).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        mode: Mode = "regular",
        viewport: int | None = None,
        frame_cap: int | None = DEFAULT_FRAME_CAP,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        check_mode(mode)
        check_viewport(viewport)
        check_frame_cap(frame_cap)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.num_envs = int(num_envs)
        self.mode = mode
        self.viewport = None if viewport is None else int(viewport)
        self.frame_cap = None if frame_cap is None else int(frame_cap)
        self.render_mode = render_mode
        self.rules = MODE_RULES[mode]
        self.single_observation_space = gym.spaces.Box(0, 255, observation_shape(self.viewport), dtype=np.uint8)
        self.single_action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n = self.num_envs
        radius = 0 if self.viewport is None else self.viewport // 2
        self._radius = radius
        self._padded_width = WIDTH + 2 * radius
        self._padded_cells = (HEIGHT + 2 * radius) * self._padded_width
        self._scratch = self._padded_cells  # one extra canvas cell that absorbs masked writes
        self._pad = np.append(padded_cell_index(radius), self._scratch).astype(np.int64)  # cell -1 -> scratch
        static = static_board(radius)
        self._static = np.concatenate([static, np.zeros((1, 3), dtype=np.uint8)])
        self._games = np.arange(n)
        self._generators: list[np.random.Generator] = []
        self._key = np.zeros(n, dtype=np.uint64)
        self._frame = np.zeros(n, dtype=np.int64)
        self._level = np.ones(n, dtype=np.int64)
        self._level_steps = np.zeros(n, dtype=np.int64)
        self._power = np.zeros(n, dtype=np.int64)
        self._speed = np.full(n, 0.5)
        self._pacman = np.full(n, OPEN_CELLS[0], dtype=np.int64)
        self._food = np.zeros((n, NUM_CELLS), dtype=bool)
        self._food_left = np.zeros(n, dtype=np.int64)
        self._pills = np.full((n, NUM_PILLS), -1, dtype=np.int64)
        self._ghost_cell = np.full((n, 0), OPEN_CELLS[0], dtype=np.int64)
        self._ghost_heading = np.zeros((n, 0), dtype=np.int64)
        self._ghost_alive = np.zeros((n, 0), dtype=bool)
        self._canvas = np.repeat(self._static[None], n, axis=0)  # [N, padded cells + 1, 3]
        self._pixels = self._canvas.view(_PIXEL).reshape(-1)  # [N * (padded cells + 1)]
        self._offset = np.arange(n, dtype=np.int64) * (self._padded_cells + 1)
        if self.viewport is not None:
            rows_of_bytes = self._canvas[:, : self._padded_cells].reshape(n, HEIGHT + 2 * radius, 3 * self._padded_width)
            self._windows = sliding_window_view(rows_of_bytes, (self.viewport, 3 * self.viewport), axis=(1, 2))
        self._needs_reset = np.zeros(n, dtype=bool)
        self._started = False

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every game (see the class docstring for seeding)."""
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) or seed is None else None)
        n = self.num_envs
        if seed is None:
            if not self._generators:
                self._generators = [seeding.np_random(None)[0] for _ in range(n)]
        elif isinstance(seed, (int, np.integer)):
            self._generators = [seeding.np_random(int(seed) + i)[0] for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed must be None, an int or {n} ints, got {len(seeds)} seeds")
            self._generators = [seeding.np_random(None if s is None else int(s))[0] for s in seeds]
        everyone = self._games
        self._reset_games(everyone)
        self._paint(everyone, self._pacman.copy(), self._ghost_cell.copy())
        self._needs_reset[:] = False
        self._started = True
        false = np.zeros(n, dtype=bool)
        return self._observation(), self._info(false, false, np.zeros(n, dtype=np.int64), false, false)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        rules = self.rules
        n = self.num_envs
        games = self._games
        resetting = self._needs_reset

        self._frame += 1
        self._level_steps += 1
        np.maximum(self._power - 1, 0, out=self._power)
        reward = np.full(n, rules.step)
        old_pacman = self._pacman
        old_ghost_cells = self._ghost_cell.copy()
        level_cleared = np.zeros(n, dtype=bool)

        # Pac-Man moves, eats the food and at most one pill under him.
        pacman = self._pacman = _MOVES[old_pacman, actions]
        ate_food = self._food[games, pacman]
        self._food[games, pacman] = False
        self._food_left -= ate_food
        reward += ate_food * rules.food
        if rules.level_on_food:
            self._next_level(ate_food & (self._food_left == 0), level_cleared)
            pacman = self._pacman
        first_pill = self._pills[:, 0] == pacman
        second_pill = (self._pills[:, 1] == pacman) & ~first_pill
        ate_pill = first_pill | second_pill
        self._pills[first_pill, 0] = -1
        self._pills[second_pill, 1] = -1
        self._power[ate_pill] = POWER_DURATION
        reward += ate_pill * rules.pill
        if rules.level_on_pills:
            self._next_level(ate_pill & (self._pills < 0).all(axis=1), level_cleared)

        # Ghosts in slot order: collision, move, collision; eating one ends the phase.
        killed, eaten_slot = self._ghost_phase(pacman)
        ghosts_eaten = eaten_slot >= 0
        eaters = np.flatnonzero(ghosts_eaten)
        self._ghost_alive[eaters, eaten_slot[eaters]] = False
        reward += ghosts_eaten * rules.eat_ghost
        if rules.level_on_ghosts:
            self._next_level(ghosts_eaten & ~self._ghost_alive.any(axis=1), level_cleared)
        reward += killed * rules.killed
        if rules.level_steps is not None:
            self._next_level(~killed & (self._level_steps == rules.level_steps), level_cleared)

        terminated = killed.copy()
        truncated = ~killed & (self._frame >= self.frame_cap) if self.frame_cap is not None else np.zeros(n, dtype=bool)

        # NEXT_STEP autoreset: games that ended last step start over, their action ignored.
        restarted = np.flatnonzero(resetting)
        if restarted.size:
            self._reset_games(restarted)
            reward[restarted] = 0.0
            for flags in (terminated, truncated, ate_food, ate_pill, ghosts_eaten, killed, level_cleared):
                flags[restarted] = False
        self._paint(np.flatnonzero(level_cleared | resetting), old_pacman, old_ghost_cells)
        self._needs_reset = terminated | truncated
        info = self._info(ate_food, ate_pill, ghosts_eaten.astype(np.int64), killed, level_cleared)
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        """``rgb_array``: a tuple with every game's full board, upscaled."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode to make_vec")
            return None
        radius = self._radius
        boards = self._canvas[:, : self._padded_cells].reshape(self.num_envs, HEIGHT + 2 * radius, self._padded_width, 3)
        return tuple(upscale(board[radius : radius + HEIGHT, radius : radius + WIDTH], CELL_PIXELS) for board in boards)

    # --- internals -------------------------------------------------------------------------
    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.num_envs,) or array.dtype.kind not in "iu":
            raise ValueError(
                f"actions must be an integer array of shape ({self.num_envs},) with values in [0, {NUM_ACTIONS}), "
                f"got dtype {array.dtype} and shape {array.shape}"
            )
        array = array.astype(np.int64, copy=False)
        if (array.view(np.uint64) >= NUM_ACTIONS).any():
            bad = array[(array < 0) | (array >= NUM_ACTIONS)]
            raise ValueError(f"actions must be in [0, {NUM_ACTIONS}), got {bad[:8].tolist()}")
        return array

    def _reset_games(self, games: np.ndarray) -> None:
        """New episodes for ``games``: episode keys from their own streams, level 1."""
        generators = self._generators
        self._key[games] = np.array([draw_episode_key(generators[i]) for i in games.tolist()], dtype=np.uint64)
        self._frame[games] = 0
        self._start_level(games, np.ones(games.size, dtype=np.int64))

    def _next_level(self, mask: np.ndarray, level_cleared: np.ndarray) -> None:
        games = np.flatnonzero(mask)
        if games.size:
            level_cleared[games] = True
            self._start_level(games, self._level[games] + 1)

    def _start_level(self, games: np.ndarray, levels: np.ndarray) -> None:
        """Refills the food and places pills, Pac-Man and ghosts from frame counters."""
        key = self._key[games]
        counter = self._frame[games].astype(np.uint64) * np.uint64(FRAME_STRIDE)
        self._level[games] = levels
        self._level_steps[games] = 0
        self._power[games] = 0
        self._speed[games] = 0.5 + 0.1 * (levels - 1).astype(np.float64)
        self._food[games] = _OPEN_MASK
        self._food_left[games] = NUM_OPEN_CELLS
        for pill in range(NUM_PILLS):
            self._pills[games, pill] = _OPEN[below_array(key, counter + np.uint64(PILL_SLOT + pill), NUM_OPEN_CELLS)]
        pacman = _OPEN[below_array(key, counter + np.uint64(PACMAN_SLOT), NUM_OPEN_CELLS)]
        self._pacman[games] = pacman
        counts = 1 + (levels - 1) // 2
        most = int(counts.max())
        self._ensure_ghost_slots(most)
        slots = np.arange(most, dtype=np.uint64)
        spawn_counter = counter[:, None] + np.uint64(GHOST_SPAWN_SLOT) + np.uint64(2) * slots[None, :]
        choice = below_array(key[:, None], spawn_counter, _SPAWN_COUNT[pacman][:, None])
        self._ghost_alive[games] = False
        self._ghost_alive[games, :most] = np.arange(most)[None, :] < counts[:, None]
        self._ghost_cell[games, :most] = _SPAWN_TABLE[pacman[:, None], choice]
        self._ghost_heading[games, :most] = below_array(key[:, None], spawn_counter + np.uint64(1), 4)

    def _ensure_ghost_slots(self, slots: int) -> None:
        extra = slots - self._ghost_cell.shape[1]
        if extra > 0:
            n = self.num_envs
            self._ghost_cell = np.concatenate([self._ghost_cell, np.full((n, extra), OPEN_CELLS[0], dtype=np.int64)], axis=1)
            self._ghost_heading = np.concatenate([self._ghost_heading, np.zeros((n, extra), dtype=np.int64)], axis=1)
            self._ghost_alive = np.concatenate([self._ghost_alive, np.zeros((n, extra), dtype=bool)], axis=1)

    def _ghost_phase(self, pacman: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Acts every ghost slot in turn for all games; returns (killed, eaten slot or -1)."""
        n = self.num_envs
        powered = self._power > 0
        speed = np.where(powered, self._speed * 0.5, self._speed)
        key = self._key
        counter_base = self._frame.astype(np.uint64) * np.uint64(FRAME_STRIDE) + np.uint64(GHOST_STEP_SLOT)
        pacman_row, pacman_col = _ROW[pacman], _COL[pacman]
        killed = np.zeros(n, dtype=bool)
        eaten_slot = np.full(n, -1, dtype=np.int64)
        phase_on = np.ones(n, dtype=bool)
        for slot in range(self._ghost_cell.shape[1]):
            acting = self._ghost_alive[:, slot] & phase_on
            if not acting.any():
                continue
            cell = self._ghost_cell[:, slot]
            heading = self._ghost_heading[:, slot]
            hit = acting & (cell == pacman)
            killed |= hit & ~powered
            eat = hit & powered
            counter = counter_base + np.uint64(3 * slot)
            moves = acting & ~eat & (uniform_array(key, counter) < speed)
            table_index = cell * 4 + heading
            new_heading = _FORCED[table_index]
            junction = np.flatnonzero(moves & (new_heading < 0))
            if junction.size:
                new_heading[junction] = self._junction_choice(
                    junction, cell[junction], heading[junction], table_index[junction], counter[junction],
                    pacman_row[junction], pacman_col[junction], powered[junction],
                )  # fmt: skip
            heading = np.where(moves, new_heading, heading)
            cell = np.where(moves, _MOVES[cell, heading + 1], cell)
            self._ghost_heading[:, slot] = heading
            self._ghost_cell[:, slot] = cell
            eat |= moves & powered & (cell == pacman)
            killed |= moves & ~powered & (cell == pacman)
            eaten_slot[eat] = slot
            phase_on &= ~eat
        return killed, eaten_slot

    def _junction_choice(
        self,
        games: np.ndarray,
        cell: np.ndarray,
        heading: np.ndarray,
        table_index: np.ndarray,
        counter: np.ndarray,
        pacman_row: np.ndarray,
        pacman_col: np.ndarray,
        powered: np.ndarray,
    ) -> np.ndarray:
        """Headings chosen at junctions: toward Pac-Man (away when powered), 5% random."""
        d_row = pacman_row - _ROW[cell]
        d_col = pacman_col - _COL[cell]
        scores = np.stack([d_col, -d_row, -d_col, d_row], axis=1)  # dot products x norm
        scores = np.where(powered[:, None], -scores, scores)
        scores = np.where(_OPTION_MASK[table_index], scores, _NO_OPTION)
        chosen = np.argmax(scores, axis=1)  # first of equal scores, as the original's argmax
        key = self._key[games]
        at_random = ~powered & (uniform_array(key, counter + np.uint64(1)) < GHOST_RANDOM_PROBABILITY)
        random_index = below_array(key, counter + np.uint64(2), _OPTION_COUNT[table_index])
        chosen = np.where(at_random, _OPTION_LIST[table_index, random_index], chosen)
        return np.where((d_row == 0) & (d_col == 0), heading, chosen)

    def _paint(self, full_repaint: np.ndarray, old_pacman: np.ndarray, old_ghost_cells: np.ndarray) -> None:
        """Updates the pictures: the cells Pac-Man and the ghosts left go back to food or
        empty, the games in ``full_repaint`` (new level or episode) are redrawn from
        scratch, then pills, ghosts and Pac-Man are painted over, in that order.

        Writes go through a one-item-per-cell view of 3-byte colours (``_pixels``), so a
        whole batch of cells is set by one flat fancy assignment.
        """
        pixels, pad, offset = self._pixels, self._pad, self._offset
        erase = np.concatenate([old_pacman[:, None], old_ghost_cells], axis=1)  # [N, 1 + G]
        erase_index = offset[:, None] + pad[erase]
        pixels[erase_index] = _EMPTY_PIXEL
        pixels[erase_index[self._food[self._games[:, None], erase]]] = _FOOD_PIXEL
        if full_repaint.size:
            self._canvas[full_repaint] = self._static
            eaten = ~self._food[full_repaint] & _OPEN_MASK  # a new level has all its food
            if eaten.any():
                rows, cells = np.nonzero(eaten)
                pixels[offset[full_repaint[rows]] + pad[cells]] = _EMPTY_PIXEL
        pixels[offset[:, None] + pad[self._pills]] = _PILL_PIXEL  # eaten pills (-1) hit the scratch cell
        ghost_index = offset[:, None] + np.where(self._ghost_alive, pad[self._ghost_cell], self._scratch)
        pixels[ghost_index] = np.broadcast_to(_GHOST_PIXELS[self._power][:, None], ghost_index.shape)
        pixels[offset + pad[self._pacman]] = _PACMAN_PIXEL

    def _observation(self) -> np.ndarray:
        n = self.num_envs
        if self.viewport is None:
            return self._canvas[:, : self._padded_cells].reshape(n, HEIGHT, WIDTH, 3).copy()
        # windows[game, row, byte column] is the [v, 3v] block of bytes whose top-left is
        # there; with the padding, the window centred on Pac-Man starts at his (row, col).
        window = self._windows[self._games, _ROW[self._pacman], 3 * _COL[self._pacman]]
        return window.reshape(n, self.viewport, self.viewport, 3)

    def _info(
        self, ate_food: np.ndarray, ate_pill: np.ndarray, ghosts_eaten: np.ndarray, killed: np.ndarray, level_cleared: np.ndarray
    ) -> dict[str, Any]:
        alive, pills = self._ghost_alive, self._pills
        positions = np.stack([np.where(alive, _ROW[self._ghost_cell], -1), np.where(alive, _COL[self._ghost_cell], -1)], axis=-1)
        values = {
            "level": self._level.copy(),
            "power": self._power.copy(),
            "food_left": self._food_left.copy(),
            "pills_left": (self._pills >= 0).sum(axis=1),
            "pill_positions": np.stack([np.where(pills >= 0, _ROW[pills], -1), np.where(pills >= 0, _COL[pills], -1)], axis=-1),
            "ghost_positions": positions,
            "ate_food": ate_food,
            "ate_pill": ate_pill,
            "ghosts_eaten": ghosts_eaten,
            "killed": killed,
            "level_cleared": level_cleared,
        }
        present = np.ones(self.num_envs, dtype=bool)  # every game reports every key; one shared mask
        info: dict[str, Any] = {}
        for name, value in values.items():
            info[name] = value
            info["_" + name] = present
        return info
