"""End-to-end runs of ``python -m launch.train`` as a user would start them, with tiny step
counts: the smoke run, resume, signals, a killed actor, a failing env, an env that fails
at start-up, a vector env that rejects the actors' seeds, NaN, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch

from launch.impala.actor_pool import STARTUP_GRACE_S
from launch.impala.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from tests.launch.helpers import TINY, LiveProcess, actor_pids, metrics, pid_alive, run, wait_until_gone

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    result = run("launch.train", *TINY, "--total-steps", "1600", "--runs-root", str(root), "--run-name", "smoke",
                 "--wandb",  # offline: writes RUN_DIR/wandb, never contacts the network
                 "--record-interval-s", "0.2", "--record-max-steps", "10", "--best-window-episodes", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "smoke"


def test_smoke_run_writes_a_complete_run_directory(smoke_run: Path) -> None:
    assert (smoke_run / "config.json").is_file()
    assert (smoke_run / "logs" / "train.log").read_text().count("finished 1,600 steps") == 1
    records = metrics(smoke_run)
    assert records[-1]["step"] == 1600
    assert [record["step"] for record in records] == sorted(record["step"] for record in records)
    learned = [record for record in records if "loss_total_mean" in record]
    assert learned and all("policy_lag_mean" in record for record in learned)
    assert all(record["grad_norm_max"] >= record["grad_norm_mean"] > 0 for record in learned)
    assert all(record["behaviour_kl_max"] >= record["behaviour_kl_mean"] >= 0 for record in learned)
    returns = [record["episode_return_mean"] for record in records if "episode_return_mean" in record]
    assert returns and all(1 <= value <= 500 for value in returns)  # CartPole episodes: 1..500 steps of +1
    # the games that act with the policy itself (game 0 of each actor: the others hold actions)
    policy_returns = [record["policy_return_mean"] for record in records if "policy_return_mean" in record]
    assert policy_returns and all(1 <= value <= 500 for value in policy_returns)
    checkpoint = load_checkpoint(latest_checkpoint(smoke_run / "checkpoints"))
    assert checkpoint["counters"]["step"] == 1600
    assert checkpoint["counters"]["updates"] == 1600 // 80
    assert {"optimizer", "updates"} <= set(checkpoint["learner"])
    assert {"python", "numpy", "torch"} <= set(checkpoint["rng"])
    offline_runs = list((smoke_run / "wandb").glob("offline-run-*/*.wandb"))
    assert len(offline_runs) == 1 and offline_runs[0].stat().st_size > 0


def test_smoke_run_records_rollouts_into_the_run_directory(smoke_run: Path) -> None:
    import imageio.v3 as imageio

    videos = sorted((smoke_run / "videos").glob("step_*.gif"))
    assert videos, "no rollout was recorded"
    assert videos[-1].name == "step_000000001600.gif"  # the final weights are always recorded
    assert all(2 <= imageio.imread(path, index=None).shape[0] <= 11 for path in videos)  # <= 10 steps + the end
    assert (smoke_run / "logs" / "train.log").read_text().count("recorded a rollout") == len(videos)
    assert list((smoke_run / "wandb").glob("offline-run-*/files/media/videos/rollout_*.gif"))


def test_smoke_run_keeps_its_best_policy(smoke_run: Path) -> None:
    best = load_checkpoint(smoke_run / "checkpoints" / "best.pt")
    counters = best["counters"]
    scores = [record["best_score"] for record in metrics(smoke_run) if "best_score" in record]
    assert scores == sorted(scores) and counters["best_score"] == scores[-1]  # only ever improves
    assert 1 <= counters["best_score"] <= 500 and 0 < counters["best_step"] <= 1600  # CartPole: mean return
    assert load_checkpoint(latest_checkpoint(smoke_run / "checkpoints"))["counters"]["best_score"] == scores[-1]
    log = (smoke_run / "logs" / "train.log").read_text()
    assert f"best policy: mean training return {counters['best_score']:.3f} over 10 episodes" in log
    assert f"--checkpoint {smoke_run} --best" in log


def test_resume_continues_the_step_counter_and_curves(smoke_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    before = load_checkpoint(latest_checkpoint(copy / "checkpoints"))
    result = run("launch.train", "--resume", str(copy), "--total-steps", "2400")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming at step 1,600" in result.stdout
    after = load_checkpoint(latest_checkpoint(copy / "checkpoints"))
    assert after["counters"]["step"] == 2400
    assert after["counters"]["updates"] == before["counters"]["updates"] + 10
    assert after["counters"]["actor_generation"] >= before["counters"]["actor_generation"] + 2
    assert after["counters"]["best_score"] >= before["counters"]["best_score"]  # the earlier best still counts
    steps = [record["step"] for record in metrics(copy)]
    assert steps == sorted(steps) and steps[-1] == 2400
    assert any(1600 < step < 2400 for step in steps) or steps.count(2400) == 1


def test_resume_refuses_to_change_what_is_learned(smoke_run: Path) -> None:
    result = run("launch.train", "--resume", str(smoke_run), "--learning-rate", "0.1")
    assert result.returncode == 2
    assert "learning_rate" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_final_checkpoint_and_leaves_no_orphans(tmp_path: Path, signum: int) -> None:
    process = LiveProcess("launch.train", *TINY, "--total-steps", "100000000", "--runs-root", str(tmp_path),
                          "--run-name", "run", "--checkpoint-interval-s", "1000", "--time-limit-s", "600")
    try:
        process.wait_for(r"actor pids", timeout=90)
        process.wait_for(r" [1-9][\d,]*/[\d,]+ steps", timeout=90)  # it has learned something
        pids = actor_pids(process.output)
        process.process.send_signal(signum)
        code = process.finish(timeout=60)
    finally:
        process.kill()
    assert code == 0, process.output
    assert f"stopped by {signal.Signals(signum).name}" in process.output
    left = re.search(r"continue with --resume \S+ --time-limit-s (\d+) \(what was left", process.output)
    assert left and 400 < int(left.group(1)) < 600, process.output
    assert wait_until_gone(pids) == []
    checkpoint = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert checkpoint["counters"]["step"] > 0


def test_killing_the_learner_outright_takes_its_actors_down(tmp_path: Path) -> None:
    process = LiveProcess("launch.train", *TINY, "--total-steps", "100000000", "--runs-root", str(tmp_path),
                          "--run-name", "run")
    try:
        process.wait_for(r"actor pids", timeout=90)
        pids = actor_pids(process.output)
        process.process.send_signal(signal.SIGKILL)  # no handler runs: the kernel kills the actors
        process.finish(timeout=30)
    finally:
        process.kill()
    assert wait_until_gone(pids) == []


def test_time_limit_stops_with_a_final_checkpoint_and_ends_the_linear_schedule(tmp_path: Path) -> None:
    result = run("launch.train", *TINY, "--total-steps", "100000000", "--time-limit-s", "3", "--lr-schedule", "linear",
                 "--runs-root", str(tmp_path), "--run-name", "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "time limit of 3 s reached" in result.stdout
    assert "(time limit)" in result.stdout  # the ETA follows the clock, not the 100 M steps
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is not None
    # the steps alone would leave the rate at ~1e-3; the clock takes it to 0 by the end
    records = metrics(tmp_path / "run")
    rates = [record["learning_rate_mean"] for record in records if "learning_rate_mean" in record]
    assert len(rates) >= 2 and rates == sorted(rates, reverse=True)
    assert rates[0] < 0.001 and rates[-1] < 0.25 * 0.001
    # resumed with 3 s more: the run now ends at its >= 3 s so far plus 3, so the rate goes on
    # from at most half (instead of starting again near 1e-3) and falls to 0 again
    resumed = run("launch.train", "--resume", str(tmp_path / "run"), "--time-limit-s", "3")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    later = [record["learning_rate_mean"] for record in metrics(tmp_path / "run")[len(records):]
             if "learning_rate_mean" in record]
    assert later and later[0] <= 0.5 * 0.001 and later[-1] < 0.25 * 0.001


def test_a_killed_actor_is_reported_and_replaced_and_the_run_finishes(tmp_path: Path) -> None:
    process = LiveProcess("launch.train", *TINY, "--total-steps", "4000", "--runs-root", str(tmp_path),
                          "--run-name", "run")
    try:
        process.wait_for(r"actor pids", timeout=90)
        victim = actor_pids(process.output)[0]
        os.kill(victim, signal.SIGKILL)
        process.wait_for(rf"pid {victim}\) was killed by SIGKILL; replacing it", timeout=30)
        code = process.finish(timeout=150)
    finally:
        process.kill()
    assert code == 0, process.output
    assert "finished 4,000 steps" in process.output
    assert not pid_alive(victim)
    assert metrics(tmp_path / "run")[-1]["actor_restarts"] == 1


def test_a_hung_actor_is_killed_and_replaced(tmp_path: Path) -> None:
    process = LiveProcess("launch.train", *TINY, "--total-steps", "100000000", "--runs-root", str(tmp_path),
                          "--run-name", "run", "--actor-timeout-s", "2")
    try:
        process.wait_for(r" [1-9][\d,]*/[\d,]+ steps", timeout=90)  # the learner is training
        first, victim = actor_pids(process.output)
        os.kill(victim, signal.SIGSTOP)  # alive but silent, like a deadlocked env
        # Actor 0 alone can feed the learner, so on a loaded machine actor 1 may not have sent
        # its first unroll yet; it is then given the start-up grace instead of --actor-timeout-s.
        process.wait_for(rf"actor 1 \(pid {victim}\) sent nothing for \d+ s while it had a free buffer",
                         timeout=STARTUP_GRACE_S + 60)
        process.wait_for(rf"actor 1 \(pid {victim}\) was killed by SIGKILL; replacing it", timeout=30)
        process.process.send_signal(signal.SIGTERM)
        code = process.finish(timeout=60)
    finally:
        process.kill()
    assert code == 0, process.output
    assert "stopped by SIGTERM" in process.output
    assert wait_until_gone([first, victim]) == []


def test_minigrid_with_its_mission_string_trains_evaluates_and_records_without_wrappers(tmp_path: Path) -> None:
    pytest.importorskip("minigrid")
    result = run("launch.train", *TINY, "--env", "MiniGrid-MemoryS7-v0", "--env-package", "minigrid",
                 "--num-actors", "1", "--total-steps", "400", "--runs-root", str(tmp_path), "--run-name", "run",
                 timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    notice = "observation key 'mission' (MissionSpace) is not encoded by the agent; it is left out"
    assert result.stdout.count(notice) == 1, result.stdout  # once, although the actor builds the agent too
    assert re.search(r"finished [\d,]+ steps", result.stdout), result.stdout
    evaluated = run("launch.evaluate", "--checkpoint", str(tmp_path / "run"), "--episodes", "2")
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert '"episodes": 2' in evaluated.stdout
    recorded = run("launch.watch", "--checkpoint", str(tmp_path / "run"), "--record", str(tmp_path / "memory.gif"),
                   "--episodes", "1", "--max-steps", "3")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert (tmp_path / "memory.gif").stat().st_size > 0


def test_an_env_that_raises_is_reported_and_its_actor_replaced(tmp_path: Path) -> None:
    marker = tmp_path / "raised"
    result = run("launch.train", *TINY, "--env", "test/RaiseOnceCartPole-v0", "--env-package",
                 "tests.launch.faulty_envs", "--env-kwargs", f'{{"marker": "{marker}", "raise_after": 20}}',
                 "--total-steps", "1600", "--runs-root", str(tmp_path), "--run-name", "run", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert marker.exists(), result.stdout
    assert "raised an exception: RuntimeError: deliberate env failure" in result.stdout, result.stdout
    assert "replacing it (restart 1 of" in result.stdout, result.stdout
    assert "finished 1,600 steps" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("env_id", "code", "error"),
    [
        ("test/BrokenResetCartPole-v0", 1, "RuntimeError: deliberate reset failure for the fault test"),
        # made in the launcher, not in a spawned actor: the launcher's bad-input class
        ("test/ActorOnlyFailureCartPole-v0", 2, "EnvConfigError: could not make 'test/ActorOnlyFailureCartPole-v0'"),
    ],
)
def test_an_actor_that_fails_the_same_way_at_start_up_stops_the_run_at_once(tmp_path: Path, env_id: str, code: int,
                                                                            error: str) -> None:
    result = run("launch.train", *TINY, "--env", env_id, "--env-package", "tests.launch.faulty_envs",
                 "--num-actors", "1", "--total-steps", "1600", "--runs-root", str(tmp_path), "--run-name", "run",
                 timeout=120)
    assert result.returncode == code, result.stdout + result.stderr
    assert "replacing it (restart 1 of at most 20)" in result.stdout, result.stdout
    assert "restart 2 of" not in result.stdout, result.stdout
    final = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(final) == 1 and final[0].startswith(
        "error: actor 0 died before its first unroll with the same error on two starts in a row"), result.stdout
    assert error in final[0]
    assert "nothing was learned: removing the run directory" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no run directory that could be neither resumed nor reused


def test_a_vector_env_that_rejects_the_actors_seeds_trains_on_single_envs(tmp_path: Path) -> None:
    result = run("launch.train", *TINY, "--env", "test/NarrowSeedCartPole-v0", "--env-package",
                 "tests.launch.faulty_envs", "--num-actors", "1", "--total-steps", "800", "--runs-root",
                 str(tmp_path), "--run-name", "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("games of test/NarrowSeedCartPole-v0: Gymnasium's SyncVectorEnv over single envs, not its "
            "vector_entry_point") in result.stdout
    assert "finished 800 steps" in result.stdout and "replacing it" not in result.stdout, result.stdout
    assert metrics(tmp_path / "run")[-1]["actor_restarts"] == 0


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    result = run("launch.train", *TINY, "--env", "test/NanRewardCartPole-v0", "--env-package",
                 "tests.launch.faulty_envs", "--env-kwargs", '{"nan_after": 150}', "--num-actors", "1",
                 "--use-previous-action-reward", "false",  # the NaN reaches the loss, not the acting policy
                 "--envs-per-actor", "8", "--total-steps", "100000", "--checkpoint-interval-s", "0.01",
                 "--runs-root", str(tmp_path), "--run-name", "run", timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the loss is nan" in result.stdout and "last good checkpoint is" in result.stdout
    saved = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert saved, "the run had learned from clean unrolls and checkpointed before the NaN"
    checkpoint = load_checkpoint(saved[-1])
    assert all(torch.isfinite(value).all() for value in checkpoint["model"].values())
    assert checkpoint["counters"]["step"] < 100000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--env", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
        (["--env", "test/TextObservation-v0", "--env-package", "tests.launch.faulty_envs"], "Text"),
        (["--env", "test/MissionOnly-v0", "--env-package", "tests.launch.faulty_envs"],
         "none of its parts can be encoded ('mission' (Text))"),
        (["--env-kwargs", '{"no_such_option": 1}'], "no_such_option"),
        (["--env-package", "no_such_module_xyz"], "no_such_module_xyz"),
    ],
)
def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = run("launch.train", *TINY, "--runs-root", str(tmp_path), *arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--batch-size", "0"], "batch_size must be an integer >= 1, got 0"),
        (["--batch-size", "6"], "batch_size must be a multiple or a divisor of envs_per_actor (4), got 6"),
        (["--discount", "1.5"], "discount must be in [0, 1], got 1.5"),
        (["--core", "gru"], "invalid choice: 'gru'"),
        (["--env-kwargs", "[1]"], "--env-kwargs must be a JSON object"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = run("launch.train", *TINY, "--runs-root", str(tmp_path), *arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_resume_of_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    result = run("launch.train", "--resume", str(tmp_path / "something"))
    assert result.returncode == 2
    assert "is not a run directory" in result.stderr
    assert list((tmp_path / "something").iterdir()) == []


def test_boxworld_rmc_preset_smoke_run_then_evaluate(tmp_path: Path) -> None:
    result = run("launch.train", "--preset", "boxworld-easy-rmc", "--total-steps", "640", "--num-actors", "1",
                 "--envs-per-actor", "8", "--batch-size", "8", "--unroll-length", "20", "--hidden-size", "32",
                 "--core-kwargs", '{"mem_slots": 2, "head_size": 16, "num_heads": 2, "gate_style": "memory"}',
                 "--env-kwargs", '{"max_steps": 30}', "--runs-root", str(tmp_path), "--run-name", "box")
    assert result.returncode == 0, result.stdout + result.stderr
    records = metrics(tmp_path / "box")
    assert records[-1]["step"] == 640
    assert any("success_rate" in record for record in records), "Box-World reports success per episode"
    evaluation = run("launch.evaluate", "--checkpoint", str(tmp_path / "box"), "--episodes", "6")
    assert evaluation.returncode == 0, evaluation.stderr
    summary = json.loads(evaluation.stdout.strip().splitlines()[-1])
    assert summary["env"] == "rmc/BoxWorldEasy-v0" and summary["episodes"] == 6
    assert summary["success_rate"] is not None and summary["mean_length"] <= 30
