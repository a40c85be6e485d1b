"""Drawing the watch view: the game board and a panel of what the policy sees and does.

The panel shows the episode, step, return, the value estimate, the action probabilities
and, for an RMC policy, each memory slot's attention at this step (the last attention
block, one row of maps per head): a slots x slots heat map of the weights on the memory
slots (absolute scale, 0 black to 1 white-yellow) and, per slot, a map of its weights on
the input cells (each map scaled to its own maximum; the label gives the slot's total
weight on input cells). When the observation is the board itself (every grid game of
this project in full view), the weights on the input cells are also tinted over the
board, each feature-map cell on the board cell at the centre of what it sees.

Everything is drawn into an off-screen pygame ``Surface`` (pygame's font module works
without a display), so recording needs no window; ``view_to_array`` turns it into the
``uint8 [H, W, 3]`` frames a video writer takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.encoders import ReceptiveFields

PANEL_WIDTH = 480
MARGIN = 12
BACKGROUND = (24, 24, 32)
TEXT = (232, 232, 232)
DIM_TEXT = (150, 150, 165)
ACCENT = (255, 196, 64)
BAR = (90, 160, 255)
CHOSEN_BAR = (255, 196, 64)
MIN_BOARD_HEIGHT = 480
OVERLAY_FLOOR = 0.55
OUTLINE_FROM = 0.25
OUTLINE = (255, 230, 0)
MAX_PROBABILITY_BARS = 18
KEYS_HELP = "space pause   n step   +/- speed   r restart   o overlay   q quit"

_INFERNO_ANCHORS = np.array([
    (0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21), (250, 193, 39),
    (252, 255, 164),
], dtype=np.float64)
HEAT_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_INFERNO_ANCHORS)),
                               _INFERNO_ANCHORS[:, channel]) for channel in range(3)], axis=-1).astype(np.uint8)
"""256 colours from black through purple and orange to pale yellow (inferno-like)."""


def heat_colours(values: np.ndarray) -> np.ndarray:
    """Values in ``[0, 1]`` (clipped) -> ``uint8 [..., 3]`` colours of ``HEAT_LUT``."""
    return HEAT_LUT[np.clip(np.nan_to_num(values) * 255.0 + 0.5, 0, 255).astype(np.int64)]


@dataclass
class AttentionLayout:
    """How the core's attention rows map onto slots, input cells and the board.

    Attributes:
        mem_slots: memory slots N (the first N rows and columns of the attention).
        num_heads: attention heads.
        num_blocks: attention blocks (the panel shows the last).
        input_rows: input rows R after the slots.
        feature_grid: ``(H', W')`` when the R input rows are the cells of one feature map
            (row ``y * W' + x``), else None (the panel then shows the R columns as a strip).
        receptive_fields: where each feature cell looks in the observation, or None.
        board_cells: ``(H, W)`` observation cells when the observation is the rendered
            board at one pixel per cell (then the attention is drawn over the board).
    """

    mem_slots: int
    num_heads: int
    num_blocks: int
    input_rows: int
    feature_grid: tuple[int, int] | None = None
    receptive_fields: ReceptiveFields | None = None
    board_cells: tuple[int, int] | None = None


@dataclass
class Decision:
    """What the policy computed for one observation.

    Attributes:
        value: the value estimate.
        action_label: the chosen action as text.
        probabilities: ``(label, probability)`` per choice, or None (continuous actions).
        chosen: indices into ``probabilities`` of the chosen action (one per component).
        attention: ``[num_heads, mem_slots, mem_slots + input_rows]`` weights of the last
            block's memory-slot rows (each row sums to 1), or None for non-RMC cores.
    """

    value: float
    action_label: str
    probabilities: list[tuple[str, float]] | None = None
    chosen: tuple[int, ...] = ()
    attention: np.ndarray | None = None


@dataclass
class ViewState:
    """Everything one frame of the view shows.

    Attributes:
        board: the env's ``rgb_array`` frame.
        episode: 1-based episode number.
        step: steps taken in this episode.
        episode_return: return so far.
        decision: the policy's outputs at this step, or None (e.g. after the episode ended).
        status: a line of status text ("sampled", "paused", "episode over", ...).
        overlay: ``(slot, head)`` whose input attention is tinted over the board (None in
            either place: the mean over slots / heads), or None for no overlay.
    """

    board: np.ndarray
    episode: int
    step: int
    episode_return: float
    decision: Decision | None
    status: str = ""
    overlay: tuple[int | None, int | None] | None = (None, None)


def cells_from_feature_map(weights: np.ndarray, fields: ReceptiveFields, cells: tuple[int, int]) -> np.ndarray:
    """Places ``[H', W']`` feature-cell weights on a ``[H, W]`` grid of input cells.

    Feature cell ``(i, j)`` is drawn on a ``stride x stride`` tile centred on the centre of
    the input cells it sees (for the small encoder: 3x3 patches one cell apart, so cell
    ``(i, j)`` lands on input cell ``(i + 1, j + 1)``). Cells no tile covers stay 0.
    """
    grid = np.zeros(cells, dtype=np.float64)
    tops = [int(np.floor(fields.start[0] + i * fields.stride[0] + (fields.size[0] - fields.stride[0]) / 2))
            for i in range(weights.shape[0])]
    lefts = [int(np.floor(fields.start[1] + j * fields.stride[1] + (fields.size[1] - fields.stride[1]) / 2))
             for j in range(weights.shape[1])]
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            rows = slice(max(top, 0), max(min(top + fields.stride[0], cells[0]), 0))
            cols = slice(max(left, 0), max(min(left + fields.stride[1], cells[1]), 0))
            grid[rows, cols] = weights[i, j]
    return grid


def select_input_attention(attention: np.ndarray, layout: AttentionLayout, slot: int | None,
                           head: int | None) -> np.ndarray:
    """The weights on the input rows ``[R]`` of one slot and head (None: the mean)."""
    inputs = attention[:, :, layout.mem_slots:]  # [heads, slots, R]
    inputs = inputs.mean(0) if head is None else inputs[head]
    return inputs.mean(0) if slot is None else inputs[slot]


def overlay_on_board(board: np.ndarray, cell_weights: np.ndarray) -> np.ndarray:
    """Marks ``[H, W]`` cell weights on ``board`` (``[H * k, W * k, 3]``).

    Each cell keeps ``OVERLAY_FLOOR + (1 - OVERLAY_FLOOR) * w / max(w)`` of its brightness
    (the game's colours stay true, unattended cells fade a little), and cells with at
    least ``OUTLINE_FROM`` of the largest weight get a yellow frame whose thickness grows
    with the weight.
    """
    peak = float(cell_weights.max())
    if peak <= 0:
        return board
    cell_h, cell_w = board.shape[0] // cell_weights.shape[0], board.shape[1] // cell_weights.shape[1]
    norm = cell_weights / peak
    light = np.repeat(np.repeat(OVERLAY_FLOOR + (1 - OVERLAY_FLOOR) * norm, cell_h, axis=0), cell_w, axis=1)
    lit = board.astype(np.float64)
    lit[: light.shape[0], : light.shape[1]] *= light[..., None]
    lit = lit.round().astype(np.uint8)
    widest = max(1, min(cell_h, cell_w) // 6)
    for row, column in zip(*np.nonzero(norm >= OUTLINE_FROM)):
        thickness = max(1, round(widest * float(norm[row, column])))
        top, left = row * cell_h, column * cell_w
        lit[top : top + thickness, left : left + cell_w] = OUTLINE
        lit[top + cell_h - thickness : top + cell_h, left : left + cell_w] = OUTLINE
        lit[top : top + cell_h, left : left + thickness] = OUTLINE
        lit[top : top + cell_h, left + cell_w - thickness : left + cell_w] = OUTLINE
    return lit


def view_to_array(surface: Any) -> np.ndarray:
    """A pygame Surface -> ``uint8 [H, W, 3]``."""
    import pygame

    return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)))


class WatchView:
    """Draws ``ViewState`` frames of a fixed size for one env and policy.

    Args:
        title: the first panel line (the env id).
        board_shape: ``(height, width)`` of the env's ``rgb_array`` frames.
        num_choices: number of probability bars (0 for none).
        layout: the attention layout for RMC policies, else None.
        show_keys: add the keyboard help line (window mode).
    """

    def __init__(self, title: str, board_shape: tuple[int, int], num_choices: int,
                 layout: AttentionLayout | None, show_keys: bool = False) -> None:
        import pygame

        if not pygame.font.get_init():
            pygame.font.init()
        self._pygame = pygame
        self.title = title
        self.layout = layout
        self.show_keys = show_keys
        self.font = pygame.font.Font(None, 24)
        self.small_font = pygame.font.Font(None, 19)
        self.num_bars = num_choices if num_choices <= MAX_PROBABILITY_BARS else 0
        self._plan_attention()
        height = max(MIN_BOARD_HEIGHT, self._panel_height())
        if board_shape[0] < height:  # small boards are scaled up to the view's height
            board_height = height
            board_width = round(board_shape[1] * height / board_shape[0])
        else:
            board_height, board_width = board_shape
        self.board_size = (board_width, board_height)
        width = board_width + PANEL_WIDTH
        self.size = (width + width % 2, height + height % 2)  # even sides suit video codecs

    # --- layout ---------------------------------------------------------------------------

    def _plan_attention(self) -> None:
        layout = self.layout
        self.matrix_cell = 0
        self.map_cell = 0
        self.head_row_height = 0
        if layout is None:
            return
        slots = layout.mem_slots
        self.matrix_cell = max(4, min(14, 56 // slots))
        available = PANEL_WIDTH - 2 * MARGIN - 52 - slots * self.matrix_cell - 10
        if layout.feature_grid is not None:
            grid_h, grid_w = self._map_grid()
            self.map_cell = max(1, min(10, (available // slots - 6) // grid_w, 72 // grid_h))
            map_height = grid_h * self.map_cell
            self.head_row_height = max(map_height + 16, slots * self.matrix_cell) + 8
        else:
            self.map_cell = max(1, min(14, available // max(layout.input_rows, 1)))
            self.head_row_height = slots * max(self.matrix_cell, self.map_cell) + 8

    def _map_grid(self) -> tuple[int, int]:
        """Cells of the per-slot input maps: the board's when the attention maps onto it."""
        layout = self.layout
        assert layout is not None and layout.feature_grid is not None
        if layout.board_cells is not None and layout.receptive_fields is not None:
            return layout.board_cells
        return layout.feature_grid

    def _input_map(self, inputs: np.ndarray) -> np.ndarray:
        """``[R]`` weights of one slot -> the map drawn for it (board cells where known)."""
        layout = self.layout
        assert layout is not None and layout.feature_grid is not None
        grid = inputs.reshape(layout.feature_grid)
        if layout.board_cells is not None and layout.receptive_fields is not None:
            return cells_from_feature_map(grid, layout.receptive_fields, layout.board_cells)
        return grid

    def _panel_height(self) -> int:
        height = MARGIN + 28 + 4 * 24 + 8
        if self.num_bars:
            height += 22 + self.num_bars * 18 + 6
        if self.layout is not None:
            height += 44 + self.layout.num_heads * self.head_row_height + 24
        if self.show_keys:
            height += 26
        return height + MARGIN

    # --- drawing ----------------------------------------------------------------------------

    def draw(self, state: ViewState) -> Any:
        """Returns a pygame Surface of ``self.size`` showing ``state``."""
        pygame = self._pygame
        surface = pygame.Surface(self.size)
        surface.fill(BACKGROUND)
        board = state.board
        decision = state.decision
        overlay_text = None
        layout = self.layout
        if (layout is not None and decision is not None and decision.attention is not None
                and state.overlay is not None and layout.board_cells is not None
                and layout.feature_grid is not None and layout.receptive_fields is not None):
            slot, head = state.overlay
            weights = select_input_attention(decision.attention, layout, slot, head).reshape(layout.feature_grid)
            board = overlay_on_board(board, cells_from_feature_map(weights, layout.receptive_fields,
                                                                   layout.board_cells))
            overlay_text = (f"board: input attention of {'all slots' if slot is None else f'slot {slot}'}, "
                            f"{'all heads' if head is None else f'head {head}'}")
        picture = pygame.surfarray.make_surface(np.transpose(board, (1, 0, 2)))
        if picture.get_size() != self.board_size:
            picture = pygame.transform.scale(picture, self.board_size)  # nearest neighbour: crisp cells
        surface.blit(picture, (0, 0))
        x, y = self.board_size[0] + MARGIN, MARGIN
        y = self._text(surface, self.title, (x, y), self.font, ACCENT) + 4
        lines = [f"episode {state.episode}   step {state.step}", f"return {state.episode_return:g}"]
        if decision is not None:
            lines[1] += f"   value {decision.value:.3f}"
            lines.append(f"action {decision.action_label}")
        else:
            lines.append("")
        lines.append(state.status)
        for line in lines:
            y = self._text(surface, line, (x, y), self.font, TEXT)
        y += 8
        if self.num_bars:
            y = self._probability_bars(surface, decision, x, y)
        if layout is not None:
            y = self._attention(surface, decision, x, y)
            self._text(surface, overlay_text or "board: no attention overlay", (x, y), self.small_font, DIM_TEXT)
            y += 24
        if self.show_keys:
            self._text(surface, KEYS_HELP, (x, self.size[1] - MARGIN - 18), self.small_font, DIM_TEXT)
        return surface

    def _text(self, surface: Any, text: str, position: tuple[int, int], font: Any, colour: tuple[int, int, int]) -> int:
        surface.blit(font.render(text, True, colour), position)
        return position[1] + font.get_linesize() + 2

    def _probability_bars(self, surface: Any, decision: Decision | None, x: int, y: int) -> int:
        pygame = self._pygame
        y = self._text(surface, "action probabilities", (x, y), self.small_font, DIM_TEXT)
        label_width, bar_width = 92, PANEL_WIDTH - 2 * MARGIN - 92 - 56
        probabilities = decision.probabilities if decision is not None else None
        for index in range(self.num_bars):
            if probabilities is not None and index < len(probabilities):
                label, probability = probabilities[index]
                colour = CHOSEN_BAR if index in decision.chosen else BAR
                self._text(surface, label, (x, y), self.small_font, TEXT)
                pygame.draw.rect(surface, (50, 50, 62), pygame.Rect(x + label_width, y + 2, bar_width, 12))
                pygame.draw.rect(surface, colour,
                                 pygame.Rect(x + label_width, y + 2, max(1, round(bar_width * probability)), 12))
                self._text(surface, f"{probability:.2f}", (x + label_width + bar_width + 8, y), self.small_font, TEXT)
            y += 18
        return y + 6

    def _heat_map(self, surface: Any, values: np.ndarray, position: tuple[int, int], cell: int) -> None:
        """Draws ``[rows, cols]`` values in ``[0, 1]`` with square cells of ``cell`` pixels."""
        pygame = self._pygame
        colours = heat_colours(values)
        picture = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
        surface.blit(pygame.surfarray.make_surface(np.transpose(picture, (1, 0, 2))), position)
        pygame.draw.rect(surface, (90, 90, 105), pygame.Rect(position[0] - 1, position[1] - 1,
                                                              picture.shape[1] + 2, picture.shape[0] + 2), width=1)

    def _attention(self, surface: Any, decision: Decision | None, x: int, y: int) -> int:
        layout = self.layout
        assert layout is not None
        block = f"block {layout.num_blocks} of {layout.num_blocks}" if layout.num_blocks > 1 else "one block"
        y = self._text(surface, f"memory attention ({block}): rows = slots", (x, y), self.small_font, DIM_TEXT)
        y = self._text(surface, "left: over slots (0..1)   right: each slot over input cells (own max)", (x, y),
                       self.small_font, DIM_TEXT) + 4
        attention = decision.attention if decision is not None else None
        slots = layout.mem_slots
        for head in range(layout.num_heads):
            self._text(surface, f"head {head}", (x, y), self.small_font, TEXT)
            left = x + 52
            weights = None if attention is None else attention[head]  # [slots, slots + R]
            memory = np.zeros((slots, slots)) if weights is None else weights[:, :slots]
            self._heat_map(surface, memory, (left, y + 2), self.matrix_cell)
            left += slots * self.matrix_cell + 10
            if layout.feature_grid is not None:
                grid_h, grid_w = self._map_grid()
                for slot in range(slots):
                    inputs = np.zeros(layout.input_rows) if weights is None else weights[slot, slots:]
                    peak = float(inputs.max())
                    self._heat_map(surface, self._input_map(inputs / peak if peak > 0 else inputs),
                                   (left, y + 2), self.map_cell)
                    share = "" if weights is None else f" {100 * inputs.sum():.0f}%"
                    self._text(surface, f"s{slot}{share}", (left, y + 4 + grid_h * self.map_cell),
                               self.small_font, DIM_TEXT)
                    left += grid_w * self.map_cell + 6
            else:
                inputs = np.zeros((slots, layout.input_rows)) if weights is None else weights[:, slots:]
                peak = float(inputs.max()) if inputs.size else 0.0
                self._heat_map(surface, inputs / peak if peak > 0 else inputs, (left, y + 2), self.map_cell)
            y += self.head_row_height
        return y + 4


def probability_labels(names: Sequence[str] | None, count: int) -> list[str]:
    """Labels of ``count`` choices: the env's action names where known, else the indices."""
    if names is not None and len(names) >= count:
        return [str(name) for name in names[:count]]
    return [str(index) for index in range(count)]
