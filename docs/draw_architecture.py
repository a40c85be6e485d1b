"""Draws docs/architecture.png, the data path of launch.train (matplotlib; the `plot` extra).

    .venv/bin/python docs/draw_architecture.py [--out docs/architecture.png]

Each box names the file and function of one step, as docs/architecture.md does in text;
edit the boxes here when the code moves, and rerun.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend)
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

CODE = "#1f4e9e"
BANDS = {  # name: (x, y, width, height, face colour, label)
    "actor": (0.2, 6.55, 10.6, 2.45, "#e8f0fb", "ACTOR PROCESS\nx num_actors"),
    "shared": (0.2, 3.75, 10.6, 2.6, "#fbf3e0", "SHARED\n(local backend)"),
    "learner": (0.2, 0.2, 10.6, 3.35, "#e9f5e9", "LEARNER PROCESS\n(GPU when there is one)"),
    "ray": (11.0, 3.75, 3.4, 5.25, "#f9e6e6", "--backend ray"),
    "run": (11.0, 0.2, 3.4, 3.35, "#efeaf7", "RUN_DIR"),
}
BOXES = {  # name: (x, y, width, height, title, code, text)
    "env": (0.8, 6.8, 2.6, 1.8, "vector env (E games)", "launch/impala/env_factory.py:\nmake_vector_env",
            "own vector_entry_point (batch-native)\nor Gymnasium SyncVectorEnv;\nNEXT_STEP autoreset;\nRecordEpisodeStatistics"),
    "unroll": (4.4, 6.8, 2.6, 1.8, "one unroll, T steps", "launch/impala/rollout.py:\nRollout.unroll",
               "writes obs, reset, previous action\nand reward for t = 0..T; action,\nlog-prob, reward, terminated,\ntruncated for t = 0..T-1"),
    "policy": (8.0, 6.8, 2.5, 1.8, "CPU policy copy", "agents/policy.py:\nActorCritic.act",
               "ActorCritic.unroll with T = 1:\nencoder -> core -> heads\n-> sampled action, log-prob,\n    next core state"),
    "slots": (0.8, 4.0, 4.1, 1.6, "unroll slots", "launch/impala/buffers.py: RolloutBuffers",
              "per slot (one unroll of E games):\nobs, reset, previous action / reward [T+1, E]\n"
              "action, log-prob, reward, terminated,\ntruncated [T, E]; core state at obs[0]; policy_version"),
    "pool": (5.2, 4.0, 2.6, 1.6, "slot routing, liveness", "launch/impala/actor_pool.py:\nActorPool",
             "one private pipe per actor:\nactor -> learner: ('unroll',\n  slot, episodes)\n"
             "learner -> actor: ('free', slot)\nreplaces dead or hung actors"),
    "weights": (8.0, 4.0, 2.5, 1.6, "published weights", "launch/impala/shared_weights.py:\nSharedWeights",
                "shared CPU tensors and a\nsequence counter (seqlock);\nversion = learner update count"),
    "batch": (0.8, 0.95, 2.2, 1.9, "batch of K slots", "RolloutBuffers.gather",
              "-> Trajectory (time-major)\n   obs [T+1, B, ...]\n   action, reward [T, B]\n"
              "-> core state at obs[0]\nsplit_batch when B < E;\nslots released after the copy"),
    "loss": (3.3, 0.95, 2.8, 1.9, "IMPALA loss", "agents/loss.py: impala_loss",
             "ActorCritic.unroll over obs[0..T]\nagents/vtrace.py:\n  from_importance_weights\n"
             "PopArt-scaled value error\npolicy + baseline + entropy\n(valid transitions only)"),
    "steps": (6.4, 0.95, 2.2, 1.9, "gradient steps", "launch/impala/learner.py:\nLearner.update",
              "x num_epochs: loss,\nbackward, clip grad norm,\nAdam step; PopArt and\nobservation statistics\nmove towards the batch"),
    "publish": (8.9, 0.95, 1.7, 1.9, "publish", "ActorPool.\npublish_weights",
                "SharedWeights.publish\n(state_dict, updates);\npolicy lag logged"),
    "rayactor": (11.3, 7.25, 2.8, 1.2, "Ray actor", "launch/impala/ray_actor.py:\nRolloutActor.produce",
                 "the same Rollout.unroll into a\nprivate one-slot buffer"),
    "store": (11.3, 5.85, 2.8, 0.8, "Ray object store", "(unroll arrays, weights)", ""),
    "rayside": (11.3, 4.0, 2.8, 1.35, "learner side", "launch/impala/ray_pool.py:\nRayActorPool.poll",
                "ray.wait / ray.get -> write_slot;\npublish_weights: ray.put per update"),
    "rundir": (11.3, 2.42, 2.8, 0.92, "launch/impala/run_dir.py: RunDir", "config.json, logs/train.log",
               "metrics.jsonl (and wandb with --wandb)"),
    "ckpt": (11.3, 1.35, 2.8, 0.97, "checkpoints/", "launch/impala/checkpoint.py", "save_checkpoint;\nbest.pt: BestTracker"),
    "videos": (11.3, 0.28, 2.8, 0.97, "videos/step_<N>.gif", "launch/viewer/recorder.py",
               "RolloutRecorder -> (child)\nviewer.session.record_rollout"),
}


def centre(name: str, side: str) -> tuple[float, float]:
    x, y, width, height = BOXES[name][:4]
    return {"left": (x, y + height / 2), "right": (x + width, y + height / 2), "top": (x + width / 2, y + height),
            "bottom": (x + width / 2, y)}[side]


def arrow(axes: plt.Axes, start: tuple[float, float], end: tuple[float, float], label: str = "",
          colour: str = "#222222", offset: tuple[float, float] = (0.0, 0.12)) -> None:
    axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=colour, linewidth=1.2))
    if label:
        axes.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], label, ha="center",
                  va="center", fontsize=7, color=colour, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})


def draw(out: Path) -> Path:
    figure, axes = plt.subplots(figsize=(16, 9.4))
    axes.set_xlim(0, 14.6)
    axes.set_ylim(0, 9.2)
    axes.axis("off")
    for x, y, width, height, colour, label in BANDS.values():
        axes.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.02,rounding_size=0.12",
                                      facecolor=colour, edgecolor="#888888", linestyle="--"))
        if label.startswith("--backend") or label == "RUN_DIR":
            axes.text(x + 0.15, y + height / 2, label, rotation=90, ha="center", va="center", fontsize=9,
                      fontweight="bold", color="#444444")
        else:
            axes.text(x + 0.3, y + height / 2, label, rotation=90, ha="center", va="center", fontsize=9,
                      fontweight="bold", color="#444444")
    for x, y, width, height, title, code, text in BOXES.values():
        axes.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.02,rounding_size=0.06",
                                      facecolor="white", edgecolor="#333333"))
        axes.text(x + width / 2, y + height - 0.14, title, ha="center", va="top", fontsize=8.5, fontweight="bold")
        lines_in_code = code.count("\n") + 1
        axes.text(x + width / 2, y + height - 0.4, code, ha="center", va="top", fontsize=7, color=CODE,
                  family="monospace")
        if text:
            axes.text(x + 0.1, y + height - 0.5 - 0.17 * lines_in_code, text, ha="left", va="top", fontsize=6.5,
                      family="monospace")
    axes.text(5.5, 8.82, "launch/impala/actor.py: run_actor -> ActorLoop.run: take a free slot, read newer weights, "
              "Rollout.unroll into the slot, send its index", ha="center", fontsize=7.5, color=CODE, family="monospace")
    axes.text(0.8, 0.55, "launch/train.py: Trainer.run_loop", fontsize=8, color=CODE, family="monospace",
              fontweight="bold")
    axes.text(0.8, 0.3, "every log_interval_s: metrics + best.pt check;  every checkpoint_interval_s: checkpoint;  "
              "every record_interval_s: video", fontsize=6.5, color="#5a3d8a")
    # the actor's loop
    arrow(axes, (3.4, 8.1), (4.4, 8.1), "obs, reward,\nterminated, truncated", offset=(0, 0.28))
    arrow(axes, (4.4, 7.2), (3.4, 7.2), "action", offset=(0, 0.18))
    arrow(axes, (7.0, 8.1), (8.0, 8.1), "obs, previous action,\nreward, reset, state", offset=(0, 0.28))
    arrow(axes, (8.0, 7.2), (7.0, 7.2), "action, log-prob", offset=(0, 0.18))
    # actor -> shared -> learner
    arrow(axes, (5.0, 6.8), (3.6, 5.6), "write slot", offset=(-0.35, 0.0))
    arrow(axes, (6.2, 6.8), (6.5, 5.6), "send index", colour="#8a5a00", offset=(0.5, 0.0))
    arrow(axes, centre("weights", "top"), (9.25, 6.8), "read before\neach unroll", colour="#1d7a1d", offset=(0.55, 0.0))
    arrow(axes, (1.9, 4.0), (1.9, 2.85), "take K ready slots", colour="#8a5a00", offset=(0.75, 0.0))
    arrow(axes, (6.5, 4.0), (7.5, 2.85), "poll: ready slots,\nended episodes", colour="#8a5a00", offset=(0.75, 0.0))
    arrow(axes, (9.75, 2.85), (9.25, 4.0), "publish", colour="#1d7a1d", offset=(0.45, 0.0))
    arrow(axes, centre("batch", "right"), centre("loss", "left"))
    arrow(axes, centre("loss", "right"), centre("steps", "left"))
    arrow(axes, centre("steps", "right"), centre("publish", "left"))
    # Ray
    arrow(axes, (12.2, 7.25), (12.2, 6.65), colour="#8a5a00")
    arrow(axes, (12.2, 5.85), (12.2, 5.35), colour="#8a5a00")
    arrow(axes, (13.2, 5.35), (13.2, 5.85), colour="#1d7a1d")
    arrow(axes, (13.2, 6.65), (13.2, 7.25), "ref, version", colour="#1d7a1d", offset=(0.5, 0.0))
    axes.text(12.7, 8.75, "replaces the shared memory and pipes", ha="center", fontsize=7.5, style="italic")
    # run directory
    arrow(axes, (7.55, 0.34), (11.3, 0.6), colour="#5a3d8a")
    axes.text(12.7, 3.43, "read by evaluate, watch, plot, launch.tools", ha="center", fontsize=6.5, style="italic")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=130, bbox_inches="tight")
    plt.close(figure)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("architecture.png"))
    print(f"wrote {draw(parser.parse_args().out)}")
