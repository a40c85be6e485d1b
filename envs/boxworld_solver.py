"""A breadth-first solver for Box-World levels, used to prove levels solvable.

The search state is (agent cell, held key, cells emptied so far): everything that can
change in a level. Moves follow the rules of ``envs.boxworld.BoxWorldEnv``; opening a
distractor lock ends the episode, so such a state is a dead end and never expanded. The
first state reached by collecting the gem gives a shortest solution.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np

from envs.boxworld_levels import EMPTY, GEM, KEY, LOCK, LevelBatch


class Solution(NamedTuple):
    """A shortest solution of a level.

    Attributes:
        actions: the moves (0 north, 1 south, 2 west, 3 east), gem collected by the last.
        opened_locks: the lock cells opened on the way, in order.
    """

    actions: tuple[int, ...]
    opened_locks: tuple[int, ...]


def solve(kind: np.ndarray, colour: np.ndarray, distractor: np.ndarray, agent: int, board_size: int) -> Solution | None:
    """Finds a shortest action sequence that collects the gem, or None if there is none.

    Args:
        kind: the flat cell kinds of the level (EMPTY / WALL / GEM / KEY / LOCK).
        colour: the flat key/lock colours (-1 elsewhere).
        distractor: flat flags, True on distractor locks.
        agent: the agent's flat cell.
        board_size: side of the board.

    Returns:
        A ``Solution``, or None when no action sequence collects the gem.
    """
    kinds = [int(value) for value in kind]
    colours = [int(value) for value in colour]
    distractors = [bool(value) for value in distractor]
    object_cells = [cell for cell, value in enumerate(kinds) if value in (GEM, KEY, LOCK)]
    bit = {cell: 1 << index for index, cell in enumerate(object_cells)}
    deltas = (-board_size, board_size, -1, 1)

    def kind_at(cell: int, emptied: int) -> int:
        value = kinds[cell]
        if value in (GEM, KEY, LOCK) and emptied & bit[cell]:
            return EMPTY
        return value

    start = (int(agent), -1, 0)
    parents: dict[tuple[int, int, int], tuple[tuple[int, int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        cell, held, emptied = state
        for action, delta in enumerate(deltas):
            target = cell + delta
            target_kind = kind_at(target, emptied)
            locked = kind_at(target + 1, emptied) == LOCK if target_kind in (KEY, GEM) else False
            if target_kind == EMPTY:
                successor = (target, held, emptied)
            elif target_kind == KEY and not locked:
                successor = (target, colours[target], emptied | bit[target])
            elif target_kind == LOCK and colours[target] == held:
                if distractors[target]:
                    continue  # a dead end: the episode terminates without the gem
                successor = (target, -1, emptied | bit[target])
            elif target_kind == GEM and not locked:
                return _unwind(parents, state, action, kinds)
            else:
                continue
            if successor not in parents:
                parents[successor] = (state, action)
                queue.append(successor)
    return None


def _unwind(
    parents: dict[tuple[int, int, int], tuple[tuple[int, int, int], int] | None],
    state: tuple[int, int, int],
    last_action: int,
    kinds: list[int],
) -> Solution:
    actions = [last_action]
    opened: list[int] = []
    link = parents[state]
    while link is not None:
        previous, action = link
        actions.append(action)
        if state[2] != previous[2] and kinds[state[0]] == LOCK:
            opened.append(state[0])
        state = previous
        link = parents[state]
    return Solution(tuple(reversed(actions)), tuple(reversed(opened)))


def solve_level(level: LevelBatch, index: int = 0) -> Solution | None:
    """``solve`` for level ``index`` of a ``LevelBatch`` (e.g. ``env.current_level()``)."""
    board_size = math.isqrt(level.kind.shape[1])
    return solve(
        level.kind[index], level.colour[index], level.distractor[index], int(level.agent[index]), board_size
    )
