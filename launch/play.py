"""Play a game by keyboard, or watch / record a random agent.

    python -m launch.play rmc/MiniPacman-v0                      # arrows move, space = stay
    python -m launch.play rmc/BoxWorld-v0 --seed 3
    python -m launch.play rmc/MiniPacman-v0 --agent random --steps 300 --record runs/pacman.gif
    python -m launch.play rmc/MiniPacman-v0 --env-kwargs '{"mode": "hunt", "frame_cap": 500}'

Keyboard: arrow keys move, space is the game's stay / no-op action where it has one,
``r`` restarts the episode, ``q`` or Esc quits. Each key press is one step.

Without ``--record`` the game is shown in its own ``human`` window (board and panel).
With ``--record PATH.gif`` the frames come from ``rgb_array`` rendering: a random agent
then runs headless (no display needed), a keyboard session is shown in a plain window.

Keys are mapped through the game's ``ACTION_NAMES`` (a tuple in the env's module, e.g.
``("stay", "right", "up", "left", "down")`` or ``("north", "south", "west", "east")``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the rmc/ ids)
from envs.rendering import HumanWindow
from launch.cli import POSITIONAL, BadInput, first_paragraph, parse_options, run_command
from launch.impala.env_factory import make_single_env

KEY_MEANINGS: dict[str, tuple[str, ...]] = {
    "up": ("up", "north"),
    "down": ("down", "south"),
    "left": ("left", "west"),
    "right": ("right", "east"),
    "stay": ("stay", "no-op", "noop", "none"),
}
"""Action names that a key stands for, across the games' naming conventions."""


@dataclass
class PlayConfig:
    """What to play and how."""

    env_id: str = field(metadata=POSITIONAL)
    """A registered id, e.g. rmc/MiniPacman-v0 or rmc/BoxWorld-v0."""
    seed: int | None = None
    """Seed of the first reset (and of the random agent); None for a random one."""
    agent: Literal["keyboard", "random"] = "keyboard"
    """Who picks the actions."""
    steps: int | None = None
    """Stop after this many steps (default: 300 for the random agent, no limit by keyboard)."""
    record: str | None = None
    """Write the frames to this GIF (parent directories are created)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for gymnasium.make, e.g. {"mode": "hunt"}."""
    fps: int = 8
    """Frames per second of the GIF and of a random agent's window."""
    gif_stride: int = 4
    """Keep every k-th pixel row and column of the rendered frames in the GIF (the games
    render 32-pixel cells, so 4 gives crisp 8-pixel cells and small files)."""


def action_for_meanings(env: gym.Env) -> dict[str, int]:
    """Maps "up", "down", "left", "right", "stay" to the env's action indices.

    Reads ``ACTION_NAMES`` from the module of the unwrapped env's class; meanings the game
    lacks (e.g. Box-World without its no-op) are left out.
    """
    module = sys.modules[type(env.unwrapped).__module__]
    names = getattr(module, "ACTION_NAMES", None)
    if names is None:
        raise BadInput(f"{type(env.unwrapped).__name__} has no ACTION_NAMES in its module: cannot map keys to actions")
    num_actions = int(env.action_space.n)
    index_of = {name.lower(): index for index, name in enumerate(names[:num_actions])}
    mapping = {}
    for meaning, synonyms in KEY_MEANINGS.items():
        for synonym in synonyms:
            if synonym in index_of:
                mapping[meaning] = index_of[synonym]
                break
    return mapping


def make_env(config: PlayConfig) -> gym.Env:
    """The env, rendering to its own window, or to frames when recording.

    Raises:
        EnvConfigError: an unknown id (close matches named), kwargs the env rejects, or a
            render mode it does not offer.
    """
    render_mode = "rgb_array" if config.record else "human"
    return make_single_env(config.env_id, config.env_kwargs, render_mode=render_mode)


def pygame_key_source(fps: int) -> Callable[[], str | None]:
    """Blocks until a relevant key is pressed; returns "up"/"down"/"left"/"right"/"stay",
    "restart" or "quit" (closing the window is "quit")."""
    import pygame  # only the keyboard agent needs it

    keys = {
        pygame.K_UP: "up",
        pygame.K_DOWN: "down",
        pygame.K_LEFT: "left",
        pygame.K_RIGHT: "right",
        pygame.K_SPACE: "stay",
        pygame.K_r: "restart",
        pygame.K_q: "quit",
        pygame.K_ESCAPE: "quit",
    }

    def next_key() -> str | None:
        while True:
            event = pygame.event.wait(1000 // max(fps, 1))
            if event.type == pygame.QUIT:
                return "quit"
            if event.type == pygame.KEYDOWN and event.key in keys:
                return keys[event.key]

    return next_key


def play(config: PlayConfig, next_key: Callable[[], str | None] | None = None) -> list[float]:
    """Runs the session; returns the returns of the finished episodes.

    Args:
        config: what to play.
        next_key: source of key meanings for the keyboard agent (default: pygame events);
            returning None ends the session.
    """
    if config.steps is not None and config.steps < 1:
        raise BadInput(f"steps must be >= 1, got {config.steps}")
    if config.gif_stride < 1:
        raise BadInput(f"gif_stride must be >= 1, got {config.gif_stride}")
    if config.record and not config.record.lower().endswith(".gif"):
        raise BadInput(f"record must be a path ending in .gif, got {config.record!r}")
    steps = config.steps if config.steps is not None else (300 if config.agent == "random" else None)
    env = make_env(config)
    frames: list[np.ndarray] = []
    window: HumanWindow | None = None
    actions = action_for_meanings(env) if config.agent == "keyboard" else {}
    if config.agent == "keyboard":
        print(f"{config.env_id}: arrows move, space = stay/no-op, r restart, q/Esc quit. Keys: {actions}")
        if config.record:  # rgb_array frames, shown in a plain window
            window = HumanWindow(config.env_id, fps=60)
    env.action_space.seed(config.seed)

    def capture(episode_return: float, step: int) -> None:
        if config.record:
            picture = env.render()
            frames.append(picture[:: config.gif_stride, :: config.gif_stride])
            if window is not None:
                window.show(picture, (f"return {episode_return:g}", f"step {step}", "recording"))

    returns: list[float] = []
    episode_return, episode_length, total_steps = 0.0, 0, 0
    env.reset(seed=config.seed)
    capture(0.0, 0)
    if config.agent == "keyboard" and next_key is None:
        next_key = pygame_key_source(config.fps)
    try:
        while steps is None or total_steps < steps:
            if config.agent == "random":
                action = env.action_space.sample()
            else:
                key = next_key()
                if key is None or key == "quit":
                    break
                if key == "restart":
                    print(f"restart after {episode_length} steps, return {episode_return:g}")
                    episode_return, episode_length = 0.0, 0
                    env.reset()
                    capture(0.0, 0)
                    continue
                if key not in actions:
                    continue  # e.g. space in a game without a no-op
                action = actions[key]
            _, reward, terminated, truncated, _ = env.step(action)
            episode_return += float(reward)
            episode_length += 1
            total_steps += 1
            capture(episode_return, episode_length)
            if terminated or truncated:
                returns.append(episode_return)
                ending = "terminated" if terminated else "truncated"
                print(f"episode {len(returns)}: return {episode_return:g}, length {episode_length} ({ending})")
                episode_return, episode_length = 0.0, 0
                env.reset()
                capture(0.0, 0)
    finally:
        env.close()
        if window is not None:
            window.close()
    if episode_length:
        print(f"unfinished episode: return {episode_return:g} after {episode_length} steps")
    if returns:
        print(f"{len(returns)} episodes, mean return {np.mean(returns):g}")
    if config.record:
        write_gif(Path(config.record), frames, config.fps)
    return returns


def write_gif(path: Path, frames: Sequence[np.ndarray], fps: int) -> None:
    """Writes ``frames`` (uint8 [H, W, 3]) as a looping GIF, creating parent directories."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, list(frames), duration=1000.0 / fps, loop=0)
    print(f"wrote {len(frames)} frames to {path.resolve()}")


def parse_args(argv: Sequence[str] | None = None) -> PlayConfig:
    """Builds a PlayConfig from the command line."""
    return parse_options(PlayConfig, argv, prog="python -m launch.play", description=first_paragraph(__doc__))


def main(config: PlayConfig) -> int:
    """Entry point with a config (see ``PlayConfig``); returns the exit code: 0, or 2 for a
    bad input (an unknown id, kwargs the env rejects, a bad setting), named on stderr."""
    def body() -> None:
        play(config)

    return run_command(body)


def cli(argv: Sequence[str] | None = None) -> int:
    """``python -m launch.play``: parses the command line and plays."""
    return run_command(lambda: main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
