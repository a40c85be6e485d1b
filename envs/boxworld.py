"""Box-World (Zambaldi et al. 2018, "Deep reinforcement learning with relational inductive
biases"; its viewport variant from Santoro et al. 2018, "Relational recurrent neural
networks", App. A.3) as a Gymnasium environment.

Rules follow DeepMind's pycolab ``box_world`` example; level generation lives in
``envs.boxworld_levels`` and is shared with the batch-native ``envs.boxworld_vector``.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from envs.boxworld_levels import (
    AGENT_COLOUR,
    BORDER_COLOUR,
    EMPTY,
    GEM,
    KEY,
    LOCK,
    WALL,
    BoxWorldLevelConfig,
    LevelBatch,
    colour_table,
    generate_levels,
    pixel_index,
)
from envs.counter_rng import draw_key
from envs.rendering import HumanWindow, upscale

ACTION_NAMES = ("north", "south", "west", "east", "no-op")
REWARD_GEM = 10.0
REWARD_CORRECT_LOCK = 1.0
REWARD_DISTRACTOR_LOCK = -1.0
CELL_PIXELS = 32


def check_viewport(viewport: int | None) -> None:
    """Raises ``ValueError`` unless ``viewport`` is None or an odd int >= 1."""
    if viewport is None:
        return
    if isinstance(viewport, bool) or not isinstance(viewport, (int, np.integer)) or viewport < 1 or viewport % 2 == 0:
        raise ValueError(f"viewport must be None or an odd int >= 1, got {viewport!r}")


def check_max_steps(max_steps: int) -> None:
    """Raises ``ValueError`` unless ``max_steps`` is an int >= 1."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")


def observation_shape(board_size: int, viewport: int | None) -> tuple[int, int, int]:
    """Shape of one observation: the board, or the held-key row over the viewport."""
    if viewport is None:
        return (board_size, board_size, 3)
    return (viewport + 1, viewport, 3)


class BoxWorldEnv(gym.Env[np.ndarray, np.int64]):
    """Box-World: open a chain of boxes with keys to reach the gem.

    ## Description
    A ``room_size`` x ``room_size`` room inside a black border. A box is two adjacent
    cells, the lock on the right and its content (a key or the gem) on the left; a loose
    key has no lock beside it. The agent carries at most one key. Walking onto a loose
    key picks it up (a key already held is lost); walking onto a lock needs the key of
    its colour, which is used up: the lock opens and the agent stands on its cell, after
    which the content is a loose key (or the gem) that the agent collects by stepping
    onto it. Locked contents, locks without the right key and the border block
    movement. The solution path runs from the loose key through ``solution_length``
    boxes to the gem; distractor branches start with a lock of a path key's colour and
    lead to dead ends. See ``envs.boxworld_levels`` for level generation.

    ## Action Space
    ``Discrete(4)``: 0 north, 1 south, 2 west, 3 east; ``Discrete(5)`` with action 4 a
    no-op when ``noop_action=True``. Anything else raises ``ValueError``.

    ## Observation Space
    ``Box(0, 255, shape, uint8)``, one pixel per cell. Full view (``viewport=None``): the
    board, shape ``(room_size + 2, room_size + 2, 3)``, the held key's colour at
    ``[0, 0]`` (border black when none). Viewport ``v``: shape ``(v + 1, v, 3)``; row 0 is
    filled with the held key's colour (black when none), rows 1..v are the ``v x v``
    window of the board centred on the agent, black outside the board.
    Colours: agent dark grey (128), gem white, background light grey (204), border
    black, ``num_colours`` distinct hues for keys and locks (a key and its lock share a
    hue).

    ## Rewards
    +10 for the gem, +1 for opening a lock on the solution path, -1 for opening a
    distractor lock; 0 otherwise.

    ## Termination & Truncation
    Terminates on the gem (success) or on opening a distractor lock (dead end).
    Truncates after exactly ``max_steps`` steps (the original's counter ends one step
    late; we do not copy that); no-op steps count.

    ## Arguments
    - ``room_size`` (int, 12): side of the room.
    - ``solution_length`` (int or collection, {1, 2, 3, 4}): boxes on the path, drawn
      uniformly from the collection at each reset.
    - ``num_distractors`` (int or collection, {0, ..., 4}): distractor branches.
    - ``distractor_length`` (int, 1): boxes per distractor branch.
    - ``num_colours`` (int, 20): key/lock hues, shuffled per level.
    - ``viewport`` (None or odd int, None): egocentric view size; 5 is the RMC paper's.
    - ``max_steps`` (int, 120): step limit.
    - ``noop_action`` (bool, False): add action 4, a no-op (the pycolab original has a
      non-counting "delay" action; ours counts toward the step limit).
    - ``render_mode`` (``"rgb_array"``, ``"human"`` or None).
    Levels that cannot fit raise ``ValueError`` at construction (see
    ``BoxWorldLevelConfig``).

    ## Info
    ``held_key`` (colour index, -1 when none), ``solution_length``, ``num_distractors``,
    ``steps``, the step's events ``key_picked``, ``correct_lock_opened``,
    ``distractor_lock_opened``, ``gem_collected``, and ``success`` (gem collected) on the
    last step of an episode.

    ## Registered ids
    - ``rmc/BoxWorld-v0``: the defaults above (Zambaldi et al. 2018).
    - ``rmc/BoxWorldViewport-v0``: ``viewport=5``, ``solution_length`` 1..5,
      ``num_distractors`` 0..5 (Santoro et al. 2018).
    - ``rmc/BoxWorldEasy-v0``: ``room_size=7``, ``solution_length`` {1, 2}, no
      distractors; learnable in minutes.

    Deliberate deviations from the pycolab original: the step limit is exact; the agent
    starts on any free room cell (the original's sampler misses the first and last room
    rows and the last column); a box's lock may stand in the room's second-to-last
    column (the original's sampler stops one column short, so its layouts keep two free
    columns on the right but one on the left); distractor keys all get distinct fresh
    colours; a jammed placement is redrawn with the level's other draws kept (the
    original redraws the whole level, which slightly favours small levels).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 10}

    def __init__(
        self,
        room_size: int = 12,
        solution_length: int | Collection[int] = (1, 2, 3, 4),
        num_distractors: int | Collection[int] = (0, 1, 2, 3, 4),
        distractor_length: int = 1,
        num_colours: int = 20,
        viewport: int | None = None,
        max_steps: int = 120,
        noop_action: bool = False,
        render_mode: Literal["human", "rgb_array"] | None = None,
    ) -> None:
        self.config = BoxWorldLevelConfig.create(
            room_size, solution_length, num_distractors, distractor_length, num_colours
        )
        check_viewport(viewport)
        check_max_steps(max_steps)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.viewport = None if viewport is None else int(viewport)
        self.max_steps = int(max_steps)
        self.noop_action = bool(noop_action)
        self.render_mode = render_mode

        size = self.config.board_size
        self._size = size
        self._num_actions = 5 if self.noop_action else 4
        self.action_space = gym.spaces.Discrete(self._num_actions)
        self.observation_space = gym.spaces.Box(
            0, 255, observation_shape(size, self.viewport), dtype=np.uint8
        )
        self._deltas = (-size, size, -1, 1)
        self._table = colour_table(self.config.num_colours)
        self._key_colours = [np.array(colour, dtype=np.uint8) for colour in self._table[3:]]
        self._background = self._table[0].copy()
        self._border = np.array(BORDER_COLOUR, dtype=np.uint8)
        self._agent_colour = np.array(AGENT_COLOUR, dtype=np.uint8)
        margin = 0 if self.viewport is None else self.viewport // 2
        self._margin = margin
        # The board is a view into a black-padded canvas so the viewport is one slice.
        self._canvas = np.zeros((size + 2 * margin, size + 2 * margin, 3), dtype=np.uint8)
        self._frame = self._canvas[margin : margin + size, margin : margin + size]
        self._canvas_pixels = self._canvas.reshape(-1, 3)
        canvas_width = size + 2 * margin
        self._canvas_cell = [
            (cell // size + margin) * canvas_width + cell % size + margin for cell in range(size * size)
        ]
        self._kind: list[int] = []
        self._colour: list[int] = []
        self._distractor: np.ndarray = np.zeros(0, dtype=bool)
        self._agent = 0
        self._held = -1
        self._steps = 0
        self._return = 0.0
        self._solution_length = 0
        self._num_distractors = 0
        self._done = True
        self._window: HumanWindow | None = None

    # --- Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode on a new level drawn from ``np_random``.

        Args:
            seed: seeds ``np_random`` (same seed, same level sequence).
            options: ``{"level": LevelBatch}`` plays that level (a batch of one, e.g. from
                ``envs.boxworld_levels.parse_level``) instead of a generated one.
        """
        super().reset(seed=seed)
        level = (options or {}).get("level")
        if level is None:
            level = generate_levels(self.config, np.array([draw_key(self.np_random)], dtype=np.uint64))
        else:
            self._check_level(level)
        self._kind = level.kind[0].tolist()
        self._colour = level.colour[0].tolist()
        self._distractor = level.distractor[0].copy()
        self._agent = int(level.agent[0])
        self._held = -1
        self._steps = 0
        self._return = 0.0
        self._solution_length = int(level.solution_length[0])
        self._num_distractors = int(level.num_distractors[0])
        self._done = False
        self._frame[...] = self._table[pixel_index(level.kind[0], level.colour[0])].reshape(self._size, self._size, 3)
        self._set_pixel(self._agent, self._agent_colour)
        info = self._info(False, False, False, False)
        if self.render_mode == "human":
            self.render()
        return self._observation(), info

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        try:
            move = operator.index(action)
        except TypeError:
            raise ValueError(f"action must be an int in [0, {self._num_actions}), got {action!r}") from None
        if not 0 <= move < self._num_actions:
            raise ValueError(f"action must be an int in [0, {self._num_actions}), got {action!r}")
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step()")
        reward = 0.0
        terminated = key_picked = correct_lock = distractor_lock = gem = False
        if move < 4:
            kind = self._kind
            target = self._agent + self._deltas[move]
            target_kind = kind[target]
            if target_kind == EMPTY:
                self._move(target)
            elif target_kind == KEY:
                if kind[target + 1] != LOCK:
                    key_picked = True
                    self._set_held(self._colour[target])
                    kind[target] = EMPTY
                    self._move(target)
            elif target_kind == LOCK:
                if self._colour[target] == self._held:
                    kind[target] = EMPTY
                    self._set_held(-1)
                    self._move(target)
                    if self._distractor[target]:
                        distractor_lock = terminated = True
                        reward = REWARD_DISTRACTOR_LOCK
                    else:
                        correct_lock = True
                        reward = REWARD_CORRECT_LOCK
            elif target_kind == GEM:
                if kind[target + 1] != LOCK:
                    kind[target] = EMPTY
                    self._move(target)
                    gem = terminated = True
                    reward = REWARD_GEM
        self._steps += 1
        self._return += reward
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info(key_picked, correct_lock, distractor_lock, gem)
        if terminated or truncated:
            self._done = True
            info["success"] = gem
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the board upscaled; ``human``: the board in a window with a panel."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode to gymnasium.make")
            return None
        picture = upscale(self._frame, CELL_PIXELS)
        if self.render_mode == "rgb_array":
            return picture
        if self._window is None:
            self._window = HumanWindow("Box-World", self.metadata["render_fps"])
        held = None if self._held < 0 else tuple(int(value) for value in self._key_colours[self._held])
        lines = (
            f"return {self._return:g}",
            f"steps {self._steps} / {self.max_steps}",
            f"solution length {self._solution_length}",
            f"distractors {self._num_distractors}",
        )
        self._window.show(picture, lines, swatches=(("held key", held),))
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def __getstate__(self) -> dict[str, Any]:
        # The frame and pixel rows are views of the canvas: pickle the canvas only.
        state = self.__dict__.copy()
        del state["_frame"], state["_canvas_pixels"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        margin, size = self._margin, self._size
        self._frame = self._canvas[margin : margin + size, margin : margin + size]
        self._canvas_pixels = self._canvas.reshape(-1, 3)

    # --- internals -----------------------------------------------------------------------
    @property
    def board(self) -> np.ndarray:
        """The full board picture (uint8 [size, size, 3]), read-only view."""
        view = self._frame.view()
        view.flags.writeable = False
        return view

    def current_level(self) -> LevelBatch:
        """The level in its current state (opened locks and collected items removed).

        A batch of one, e.g. for ``envs.boxworld_solver.solve`` or to replay the position
        with ``reset(options={"level": ...})`` (the held key is not part of a level).
        """
        return LevelBatch(
            np.array([self._kind], dtype=np.int8),
            np.array([self._colour], dtype=np.int16),
            self._distractor[None].copy(),
            np.array([self._agent], dtype=np.int64),
            np.array([self._solution_length], dtype=np.int64),
            np.array([self._num_distractors], dtype=np.int64),
        )

    @property
    def held_key(self) -> int:
        """Colour index of the held key, -1 when none."""
        return self._held

    def _check_level(self, level: LevelBatch) -> None:
        size = self._size
        if level.kind.shape != (1, size * size):
            raise ValueError(
                f"options['level'] must be one level of a {size}x{size} board, got kind of shape {level.kind.shape}"
            )
        kind = level.kind[0].reshape(size, size)
        if not (np.all(kind[[0, -1]] == WALL) and np.all(kind[:, [0, -1]] == WALL)):
            raise ValueError("options['level'] must have a border of walls all around the board")
        if level.colour.max() >= self.config.num_colours:
            raise ValueError(
                f"options['level'] uses colour {level.colour.max()}, but num_colours is {self.config.num_colours}"
            )

    def _set_pixel(self, cell: int, colour: np.ndarray) -> None:
        self._canvas_pixels[self._canvas_cell[cell]] = colour

    def _move(self, target: int) -> None:
        self._set_pixel(self._agent, self._background)
        self._set_pixel(target, self._agent_colour)
        self._agent = target

    def _set_held(self, colour: int) -> None:
        self._held = colour
        self._set_pixel(0, self._border if colour < 0 else self._key_colours[colour])

    def _observation(self) -> np.ndarray:
        if self.viewport is None:
            return self._frame.copy()
        view = self.viewport
        row, column = divmod(self._agent, self._size)
        observation = np.empty((view + 1, view, 3), dtype=np.uint8)
        observation[0] = self._border if self._held < 0 else self._key_colours[self._held]
        observation[1:] = self._canvas[row : row + view, column : column + view]
        return observation

    def _info(self, key_picked: bool, correct_lock: bool, distractor_lock: bool, gem: bool) -> dict[str, Any]:
        return {
            "held_key": self._held,
            "solution_length": self._solution_length,
            "num_distractors": self._num_distractors,
            "steps": self._steps,
            "key_picked": key_picked,
            "correct_lock_opened": correct_lock,
            "distractor_lock_opened": distractor_lock,
            "gem_collected": gem,
        }
