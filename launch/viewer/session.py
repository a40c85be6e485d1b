"""Playing a trained policy in a window or into a GIF / MP4 file, with the panel of
``launch.viewer.view`` beside the env's frame (the machinery behind ``launch.watch`` and
the rollouts ``launch.viewer.recorder`` records during training).

The policy plays one game, carrying its recurrent state through each episode (reset at
the episode's first step, as in training). Keys in the window: space pause / resume, n
(or right arrow) one step while paused, + / - (or up / down) faster / slower, r restart
the episode, o cycle what the board overlay shows (all slots and heads, each slot and
head, none), q or Esc quit.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from agents.distributions import CategoricalDistribution, MultiCategoricalDistribution
from agents.spaces import encodable_observation, get_leaf, map_leaves
from launch.cli import REQUIRED
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import EnvConfigError, make_single_env
from launch.impala.trained import trained_policy
from launch.viewer.video import VideoWriter
from launch.viewer.view import (
    AttentionLayout,
    Decision,
    ViewState,
    WatchView,
    probability_labels,
    view_to_array,
)

MIN_FPS, MAX_FPS = 0.5, 60.0
END_OF_EPISODE_HOLD_S = 1.0


@dataclass
class WatchOptions:
    """What to watch and how."""

    checkpoint: str = field(default="", metadata=REQUIRED)
    """A checkpoint file, or a run directory (its latest checkpoint)."""
    best: bool = False
    """With a run directory: watch its best policy (checkpoints/best.pt) instead of its latest."""
    record: str | None = None
    """Write the view to this .gif or .mp4 file instead of opening a window."""
    episodes: int | None = None
    """Episodes to play (default: 1 when recording, until quit in a window)."""
    seed: int = 0
    """Seed of the first reset and of the sampled actions."""
    deterministic: bool = False
    """Take the most likely action instead of sampling."""
    fps: float = 8.0
    """Frames per second of the window (changed with +/-) and of the recording."""
    max_steps: int | None = None
    """Cut an episode after this many steps (default: the env's own limit)."""
    env: str | None = None
    """Play this env id instead of the checkpoint's (its spaces must match)."""
    env_kwargs: dict[str, Any] | None = None
    """Env kwargs as a JSON object, instead of the checkpoint's."""
    env_package: list[str] = field(default_factory=list)
    """Extra modules to import that register envs."""
    threads: int = 1
    """Torch CPU threads."""

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid value."""
        if self.episodes is not None and self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be >= 1, got {self.max_steps}")
        if not (math.isfinite(self.fps) and MIN_FPS <= self.fps <= MAX_FPS):
            raise ConfigError(f"--fps must be in [{MIN_FPS}, {MAX_FPS}], got {self.fps}")
        if self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")


class EpisodeResult(NamedTuple):
    """One played episode: its return, its length and how it ended
    ("terminated", "truncated", "cut" by ``max_steps``, or "restarted" by the user)."""

    episode_return: float
    length: int
    ending: str


class PolicyDriver:
    """Plays the policy in one game, carrying its recurrent state, previous action and reward.

    Args:
        policy: the trained policy.
        action_space: the env's (single) action space.
        action_names: the env's action names, or None.
        deterministic: take the most likely action.
    """

    def __init__(self, policy: Any, action_space: gym.Space, action_names: tuple[str, ...] | None,
                 deterministic: bool) -> None:
        self.policy = policy
        self.action_space = action_space
        self.action_names = action_names
        self.deterministic = deterministic
        self.with_attention = policy.core_kind == "rmc"
        self.labels = choice_labels(action_space, action_names)
        self.start_episode()

    def start_episode(self) -> None:
        """Resets the recurrent state: the next observation starts an episode."""
        policy = self.policy
        self.state = policy.initial_state(1)
        self.reset = torch.ones(1, dtype=torch.bool)
        self.previous_action = torch.zeros((1, *policy.action_shape), dtype=policy.action_dtype)
        self.previous_reward = torch.zeros(1)
        self._action: torch.Tensor | None = None

    def decide(self, observation: Any) -> tuple[Any, Decision]:
        """The env action for ``observation`` and what the panel shows about it."""
        batched = map_leaves(lambda leaf: np.asarray(leaf)[None], observation)  # [1, ...] per leaf
        output, self.state = self.policy.act(batched, self.previous_action, self.previous_reward, self.reset,
                                             self.state, deterministic=self.deterministic,
                                             return_attention=self.with_attention)
        self._action = output.action
        env_action = self.policy.to_env_action(output.action)[0]
        probabilities, chosen = self._probabilities(output.policy_params, output.action)
        attention = None
        if output.attention is not None:
            slots = self.policy.core.mem_slots
            attention = output.attention[0, -1, :, :slots, :].numpy()  # last block: [heads, slots, slots + R]
        label = self._action_label(env_action)
        decision = Decision(float(output.value[0]), f"{label} ({'greedy' if self.deterministic else 'sampled'})",
                            probabilities, chosen, attention)
        return env_action, decision

    def observe(self, reward: float) -> None:
        """Records the reward of the action just taken (the next step's previous reward)."""
        assert self._action is not None, "decide() first"
        self.previous_action = self._action
        self.previous_reward = torch.tensor([float(reward)])
        self.reset = torch.zeros(1, dtype=torch.bool)

    def _probabilities(self, params: torch.Tensor,
                       action: torch.Tensor) -> tuple[list[tuple[str, float]] | None, tuple[int, ...]]:
        distribution = self.policy.distribution(params)
        if isinstance(distribution, CategoricalDistribution):
            values = distribution.log_probs.exp()[0].tolist()
            return list(zip(self.labels, values)), (int(action.reshape(-1)[0]),)
        if isinstance(distribution, MultiCategoricalDistribution):
            values, chosen, offset = [], [], 0
            for index, component in enumerate(distribution.components):
                part = component.log_probs.exp()[0].tolist()
                chosen.append(offset + int(action.reshape(-1)[index]))
                values.extend(part)
                offset += len(part)
            return list(zip(self.labels, values)), tuple(chosen)
        return None, ()

    def _action_label(self, env_action: Any) -> str:
        if isinstance(self.action_space, gym.spaces.Discrete):
            index = int(env_action) - int(self.action_space.start)
            if self.action_names is not None and 0 <= index < len(self.action_names):
                return str(self.action_names[index])
            return str(int(env_action))
        return np.array2string(np.asarray(env_action), precision=2, separator=", ")


def choice_labels(action_space: gym.Space, action_names: tuple[str, ...] | None) -> list[str]:
    """One label per probability bar: Discrete choices, or ``component:value`` for MultiDiscrete."""
    if isinstance(action_space, gym.spaces.Discrete):
        return probability_labels(action_names, int(action_space.n))
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return [f"{component}:{value}" for component, count in enumerate(np.asarray(action_space.nvec).reshape(-1))
                for value in range(int(count))]
    return []


def env_action_names(env: gym.Env) -> tuple[str, ...] | None:
    """``ACTION_NAMES`` of the env's module, or None (e.g. Gymnasium's own envs)."""
    names = getattr(sys.modules.get(type(env.unwrapped).__module__), "ACTION_NAMES", None)
    return tuple(str(name) for name in names) if names is not None else None


def attention_layout(policy: Any, observation: Any, frame: np.ndarray) -> AttentionLayout | None:
    """How the RMC's attention maps onto slots, input cells and the board (None: no RMC)."""
    if policy.core_kind != "rmc":
        return None
    core = policy.core
    layout = AttentionLayout(core.mem_slots, core.num_heads, core.num_blocks, core.num_input_rows)
    encoder = policy.encoder
    if len(encoder.image_encoders) != 1:
        return layout  # no image, or several images: the input rows are shown as a strip
    image_encoder = encoder.image_encoders[0]
    _, grid_h, grid_w = image_encoder.output_shape
    layout.feature_grid = (grid_h, grid_w)
    layout.receptive_fields = image_encoder.receptive_fields()
    kept_observation = encodable_observation(observation, policy.observation_space)  # the encoder's paths
    image = np.asarray(get_leaf(kept_observation, encoder.image_paths[0]))
    if image.ndim == 3 and image.shape[2] == 3 and frame.shape[0] % image.shape[0] == 0 \
            and frame.shape[1] % image.shape[1] == 0:
        step_y, step_x = frame.shape[0] // image.shape[0], frame.shape[1] // image.shape[1]
        if step_y == step_x and np.array_equal(frame[::step_y, ::step_x], image):
            layout.board_cells = image.shape[:2]  # the observation is the board, one pixel per cell
    return layout


def overlay_choices(layout: AttentionLayout | None) -> list[tuple[int | None, int | None] | None]:
    """What the o key cycles through: all slots and heads, each (slot, head), nothing."""
    if layout is None or layout.board_cells is None:
        return [None]
    pairs = [(slot, head) for slot in range(layout.mem_slots) for head in range(layout.num_heads)]
    return [(None, None), *pairs, None]


class WatchWindow:
    """The pygame window of the watch view and its keys.

    Args:
        size: ``(width, height)`` of the view.
        title: the window caption.

    Raises:
        ConfigError: no window can be opened (no display).
    """

    def __init__(self, size: tuple[int, int], title: str) -> None:
        import pygame

        self._pygame = pygame
        try:
            pygame.display.init()
            pygame.display.set_caption(title)
            self._screen = pygame.display.set_mode(size)
        except pygame.error as error:
            pygame.display.quit()
            raise ConfigError(f"cannot open a window ({error}); without a display, record to a file with "
                              "--record out.gif") from None
        self._keys = {
            pygame.K_SPACE: "pause", pygame.K_n: "step", pygame.K_RIGHT: "step",
            pygame.K_PLUS: "faster", pygame.K_EQUALS: "faster", pygame.K_KP_PLUS: "faster", pygame.K_UP: "faster",
            pygame.K_MINUS: "slower", pygame.K_KP_MINUS: "slower", pygame.K_DOWN: "slower",
            pygame.K_r: "restart", pygame.K_o: "overlay", pygame.K_q: "quit", pygame.K_ESCAPE: "quit",
        }

    def show(self, surface: Any) -> None:
        self._screen.blit(surface, (0, 0))
        self._pygame.display.flip()

    def commands(self) -> list[str]:
        """Commands from the keys pressed since the last call (closing the window is "quit")."""
        found = []
        for event in self._pygame.event.get():
            if event.type == self._pygame.QUIT:
                found.append("quit")
            elif event.type == self._pygame.KEYDOWN and event.key in self._keys:
                found.append(self._keys[event.key])
        return found

    def close(self) -> None:
        self._pygame.display.quit()


@dataclass
class Playback:
    """The window's playback state, changed by key commands."""

    fps: float
    paused: bool = False
    step_requested: bool = False
    restart: bool = False
    quit: bool = False
    overlay_index: int = 0

    def apply(self, command: str, overlay_count: int) -> None:
        """Applies one command from ``WatchWindow.commands``."""
        if command == "pause":
            self.paused = not self.paused
        elif command == "step":
            self.paused, self.step_requested = True, True
        elif command == "faster":
            self.fps = min(MAX_FPS, self.fps * 1.5)
        elif command == "slower":
            self.fps = max(MIN_FPS, self.fps / 1.5)
        elif command == "restart":
            self.restart = True
        elif command == "overlay":
            self.overlay_index = (self.overlay_index + 1) % overlay_count
        elif command == "quit":
            self.quit = True


class _Presenter:
    """Sends each view to the video file, or to the window with pacing and keys."""

    def __init__(self, view: WatchView, writer: VideoWriter | None, window: WatchWindow | None, playback: Playback,
                 overlays: list[tuple[int | None, int | None] | None],
                 on_frame: Callable[[int], None] | None) -> None:
        self.view, self.writer, self.window, self.playback = view, writer, window, playback
        self.overlays = overlays
        self.on_frame = on_frame
        self.frames = 0

    def present(self, state: ViewState, hold_s: float = 0.0) -> None:
        """Shows ``state``; in the window waits ``1 / fps`` (and ``hold_s``) or while paused."""
        playback = self.playback
        if self.writer is not None:
            state.overlay = self.overlays[0]
            self.writer.write(view_to_array(self.view.draw(state)))
            self.frames += 1
            return
        assert self.window is not None
        status = state.status
        due = time.monotonic() + 1.0 / playback.fps + hold_s
        index = self.frames
        self.frames += 1
        while True:
            if self.on_frame is not None:
                self.on_frame(index)
            for command in self.window.commands():
                playback.apply(command, len(self.overlays))
            if playback.quit or playback.restart:
                break
            state.overlay = self.overlays[playback.overlay_index]
            state.status = f"{status}   " + ("paused" if playback.paused else f"{playback.fps:.3g} fps")
            self.window.show(self.view.draw(state))
            if playback.step_requested:
                playback.step_requested = False
                break
            if not playback.paused and time.monotonic() >= due:
                break
            time.sleep(0.02 if playback.paused else max(0.0, min(0.02, due - time.monotonic())))


def watch(config: TrainConfig, model_state: dict[str, torch.Tensor], options: WatchOptions,
          on_frame: Callable[[int], None] | None = None) -> tuple[list[EpisodeResult], int]:
    """Plays episodes with the policy of ``model_state``, shown in a window or recorded.

    Args:
        config: the run's config (env and agent).
        model_state: the policy's weights.
        options: what to play and how.
        on_frame: window mode only: called with the index of the frame being shown each
            time before the window reads its keys (tests post scripted key presses here).

    Returns:
        ``(episodes, frames)``: the played episodes and the number of frames shown or written.

    Raises:
        ConfigError, EnvConfigError, CheckpointError, VideoError: bad input.
    """
    options.validate()
    writer = VideoWriter(options.record, options.fps) if options.record else None
    env = None
    window = None
    try:
        env = make_single_env(config.env, config.env_kwargs, config.wrappers, config.env_package,
                              render_mode="rgb_array")
        policy = trained_policy(config, model_state, env.observation_space, env.action_space)
        torch.manual_seed(options.seed)
        observation, _ = env.reset(seed=options.seed)
        frame = env.render()
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3
                and frame.dtype == np.uint8):
            described = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise EnvConfigError(f"{config.env!r} rendered {described} in rgb_array mode; "
                                 "watching needs uint8 [H, W, 3] frames")
        driver = PolicyDriver(policy, env.action_space, env_action_names(env), options.deterministic)
        layout = attention_layout(policy, observation, frame)
        view = WatchView(config.env, frame.shape[:2], len(driver.labels), layout, show_keys=writer is None)
        if writer is None:
            window = WatchWindow(view.size, f"watch {config.env}")
        playback = Playback(fps=options.fps)
        presenter = _Presenter(view, writer, window, playback, overlay_choices(layout), on_frame)
        episodes = options.episodes if options.episodes is not None else (1 if writer is not None else None)
        results: list[EpisodeResult] = []
        number = 0
        while not playback.quit and (episodes is None or len(results) < episodes):
            number += 1
            if number > 1:
                observation, _ = env.reset()
            driver.start_episode()
            playback.restart = False
            episode_return, length, ending = 0.0, 0, ""
            while True:
                env_action, decision = driver.decide(observation)
                presenter.present(ViewState(env.render(), number, length, episode_return, decision))
                if playback.quit or playback.restart:
                    ending = "restarted"
                    break
                observation, reward, terminated, truncated, _ = env.step(env_action)
                driver.observe(float(reward))
                episode_return += float(reward)
                length += 1
                if terminated or truncated or (options.max_steps is not None and length >= options.max_steps):
                    ending = "terminated" if terminated else ("truncated" if truncated else "cut")
                    break
            if ending == "restarted":
                if not playback.quit:
                    print(f"episode {number}: restarted after {length} steps, return {episode_return:g}")
                continue
            results.append(EpisodeResult(episode_return, length, ending))
            print(f"episode {number}: return {episode_return:g}, length {length} ({ending})")
            presenter.present(ViewState(env.render(), number, length, episode_return, None,
                                        f"episode over ({ending})"), hold_s=END_OF_EPISODE_HOLD_S)
        frames = presenter.frames
    finally:
        if env is not None:
            env.close()
        if window is not None:
            window.close()
        if writer is not None:
            path = writer.close()
            if writer.frame_count:
                print(f"wrote {writer.frame_count} frames to {path.resolve()}")
    return results, frames


def record_rollout(config_json: str, model_state: dict[str, torch.Tensor], path: str, max_steps: int,
                   seed: int, fps: float = 8.0) -> None:
    """Records one episode (cut at ``max_steps``) to ``path``; run in a low-priority child
    process by ``launch.train`` (``record_interval_s``) so the learner is not held up."""
    try:
        os.nice(10)
    except OSError:
        pass
    torch.set_num_threads(1)
    config = TrainConfig.from_saved_json(json.loads(config_json))
    options = WatchOptions(record=path, episodes=1, seed=seed, deterministic=False, fps=fps, max_steps=max_steps)
    watch(config, model_state, options)
