"""Batch-native Box-World: N games stepped together with array operations.

Same rules, spaces and info as ``envs.boxworld.BoxWorldEnv`` (see its docstring). Game
``i`` after ``reset(seed=s)`` plays exactly what a single env plays after
``reset(seed=s + i)`` and further ``reset()`` calls: each game keeps the ``np_random``
generator a single env would have and draws its level keys from it in the same order.

Levels come from a per-game queue of ``LEVEL_QUEUE_DEPTH`` levels generated ahead. When
a game has played its whole queue, every used entry of every game is refilled in one
batch by ``envs.boxworld_levels.generate_levels`` (array operations), so autoreset costs
a few microseconds per episode rather than a generator call per step.

Autoreset follows Gymnasium's NEXT_STEP mode: the step after a game terminates or
truncates resets it, ignores its action and returns the new level's first observation
with reward 0 and ``terminated = truncated = False``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.boxworld import (
    CELL_PIXELS,
    REWARD_CORRECT_LOCK,
    REWARD_DISTRACTOR_LOCK,
    REWARD_GEM,
    check_max_steps,
    check_viewport,
    observation_shape,
)
from envs.boxworld_levels import (
    AGENT_COLOUR,
    BORDER_COLOUR,
    EMPTY,
    GEM,
    KEY,
    LOCK,
    BoxWorldLevelConfig,
    LevelBatch,
    colour_table,
    generate_levels,
    pixel_index,
)
from envs.counter_rng import draw_key
from envs.rendering import upscale

LEVEL_QUEUE_DEPTH = 4
"""Levels generated ahead per game: refills come in large, cheap batches."""

_INFO_KEYS = (
    "held_key",
    "solution_length",
    "num_distractors",
    "steps",
    "key_picked",
    "correct_lock_opened",
    "distractor_lock_opened",
    "gem_collected",
)


class BoxWorldVectorEnv(VectorEnv):
    """``num_envs`` Box-World games stepped with array operations.

    Args:
        num_envs: number of games N.
        room_size, solution_length, num_distractors, distractor_length, num_colours,
        viewport, max_steps, noop_action: as for ``BoxWorldEnv``.
        render_mode: ``"rgb_array"`` (a tuple of every game's upscaled board) or None.

    Info (Gymnasium's vector convention: an array per key plus a boolean ``_key`` mask):
    the single env's keys; ``success`` is present (masked) only for games whose episode
    ended this step.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        room_size: int = 12,
        solution_length: int | Collection[int] = (1, 2, 3, 4),
        num_distractors: int | Collection[int] = (0, 1, 2, 3, 4),
        distractor_length: int = 1,
        num_colours: int = 20,
        viewport: int | None = None,
        max_steps: int = 120,
        noop_action: bool = False,
        render_mode: Literal["rgb_array"] | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        self.config = BoxWorldLevelConfig.create(
            room_size, solution_length, num_distractors, distractor_length, num_colours
        )
        check_viewport(viewport)
        check_max_steps(max_steps)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.num_envs = int(num_envs)
        self.viewport = None if viewport is None else int(viewport)
        self.max_steps = int(max_steps)
        self.noop_action = bool(noop_action)
        self.render_mode = render_mode

        size = self.config.board_size
        count = self.num_envs
        self._size = size
        self._num_actions = 5 if self.noop_action else 4
        self.single_action_space = gym.spaces.Discrete(self._num_actions)
        self.single_observation_space = gym.spaces.Box(0, 255, observation_shape(size, self.viewport), dtype=np.uint8)
        self.action_space = batch_space(self.single_action_space, count)
        self.observation_space = batch_space(self.single_observation_space, count)

        self._table = colour_table(self.config.num_colours)
        # Held-key colours indexed by held + 1 (row 0: no key, border black).
        self._held_table = np.concatenate([np.array([BORDER_COLOUR], dtype=np.uint8), self._table[3:]])
        view_width = self.viewport or 1
        self._held_rows = np.repeat(self._held_table[:, None, :], view_width, axis=1).reshape(-1, 1, 3 * view_width)
        self._background = self._table[0]
        self._agent_colour = np.array(AGENT_COLOUR, dtype=np.uint8)
        self._deltas = np.array([-size, size, -1, 1, 0], dtype=np.int64)
        margin = 0 if self.viewport is None else self.viewport // 2
        self._margin = margin
        canvas_size = size + 2 * margin
        self._canvas_size = canvas_size
        cells = np.arange(size * size)
        self._canvas_cell = (cells // size + margin) * canvas_size + cells % size + margin
        self._canvas = np.zeros((count, canvas_size * canvas_size, 3), dtype=np.uint8)
        self._rows = np.arange(count)
        self._cell_base = self._rows * (size * size)
        self._canvas_base = self._rows * (canvas_size * canvas_size)
        self._kind = np.zeros((count, size * size), dtype=np.int8)
        self._colour = np.full((count, size * size), -1, dtype=np.int16)
        self._distractor = np.zeros((count, size * size), dtype=bool)
        self._agent = np.zeros(count, dtype=np.int64)
        self._held = np.full(count, -1, dtype=np.int64)
        self._steps = np.zeros(count, dtype=np.int64)
        self._solution_length = np.zeros(count, dtype=np.int64)
        self._num_distractors = np.zeros(count, dtype=np.int64)
        self._needs_reset = np.zeros(count, dtype=bool)
        self._generators: list[np.random.Generator] | None = None
        # Every game's next levels, generated ahead in batches (see ``_refill_queue``):
        # a ring of LEVEL_QUEUE_DEPTH levels per game; ``_queue_used`` entries before
        # ``_queue_head`` have been played and wait for a refill.
        cells = size * size
        self._queue = LevelBatch(
            np.zeros((count, LEVEL_QUEUE_DEPTH, cells), dtype=np.int8),
            np.zeros((count, LEVEL_QUEUE_DEPTH, cells), dtype=np.int16),
            np.zeros((count, LEVEL_QUEUE_DEPTH, cells), dtype=bool),
            np.zeros((count, LEVEL_QUEUE_DEPTH), dtype=np.int64),
            np.zeros((count, LEVEL_QUEUE_DEPTH), dtype=np.int64),
            np.zeros((count, LEVEL_QUEUE_DEPTH), dtype=np.int64),
        )
        self._queue_head = np.zeros(count, dtype=np.int64)
        self._queue_used = np.full(count, LEVEL_QUEUE_DEPTH, dtype=np.int64)

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts every game on its next level.

        Args:
            seed: an int ``s`` seeds game i like a single env's ``reset(seed=s + i)``; a
                sequence gives one seed (or None) per game; None continues each game's
                level sequence (seeding from entropy on the first reset).
            options: unused.
        """
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + index for index in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be None, an int or {self.num_envs} seeds, got {len(seeds)} seeds")
        if self._generators is None:
            self._generators = [seeding.np_random(value)[0] for value in seeds]
            self._queue_used[:] = LEVEL_QUEUE_DEPTH  # nothing queued yet
        else:
            for index, value in enumerate(seeds):
                if value is not None:
                    self._generators[index] = seeding.np_random(value)[0]
                    self._queue_used[index] = LEVEL_QUEUE_DEPTH  # drop levels of the old seed
                    self._queue_head[index] = 0
        if (self._queue_used == LEVEL_QUEUE_DEPTH).any():
            self._refill_queue()
        self._reset_games(self._rows)
        self._needs_reset[:] = False
        no_events = np.zeros(self.num_envs, dtype=bool)
        return self._observations(), self._infos(no_events, no_events, no_events, no_events, no_events, no_events)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._generators is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be an int array of shape ({self.num_envs},), got {actions.dtype} {actions.shape}"
            )
        if actions.min() < 0 or actions.max() >= self._num_actions:
            bad = actions[(actions < 0) | (actions >= self._num_actions)][0]
            raise ValueError(f"actions must be ints in [0, {self._num_actions}), got {bad}")
        playing = ~self._needs_reset
        agent = self._agent
        target = agent + self._deltas.take(actions)
        # Gathers and scatters on the flattened [N * cells] state (faster than 2D indexing).
        flat_target = self._cell_base + target
        kind = self._kind.reshape(-1)
        target_kind = kind.take(flat_target)
        target_colour = self._colour.reshape(-1).take(flat_target)
        unlocked = kind.take(flat_target + 1) != LOCK
        key_picked = (target_kind == KEY) & unlocked & playing
        gem = (target_kind == GEM) & unlocked & playing
        lock = (target_kind == LOCK) & (target_colour == self._held) & playing
        moves = playing & (actions < 4) & ((target_kind == EMPTY) | key_picked | gem | lock)
        distractor_lock = lock & self._distractor.reshape(-1).take(flat_target)
        correct_lock = lock & ~distractor_lock

        kind[flat_target[key_picked | gem | lock]] = EMPTY
        held_changes = np.flatnonzero(key_picked | lock)
        self._held[held_changes] = np.where(key_picked[held_changes], target_colour[held_changes], -1)
        movers = np.flatnonzero(moves)
        pixels = self._canvas.reshape(-1, 3)
        canvas_base = self._canvas_base
        pixels[canvas_base[movers] + self._canvas_cell.take(agent[movers])] = self._background
        pixels[canvas_base[movers] + self._canvas_cell.take(target[movers])] = self._agent_colour
        pixels[canvas_base[held_changes] + self._canvas_cell[0]] = self._held_table[self._held[held_changes] + 1]
        agent[movers] = target[movers]

        rewards = (
            gem * REWARD_GEM + correct_lock * REWARD_CORRECT_LOCK + distractor_lock * REWARD_DISTRACTOR_LOCK
        ).astype(np.float32)
        self._steps += playing
        terminated = gem | distractor_lock
        truncated = ~terminated & playing & (self._steps >= self.max_steps)

        resetting = np.flatnonzero(self._needs_reset)
        if resetting.size:
            self._reset_games(resetting)
        self._needs_reset = terminated | truncated
        infos = self._infos(key_picked, correct_lock, distractor_lock, gem, self._needs_reset, gem)
        return self._observations(), rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """``rgb_array``: a tuple of every game's board, upscaled."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode to gymnasium.make_vec")
            return None
        return tuple(upscale(board, CELL_PIXELS) for board in self.boards())

    def boards(self) -> np.ndarray:
        """Every game's full board picture, uint8 [N, size, size, 3] (a copy)."""
        size = self._size
        return self._canvas[:, self._canvas_cell].reshape(self.num_envs, size, size, 3)

    # --- internals -----------------------------------------------------------------------
    def _reset_games(self, games: np.ndarray) -> None:
        """Starts each of ``games`` on the next level of its queue."""
        slot = self._queue_head[games]
        level = LevelBatch(*(field[games, slot] for field in self._queue))
        self._queue_head[games] = (slot + 1) % LEVEL_QUEUE_DEPTH
        self._queue_used[games] += 1
        self._kind[games] = level.kind
        self._colour[games] = level.colour
        self._distractor[games] = level.distractor
        self._agent[games] = level.agent
        self._held[games] = -1
        self._steps[games] = 0
        self._solution_length[games] = level.solution_length
        self._num_distractors[games] = level.num_distractors
        pixels = self._table[pixel_index(level.kind, level.colour)]
        pixels[np.arange(games.size), level.agent] = self._agent_colour
        self._canvas[games[:, None], self._canvas_cell[None, :]] = pixels
        if (self._queue_used[games] == LEVEL_QUEUE_DEPTH).any():
            self._refill_queue()

    def _refill_queue(self) -> None:
        """Generates, in one batch, a level for every queue entry used since the last refill.

        Each game draws the keys of its new levels from its own generator in queue order,
        so it plays the level sequence of a single env seeded the same way.
        """
        assert self._generators is not None
        games = np.flatnonzero(self._queue_used)
        counts = self._queue_used[games]
        repeated = np.repeat(games, counts)
        keys = np.array([draw_key(self._generators[game]) for game in repeated], dtype=np.uint64)
        levels = generate_levels(self.config, keys)
        order = np.arange(repeated.size) - np.repeat(np.cumsum(counts) - counts, counts)
        # The used entries sit just before each game's head, oldest first.
        slots = (self._queue_head[repeated] - self._queue_used[repeated] + order) % LEVEL_QUEUE_DEPTH
        for queued, fresh in zip(self._queue, levels):
            queued[repeated, slots] = fresh
        self._queue_used[games] = 0

    def _observations(self) -> np.ndarray:
        count, size = self.num_envs, self._size
        if self.viewport is None:
            return self._canvas.reshape(count, size, size, 3).copy()
        view = self.viewport
        held_rows = self._held_rows.take(self._held + 1, axis=0)  # [N, 1, 3 * view]
        # Windows of ``view`` rows x ``3 * view`` bytes at every canvas position; the
        # window at the agent's board cell is centred on it (the margin is view // 2).
        canvas = self._canvas.reshape(count, self._canvas_size, self._canvas_size * 3)
        windows = np.lib.stride_tricks.sliding_window_view(canvas, (view, 3 * view), axis=(1, 2))
        row = self._agent // size
        column = self._agent - row * size
        viewports = windows[self._rows, row, 3 * column]  # [N, view, 3 * view]
        return np.concatenate([held_rows, viewports], axis=1).reshape(count, view + 1, view, 3)

    def _infos(
        self,
        key_picked: np.ndarray,
        correct_lock: np.ndarray,
        distractor_lock: np.ndarray,
        gem: np.ndarray,
        ended: np.ndarray,
        success: np.ndarray,
    ) -> dict[str, Any]:
        values = (
            self._held.copy(),
            self._solution_length.copy(),
            self._num_distractors.copy(),
            self._steps.copy(),
            key_picked,
            correct_lock,
            distractor_lock,
            gem,
        )
        infos: dict[str, Any] = {}
        present = np.ones(self.num_envs, dtype=bool)
        for name, value in zip(_INFO_KEYS, values):
            infos[name] = value
            infos[f"_{name}"] = present.copy()
        if ended.any():
            infos["success"] = success & ended
            infos["_success"] = ended.copy()
        return infos
