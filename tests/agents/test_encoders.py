"""Observation encoders: chosen from the space, sized by a test forward pass."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.encoders import ImageEncoder, ObservationEncoder, feature_map_rows
from agents.spaces import UnsupportedSpaceError


def test_small_encoder_is_the_papers():
    encoder = ImageEncoder(gym.spaces.Box(0, 255, (14, 14, 3), np.uint8))
    assert encoder.kind == "small"
    convolutions = [m for m in encoder.convolutions if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convolutions] == [(12, (2, 2), (1, 1)), (24, (2, 2), (1, 1))]
    assert encoder.output_shape == (24, 12, 12)
    assert encoder(torch.zeros(5, 14, 14, 3, dtype=torch.uint8)).shape == (5, 24, 12, 12)


def test_auto_picks_the_deep_encoder_for_atari_frames():
    encoder = ImageEncoder(gym.spaces.Box(0, 255, (84, 84, 4), np.uint8))
    assert encoder.kind == "deep" and encoder.output_shape == (64, 7, 7)
    with pytest.raises(ValueError, match=r"\(10, 10, 3\) are too small for the 'deep' encoder"):
        ImageEncoder(gym.spaces.Box(0, 255, (10, 10, 3), np.uint8), "deep")
    with pytest.raises(ValueError, match="encoder must be 'auto', 'small' or 'deep', got 'huge'"):
        ImageEncoder(gym.spaces.Box(0, 255, (10, 10, 3), np.uint8), "huge")


def test_uint8_pixels_are_scaled_to_unit_interval():
    torch.manual_seed(0)
    as_bytes = ImageEncoder(gym.spaces.Box(0, 255, (6, 5, 3), np.uint8))
    as_floats = ImageEncoder(gym.spaces.Box(0.0, 1.0, (6, 5, 3), np.float32))
    as_floats.load_state_dict(as_bytes.state_dict())
    pixels = torch.randint(0, 256, (2, 6, 5, 3), dtype=torch.uint8)
    torch.testing.assert_close(as_bytes(pixels), as_floats(pixels.float() / 255.0))


def test_grayscale_uint8_matrix_is_an_image():
    encoder = ObservationEncoder(gym.spaces.Box(0, 255, (8, 9), np.uint8))
    assert encoder.feature_map_shapes == [(24, 6, 7)] and encoder.flat_size == 0


def test_feature_map_rows_carry_coordinates():
    feature_map = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    rows = feature_map_rows(feature_map)
    assert rows.shape == (1, 12, 4)
    torch.testing.assert_close(rows[0, :, :2], feature_map[0].flatten(1).T)
    # row index = y * W + x; x then y coordinate, both spanning [-1, 1]
    torch.testing.assert_close(rows[0, 0, 2:], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(rows[0, 3, 2:], torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(rows[0, 11, 2:], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(rows[0, 4, 2:], torch.tensor([-1.0, 0.0]))


def test_dict_and_tuple_get_one_encoder_per_leaf():
    space = gym.spaces.Dict({
        "frame": gym.spaces.Box(0, 255, (5, 5, 3), np.uint8),
        "extra": gym.spaces.Tuple((gym.spaces.Discrete(4, start=1), gym.spaces.MultiDiscrete([2, 3]))),
        "bits": gym.spaces.MultiBinary(3),
    })
    encoder = ObservationEncoder(space, hidden_size=16, embedding_size=8)
    assert encoder.feature_map_shapes == [(24, 3, 3)]
    assert encoder.flat_size == 8 + 16 + 16
    batch = {
        "frame": torch.zeros(7, 5, 5, 3, dtype=torch.uint8),
        "extra": (torch.full((7,), 4), torch.tensor([[1, 2]] * 7)),
        "bits": torch.ones(7, 3, dtype=torch.int8),
    }
    encoded = encoder(batch)
    assert [m.shape for m in encoded.feature_maps] == [(7, 24, 3, 3)] and encoded.flat.shape == (7, 40)


def test_text_leaves_are_left_out_and_need_no_encoder():
    numeric = {"frame": gym.spaces.Box(0, 255, (5, 5, 3), np.uint8), "held": gym.spaces.Discrete(3)}
    space = gym.spaces.Dict({**numeric, "mission": gym.spaces.Text(8)})
    torch.manual_seed(0)
    encoder = ObservationEncoder(space, hidden_size=16, embedding_size=8)
    torch.manual_seed(0)
    reference = ObservationEncoder(gym.spaces.Dict(numeric), hidden_size=16, embedding_size=8)
    assert encoder.left_out_paths == [("mission",)] and reference.left_out_paths == []
    assert encoder.image_paths == [("frame",)] and encoder.flat_paths == [("held",)]
    assert encoder.feature_map_shapes == reference.feature_map_shapes and encoder.flat_size == reference.flat_size == 8
    batch = {"frame": torch.randint(0, 256, (3, 5, 5, 3), dtype=torch.uint8), "held": torch.tensor([0, 1, 2])}
    encoded, expected = encoder(batch), reference(batch)
    torch.testing.assert_close(encoded.feature_maps[0], expected.feature_maps[0])
    torch.testing.assert_close(encoded.flat, expected.flat)


def test_discrete_embedding_respects_start():
    encoder = ObservationEncoder(gym.spaces.Discrete(3, start=10), embedding_size=4)
    out = encoder(torch.tensor([10, 12])).flat
    torch.testing.assert_close(out, encoder.flat_encoders[0].embedding.weight[[0, 2]])


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (gym.spaces.Text(8), "unsupported observation space Text"),
        (gym.spaces.Dict({"bad": gym.spaces.Sequence(gym.spaces.Discrete(2))}),
         r"unsupported observation space Dict.* \('bad' \(Sequence\)\)"),
        (gym.spaces.Graph(gym.spaces.Discrete(2), None), "unsupported observation space Graph"),
    ],
)
def test_unsupported_observation_spaces_are_named(space, message):
    with pytest.raises(UnsupportedSpaceError, match=message):
        ObservationEncoder(space)


@pytest.mark.parametrize("kind, shape", [("small", (9, 9, 3)), ("deep", (84, 84, 1))])
def test_receptive_fields_match_the_gradient_footprint(kind, shape):
    encoder = ImageEncoder(gym.spaces.Box(0.0, 1.0, shape, np.float32), kind)
    for layer in encoder.convolutions:  # all units active: the gradient is > 0 exactly where a cell looks
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.constant_(layer.weight, 0.01)
            torch.nn.init.constant_(layer.bias, 0.1)
    fields = encoder.receptive_fields()
    _, height, width = encoder.output_shape
    for row, column in [(0, 0), (height - 1, width // 2)]:
        image = torch.ones(1, *shape, requires_grad=True)
        encoder(image)[0, :, row, column].sum().backward()
        footprint = image.grad[0].abs().sum(-1).nonzero()
        top = fields.start[0] + row * fields.stride[0]
        left = fields.start[1] + column * fields.stride[1]
        assert footprint.min(0).values.tolist() == [top, left]
        assert footprint.max(0).values.tolist() == [top + fields.size[0] - 1, left + fields.size[1] - 1]
    expected = ((0, 0), (1, 1), (3, 3)) if kind == "small" else ((0, 0), (8, 8), (36, 36))
    assert tuple(fields) == expected


def test_symbols_tell_neighbouring_indices_apart_where_pixels_barely_do():
    # MiniGrid-like cells: (object, colour, state) indices; a key (5) and a ball (6) in one cell.
    space = gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)
    key = np.ones((1, 7, 7, 3), np.uint8)
    key[0, 2, 6] = (5, 1, 0)
    ball = key.copy()
    ball[0, 2, 6, 0] = 6
    torch.manual_seed(0)
    symbols = ImageEncoder(space, "small", symbols=True)
    torch.manual_seed(0)
    pixels = ImageEncoder(space, "small")
    assert symbols.output_shape == pixels.output_shape
    with torch.no_grad():
        def relative_change(encoder):
            a, b = encoder(torch.from_numpy(key)), encoder(torch.from_numpy(ball))
            return float((a - b).norm() / a.norm())
        assert relative_change(symbols) > 50 * relative_change(pixels)
        # every channel has its own table: the same value in another channel is another symbol
        out = symbols(torch.from_numpy(key))
        moved = key.copy()
        moved[0, 2, 6] = (1, 5, 0)
        assert not torch.allclose(out, symbols(torch.from_numpy(moved)))


def test_symbols_need_uint8_images_and_exclude_normalisation():
    with pytest.raises(ValueError, match="symbols needs a uint8 image"):
        ImageEncoder(gym.spaces.Box(0.0, 1.0, (7, 7, 3), np.float32), symbols=True)
    with pytest.raises(ValueError, match="not both"):
        ImageEncoder(gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), normalize=True, symbols=True)


def test_symbols_give_gradients_to_the_embeddings_of_the_values_seen():
    space = gym.spaces.Box(0, 255, (5, 5), np.uint8)  # one channel
    encoder = ImageEncoder(space, "small", symbols=True)
    image = torch.full((2, 5, 5), 3, dtype=torch.uint8)
    encoder(image).sum().backward()
    touched = encoder.symbols.weight.grad.abs().sum(dim=1).nonzero().flatten().tolist()
    assert touched == [3]
