r"""Learning suite: the default agent on a fixed list of tasks, several seeds each, one table.

Each entry trains ``python -m launch.train`` with default flags (only the env, the core, the
frame budget and the seed; the game entries use their preset), evaluates the run's final
weights over full episodes with ``launch.evaluate``'s code, and checks a target. Where the
peer libraries are installed (``pip install '.[bench]'``: Stable-Baselines3 and sb3-contrib)
and the entry has a peer, the peer is trained in the same run on the same env: PPO, or
RecurrentPPO for the partially observed tasks, with RL Zoo's published hyperparameters.

The table gives, per entry: the frames, the wall time of each training run, the evaluated
mean return (or success rate) of each seed with its 95% confidence interval, the target,
pass/fail (every seed must pass), the wall time to the target (the first log at which the
mean training return of the last interval reached it, counting the games that act with the
policy itself: launch/plot.py), and the peer's figures beside them.

    python benchmarks/learning_suite.py --quick                  # CartPole for each core, one seed
    python benchmarks/learning_suite.py                          # every entry
    python benchmarks/learning_suite.py --only cartpole-rmc --seeds 3
    python benchmarks/learning_suite.py --only cartpole-novel-lstm --no-peer --out suite_runs

Writes OUT/results.json (every run's figures) and, with ``--plot DIR``, one PNG of training
curves per env in DIR. ``--from-results`` prints the table and draws the curves of earlier
invocations (several seeds run at different times, say) without training:

    python benchmarks/learning_suite.py --from-results a/results.json --from-results b/results.json --plot docs
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from launch.cli import BadInput, first_paragraph, parse_options, run_command  # noqa: E402  (after the path)


@dataclass(frozen=True)
class Peer:
    """A Stable-Baselines3 baseline for an entry: algorithm and RL Zoo's hyperparameters."""

    algorithm: Literal["PPO", "RecurrentPPO"]
    """'PPO' (stable_baselines3) or 'RecurrentPPO' (sb3_contrib)."""
    hyperparameters: dict[str, Any]
    """Keyword arguments of the algorithm; 'lin_X' learning rates and clip ranges fall
    linearly from X to 0, as in RL Zoo."""
    num_envs: int = 8
    """Games stepped together."""
    normalize: bool = False
    """Wrap the games in VecNormalize (observations and rewards), as RL Zoo's 'normalize'."""
    max_frames: int | None = None
    """Train on at most this many frames (RecurrentPPO steps about 100 frames/s on 2 cores)."""
    wrappers: tuple[str, ...] = ()
    """'module:callable' wrappers of each game (MiniGrid: its 7 x 7 image alone, flattened for
    SB3's MLP policies, whose CNN needs images of 36 x 36 or more)."""


@dataclass(frozen=True)
class Entry:
    """One (env, core, budget, target) of the suite."""

    name: str
    env: str
    core: Literal["rmc", "lstm", "none"]
    frames: int
    """Frame budget of each training run (total steps)."""
    target: float
    """The evaluated mean return (or success rate) every seed must reach."""
    metric: Literal["return", "success"] = "return"
    below: bool = False
    """The entry passes when every seed stays *below* the target (a core that cannot solve it)."""
    seeds: int = 3
    flags: tuple[str, ...] = ()
    """Further launch.train flags (a preset for the project's games)."""
    peer: Peer | None = None
    quick: bool = False
    """Part of --quick."""
    eval_episodes: int = 100
    target_note: str = ""
    """How the target was set, for the table."""


CARTPOLE_PPO = Peer("PPO", {"n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
                            "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2"})
ACROBOT_PPO = Peer("PPO", {"n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
                   num_envs=16, normalize=True)
NOVEL_RECURRENT_PPO = Peer("RecurrentPPO", {"n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98,
                                            "n_epochs": 20, "ent_coef": 0.0, "learning_rate": "lin_0.001",
                                            "clip_range": "lin_0.2"},
                           normalize=True, max_frames=100_000)
MINIGRID_RECURRENT_PPO = Peer("RecurrentPPO", {"n_steps": 128, "batch_size": 256, "gae_lambda": 0.95,
                                               "gamma": 0.99, "n_epochs": 10, "ent_coef": 0.01,
                                               "learning_rate": 2.5e-4},
                              max_frames=100_000,
                              wrappers=("minigrid.wrappers:ImgObsWrapper", "gymnasium.wrappers:FlattenObservation"))

CORES: tuple[Literal["none", "lstm", "rmc"], ...] = ("none", "lstm", "rmc")
ENTRIES: tuple[Entry, ...] = (
    *(Entry(f"cartpole-{core}", "CartPole-v1", core, 200_000, 475.0, peer=CARTPOLE_PPO, quick=True)
      for core in CORES),
    *(Entry(f"cartpole-novel-{core}", "rmc/CartPoleNoVel-v1", core, 1_000_000, 475.0, below=core == "none",
            peer=NOVEL_RECURRENT_PPO) for core in CORES),
    *(Entry(f"acrobot-{core}", "Acrobot-v1", core, 500_000, -100.0, peer=ACROBOT_PPO) for core in CORES),
    *(Entry(f"minigrid-memory-{core}", "MiniGrid-MemoryS7-v0", core, 2_000_000, 0.9, metric="success",
            flags=("--env-package", "minigrid"), peer=MINIGRID_RECURRENT_PPO) for core in ("lstm", "rmc")),
    Entry("boxworld-easy-rmc", "rmc/BoxWorldEasy-v0", "rmc", 0, 0.9, metric="success",
          flags=("--preset", "boxworld-easy-rmc"), eval_episodes=500),
    *(Entry(f"minipacman-{core}", "rmc/MiniPacman-v0", core, 0, 3.0, seeds=2,
            flags=("--preset", f"minipacman-{core}", "--time-limit-s", "1200"), target_note="x random")
      for core in ("rmc", "lstm")),
)
"""The suite. A frame budget of 0 means the preset's own budget (the games: 20 minutes)."""


@dataclass
class RunResult:
    """One training run and its evaluation."""

    entry: str
    seed: int
    frames: int
    train_seconds: float
    value: float
    """Evaluated mean return, or success rate."""
    ci95: tuple[float, float]
    passed: bool
    seconds_to_target: float | None
    run_dir: str
    command: list[str] = field(default_factory=list)


def success_of(entry: Entry, summary: dict[str, Any]) -> tuple[float, tuple[float, float]]:
    """The evaluated figure of an entry: mean return with its CI, or the success rate with its
    Wilson interval (an env that reports no ``success`` counts an episode with a positive
    return as a success, as MiniGrid's rewards do)."""
    from launch.evaluate import wilson_interval

    if entry.metric == "return":
        low, high = summary["return_ci95"]
        return summary["mean_return"], (low, high)
    if summary["success_rate"] is not None:
        return summary["success_rate"], tuple(summary["success_ci95"])
    wins = float(np.sum(np.asarray(summary["returns"]) > 0))
    return wins / summary["episodes"], wilson_interval(wins, summary["episodes"])


def seconds_to_target(run_dir: Path, entry: Entry) -> float | None:
    """Training seconds until the interval's mean training return (of the games that act with
    the policy itself) or success first reached the target; None if it never did (or the
    entry's target is a ceiling)."""
    from launch.impala.run_dir import read_metrics
    from launch.plot import metric_key

    if entry.below:
        return None
    records = read_metrics(run_dir)
    key = metric_key(records, entry.metric)
    for record in records:
        value = record.get(key)
        if value is not None and value >= entry.target:
            return float(record["time_s"])
    return None


@functools.lru_cache(maxsize=None)
def random_return(env: str, episodes: int, flags: tuple[str, ...]) -> float:
    """Mean return of a uniformly random policy (the Mini PacMan target's unit; measured once
    per env and shared by its seeds)."""
    from launch.impala.config import TrainConfig
    from launch.evaluate import evaluate

    config = TrainConfig(env=env)
    if "--env-package" in flags:
        config.env_package = [flags[flags.index("--env-package") + 1]]
    return float(evaluate(config, None, episodes, 8, False, 2024)["mean_return"])


def train_and_evaluate(entry: Entry, seed: int, out: Path, python: str, extra_flags: tuple[str, ...] = ()) -> RunResult:
    """Trains one seed of an entry with launch.train (its flags, then ``extra_flags``) and
    evaluates its final weights."""
    from launch.evaluate import evaluate
    from launch.impala.run_dir import read_metrics
    from launch.impala.trained import load_trained

    name = f"{entry.name}-seed{seed}"
    command = [python, "-m", "launch.train", "--env", entry.env, "--core", entry.core, "--seed", str(seed),
               *entry.flags, *extra_flags, "--runs-root", str(out / "runs"), "--run-name", name]
    if entry.frames:
        command += ["--total-steps", str(entry.frames)]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    train_seconds = time.perf_counter() - start
    run_dir = out / "runs" / name
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "logs" / f"{name}.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {completed.returncode}: {completed.stderr[-2000:]}")
    config, model_state = load_trained(run_dir)
    summary = evaluate(config, model_state, entry.eval_episodes, 8, False, 12345)
    value, ci95 = success_of(entry, summary)
    target = entry.target
    if entry.target_note == "x random":
        target = entry.target * random_return(entry.env, entry.eval_episodes, entry.flags)
    passed = value < target if entry.below else value >= target
    frames = int(read_metrics(run_dir)[-1]["step"])
    return RunResult(entry.name, seed, frames, train_seconds, value, ci95, passed,
                     seconds_to_target(run_dir, dataclasses.replace(entry, target=target)), str(run_dir), command)


def _schedule(text: Any) -> Any:
    """RL Zoo's 'lin_X': a schedule falling linearly from X to 0 over the run."""
    if isinstance(text, str) and text.startswith("lin_"):
        initial = float(text[4:])
        return lambda progress_remaining: progress_remaining * initial
    return text


def train_peer(entry: Entry, seed: int, out: Path) -> dict[str, Any]:
    """Trains and evaluates the entry's Stable-Baselines3 peer; returns its figures."""
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    import envs  # noqa: F401  (registers rmc/ ids)
    from launch.impala.env_factory import import_env_packages, resolve_wrapper

    peer = entry.peer
    assert peer is not None
    if "--env-package" in entry.flags:
        import_env_packages([entry.flags[entry.flags.index("--env-package") + 1]])
    wrappers = [resolve_wrapper(text) for text in peer.wrappers]

    def wrap(env: gym.Env) -> gym.Env:
        for wrapper in wrappers:
            env = wrapper(env)
        return env

    if peer.algorithm == "PPO":
        from stable_baselines3 import PPO as Algorithm
        policy = "MlpPolicy"
    else:
        from sb3_contrib import RecurrentPPO as Algorithm
        policy = "MlpLstmPolicy"
    frames = min(entry.frames, peer.max_frames) if peer.max_frames else entry.frames
    venv = make_vec_env(entry.env, n_envs=peer.num_envs, seed=seed, wrapper_class=wrap)
    if peer.normalize:
        venv = VecNormalize(venv)
    kwargs = {name: _schedule(value) for name, value in peer.hyperparameters.items()}
    model = Algorithm(policy, venv, seed=seed, verbose=0, device="cpu", **kwargs)
    curve: list[tuple[float, float]] = []

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()

        def _on_rollout_end(self) -> None:
            if self.model.ep_info_buffer:
                mean = float(np.mean([info["r"] for info in self.model.ep_info_buffer]))
                curve.append((time.perf_counter() - self.start, mean))

        def _on_step(self) -> bool:
            return True

    start = time.perf_counter()
    model.learn(total_timesteps=frames, callback=Clock())
    train_seconds = time.perf_counter() - start
    eval_env = make_vec_env(entry.env, n_envs=1, seed=seed + 10_000, wrapper_class=wrap)
    if peer.normalize:
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
        eval_env.obs_rms = venv.obs_rms
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=entry.eval_episodes, deterministic=False,
                                 return_episode_rewards=True)
    returns = np.asarray(returns, dtype=float)
    if entry.metric == "success":
        value = float(np.mean(returns > 0))
    else:
        value = float(returns.mean())
    half = 1.96 * float(returns.std(ddof=1)) / math.sqrt(len(returns)) if entry.metric == "return" else float("nan")
    reached = next((seconds for seconds, mean in curve if mean >= entry.target), None)
    return {"algorithm": peer.algorithm, "seed": seed, "frames": frames, "train_seconds": train_seconds,
            "value": value, "ci95": [value - half, value + half], "seconds_to_target": reached}


def peers_installed() -> bool:
    try:
        import sb3_contrib  # noqa: F401
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def format_table(entries: list[Entry], results: dict[str, list[RunResult]], peers: dict[str, list[dict[str, Any]]]) -> str:
    """The suite's table in Markdown."""
    lines = ["| entry | env | core | frames | train s (each seed) | evaluated (each seed, 95% CI) | target | pass | "
             "s to target | peer | peer frames | peer train s | peer evaluated | peer s to target |",
             "|---|---|---|---:|---|---|---|---|---|---|---:|---|---|---|"]
    for entry in entries:
        runs = results.get(entry.name, [])
        if not runs:
            continue
        fmt = "{:.1f}" if entry.metric == "return" else "{:.2f}"
        evaluated = "; ".join(f"{fmt.format(r.value)} ({fmt.format(r.ci95[0])}..{fmt.format(r.ci95[1])})"
                              for r in runs)
        passed = sum(r.passed for r in runs)
        to_target = ", ".join("-" if r.seconds_to_target is None else f"{r.seconds_to_target:.0f}" for r in runs)
        target = ("< " if entry.below else ">= ") + f"{entry.target:g}{' ' + entry.target_note if entry.target_note else ''}"
        row = [entry.name, entry.env, entry.core, f"{int(np.mean([r.frames for r in runs])):,}",
               ", ".join(f"{r.train_seconds:.0f}" for r in runs), evaluated, target,
               f"{'yes' if passed == len(runs) else 'no'} ({passed}/{len(runs)})", to_target]
        peer_runs = peers.get(entry.env, [])
        if peer_runs:
            row += [peer_runs[0]["algorithm"], f"{peer_runs[0]['frames']:,}",
                    ", ".join(f"{p['train_seconds']:.0f}" for p in peer_runs),
                    "; ".join(fmt.format(p["value"]) for p in peer_runs),
                    ", ".join("-" if p["seconds_to_target"] is None else f"{p['seconds_to_target']:.0f}"
                              for p in peer_runs)]
        else:
            row += ["-"] * 5
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_curves(entries: list[Entry], results: dict[str, list[RunResult]], directory: Path,
                extra_flags: tuple[str, ...] = ()) -> list[Path]:
    """One PNG per env: each run's mean training return (or success) against frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from launch.plot import curve

    written = []
    by_env: dict[str, list[Entry]] = {}
    for entry in entries:
        if results.get(entry.name):
            by_env.setdefault(entry.env, []).append(entry)
    directory.mkdir(parents=True, exist_ok=True)
    for env, env_entries in by_env.items():
        figure, axes = plt.subplots(figsize=(7, 4))
        for colour, entry in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), env_entries):
            for index, run in enumerate(results[entry.name]):
                xs, ys = curve(run.run_dir, metric=entry.metric)
                axes.plot(xs, ys, color=colour, alpha=0.8, label=entry.core if index == 0 else None)
        target = env_entries[0].target
        if not env_entries[0].target_note:
            axes.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}")
        axes.set_xlabel("frames")
        axes.set_ylabel("mean training " + ("return" if env_entries[0].metric == "return" else "success"))
        counts = {entry.core: len(results[entry.name]) for entry in env_entries}
        if len(set(counts.values())) == 1:
            seeds = next(iter(counts.values()))
            per_core = f"{seeds} seed{'s' if seeds != 1 else ''} per core"
        else:
            per_core = "seeds: " + ", ".join(f"{core} {count}" for core, count in counts.items())
        agent = "default agent" if not extra_flags else "agent with " + " ".join(extra_flags)
        axes.set_title(f"{env}: {agent}, {per_core}", fontsize=9 if extra_flags else 11, wrap=True)
        axes.legend()
        figure.tight_layout()
        path = directory / f"learning_{env.replace('/', '_').replace('-', '_').lower()}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def select(only: list[str] | None, quick: bool) -> list[Entry]:
    """The entries to run; an unknown name is an error that lists the valid ones."""
    if only:
        names = {entry.name for entry in ENTRIES}
        unknown = [name for name in only if name not in names]
        if unknown:
            raise BadInput(f"unknown entries {unknown}; valid: {sorted(names)}")
        return [entry for entry in ENTRIES if entry.name in only]
    return [entry for entry in ENTRIES if entry.quick] if quick else list(ENTRIES)


@dataclass
class SuiteOptions:
    """What ``benchmarks/learning_suite.py`` runs."""

    quick: bool = False
    """CartPole for each core, one seed each (a few minutes)."""
    only: list[str] = field(default_factory=list, metadata={"metavar": "NAME"})
    """Run this entry (repeat for several); the entries are listed below."""
    seeds: int | None = None
    """Seeds per entry (default: the entry's; --quick: 1)."""
    first_seed: int = 0
    """Seeds are FIRST_SEED, FIRST_SEED + 1, ..."""
    no_peer: bool = False
    """Skip the Stable-Baselines3 peers."""
    out: str = "suite_runs"
    """Folder for runs, logs and results.json."""
    plot: str | None = None
    """Write one PNG of curves per env into this folder."""
    flags: str = ""
    """Further launch.train flags for every entry, as one string (a candidate config, e.g.
    "--advantage-normalization --lr-kl-target 0.02"); the table and the plots name them."""
    from_results: list[str] = field(default_factory=list, metadata={"metavar": "RESULTS_JSON"})
    """Train nothing: print the table (and, with --plot, the curves) of the runs in these
    results.json files of earlier invocations (repeat for several; with --only, of those
    entries); each run's folder is found as written, beside the file, or by its name there."""

    def __post_init__(self) -> None:
        if self.seeds is not None and self.seeds < 1:
            raise BadInput(f"--seeds must be >= 1, got {self.seeds}")
        if self.from_results and self.flags:
            raise BadInput("--flags cannot go with --from-results: each results.json names the flags it trained with")
        if any(flag in shlex.split(self.flags) for flag in ("--env", "--core", "--seed", "--runs-root", "--run-name")):
            raise BadInput(f"--flags cannot set what each entry sets itself (--env, --core, --seed, the run "
                           f"directory), got {self.flags!r}")


def attach_flags_value(argv: list[str]) -> list[str]:
    """``--flags --x`` as ``--flags=--x``: argparse reads a lone value that starts with a dash
    (one launch.train flag) as an option of its own and stops with "expected one argument"."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] == "--flags" and index + 1 < len(argv) and argv[index + 1].startswith("-"):
            joined.append(f"--flags={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    arguments = attach_flags_value(list(sys.argv[1:] if argv is None else argv))
    return run_command(lambda: run_suite(parse_options(
        SuiteOptions, arguments, prog="benchmarks/learning_suite.py", description=first_paragraph(__doc__),
        epilog="entries: " + ", ".join(entry.name for entry in ENTRIES))))


def load_results(paths: list[str]) -> tuple[dict[str, list[RunResult]], dict[str, list[dict[str, Any]]],
                                          tuple[str, ...]]:
    """``(runs, peers, flags)`` of results.json files written by earlier invocations, merged;
    each run's folder is its ``run_dir`` as written, relative to the file's folder, or its name
    in that folder (how run files copied beside the file are found)."""
    results: dict[str, list[RunResult]] = {}
    peers: dict[str, list[dict[str, Any]]] = {}
    flags: tuple[str, ...] | None = None
    seen: dict[tuple[str, int], str] = {}
    for path in map(Path, paths):
        try:
            data = json.loads(path.read_text())
            runs, file_peers, file_flags = data["runs"], data.get("peers", {}), tuple(data.get("flags", []))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BadInput(f"{str(path)!r} is not a learning suite results.json: {error}") from None
        if flags is not None and file_flags != flags:
            raise BadInput(f"{str(path)!r} was trained with flags {list(file_flags)}, the files before it with "
                           f"{list(flags)}: one table takes runs of one config")
        flags = file_flags
        for name, records in runs.items():
            for record in records:
                key = (name, int(record["seed"]))
                if key in seen:
                    raise BadInput(f"{name} seed {key[1]} is in both {seen[key]!r} and {str(path)!r}")
                seen[key] = str(path)
                stored = Path(record["run_dir"])
                found = next((candidate for candidate in (stored, path.parent / stored, path.parent / stored.name)
                              if candidate.is_dir()), stored)
                known = {part: value for part, value in record.items() if part in RunResult.__dataclass_fields__}
                results.setdefault(name, []).append(RunResult(**{**known, "ci95": tuple(record["ci95"]),
                                                                 "run_dir": str(found)}))
        for env, env_peers in file_peers.items():
            peers.setdefault(env, []).extend(env_peers)
    for runs in results.values():
        runs.sort(key=lambda run: run.seed)
    return results, peers, flags or ()


def report(entries: list[Entry], results: dict[str, list[RunResult]], peers: dict[str, list[dict[str, Any]]],
           extra_flags: tuple[str, ...], plot: str | None) -> int:
    """Prints the table (and writes the curves); 1 when a run failed its target."""
    if extra_flags:
        print("every entry trained with: " + " ".join(extra_flags))
    print(format_table(entries, results, peers))
    if plot:
        for path in plot_curves(entries, results, Path(plot), extra_flags):
            print(f"curves: {path}")
    return 0 if all(r.passed for runs in results.values() for r in runs) else 1


def run_suite(args: SuiteOptions) -> int:
    """Trains and evaluates the chosen entries, prints the table; 1 when an entry failed."""
    if args.from_results:
        results, peers, flags = load_results(args.from_results)
        chosen = {entry.name for entry in select(args.only, False)} if args.only else set(results)
        results = {name: runs for name, runs in results.items() if name in chosen}
        return report([entry for entry in ENTRIES if entry.name in results], results, peers, flags, args.plot)
    entries = select(args.only, args.quick)
    extra_flags = tuple(shlex.split(args.flags))
    if extra_flags:
        print("every entry also trains with: " + " ".join(extra_flags))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with_peers = not args.no_peer and peers_installed()
    if not args.no_peer and not with_peers:
        print("peers skipped: pip install '.[bench]' (stable-baselines3, sb3-contrib) to train them too")
    results: dict[str, list[RunResult]] = {}
    peers: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        seeds = args.seeds or (1 if args.quick else entry.seeds)
        for seed in range(args.first_seed, args.first_seed + seeds):
            result = train_and_evaluate(entry, seed, out, sys.executable, extra_flags)
            results.setdefault(entry.name, []).append(result)
            print(f"{entry.name} seed {seed}: {result.frames:,} frames in {result.train_seconds:.0f} s, "
                  f"evaluated {result.value:.3f} ({'pass' if result.passed else 'FAIL'})", flush=True)
            if with_peers and entry.peer is not None and len(peers.get(entry.env, [])) < seeds:
                peer = train_peer(entry, seed, out)
                peers.setdefault(entry.env, []).append(peer)
                print(f"  peer {peer['algorithm']} seed {seed}: {peer['frames']:,} frames in "
                      f"{peer['train_seconds']:.0f} s, evaluated {peer['value']:.3f}", flush=True)
            (out / "results.json").write_text(json.dumps(
                {"runs": {name: [dataclasses.asdict(r) for r in runs] for name, runs in results.items()},
                 "peers": peers, "flags": list(extra_flags)}, indent=1))
    print()
    return report(entries, results, peers, extra_flags, args.plot)


if __name__ == "__main__":
    sys.exit(main())
