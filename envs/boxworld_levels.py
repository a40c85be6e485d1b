"""Box-World level generation, shared by the single env and the batch-native vector env.

Box-World is the game of Zambaldi et al. 2018, "Deep reinforcement learning with
relational inductive biases" (ICLR 2019), after DeepMind's pycolab ``box_world`` example.
A level is a room of ``room_size`` x ``room_size`` cells inside a one-cell black border.
It holds a *loose key*, a *solution path* of boxes and *distractor branches*:

- A box is two horizontally adjacent cells: the lock on the RIGHT, its content (a key
  or the gem) on the LEFT. A loose key is a key with no lock to its right.
- Path: the loose key (colour ``p1``) opens box 1 (lock ``p1``), box ``i`` holds key
  ``p(i+1)`` that opens box ``i+1``, and the last box (number ``solution_length``) holds
  the gem.
- Distractor branch: its first lock takes the colour of a key on the path (so that key
  could open either box), its content is a fresh colour that opens the branch's next box,
  and so on for ``distractor_length`` boxes. Every distractor key colour is fresh and
  distinct (some public ports reuse colours, which can turn a branch into a shortcut or
  give branches of length >= 3 wrong lock colours).
- Colours are a fresh random permutation of the ``num_colours`` hues per level.
- Placement as in the original: each object's top-left cell ``(y, x)`` is drawn so that
  rows ``y-1..y+1`` and columns ``x-1..x+2`` hold nothing else and lie inside the room
  (every object has a free ring around it, so the free cells stay connected and every
  level is solvable); the agent stands on a uniformly drawn free room cell.

Randomness: one 64-bit key per level (drawn by the env from its ``np_random``), expanded
with the counter-based hash of ``envs.counter_rng``. Every draw has a fixed counter, so a
batch of levels is generated with array operations and equals, level by level, what a
batch of one gives: the single env and the vector env share ``generate_levels``.

Placement draws each object uniformly among the positions still valid, which is the
distribution of the original's rejection sampling: a few rounds of rejection sampling
settle almost every level, and the rare level still open draws exactly among its valid
positions, so no loop is unbounded.
Random sequential placement can still jam (every position blocked) when the room is
crowded. ``BoxWorldLevelConfig`` therefore refuses, up front and with a ``ValueError``,
object counts above what the room can hold in any arrangement, and counts whose measured
jam rate exceeds ``MAX_JAM_RATE``; below that, a jammed level is placed again with fresh
draws, at most ``MAX_PLACEMENT_ATTEMPTS`` times, so a failure has probability below
``MAX_JAM_RATE ** MAX_PLACEMENT_ATTEMPTS`` (about 1e-20). The default room (12) with the
largest default level (9 objects) jams in about 1 of 20,000 first attempts.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from envs.counter_rng import below_array, uniform_array

# Cell kinds.
EMPTY, WALL, GEM, KEY, LOCK = 0, 1, 2, 3, 4

# Colours (uint8 RGB), as in the pycolab original (its 0..999 scale mapped to 0..255).
BACKGROUND_COLOUR = (204, 204, 204)  # light grey
BORDER_COLOUR = (0, 0, 0)  # black; also the held-key pixel when no key is held
GEM_COLOUR = (255, 255, 255)  # white
AGENT_COLOUR = (128, 128, 128)  # dark grey
MAX_NUM_COLOURS = 128

MAX_PLACEMENT_ATTEMPTS = 64
_REJECTION_ROUNDS = 4
MAX_JAM_RATE = 0.5
_JAM_RATE_SAMPLES = 2048

# Counters of the per-level draws (each draw has its own fixed counter).
_COUNTER_LENGTH = 0
_COUNTER_DISTRACTORS = 1
_COUNTER_COLOURS = 2


def key_lock_palette(num_colours: int) -> np.ndarray:
    """``num_colours`` distinct hues for keys and locks, uint8 [num_colours, 3].

    Evenly spaced hues at the saturation and value of the original's 20 colours (channel
    values between 0.35 and 0.7), so no hue is grey, white or black.
    """
    hues = [colorsys.hsv_to_rgb(index / num_colours, 0.5, 0.7) for index in range(num_colours)]
    return np.array([[round(channel * 255) for channel in rgb] for rgb in hues], dtype=np.uint8)


def colour_table(num_colours: int) -> np.ndarray:
    """Pixel colours by pixel index: background, border, gem, then the key/lock hues."""
    fixed = np.array([BACKGROUND_COLOUR, BORDER_COLOUR, GEM_COLOUR], dtype=np.uint8)
    return np.concatenate([fixed, key_lock_palette(num_colours)])


def pixel_index(kind: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Row of ``colour_table`` for each cell (the agent is drawn separately)."""
    return np.where(kind >= KEY, 3 + colour.astype(np.int64), kind.astype(np.int64))


def room_capacity(room_size: int) -> int:
    """Most objects (boxes or loose keys) a room can hold in any arrangement.

    Two objects conflict unless their rows differ by >= 2 or their left cells' columns by
    >= 3; any two consecutive candidate rows hold at most ``floor((room_size - 4) / 3) + 1``
    objects, and a lattice of every other row reaches the bound.
    """
    candidate_rows = room_size - 2
    candidate_columns = room_size - 3
    if candidate_rows < 1 or candidate_columns < 1:
        return 0
    return ((candidate_rows + 1) // 2) * ((candidate_columns - 1) // 3 + 1)


def _as_choices(name: str, value: int | Collection[int], minimum: int) -> tuple[int, ...]:
    """An int or a collection of ints as a sorted tuple of distinct choices."""
    values = [value] if isinstance(value, (int, np.integer)) else list(value)
    if not values:
        raise ValueError(f"{name} must be an int or a non-empty collection of ints, got {value!r}")
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < minimum:
            raise ValueError(f"{name} values must be ints >= {minimum}, got {value!r}")
    return tuple(sorted({int(item) for item in values}))


@dataclass(frozen=True)
class BoxWorldLevelConfig:
    """Validated level parameters; raises ``ValueError`` for levels that cannot be made.

    Attributes:
        room_size: side of the square room in cells (the board adds a 1-cell border).
        solution_lengths: the choices for the number of boxes on the solution path.
        distractor_counts: the choices for the number of distractor branches.
        distractor_length: boxes per distractor branch.
        num_colours: number of key/lock hues available.
    """

    room_size: int
    solution_lengths: tuple[int, ...]
    distractor_counts: tuple[int, ...]
    distractor_length: int
    num_colours: int

    @classmethod
    def create(
        cls,
        room_size: int = 12,
        solution_length: int | Collection[int] = (1, 2, 3, 4),
        num_distractors: int | Collection[int] = (0, 1, 2, 3, 4),
        distractor_length: int = 1,
        num_colours: int = 20,
    ) -> BoxWorldLevelConfig:
        """Checks the parameters and returns the config (see the class for their meaning)."""
        for name, value, minimum in (
            ("room_size", room_size, 1),
            ("distractor_length", distractor_length, 1),
            ("num_colours", num_colours, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        if num_colours > MAX_NUM_COLOURS:
            raise ValueError(f"num_colours must be <= {MAX_NUM_COLOURS}, got {num_colours}")
        config = cls(
            room_size=int(room_size),
            solution_lengths=_as_choices("solution_length", solution_length, 1),
            distractor_counts=_as_choices("num_distractors", num_distractors, 0),
            distractor_length=int(distractor_length),
            num_colours=int(num_colours),
        )
        config._check_fits()
        return config

    @property
    def board_size(self) -> int:
        """Side of the board: the room plus its border."""
        return self.room_size + 2

    @property
    def max_solution_length(self) -> int:
        return self.solution_lengths[-1]

    @property
    def max_distractors(self) -> int:
        return self.distractor_counts[-1]

    @property
    def num_slots(self) -> int:
        """Objects of the largest level: loose key, path boxes, distractor boxes."""
        return 1 + self.max_solution_length + self.max_distractors * self.distractor_length

    def _check_fits(self) -> None:
        needed_colours = self.max_solution_length + self.max_distractors * self.distractor_length
        if needed_colours > self.num_colours:
            raise ValueError(
                f"the largest level needs {needed_colours} key colours (solution_length "
                f"{self.max_solution_length} + num_distractors {self.max_distractors} x "
                f"distractor_length {self.distractor_length}) but num_colours is {self.num_colours}"
            )
        capacity = room_capacity(self.room_size)
        description = (
            f"solution_length {self.max_solution_length}, num_distractors {self.max_distractors} and "
            f"distractor_length {self.distractor_length} need {self.num_slots} objects (loose key + boxes)"
        )
        if self.num_slots > capacity:
            raise ValueError(f"{description}, but room_size {self.room_size} holds at most {capacity}")
        jam_rate = placement_jam_rate(self.room_size, self.num_slots)
        if jam_rate > MAX_JAM_RATE:
            raise ValueError(
                f"{description}; room_size {self.room_size} holds at most {capacity} in a perfect "
                f"packing, but random placement jams in {jam_rate:.0%} of attempts (limit "
                f"{MAX_JAM_RATE:.0%}): use a larger room_size or fewer boxes"
            )


class LevelBatch(NamedTuple):
    """A batch of generated levels; cells are flat indices ``row * board_size + column``.

    Attributes:
        kind: int8 [n, cells], the cell kinds EMPTY / WALL / GEM / KEY / LOCK.
        colour: int16 [n, cells], the key/lock colour index, -1 elsewhere.
        distractor: bool [n, cells], True on the locks of distractor branches.
        agent: int64 [n], the agent's cell.
        solution_length: int64 [n], boxes on the solution path.
        num_distractors: int64 [n], distractor branches.
    """

    kind: np.ndarray
    colour: np.ndarray
    distractor: np.ndarray
    agent: np.ndarray
    solution_length: np.ndarray
    num_distractors: np.ndarray


def _counter_bases(config: BoxWorldLevelConfig) -> tuple[int, int, int]:
    """First counters of the branch-start draws, the agent draws and the placement draws."""
    branch_base = _COUNTER_COLOURS + config.num_colours
    agent_base = branch_base + config.max_distractors
    return branch_base, agent_base, agent_base + _REJECTION_ROUNDS + 1


def _pick_uniform(
    allowed: np.ndarray, needed: np.ndarray, candidates: np.ndarray, draws: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, a cell drawn uniformly among the allowed ``candidates``.

    A few rounds of rejection sampling (draw a candidate, keep the first allowed one)
    settle almost every row with a handful of gathers; rows still open draw exactly
    among their allowed candidates. Either way the cell is uniform over the allowed ones.

    Args:
        allowed: bool [n, cells].
        needed: bool [n], the rows that need a cell.
        candidates: int64 [m], ascending cells that may be allowed.
        draws: float [n, rounds + 1] uniforms: one per rejection round, then the exact draw.

    Returns:
        (cell int64 [n], found bool [n]); found is False where no candidate is allowed.
    """
    count = allowed.shape[0]
    rows = np.arange(count)
    tries = candidates[(draws[:, :-1] * len(candidates)).astype(np.int64)]  # [n, rounds]
    ok = np.take_along_axis(allowed, tries, axis=1)
    first = ok.argmax(axis=1)
    cell = tries[rows, first]
    found = ok[rows, first]
    open_rows = np.flatnonzero(needed & ~found)
    if open_rows.size:
        open_allowed = allowed[open_rows][:, candidates]  # [k, m]
        choices = open_allowed.sum(axis=1)
        pick = (draws[open_rows, -1] * choices).astype(np.int64)
        index = np.argmax(np.cumsum(open_allowed, axis=1) > pick[:, None], axis=1)
        cell[open_rows] = candidates[index]
        found[open_rows] = choices > 0
    return cell, found


def _place_objects(
    config: BoxWorldLevelConfig, keys: np.ndarray, active: np.ndarray, attempt: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draws every active object's left cell, in slot order, for one attempt.

    Returns:
        (positions int64 [n, slots] with -1 for inactive slots, jammed bool [n]).
    """
    size = config.board_size
    room = config.room_size
    count, slots = active.shape
    per_slot = _REJECTION_ROUNDS + 1
    counter = _counter_bases(config)[2] + attempt * slots * per_slot
    draws = uniform_array(keys[:, None], counter + np.arange(slots * per_slot, dtype=np.uint64))
    draws = draws.reshape(count, slots, per_slot)

    candidate = np.zeros((size, size), dtype=bool)
    candidate[2:room, 2 : room - 1] = True
    candidates = np.flatnonzero(candidate)
    valid = np.broadcast_to(candidate.reshape(-1), (count, size * size)).copy()
    window = (np.arange(-1, 2)[:, None] * size + np.arange(-2, 3)[None, :]).reshape(-1)
    valid_flat = valid.reshape(-1)
    row_base = np.arange(count) * (size * size)

    positions = np.full((count, slots), -1, dtype=np.int64)
    jammed = np.zeros(count, dtype=bool)
    for slot in range(slots):
        needed = active[:, slot]
        cell, found = _pick_uniform(valid, needed, candidates, draws[:, slot])
        place = np.flatnonzero(needed & found)
        jammed |= needed & ~found
        positions[place, slot] = cell[place]
        # Candidates whose margin now holds this object's cells: rows y-1..y+1, x-2..x+2.
        valid_flat[(row_base[place] + cell[place])[:, None] + window[None, :]] = False
    return positions, jammed


def _place_agent(config: BoxWorldLevelConfig, keys: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The agent's cell, uniform over the empty room cells (never fewer than half)."""
    _, agent_base, _ = _counter_bases(config)
    draws = uniform_array(keys[:, None], agent_base + np.arange(_REJECTION_ROUNDS + 1, dtype=np.uint64))
    room = np.zeros((config.board_size, config.board_size), dtype=bool)
    room[1:-1, 1:-1] = True
    needed = np.ones(len(keys), dtype=bool)
    cell, _ = _pick_uniform(kind == EMPTY, needed, np.flatnonzero(room), draws)
    return cell


def generate_levels(config: BoxWorldLevelConfig, keys: np.ndarray) -> LevelBatch:
    """Generates one level per 64-bit key with array operations.

    Args:
        config: the level parameters.
        keys: uint64 [n], one key per level; equal keys give equal levels.

    Returns:
        The levels as a ``LevelBatch``.

    Raises:
        RuntimeError: a level jammed ``MAX_PLACEMENT_ATTEMPTS`` times in a row (see the
            module docstring: below 1e-20 for the parameters the config accepts).
    """
    keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
    count = keys.shape[0]
    size = config.board_size
    length_choices = np.array(config.solution_lengths)
    distractor_choices = np.array(config.distractor_counts)
    max_length, max_distractors, branch = config.max_solution_length, config.max_distractors, config.distractor_length
    branch_base, _, _ = _counter_bases(config)
    column = keys[:, None]

    counters = np.array([_COUNTER_LENGTH, _COUNTER_DISTRACTORS], dtype=np.uint64)
    length_draw, distractor_draw = uniform_array(column, counters).T
    length = length_choices[(length_draw * len(length_choices)).astype(np.int64)]
    distractors = distractor_choices[(distractor_draw * len(distractor_choices)).astype(np.int64)]
    colour_draws = uniform_array(column, _COUNTER_COLOURS + np.arange(config.num_colours, dtype=np.uint64))
    permutation = np.argsort(colour_draws, axis=1, kind="stable")  # [n, colours]
    branch_start = below_array(
        column, branch_base + np.arange(max_distractors, dtype=np.uint64), length[:, None]
    )  # [n, max_distractors], path key index each branch's first lock copies

    # Slot layout: 0 loose key, 1..max_length path boxes, then distractor boxes (d, b).
    slots = config.num_slots
    slot = np.arange(slots)
    is_path = (slot >= 1) & (slot <= max_length)
    distractor_slot = np.maximum(slot - 1 - max_length, 0)
    branch_index, box_index = distractor_slot // branch, distractor_slot % branch
    is_branch = slot > max_length
    length_column = length[:, None]
    active = np.where(
        is_branch, branch_index < distractors[:, None], np.where(is_path, slot <= length_column, True)
    )
    fresh = length_column + branch_index * branch + box_index  # [n, slots], this box's content colour
    content_index = np.where(is_branch, fresh, slot)
    has_gem = is_path & (slot == length_column)
    if max_distractors:
        first_lock = branch_start[:, np.minimum(branch_index, max_distractors - 1)]
    else:
        first_lock = np.zeros((count, slots), dtype=np.int64)
    lock_index = np.where(is_branch, np.where(box_index == 0, first_lock, fresh - 1), slot - 1)
    last = config.num_colours - 1
    content_colour = np.take_along_axis(permutation, np.clip(content_index, 0, last), axis=1)
    lock_colour = np.take_along_axis(permutation, np.clip(lock_index, 0, last), axis=1)

    positions = np.empty((count, slots), dtype=np.int64)
    pending = np.arange(count)
    for attempt in range(MAX_PLACEMENT_ATTEMPTS):
        placed, jammed = _place_objects(config, keys[pending], active[pending], attempt)
        positions[pending] = placed
        pending = pending[jammed]
        if pending.size == 0:
            break
    else:
        raise RuntimeError(
            f"Box-World placement jammed {MAX_PLACEMENT_ATTEMPTS} times for room_size {config.room_size} "
            f"with {slots} objects; use a larger room_size"
        )

    kind = np.full((count, size, size), WALL, dtype=np.int8)
    kind[:, 1:-1, 1:-1] = EMPTY
    kind = kind.reshape(count, size * size)
    colour = np.full((count, size * size), -1, dtype=np.int16)
    distractor = np.zeros((count, size * size), dtype=bool)
    level_rows, level_slots = np.nonzero(active)
    left = positions[level_rows, level_slots]
    gem = has_gem[level_rows, level_slots]
    kind[level_rows, left] = np.where(gem, GEM, KEY)
    colour[level_rows, left] = np.where(gem, -1, content_colour[level_rows, level_slots])
    locked = level_slots > 0
    lock_rows, lock_cells = level_rows[locked], left[locked] + 1
    kind[lock_rows, lock_cells] = LOCK
    colour[lock_rows, lock_cells] = lock_colour[level_rows[locked], level_slots[locked]]
    distractor[lock_rows, lock_cells] = is_branch[level_slots[locked]]
    agent = _place_agent(config, keys, kind)
    return LevelBatch(kind, colour, distractor, agent, length.astype(np.int64), distractors.astype(np.int64))


@functools.lru_cache(maxsize=64)
def placement_jam_rate(room_size: int, num_objects: int) -> float:
    """Measured share of first placement attempts that jam for ``num_objects`` objects.

    Computed once per (room_size, num_objects) on a fixed batch of keys.
    """
    if num_objects <= 1:
        return 0.0
    config = BoxWorldLevelConfig(room_size, (num_objects - 1,), (0,), 1, num_objects)
    keys = np.arange(_JAM_RATE_SAMPLES, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    active = np.ones((_JAM_RATE_SAMPLES, num_objects), dtype=bool)
    _, jammed = _place_objects(config, keys, active, 0)
    return float(jammed.mean())


def parse_level(rows: Sequence[str], distractor_locks: Collection[tuple[int, int]] = ()) -> LevelBatch:
    """A hand-written level as a batch of one, for tests and fixed evaluation levels.

    Args:
        rows: the board, border included, one string per row: ``#`` border, ``.``
            background, ``@`` agent, ``*`` gem, ``a``-``z`` a key of colour 0-25, ``A``-``Z``
            a lock of colour 0-25.
        distractor_locks: (row, column) of the locks that are distractors.

    Returns:
        The level; ``solution_length`` counts the other locks, ``num_distractors`` these.
    """
    size = len(rows)
    if any(len(row) != size for row in rows):
        raise ValueError(f"rows must form a square board, got row lengths {[len(row) for row in rows]}")
    kind = np.full(size * size, EMPTY, dtype=np.int8)
    colour = np.full(size * size, -1, dtype=np.int16)
    distractor = np.zeros(size * size, dtype=bool)
    agents = []
    for row_index, row in enumerate(rows):
        for column_index, char in enumerate(row):
            cell = row_index * size + column_index
            if char == "#":
                kind[cell] = WALL
            elif char == "*":
                kind[cell] = GEM
            elif char == "@":
                agents.append(cell)
            elif "a" <= char <= "z":
                kind[cell], colour[cell] = KEY, ord(char) - ord("a")
            elif "A" <= char <= "Z":
                kind[cell], colour[cell] = LOCK, ord(char) - ord("A")
            elif char != ".":
                raise ValueError(f"unknown level character {char!r} at row {row_index}, column {column_index}")
    if len(agents) != 1:
        raise ValueError(f"a level needs exactly one agent '@', got {len(agents)}")
    for row_index, column_index in distractor_locks:
        cell = row_index * size + column_index
        if kind[cell] != LOCK:
            raise ValueError(f"distractor lock at ({row_index}, {column_index}) is not a lock")
        distractor[cell] = True
    locks = int((kind == LOCK).sum())
    return LevelBatch(
        kind[None],
        colour[None],
        distractor[None],
        np.array(agents, dtype=np.int64),
        np.array([locks - len(distractor_locks)], dtype=np.int64),
        np.array([len(distractor_locks)], dtype=np.int64),
    )
