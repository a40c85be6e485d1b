"""launch.watch: recordings, the window with scripted keys, the attention panel, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.encoders import ReceptiveFields
from launch.impala.checkpoint import save_checkpoint
from launch.impala.config import TrainConfig
from launch.impala.env_factory import make_single_env
from launch.impala.policy_factory import build_policy
from launch.impala.trained import trained_policy
from launch.viewer.session import (
    MAX_FPS,
    Playback,
    PolicyDriver,
    WatchOptions,
    attention_layout,
    env_action_names,
    overlay_choices,
    watch,
)
from launch.viewer.view import cells_from_feature_map
from launch.watch import cli


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """No display or sound card; restored after each test (the CLI only sets defaults)."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    monkeypatch.setenv("PYGAME_HIDE_SUPPORT_PROMPT", "1")

BOXWORLD = TrainConfig(env="rmc/BoxWorldEasy-v0", core="rmc", hidden_size=16, env_kwargs={"max_steps": 8},
                       core_kwargs={"mem_slots": 2, "head_size": 8, "num_heads": 2})


def tiny_checkpoint(directory: Path, config: TrainConfig = BOXWORLD) -> tuple[Path, dict[str, torch.Tensor]]:
    """A checkpoint of an untrained policy, written as launch.train writes one."""
    env = make_single_env(config.env, config.env_kwargs)
    torch.manual_seed(0)
    policy = build_policy(config, env.observation_space, env.action_space)
    env.close()
    path = save_checkpoint(directory, 100, {"model": policy.state_dict(), "config": json.dumps(config.to_json()),
                                            "counters": {}}, keep=1)
    return path, policy.state_dict()


def frames_in(path: Path) -> np.ndarray:
    import imageio.v3 as imageio

    return imageio.imread(path, index=None)


def test_recording_a_gif_writes_one_frame_per_decision_and_one_per_ending(tmp_path: Path, capsys) -> None:
    checkpoint, _ = tiny_checkpoint(tmp_path / "run")
    output = tmp_path / "videos" / "box.gif"
    assert cli(["--checkpoint", str(checkpoint), "--record", str(output), "--episodes", "2", "--seed", "4",
                "--max-steps", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    lengths = [int(line.split("length ")[1].split()[0]) for line in lines if line.startswith("episode ")]
    assert len(lengths) == 2 and all(1 <= length <= 5 for length in lengths)
    frames = frames_in(output)
    assert frames.shape[0] == sum(length + 1 for length in lengths)
    assert f"wrote {frames.shape[0]} frames" in lines[-1]
    assert frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0 and frames.shape[1] >= 400


def test_recording_an_mp4(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    _, model_state = tiny_checkpoint(tmp_path / "run")
    output = tmp_path / "box.mp4"
    episodes, frame_count = watch(BOXWORLD, model_state, WatchOptions(record=str(output), seed=1, max_steps=4,
                                                                    deterministic=True))
    assert len(episodes) == 1 and frame_count == episodes[0].length + 1
    with imageio.get_reader(output, format="FFMPEG") as reader:
        assert sum(1 for _ in reader) == frame_count


def test_mp4_without_imageio_ffmpeg_names_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    checkpoint, _ = tiny_checkpoint(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    assert cli(["--checkpoint", str(checkpoint), "--record", str(tmp_path / "out.mp4")]) == 2
    assert "relational-rl[video]" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("case", ["missing", "not_a_checkpoint", "other_env", "unwritable", "bad_suffix",
                                  "bad_episodes"])
def test_bad_input_gets_a_clear_message_and_exit_code_2(case: str, tmp_path: Path, capsys) -> None:
    checkpoint, _ = tiny_checkpoint(tmp_path / "run")
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("these are notes, not weights")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    argv, message = {
        "missing": (["--checkpoint", str(tmp_path / "nothing.pt")], "does not exist"),
        "not_a_checkpoint": (["--checkpoint", str(not_a_checkpoint)], "unreadable or incomplete"),
        "other_env": (["--checkpoint", str(checkpoint), "--env", "rmc/MiniPacman-v0", "--env-kwargs", "{}"],
                      "trained on another env"),
        "unwritable": (["--checkpoint", str(checkpoint), "--record", str(blocker / "out.gif")], "cannot write"),
        "bad_suffix": (["--checkpoint", str(checkpoint), "--record", str(tmp_path / "out.avi")], "end in .gif or .mp4"),
        "bad_episodes": (["--checkpoint", str(checkpoint), "--record", str(tmp_path / "o.gif"), "--episodes", "0"],
                         "--episodes must be >= 1"),
    }[case]
    assert cli(argv + ["--max-steps", "2"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error


@pytest.mark.timeout(120)
def test_window_mode_follows_scripted_keys(tmp_path: Path, monkeypatch, capsys) -> None:
    import pygame

    config = TrainConfig.from_json({**BOXWORLD.to_json(), "env_kwargs": {"max_steps": 100}})
    _, model_state = tiny_checkpoint(tmp_path / "run", config)
    seen: list[int] = []  # the frame index at each poll of the keys
    window_sizes: set[tuple[int, int]] = set()
    marks: dict[str, int] = {}

    def press(*keys: int) -> None:
        for key in keys:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))

    def on_frame(frame: int) -> None:
        call = len(seen)
        seen.append(frame)
        window_sizes.add(pygame.display.get_surface().get_size())
        if call == 0:
            press(pygame.K_o, pygame.K_PLUS, pygame.K_PLUS, pygame.K_PLUS, pygame.K_PLUS)  # fps 8 -> 40
        elif call == 1:
            marks["paused_at"] = frame
            press(pygame.K_SPACE)
        elif call == 6:
            press(pygame.K_n)  # one step while paused
        elif call == 11:
            marks["stepped_to"] = frame
            press(pygame.K_SPACE)  # resume
        elif "restarted" not in marks and frame >= marks.get("stepped_to", 10**9) + 3:
            marks["restarted"] = frame
            press(pygame.K_r)
        elif "restarted" in marks and frame >= marks["restarted"] + 3:
            press(pygame.K_q)
        assert call < 2000, "the window never quit"

    episodes, frames = watch(config, model_state, WatchOptions(seed=2, max_steps=50), on_frame=on_frame)
    assert seen[2:6] == [marks["paused_at"]] * 4  # paused: the same frame is redrawn
    assert marks["stepped_to"] == marks["paused_at"] + 1 and seen[7:11] == [marks["stepped_to"]] * 4
    assert "restarted" in capsys.readouterr().out
    assert frames == max(seen) + 1 and len(window_sizes) == 1
    assert not pygame.display.get_init()  # the window was closed


def test_the_panel_shows_the_models_attention(tmp_path: Path) -> None:
    env = make_single_env(BOXWORLD.env, BOXWORLD.env_kwargs, render_mode="rgb_array")
    _, model_state = tiny_checkpoint(tmp_path / "run")
    policy = trained_policy(BOXWORLD, model_state, env.observation_space, env.action_space)
    driver = PolicyDriver(policy, env.action_space, env_action_names(env), deterministic=True)
    observations, actions, rewards, decisions = [], [], [], []
    observation, _ = env.reset(seed=3)
    for _ in range(3):
        action, decision = driver.decide(observation)
        observations.append(observation)
        decisions.append(decision)
        actions.append(int(action))
        observation, reward, _, _, _ = env.step(action)
        rewards.append(float(reward))
        driver.observe(reward)
    obs = torch.as_tensor(np.stack(observations))[:, None]  # [T, 1, H, W, C]
    previous_action = torch.tensor([0, *actions[:-1]])[:, None]
    previous_reward = torch.tensor([0.0, *rewards[:-1]])[:, None]
    reset = torch.tensor([True, False, False])[:, None]
    with torch.no_grad():
        expected, _ = policy.unroll(obs, previous_action, previous_reward, reset, policy.initial_state(1),
                                    return_attention=True)
    slots = policy.core.mem_slots
    for step, decision in enumerate(decisions):
        attention = expected.attention[step, 0, -1, :, :slots, :].numpy()  # last block, memory-slot rows
        np.testing.assert_allclose(decision.attention, attention, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(decision.attention.sum(-1), 1.0, rtol=1e-5)
        probabilities = [p for _, p in decision.probabilities]
        np.testing.assert_allclose(probabilities, expected.policy_params[step, 0].softmax(-1).numpy(), rtol=1e-5)
        assert decision.action_label.split()[0] == ("north", "south", "west", "east")[actions[step]]
        assert decision.value == pytest.approx(float(expected.value[step, 0]), rel=1e-5)
    frame = env.render()
    layout = attention_layout(policy, observation, frame)
    assert layout.feature_grid == (7, 7) and layout.board_cells == (9, 9) and layout.input_rows == 49
    env.close()


def test_viewport_observations_are_not_drawn_over_the_board(tmp_path: Path) -> None:
    config = TrainConfig(env="rmc/BoxWorldViewport-v0", core="rmc", hidden_size=16,
                         core_kwargs={"mem_slots": 2, "head_size": 8, "num_heads": 1})
    env = make_single_env(config.env, render_mode="rgb_array")
    policy = build_policy(config, env.observation_space, env.action_space)
    observation, _ = env.reset(seed=0)
    layout = attention_layout(policy, observation, env.render())
    assert layout.feature_grid is not None and layout.board_cells is None
    env.close()


def test_feature_cells_land_on_the_centre_of_what_they_see() -> None:
    weights = np.arange(1, 5, dtype=float).reshape(2, 2)
    small = cells_from_feature_map(weights, ReceptiveFields((0, 0), (1, 1), (3, 3)), (4, 4))
    expected = np.zeros((4, 4))
    expected[1:3, 1:3] = weights
    np.testing.assert_array_equal(small, expected)
    strided = cells_from_feature_map(np.array([[1.0, 2.0]]), ReceptiveFields((0, 0), (2, 2), (4, 4)), (4, 6))
    np.testing.assert_array_equal(strided[1:3, 1:5], [[1, 1, 2, 2], [1, 1, 2, 2]])
    assert strided.sum() == 12


def test_lstm_policy_on_a_gymnasium_env_records_without_attention(tmp_path: Path) -> None:
    config = TrainConfig(env="CartPole-v1", core="lstm", hidden_size=8, core_kwargs={"hidden_size": 8})
    _, model_state = tiny_checkpoint(tmp_path / "run", config)
    output = tmp_path / "cartpole.gif"
    episodes, frames = watch(config, model_state, WatchOptions(record=str(output), episodes=1, max_steps=6))
    assert frames == episodes[0].length + 1 == frames_in(output).shape[0]


def test_keys_change_the_playback_within_bounds(tmp_path: Path) -> None:
    config = TrainConfig.from_json({**BOXWORLD.to_json(), "core_kwargs": {"mem_slots": 3, "head_size": 4,
                                                                           "num_heads": 2}})
    env = make_single_env(config.env, config.env_kwargs, render_mode="rgb_array")
    policy = build_policy(config, env.observation_space, env.action_space)
    observation, _ = env.reset(seed=0)
    overlays = overlay_choices(attention_layout(policy, observation, env.render()))
    env.close()
    assert overlays[0] == (None, None) and overlays[-1] is None and len(overlays) == 2 + 3 * 2
    playback = Playback(fps=8.0)
    for _ in range(20):
        playback.apply("faster", len(overlays))
    assert playback.fps == MAX_FPS
    for _ in range(len(overlays) + 1):
        playback.apply("overlay", len(overlays))
    assert playback.overlay_index == 1  # wrapped around
    playback.apply("step", len(overlays))
    assert playback.paused and playback.step_requested


def test_window_mode_without_a_display_says_to_record(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-video-driver")
    checkpoint, _ = tiny_checkpoint(tmp_path / "run")
    assert cli(["--checkpoint", str(checkpoint), "--episodes", "1"]) == 2
    assert "--record" in capsys.readouterr().err


def test_best_watches_the_runs_best_policy(tmp_path: Path, capsys) -> None:
    from launch.impala.checkpoint import load_checkpoint, save_best_checkpoint

    run = tmp_path / "run"
    checkpoint, _ = tiny_checkpoint(run / "checkpoints")
    output = tmp_path / "best.gif"
    assert cli(["--checkpoint", str(run), "--best", "--record", str(output), "--episodes", "1", "--max-steps", "3"]) == 2
    assert "has no checkpoints/best.pt" in capsys.readouterr().err
    save_best_checkpoint(run / "checkpoints", load_checkpoint(checkpoint))
    assert cli(["--checkpoint", str(run), "--best", "--record", str(output), "--episodes", "1", "--max-steps", "3"]) == 0
    assert 2 <= frames_in(output).shape[0] <= 4
