"""IMPALA training: CPU actors (local processes or Ray actors) and one learner (Espeholt et al. 2018).

Run ``python -m launch.train --help``. Typical uses::

    python -m launch.train --preset boxworld-easy-rmc
    python -m launch.train --env CartPole-v1 --core lstm --total-steps 200000
    python -m launch.train --resume runs/boxworld-easy-rmc-20260101-120000-000000
    python -m launch.train --preset boxworld-rmc --backend ray --ray-address HEAD_IP:6379 --num-actors 64

Order of start-up: the config is checked, the env and agent are built once on the CPU to
validate them, and only then is the run directory written. The actor processes are
started with the "spawn" context before the learner touches CUDA (a spawned child never
inherits the parent's CUDA state). Stop a run with Ctrl-C or SIGTERM: the learner saves
a final checkpoint, stops every actor and exits 0. Besides the periodic checkpoints the
run keeps its best policy so far in ``checkpoints/best.pt`` (``launch.impala.best_policy``). With
``--backend ray`` the actors are Ray actors (``launch.impala.ray_pool``, docs/ray.md); the
training loop is the same.
"""

from __future__ import annotations

import collections
import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from launch.impala.actor_pool import ActorFailure, ActorPool, ActorStartupFailure
from launch.impala.best_policy import BestTracker
from launch.impala.buffers import RolloutBuffers, buffers_per_actor, split_batch
from launch.impala.checkpoint import (
    BEST_CHECKPOINT,
    CheckpointError,
    capture_rng_state,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    restore_rng_state,
    save_best_checkpoint,
    save_checkpoint,
)
from launch.impala.config import RESUME_OVERRIDABLE, ConfigError, TrainConfig, parse_train_args, resolve_device
from launch.impala.env_factory import EnvConfigError, EpisodeRecord, make_vector_env
from launch.impala.exploration import holds_actions, on_policy_games
from launch.impala.learner import Learner, NonFiniteLossError
from launch.impala.policy_factory import build_policy
from launch.impala.progress import ProgressView
from launch.impala.ray_pool import RayActorPool, check_reachable, import_ray
from launch.impala.run_dir import MetricsWriter, RunDir
from launch.impala.shared_weights import SharedWeights
from launch.viewer.recorder import RolloutRecorder
from rmc_core import RelationalMemory

CHECKPOINT_FORMAT = 1

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


@dataclass
class Counters:
    """Progress that a checkpoint carries over to a resumed run."""

    step: int = 0
    updates: int = 0
    episodes: int = 0
    elapsed_s: float = 0.0
    actor_generation: int = 0
    actor_restarts: int = 0
    best_score: float | None = None
    best_step: int = 0


def learner_threads(config: TrainConfig, actor_cores_here: float | None = None) -> int:
    """Torch threads for the learner: oversubscribing the cores the actors use makes every
    op wait on busy threads (measured: 100x slower on a loaded 2-core machine).

    Args:
        config: the run's config (``learner_threads`` > 0 wins).
        actor_cores_here: cores the actors may use on this machine (default: one per actor).
    """
    if config.learner_threads:
        return config.learner_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = config.num_actors if actor_cores_here is None else actor_cores_here
    return max(1, cores - math.ceil(busy))


def check_config(config: TrainConfig) -> None:
    """Validate values, the env and the agent (on the CPU) before anything is written."""
    config.validate()
    if config.backend == "ray":
        import_ray(config.ray_address)  # a clear error with the install command when Ray is missing
        check_reachable(config.ray_address)
    # Ask NVML, not the CUDA driver, whether a GPU exists: the parent stays CUDA-free until
    # the actors are started (they are spawned, so they could not inherit it anyway).
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but CUDA is not available; use --device auto or cpu")
    env = make_vector_env(config.env, 1, config.env_kwargs, config.wrappers, config.env_package)
    try:
        build_policy(config, env.single_observation_space, env.single_action_space)
    finally:
        env.close()


class Trainer:
    """One run's actors, buffers, weights and learner.

    Args:
        config: the run's (validated) config.
        run: the run directory, or None (benchmarks: nothing is written).
        checkpoint: a loaded checkpoint to continue from, or None.
        log: where one-line reports go.
    """

    def __init__(self, config: TrainConfig, run: RunDir | None = None, checkpoint: dict[str, Any] | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.config = config
        self.run = run
        self.log = log
        self.stop_reason: str | None = None
        env = make_vector_env(config.env, 1, config.env_kwargs, config.wrappers, config.env_package, log=log)
        observation_space, action_space = env.single_observation_space, env.single_action_space
        env.close()
        torch.manual_seed(config.seed)  # the initial weights follow the run's seed (a resumed run loads its own)
        self.policy = build_policy(config, observation_space, action_space)
        explores = holds_actions(config, action_space)
        if config.action_hold_probability > 0 and not explores:
            log(f"the actors sample the policy at every step: holding the previous action "
                f"(--action-hold-probability) needs a Discrete action space, not {action_space}")
        self.counters = Counters()
        self._checkpoint = checkpoint
        if checkpoint is not None:
            self.policy.load_state_dict(checkpoint["model"])
            self.counters = Counters(**checkpoint["counters"])
        local = config.backend == "local"  # Ray actors send arrays: the learner's slots need no shared memory
        # A CPU learner sets the pace of a local run: one slot per actor keeps its data fresh
        # (a Ray pool bounds its requests by ray_max_inflight instead).
        cpu_learner = resolve_device(config.device).type == "cpu"
        per_actor = config.slots_per_actor or buffers_per_actor(config.unrolls_per_batch, config.num_actors,
                                                                learner_sets_pace=local and cpu_learner)
        self.buffers = RolloutBuffers(config.num_actors * per_actor, config.unroll_length, config.envs_per_actor,
                                      observation_space, self.policy.action_shape, self.policy.action_dtype,
                                      self.policy.initial_state(config.envs_per_actor), shared=local,
                                      explores=explores)
        self.pool: ActorPool | RayActorPool
        if local:
            weights = SharedWeights(self.policy.state_dict(), version=self.counters.updates)
            context = torch.multiprocessing.get_context("spawn")
            self.pool = ActorPool(context, config, self.buffers, weights, per_actor,
                                  first_generation=self.counters.actor_generation, log=log)
        else:
            self.pool = RayActorPool(config, self.buffers, self.policy.state_dict(), version=self.counters.updates,
                                     first_generation=self.counters.actor_generation, log=log)
        self.device = torch.device("cpu")
        self.learner: Learner | None = None
        self.recent_returns: collections.deque[float] = collections.deque(maxlen=100)
        # the games that act with the policy itself: the window holds as many of their episodes
        # as end among 100 of all games (at least 10), so it spans about as long a time
        policy_share = float(on_policy_games(config, explores).mean())
        self.recent_policy_returns: collections.deque[float] = collections.deque(
            maxlen=max(10, round(100 * policy_share)))
        self.recent_successes: collections.deque[float] = collections.deque(maxlen=100)
        self.best = BestTracker(config.best_window_episodes, self.counters.best_score)
        self.last_checkpoint: str | None = None
        self.deadline: float | None = None  # time.monotonic() at which run_loop's duration_s ends

    def start(self) -> None:
        """Start the actors, then move the policy to the learner device."""
        self.pool.start()
        self.device = resolve_device(self.config.device)  # first CUDA use: after the actors exist
        torch.set_num_threads(learner_threads(self.config, self.pool.actor_cores_here))
        self.policy.to(self.device)
        if self.config.compile_core and isinstance(self.policy.core, RelationalMemory):
            self.policy.core.compile_step()
        self.learner = Learner(self.policy, self.config)
        if self._checkpoint is not None:
            self.learner.load_state_dict(self._checkpoint["learner"])
            restore_rng_state(self._checkpoint["rng"])
        if self.run is not None:
            found = latest_checkpoint(self.run.checkpoint_dir)
            self.last_checkpoint = str(found) if found else None

    def close(self) -> None:
        self.pool.close()

    def checkpoint_payload(self) -> dict[str, Any]:
        assert self.learner is not None
        self.counters.actor_generation = self.pool.generation
        self.counters.actor_restarts = self.pool.restarts
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {name: value.detach().cpu() for name, value in self.policy.state_dict().items()},
            "learner": self.learner.state_dict(),
            "counters": vars(self.counters).copy(),
            "config": json.dumps(self.config.to_json()),
            "rng": capture_rng_state(),
        }

    def save(self) -> str:
        assert self.run is not None
        path = save_checkpoint(self.run.checkpoint_dir, self.counters.step, self.checkpoint_payload(),
                               keep=self.config.keep_checkpoints)
        self.last_checkpoint = str(path)
        return self.last_checkpoint

    def save_if_best(self) -> None:
        """Save ``checkpoints/best.pt`` when the latest training window beats every earlier one."""
        score = self.best.new_best()
        if score is None or self.run is None:
            return
        self.counters.best_score, self.counters.best_step = score, self.counters.step
        save_best_checkpoint(self.run.checkpoint_dir, self.checkpoint_payload())

    def _record_episodes(self, episodes: list[EpisodeRecord], interval: dict[str, list[float]]) -> None:
        for episode in episodes:
            self.counters.episodes += 1
            self.recent_returns.append(episode.return_)
            self.best.add(episode.return_, episode.success)
            interval["episode_return"].append(episode.return_)
            interval["episode_length"].append(float(episode.length))
            if episode.on_policy:
                self.recent_policy_returns.append(episode.return_)
                interval["policy_return"].append(episode.return_)
                if episode.success is not None:
                    interval["policy_success"].append(episode.success)
            if episode.success is not None:
                self.recent_successes.append(episode.success)
                interval["success"].append(episode.success)

    def run_loop(self, learn: bool = True, duration_s: float | None = None, metrics: MetricsWriter | None = None,
                 progress: ProgressView | None = None, recorder: RolloutRecorder | None = None) -> None:
        """Consume unrolls until ``total_steps``, ``duration_s`` or a stop request.

        With ``learn=False`` the unrolls are returned to the actors unread (acting-only
        throughput); no update, checkpoint or weight change happens. A ``recorder``
        records a short rollout of the current weights every ``record_interval_s``.

        Raises:
            NonFiniteLossError: a NaN/inf loss (nothing was applied or saved).
            ActorFailure: actors died more often than ``max_actor_restarts``.
            ActorStartupFailure: an actor died before its first unroll as its previous start did.
        """
        assert self.learner is not None, "call start() first"
        config, pool, counters = self.config, self.pool, self.counters
        unrolls = config.unrolls_per_batch
        begin = last_log = last_checkpoint = time.monotonic()
        self.deadline = begin + duration_s if duration_s is not None else None
        elapsed_before = counters.elapsed_s
        step_at_log = counters.step
        interval: dict[str, list[float]] = collections.defaultdict(list)
        while self.stop_reason is None:
            now = time.monotonic()
            counters.elapsed_s = elapsed_before + (now - begin)
            if learn and counters.step >= config.total_steps:
                break
            if self.deadline is not None and now >= self.deadline:
                break
            result = pool.poll(timeout=0.0 if len(pool.ready) >= unrolls else 0.05)
            self._record_episodes(result.episodes, interval)
            if len(pool.ready) >= unrolls:
                slots = pool.take(unrolls)
                if learn:
                    trajectory, initial_state, versions = self.buffers.gather(slots, self.device)
                    pool.release(slots)
                    batches = ([(trajectory, initial_state)] if config.updates_per_batch == 1
                               else split_batch(trajectory, initial_state, config.updates_per_batch))
                    for part, part_state in batches:
                        if counters.step >= config.total_steps:  # a split batch may end the run part-way
                            break
                        lag = (self.learner.updates - versions).float()
                        # the run ends at the time trained before this invocation plus its limit
                        time_fraction = (counters.elapsed_s / (elapsed_before + duration_s)
                                         if duration_s is not None else 0.0)
                        update_metrics = self.learner.update(part, part_state, time_fraction)
                        pool.publish_weights(self.policy.state_dict(), self.learner.updates)
                        counters.updates = self.learner.updates
                        for name, value in update_metrics.items():
                            interval[name].append(value)
                        interval["policy_lag_mean"].append(float(lag.mean()))
                        interval["policy_lag_max"].append(float(lag.max()))
                        counters.step += config.steps_per_update
                else:
                    pool.release(slots)
                    counters.step += config.steps_per_update * config.updates_per_batch
            now = time.monotonic()
            if now - last_log >= config.log_interval_s:
                if learn:
                    self.save_if_best()
                self._log(metrics, progress, interval, (counters.step - step_at_log) / (now - last_log))
                last_log, step_at_log = now, counters.step
                interval = collections.defaultdict(list)
            if learn and self.run is not None and now - last_checkpoint >= config.checkpoint_interval_s:
                self.save()
                last_checkpoint = now
            if learn and recorder is not None:
                recorder.poll(counters.step)
                if recorder.due(now):
                    recorder.start(counters.step, self.policy.state_dict())
        now = time.monotonic()
        if learn:
            self.save_if_best()
        if counters.step > step_at_log:
            self._log(metrics, progress, interval, (counters.step - step_at_log) / max(now - last_log, 1e-9))

    def _log(self, metrics: MetricsWriter | None, progress: ProgressView | None, interval: dict[str, list[float]],
             steps_per_second: float) -> None:
        counters = self.counters
        record: dict[str, Any] = {
            "step": counters.step, "updates": counters.updates, "time_s": round(counters.elapsed_s, 3),
            "steps_per_second": steps_per_second, "episodes": counters.episodes,
            "episodes_in_interval": len(interval.get("episode_return", [])),
            "actor_restarts": self.pool.restarts,
        }
        if counters.best_score is not None:
            record["best_score"] = counters.best_score
        for name, values in interval.items():
            if not values:
                continue
            if name == "policy_lag_max":
                record[name] = float(np.max(values))
            elif name == "policy_lag_mean":
                record[name] = float(np.mean(values))
            elif name in ("success", "policy_success"):
                record[name + "_rate"] = float(np.mean(values))
            else:
                record[name + "_mean"] = float(np.mean(values))
                if name in ("grad_norm", "behaviour_kl"):  # a single large update or swing; the mean hides it
                    record[name + "_max"] = float(np.max(values))
        if metrics is not None:
            metrics.write(record)
        if progress is not None:
            # the games that act with the policy itself, when there are any (not every game holds)
            shown = self.recent_policy_returns or self.recent_returns
            recent_return = float(np.mean(shown)) if shown else None
            recent_success = float(np.mean(self.recent_successes)) if self.recent_successes else None
            time_left = self.deadline - time.monotonic() if self.deadline is not None else None
            progress.update(counters.step, steps_per_second, recent_return, recent_success,
                            record.get("loss_total_mean"), time_left)


def _start_wandb(config: TrainConfig, run: RunDir) -> Any:
    """A wandb run in ``RUN_DIR/wandb`` (offline unless ``wandb_mode='online'``)."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(project=config.wandb_project, dir=str(run.path), mode=config.wandb_mode,
                      name=run.path.name, id=run.path.name.replace("/", "-")[-64:], resume="allow",
                      config=config.to_json())


def prepare_run(config: TrainConfig | None, resume: str | os.PathLike[str] | None = None,
                overrides: dict[str, Any] | None = None,
                preset: str | None = None) -> tuple[TrainConfig, RunDir, dict[str, Any] | None]:
    """Check everything, then create (or reopen) the run directory.

    Returns:
        ``(config, run, checkpoint)``; ``checkpoint`` is None for a new run.

    Raises:
        ConfigError, EnvConfigError, CheckpointError: bad input; nothing was written.
    """
    if resume is None:
        if config is None:
            raise ConfigError("give a config or a run directory to resume")
        check_config(config)
        return config, RunDir.create(config, preset), None
    run = RunDir.open_existing(resume)
    config = run.load_config()
    overrides = dict(overrides or {})
    refused = sorted(set(overrides) - RESUME_OVERRIDABLE)
    if refused:
        raise ConfigError(f"a resumed run keeps its config; these flags cannot change it: {refused} "
                          f"(allowed: {sorted(RESUME_OVERRIDABLE)})")
    config = TrainConfig.from_json({**config.to_json(), **overrides})
    path = latest_checkpoint(run.checkpoint_dir)
    if path is None:
        raise ConfigError(f"run directory {str(run.path)!r} has no checkpoint to resume from")
    checkpoint = load_checkpoint(path)
    check_config(config)
    remove_stale_temporaries(run.checkpoint_dir)
    if overrides:
        run.save_config(config)
    run.truncate_metrics(int(checkpoint["counters"]["step"]))
    return config, run, checkpoint


def main(config: TrainConfig | None = None, resume: str | os.PathLike[str] | None = None,
         overrides: dict[str, Any] | None = None, preset: str | None = None) -> int:
    """Train (or resume) a run; returns the process exit code.

    0: finished, or stopped by SIGINT/SIGTERM after saving a final checkpoint.
    1: stopped by a NaN/inf loss or by actors that kept dying (the last good checkpoint stays).
    2: bad input (nothing was written).

    An actor that dies at start-up the same way twice (``ActorStartupFailure``) stops the
    run at once with its error: exit 2 when the error is a ``ConfigError`` or
    ``EnvConfigError``, else 1. A new run that had learned nothing then leaves no run
    directory behind (it could neither be resumed nor its name reused).
    """
    try:
        config, run, checkpoint = prepare_run(config, resume, overrides, preset)
    except (ConfigError, EnvConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    progress = ProgressView(config.total_steps)
    log_file = open(run.log_path, "a")

    def log(text: str) -> None:
        progress.message(text)
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        log_file.flush()

    trainer = Trainer(config, run, checkpoint, log)
    start_step = trainer.counters.step
    remove_run = False
    previous_handlers = {}

    def request_stop(signum: int, _frame: Any) -> None:
        trainer.stop_reason = signal.Signals(signum).name
        signal.signal(signum, previous_handlers.get(signum, signal.SIG_DFL))  # a second signal acts at once

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous_handlers[signum] = signal.signal(signum, request_stop)
    wandb_run = _start_wandb(config, run) if config.wandb else None
    metrics = MetricsWriter(run, wandb_run)
    recorder = RolloutRecorder(config, run.path, log, wandb_run) if config.record_interval_s is not None else None
    exit_code = EXIT_OK
    try:
        log(f"run directory: {run.path}")
        log(f"{'resuming at step ' + format(trainer.counters.step, ',') if checkpoint else 'starting'}: "
            f"{config.env}, core {config.core}, {config.num_actors} actors x {config.envs_per_actor} games")
        trainer.start()
        log(f"learner on {trainer.device}; {trainer.pool.describe()}")
        trainer.run_loop(learn=True, duration_s=config.time_limit_s, metrics=metrics, progress=progress,
                         recorder=recorder)
        path = trainer.save()
        if recorder is not None and trainer.stop_reason is None:
            trainer.close()  # the actors are done: the final recording has the CPU to itself
            recorder.record_final(trainer.counters.step, trainer.policy.state_dict())
        if trainer.stop_reason is None and trainer.counters.step < config.total_steps:
            log(f"time limit of {config.time_limit_s:g} s reached at step {trainer.counters.step:,}; "
                f"final checkpoint {path}; continue with --resume {run.path}")
        elif trainer.stop_reason is not None:
            hint = ""
            if trainer.deadline is not None:  # the rest of this limit keeps a clock schedule where it was
                left = max(1.0, trainer.deadline - time.monotonic())
                hint = f" --time-limit-s {left:.0f} (what was left of this run's time limit)"
            log(f"stopped by {trainer.stop_reason} at step {trainer.counters.step:,}; final checkpoint {path}; "
                f"continue with --resume {run.path}{hint}")
        else:
            log(f"finished {trainer.counters.step:,} steps; final checkpoint {path}")
        if trainer.counters.best_score is not None:
            log(f"best policy: mean training {trainer.best.metric} {trainer.counters.best_score:.3f} over "
                f"{config.best_window_episodes} episodes at step {trainer.counters.best_step:,}, saved as "
                f"{run.checkpoint_dir / BEST_CHECKPOINT}; measure it with: python -m launch.evaluate "
                f"--checkpoint {run.path} --best")
    except NonFiniteLossError as error:
        kept = trainer.last_checkpoint or "none (no checkpoint had been saved yet)"
        log(f"error: stopping the run: {error}. Nothing was applied; the last good checkpoint is {kept}. "
            "Lower --learning-rate, set --reward-clip, or check the env's rewards.")
        exit_code = EXIT_FAILED
    except ConfigError as error:  # the Ray cluster turned out unusable at start-up
        log(f"error: {error}")
        exit_code = EXIT_BAD_INPUT
    except ActorStartupFailure as error:
        log(f"error: {error}")
        exit_code = EXIT_BAD_INPUT if error.bad_input else EXIT_FAILED
        if trainer.counters.step > start_step:
            log(f"the learner is fine: checkpoint {trainer.save()} holds its state; fix the env and "
                f"--resume {run.path}")
        elif checkpoint is None:
            log(f"nothing was learned: removing the run directory {run.path}")
            remove_run = True
    except ActorFailure as error:
        log(f"error: {error}")
        log(f"the learner is fine: checkpoint {trainer.save()} holds its state; fix the env and --resume {run.path}")
        exit_code = EXIT_FAILED
    finally:
        trainer.close()
        if recorder is not None:
            recorder.close(trainer.counters.step)
        progress.close()
        metrics.close()
        if wandb_run is not None:
            wandb_run.finish()
        log_file.close()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    if remove_run:
        shutil.rmtree(run.path, ignore_errors=True)
    return exit_code


def cli(argv: list[str] | None = None) -> int:
    """Console entry point (``python -m launch.train`` / ``rmc-train``)."""
    config, resume, explicit, preset = parse_train_args(argv)
    return main(config, resume=resume, overrides=explicit if resume else None, preset=preset)


if __name__ == "__main__":
    sys.exit(cli())
