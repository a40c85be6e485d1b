import numpy as np
import pytest

from envs.rendering import upscale


def test_upscale_makes_crisp_cells_of_the_requested_size():
    frame = np.zeros((2, 3, 3), dtype=np.uint8)
    frame[0, 1] = (200, 100, 50)
    big = upscale(frame, 8)
    assert big.shape == (16, 24, 3) and big.dtype == np.uint8
    # the cell interior is the cell colour, the last row/column a darker grid line
    assert np.all(big[0:7, 8:15] == (200, 100, 50))
    assert np.all(big[7, 8:15] == (140, 70, 35))
    assert np.all(big[8:16, 0:8] == 0)


def test_upscale_without_grid_lines_is_a_plain_repeat():
    frame = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert np.array_equal(upscale(frame, 3, grid_lines=False), frame.repeat(3, 0).repeat(3, 1))


@pytest.mark.parametrize("bad", [0, -2])
def test_upscale_rejects_bad_cell_size(bad):
    with pytest.raises(ValueError, match=f"cell_pixels must be >= 1, got {bad}"):
        upscale(np.zeros((1, 1, 3), dtype=np.uint8), bad)
