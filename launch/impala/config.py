"""The training configuration: one typed dataclass, its presets, and the CLI built from it.

Every field of ``TrainConfig`` carries a docstring; ``build_parser`` reads those
docstrings (from the source, as tyro does) so ``python -m launch.train --help`` documents
every flag. A preset (``--preset boxworld-rmc``) fills in a group of fields; flags given
on the command line override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from agents.policy import CORE_PRESETS
from launch.cli import BadInput, add_dataclass_arguments


class ConfigError(BadInput):
    """A configuration value (or combination) that cannot run; the message says why."""


@dataclass
class TrainConfig:
    """Everything that defines one IMPALA training run (Espeholt et al. 2018)."""

    # --- environment -------------------------------------------------------------------
    env: str = "rmc/BoxWorldEasy-v0"
    """Gymnasium id of the environment (e.g. rmc/BoxWorld-v0, CartPole-v1)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments passed to the environment constructor, as a JSON object."""
    env_package: list[str] = field(default_factory=list)
    """Python modules to import before making the env (they register their ids)."""
    wrappers: list[str] = field(default_factory=list)
    """Per-game wrappers as 'module:callable' (forces Gymnasium's SyncVectorEnv)."""

    # --- agent -------------------------------------------------------------------------
    core: Literal["rmc", "lstm", "none"] = "rmc"
    """Recurrent core of the agent: the Relational Memory Core, an LSTM, or none."""
    core_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the core (e.g. mem_slots, head_size, num_heads), as JSON."""
    encoder: Literal["auto", "small", "deep"] = "auto"
    """Observation encoder; 'auto' picks one from the observation space."""
    hidden_size: int = 256
    """Width of the agent's hidden layers."""
    use_previous_action_reward: bool = True
    """Feed the previous action and reward to the core (IMPALA's optional inputs). With its own
    last action as an input, a recurrent policy on Acrobot settled into runs of one action and
    did not learn to swing up (-489 at 300K frames), and learned without it (-91, one seed;
    docs/learning.md). It stays on: without it the policy without a core failed Acrobot in both
    seeds it passed with it (one action held from 60K frames on)."""
    core_output_norm: bool = True
    """Layer-normalise the RMC's output before the heads (keeps bootstrapped values from diverging)."""
    lstm_output_norm: bool = True
    """Layer-normalise the LSTM's output before the heads (LSTM core only), as core_output_norm
    does the RMC's: the untrained LSTM's output has a standard deviation of about 0.03, so a
    step moves the heads' outputs little and, without it, the policy stayed near uniform for
    the first 70-115K frames of CartPole (docs/learning.md). The presets keep it off (they
    were measured without it)."""
    mlp_activation: Literal["relu", "tanh"] = "relu"
    """Activation of the agent's vector MLPs (the vector encoder, the LSTM / feed-forward torso
    and the head MLP); the image encoder keeps ReLU (agents/policy.py)."""
    orthogonal_init: bool = False
    """Initialise the encoder, the torso and the heads as PPO's reference implementations do:
    orthogonal weights (gain sqrt(2); the action head 0.01, the value head 1) and zero biases;
    off: PyTorch's defaults with the action head scaled by 0.01 (agents/policy.py)."""
    rmc_gate_input_pooling: Literal["flatten", "mean"] = "mean"
    """How the RMC's gates read its input rows: 'mean' (one Linear over the mean row; keeps Adam
    from swinging the gates shut) or 'flatten' (the reference: one Linear over all rows)."""

    # --- actors ------------------------------------------------------------------------
    num_actors: int = 2
    """Number of actor processes (each steps a batch of games on the CPU)."""
    envs_per_actor: int = 32
    """Games stepped together by one actor (a small batch is mostly per-step overhead:
    benchmarks/games_per_actor.py)."""
    unroll_length: int = 20
    """Transitions T per unroll."""
    batch_size: int = 32
    """Unrolls (one per game) per learner update: a multiple of envs_per_actor (whole actor
    buffers per update), or a divisor of it (each buffer's games split over several updates)."""
    slots_per_actor: int = 0
    """Unroll buffers each local actor fills in turn (it writes one while the learner holds or
    has queued the others). 0: one each when a CPU learner sets the pace and the actors
    outnumber a batch's unrolls (each slot queued ahead of a batch adds an update to its
    policy lag: with two per actor, runs on 2 cores trained on data 4 updates old), else one
    more than an even share of a batch, so no actor waits for a fast learner
    (launch/impala/buffers.py). The Ray backend bounds its requests by ray_max_inflight."""
    backend: Literal["local", "ray"] = "local"
    """Where the actors run: processes on this machine, or Ray actors spread over a Ray
    cluster (pip install '.[ray]'; see docs/ray.md)."""
    ray_address: str | None = None
    """Ray cluster to join with --backend ray (HOST:PORT of the head); unset: start a
    private Ray instance on this machine, on 127.0.0.1 only."""
    ray_max_inflight: int = 2
    """Unroll requests each Ray actor may have outstanding (backpressure: bounds the
    object store and the policy lag)."""
    ray_actor_cpus: float = 1.0
    """CPUs a Ray actor reserves on its node (Ray places actors by these)."""

    # --- learner -----------------------------------------------------------------------
    total_steps: int = 1_000_000
    """Environment steps (frames) to train for."""
    time_limit_s: float | None = None
    """Also stop (with a final checkpoint) after this many seconds of this invocation."""
    optimizer: Literal["rmsprop", "adam", "radam"] = "adam"
    """Optimiser of the learner (IMPALA used RMSProp; with PyTorch's RMSProp on the summed
    loss the RMC agent diverged in our runs, see the note above the presets). 'radam':
    rectified Adam (Liu et al. 2020), which takes momentum steps while Adam's estimate of the
    gradients' second moment rests on too few of them; Adam's first steps move every weight
    by the full learning rate, and the policy with it (sampled KL of 0.1-1.0 between the
    actors' and the learner's policy in the first seconds of a run, docs/learning.md). Takes
    adam_beta1, adam_beta2 and adam_eps."""
    learning_rate: float = 1e-3
    """Initial learning rate (IMPALA's Atari setting: 6e-4 with RMSProp)."""
    lr_schedule: Literal["constant", "linear"] = "linear"
    """'linear' anneals the learning rate to 0 at the end of the run: at total_steps, as in IMPALA,
    or when time_limit_s runs out if that comes first, so that a run cut by the clock still ends at
    rate 0 (a deviation from IMPALA, whose schedule counts frames only). A resumed run's clock
    counts its earlier training time too: give --time-limit-s the time still to train and the
    rate goes on from where it stopped."""
    rmsprop_alpha: float = 0.99
    """RMSProp smoothing constant."""
    rmsprop_eps: float = 0.01
    """RMSProp epsilon (IMPALA uses 0.01)."""
    rmsprop_momentum: float = 0.0
    """RMSProp momentum."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    adam_beta1: float = 0.9
    """Adam's decay of its running mean of the gradient."""
    adam_beta2: float = 0.999
    """Adam's decay of its running mean of the squared gradient. With adam_beta2 > adam_beta1 a
    gradient that grows faster than its recent history can move a weight by up to about
    (1 - beta1) / sqrt(1 - beta2) times the learning rate in one step (3.2x at the defaults);
    equal values bound every step by the learning rate (Dohare et al. 2023, "Overcoming policy
    collapse in deep reinforcement learning")."""
    grad_norm_clip: float = 40.0
    """Global gradient-norm clip."""
    discount: float = 0.99
    """Discount factor gamma."""
    baseline_cost: float = 0.5
    """Weight of the value loss."""
    entropy_cost: float = 0.01
    """Weight of the entropy bonus."""
    clip_rho_threshold: float = 1.0
    """V-trace rho-bar."""
    clip_pg_rho_threshold: float = 1.0
    """V-trace rho-bar of the policy-gradient advantage."""
    vtrace_lambda: float = 1.0
    """V-trace's lambda (c_t = lambda * min(1, rho_t)): below 1 it weighs near rewards more,
    trading the targets' variance for bias as GAE's lambda does; 1: V-trace as in IMPALA."""
    reward_clip: float | None = None
    """Clip rewards to [-reward_clip, reward_clip] in the loss; none when unset."""
    pg_ratio_clip: float | None = 0.2
    """PPO's clip c of the ratio pi/mu (learner's policy over the actors') in the policy term,
    on the V-trace advantage (asynchronous PPO, as Sample Factory's APPO; agents/loss.py); none:
    IMPALA's V-trace policy gradient."""
    action_hold_probability: float = 0.8
    """Exploration that persists in time (launch/impala/exploration.py): with this probability
    an actor repeats a game's previous action instead of sampling the policy, falling linearly
    to 0 over the first --action-hold-steps frames; the behaviour probability of the mixture
    is recorded, so V-trace and the clip correct for it. Discrete action spaces only (other
    spaces act on the policy's own samples, with a notice); 0: the policy's own samples
    everywhere."""
    action_hold_steps: int = 200_000
    """Frames over which --action-hold-probability falls linearly to 0 (the run's total_steps
    when fewer), as DQN anneals its epsilon over a fixed number of frames whatever the run's
    length; after them the actors act on the policy alone. 0: over the whole run."""
    action_hold_spread: bool = True
    """Spread --action-hold-probability p over each actor's games, as Ape-X spreads its
    actors' exploration rates: game i of E holds with probability p * i / (E - 1), so one game
    acts on the policy alone, one holds with p, and the others in between (E = 1: p); false:
    every game holds with p."""
    pg_clip_reference: Literal["update", "behaviour"] = "behaviour"
    """What --pg-ratio-clip clips the ratio against: 'behaviour', the actors' policy (Sample
    Factory's APPO), or 'update', the learner's own policy at the start of each update, with
    the actors' policy corrected by a separate importance weight truncated at
    clip_pg_rho_threshold (decoupled PPO, Hilton et al. 2021; agents/loss.py). The actors'
    data is several updates old (4 updates in the learning suite's runs on 2 cores): against
    it, 40-60% of the early updates' samples were already outside the clip, which then bounds
    the lag rather than the update. 'update' lost on CartPole (the policy without a core
    evaluated 98-445 against 500 with 'behaviour'): each update moved further and the learner
    drifted from its old data (docs/learning.md, candidate E); fresher data (slots_per_actor)
    was the cure that held."""
    loss_reduction: Literal["sum", "mean"] = "mean"
    """Sum the loss over time and batch (IMPALA) or average it over valid transitions."""
    value_normalization: Literal["popart", "none"] = "popart"
    """'popart': the value head predicts values normalised by running statistics of the V-trace
    targets, rescaled so its outputs are preserved when they change, and the value error and the
    policy-gradient advantages are divided by their scale (Hessel et al. 2019), so one set of loss
    weights serves every reward scale (agents/normalization.py). 'none': IMPALA's raw values."""
    observation_normalization: bool = False
    """Normalise vector (non-image Box) observations by running per-feature statistics, as
    SB3's VecNormalize and Sample Factory's input normalisation do (agents/normalization.py);
    images are left as they are."""
    image_normalization: bool = False
    """Normalise image observations per channel by running statistics (agents/encoders.py): an
    env that packs symbols into uint8 images (MiniGrid: object, colour and state indices of
    0-10) reaches the network at unit scale instead of 1/255 of it."""
    image_encoding: Literal["pixels", "symbols", "auto"] = "pixels"
    """How uint8 image observations are read (agents/encoders.py). 'pixels': scaled to [0, 1].
    'symbols': each channel's value is a category with a learned embedding, for grids of
    symbols such as MiniGrid's (object, colour and state indices). 'auto': symbols for the
    MiniGrid envs (an entry point in the minigrid package) whose image has at most
    SMALL_IMAGE_MAX_CELLS cells (their symbolic views, not the RGB renderings of
    minigrid's RGBImg wrappers), pixels otherwise."""
    advantage_normalization: bool = True
    """Normalise the policy-gradient advantages of each batch (each minibatch) to mean 0 and
    standard deviation 1 over its valid transitions, as PPO and Sample Factory do, so the
    entropy cost weighs the same against them in every env. Off: divide them by PopArt's
    scale (Hessel et al. 2019; by 1 with --value-normalization none): the spread of the value
    targets over the last ~100 updates, the drift of their mean included, about 30 on CartPole
    while the value errors were a tenth to a fifth of that, so the advantages weighed little
    against the entropy bonus and the LSTM agent missed 475 in 200K frames in 3 of 3 seeds
    (with lstm_output_norm: 3 of 3 passed; docs/learning.md). While the rewards carry no
    signal the normalised advantages are noise at unit scale: on Acrobot such steps drove one
    of two runs' policies to a single action within 40K frames. The presets keep it off
    (they were measured without it)."""
    target_kl: float | None = None
    """Stop a batch's epochs early once the estimated KL divergence between the actors' policy
    and the learner's (behaviour_kl) exceeds this; the first epoch is always taken. Unset: all
    num_epochs."""
    num_epochs: int = 4
    """Gradient steps on each batch (V-trace recomputed each time, as Sample Factory's APPO
    epochs): more learning per frame, at that many times the learner's work per frame; more
    than 1 wants --pg-ratio-clip."""
    lr_kl_target: float | None = None
    """Adapt the learning rate to the policy's movement: after each update, when the mean
    sampled KL divergence between the actors' policy and the learner's (behaviour_kl) is above
    twice this, the rate is divided by 1.5, and when it is below half of it, multiplied by 1.5
    (up to the rate the schedule gives); as rl_games' 'adaptive' schedule, on IMPALA's
    actor-learner divergence. Adam moves every weight by about the learning rate whatever the
    size of its gradient, so the same rate moves policies of different widths, depths and
    inputs by very different amounts; the KL is the step size that means the same for all.
    Unset: the schedule's rate."""
    num_minibatches: int = 1
    """Gradient steps per epoch: each epoch splits the batch's unrolls at random into this
    many minibatches (whole unrolls, so each keeps its stored core state) and steps on each,
    as PPO does: more updates for the same learner work. At most batch_size."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Learner device; 'auto' uses CUDA when available."""
    learner_threads: int = 0
    """CPU threads of the learner's torch ops; 0: the cores the actors leave free (at least 1)."""
    compile_core: bool = False
    """torch.compile the RMC's per-step function in the learner (not in the actors), fusing its
    many small operations: the learner stalls once at its first update while it compiles
    (about 20 s on a GPU, a minute or more on a CPU), then each update is cheaper (RMC step
    1.6x faster on an H200; docs/results.md). No effect with an LSTM core or none."""
    compile_update: Literal["auto", "on", "off"] = "auto"
    """torch.compile the learner's gradient steps whole (the policy's unroll over T steps,
    V-trace, the loss and its backward, the clip and the optimiser's step), as CUDA graphs on a
    GPU (launch/impala/gradient_step.py). 'auto': on with a CUDA learner, off on a CPU, where
    the compile of an RMC's unroll takes minutes (7 on a 2-core CPU for the Box-World preset)
    for 1.4x faster updates (docs/results.md, "Learner update"). The compile falls in the
    first update; a new unroll length or batch size compiles again."""
    compile_acting: Literal["auto", "on", "off"] = "auto"
    """torch.compile each actor's acting step (the policy's step for its games, on the CPU):
    1.4x the frames per second of an RMC actor, for a compile of about 20 s when the actor
    starts (launch/impala/rollout.py; docs/results.md, "Acting"). 'auto': on when the learner
    is on a CUDA device, off otherwise."""
    seed: int = 0
    """Seed of the run: the initial weights, and each actor's env and sampling seeds (hashed
    from it, so runs with neighbouring seeds share no levels). Runs are still not reproducible:
    the actors and the learner run asynchronously."""

    # --- run directory, logging, robustness -----------------------------------------------
    runs_root: str = "runs"
    """Folder under which a new run directory is created."""
    run_name: str | None = None
    """Name of the run directory (default: preset/env, core and a timestamp)."""
    log_interval_s: float = 5.0
    """Seconds between metrics records (and console updates)."""
    checkpoint_interval_s: float = 300.0
    """Seconds between periodic checkpoints."""
    keep_checkpoints: int = 3
    """Number of most recent checkpoints kept."""
    best_window_episodes: int = 500
    """Training episodes whose mean success (or mean return, for envs that report no success)
    scores the policy; whenever the score of the latest window beats every earlier one, the
    run saves RUN_DIR/checkpoints/best.pt (``launch.evaluate --best`` reads it), so a late
    collapse cannot take the run's best policy with it. 0 turns it off."""
    record_interval_s: float | None = None
    """Seconds between short recorded rollouts of the current policy, written to
    RUN_DIR/videos/step_<N>.gif (and wandb) by a low-priority child process, plus one of the
    final weights when the run ends normally (its steps done or its time limit); off when unset."""
    record_max_steps: int = 200
    """Steps of each recorded rollout (its episode is cut there)."""
    actor_timeout_s: float = 120.0
    """An actor silent this long while it has a free buffer is killed and replaced."""
    max_actor_restarts: int = 20
    """The run stops when actors had to be replaced more often than this."""
    wandb: bool = False
    """Also log to Weights & Biases."""
    wandb_mode: Literal["offline", "online"] = "offline"
    """wandb mode; the network is only used with 'online'."""
    wandb_project: str = "relational-rl"
    """wandb project name."""

    @property
    def unrolls_per_batch(self) -> int:
        """Actor buffers (each ``envs_per_actor`` games wide) taken for one learner batch."""
        return max(1, self.batch_size // self.envs_per_actor)

    @property
    def updates_per_batch(self) -> int:
        """Learner updates made from the buffers taken at once: ``envs_per_actor //
        batch_size`` when the batch is smaller than an actor's games, otherwise 1."""
        return max(1, self.envs_per_actor // self.batch_size)

    @property
    def steps_per_update(self) -> int:
        """Environment steps consumed by one learner update."""
        return self.unroll_length * self.batch_size

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid value."""
        for name in ("num_actors", "envs_per_actor", "unroll_length", "batch_size", "total_steps", "num_epochs",
                     "num_minibatches", "keep_checkpoints", "hidden_size", "record_max_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.lr_kl_target is not None and not self.lr_kl_target > 0.0:
            raise ConfigError(f"lr_kl_target must be > 0 or unset, got {self.lr_kl_target}")
        if not 0.0 <= self.action_hold_probability < 1.0:
            raise ConfigError(f"action_hold_probability must be in [0, 1), got {self.action_hold_probability}")
        if not isinstance(self.action_hold_steps, int) or self.action_hold_steps < 0:
            raise ConfigError(f"action_hold_steps must be an integer >= 0, got {self.action_hold_steps!r}")
        if self.num_minibatches > self.batch_size:
            raise ConfigError(f"num_minibatches ({self.num_minibatches}) must be at most batch_size ({self.batch_size})")
        if not isinstance(self.slots_per_actor, int) or self.slots_per_actor < 0:
            raise ConfigError(f"slots_per_actor must be an integer >= 0, got {self.slots_per_actor!r}")
        if 0 < self.slots_per_actor * self.num_actors < self.unrolls_per_batch:
            raise ConfigError(f"slots_per_actor x num_actors ({self.slots_per_actor} x {self.num_actors}) must be at "
                              f"least the actor buffers of one batch ({self.unrolls_per_batch}), or 0 (automatic)")
        if self.learner_threads < 0:
            raise ConfigError(f"learner_threads must be >= 0, got {self.learner_threads}")
        if not isinstance(self.best_window_episodes, int) or self.best_window_episodes < 0:
            raise ConfigError(f"best_window_episodes must be an integer >= 0, got {self.best_window_episodes!r}")
        if self.max_actor_restarts < 0:
            raise ConfigError(f"max_actor_restarts must be >= 0, got {self.max_actor_restarts}")
        if self.batch_size % self.envs_per_actor and self.envs_per_actor % self.batch_size:
            raise ConfigError(
                f"batch_size must be a multiple or a divisor of envs_per_actor ({self.envs_per_actor}), "
                f"got {self.batch_size}"
            )
        for name in ("learning_rate", "log_interval_s", "checkpoint_interval_s", "actor_timeout_s", "grad_norm_clip",
                     "rmsprop_eps", "adam_eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"discount must be in [0, 1], got {self.discount}")
        if not 0.0 <= self.vtrace_lambda <= 1.0:
            raise ConfigError(f"vtrace_lambda must be in [0, 1], got {self.vtrace_lambda}")
        for name in ("baseline_cost", "entropy_cost", "rmsprop_momentum", "clip_rho_threshold", "clip_pg_rho_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.rmsprop_alpha < 1.0:
            raise ConfigError(f"rmsprop_alpha must be in [0, 1), got {self.rmsprop_alpha}")
        if not isinstance(self.ray_max_inflight, int) or self.ray_max_inflight < 1:
            raise ConfigError(f"ray_max_inflight must be an integer >= 1, got {self.ray_max_inflight!r}")
        if not (math.isfinite(self.ray_actor_cpus) and self.ray_actor_cpus > 0):
            raise ConfigError(f"ray_actor_cpus must be a finite number > 0, got {self.ray_actor_cpus!r}")
        if self.ray_address is not None and self.backend != "ray":
            raise ConfigError(f"ray_address is only used with backend 'ray', got backend {self.backend!r}; "
                              "add --backend ray or leave --ray-address unset (none)")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ConfigError(f"time_limit_s must be > 0 or unset, got {self.time_limit_s}")
        if self.record_interval_s is not None and not (math.isfinite(self.record_interval_s)
                                                       and self.record_interval_s > 0):
            raise ConfigError(f"record_interval_s must be a finite number > 0 or unset, got {self.record_interval_s}")
        if self.reward_clip is not None and not self.reward_clip > 0:
            raise ConfigError(f"reward_clip must be > 0 or unset, got {self.reward_clip}")
        if self.pg_ratio_clip is not None and not 0.0 < self.pg_ratio_clip < 1.0:
            raise ConfigError(f"pg_ratio_clip must be in (0, 1) or unset, got {self.pg_ratio_clip}")
        if self.target_kl is not None and not (math.isfinite(self.target_kl) and self.target_kl > 0):
            raise ConfigError(f"target_kl must be a finite number > 0 or unset, got {self.target_kl}")
        for name, hints in _literal_fields().items():
            if getattr(self, name) not in hints:
                raise ConfigError(f"{name} must be one of {list(hints)}, got {getattr(self, name)!r}")
        for wrapper in self.wrappers:
            if ":" not in wrapper:
                raise ConfigError(f"wrappers must be given as 'module:callable', got {wrapper!r}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from ``to_json`` output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; valid keys are {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_saved_json(cls, data: dict[str, Any]) -> TrainConfig:
        """``from_json`` for a config stored in a run or checkpoint: fields added since it was
        written take the value that reproduces the agent it was trained with."""
        return cls.from_json({**_LEGACY_DEFAULTS, **data})


_LEGACY_DEFAULTS: dict[str, Any] = {"core_output_norm": False, "rmc_gate_input_pooling": "flatten",
                                    "pg_ratio_clip": None, "value_normalization": "none",
                                    "advantage_normalization": False, "observation_normalization": False,
                                    "num_epochs": 1, "lstm_output_norm": False, "lr_kl_target": None,
                                    "pg_clip_reference": "behaviour", "mlp_activation": "relu",
                                    "orthogonal_init": False, "image_normalization": False,
                                    "image_encoding": "pixels", "action_hold_probability": 0.0,
                                    "action_hold_spread": False, "action_hold_steps": 0}
"""Values of fields missing from configs saved before those fields existed."""


# --- presets -------------------------------------------------------------------------------
# Core sizes: the RMC paper's Box-World core (agents.policy.CORE_PRESETS["rmc_boxworld_paper"],
# where the paper's "1024 total units" is read); the -easy preset shrinks it so a first run
# learns within minutes on a laptop CPU.
_RMC_PAPER = dict(CORE_PRESETS["rmc_boxworld_paper"])
_RMC_SMALL = {"mem_slots": 2, "head_size": 32, "num_heads": 2, "num_blocks": 1, "gate_style": "memory"}
_LSTM_PAPER = {"hidden_size": 256}
_LSTM_SMALL = {"hidden_size": 128}

# Optimiser of the defaults and presets (a deliberate deviation from IMPALA's RMSProp on summed
# losses): PyTorch's RMSProp starts its running square at 0 (TensorFlow's at 1), so its first
# steps are about 10x the learning rate per parameter, and with the summed loss the RMC agent's
# values diverged on easy Box-World, while Adam on the mean loss learned (docs/results.md,
# "Learning"). IMPALA's setting: --optimizer rmsprop --loss-reduction sum.
_OPTIMISER = {"optimizer": "adam", "loss_reduction": "mean", "lr_schedule": "constant"}

# The game presets keep the agent and the loss they were measured with: the previous action and
# reward as inputs, IMPALA's V-trace policy gradient on raw values, one gradient step per batch,
# the schedule's learning rate. The defaults (PopArt, the PPO-clipped policy term, 4 epochs)
# are measured on the learning suite's tasks; on the games, where
# the learner is the bottleneck on a CPU, 4 epochs cost 4x the learner's time per frame
# (docs/results.md, "Learning out of the box"; docs/learning.md). They also keep two buffer
# slots per actor, with which they were measured (the -gpu variants take the automatic
# count: on a GPU, one more than an even share of a batch, at least two).
_AS_MEASURED = {"value_normalization": "none", "advantage_normalization": False, "pg_ratio_clip": None,
                "num_epochs": 1, "lr_kl_target": None, "lstm_output_norm": False,
                "observation_normalization": False, "use_previous_action_reward": True,
                "pg_clip_reference": "behaviour", "slots_per_actor": 2, "mlp_activation": "relu",
                "orthogonal_init": False, "image_normalization": False, "image_encoding": "pixels",
                "action_hold_probability": 0.0, "action_hold_spread": False}

_TASKS: dict[str, dict[str, Any]] = {
    # A first run: 20 minutes on a laptop CPU, the learning rate falling linearly to 0 over them
    # (the clock, not the machine's speed, sets the schedule: the step budget is beyond what 20
    # minutes reach; --time-limit-s none trains for --total-steps instead). 64 games per actor:
    # acting with the small RMC costs ~60 us of CPU a frame at 64 games against 250-440 at 8
    # (benchmarks/games_per_actor.py). Unrolls of 10 steps: twice the updates of 20 for the same
    # frames, and better runs (docs/results.md, "Easy Box-World").
    "boxworld-easy": {"env": "rmc/BoxWorldEasy-v0", "unroll_length": 10, "envs_per_actor": 64, "batch_size": 64,
                      "entropy_cost": 0.005, "learning_rate": 3e-4, "total_steps": 30_000_000,
                      "time_limit_s": 1200.0, "hidden_size": 128, **_OPTIMISER, "lr_schedule": "linear",
                      **_AS_MEASURED},
    "boxworld": {"env": "rmc/BoxWorld-v0", "unroll_length": 40, "batch_size": 32, "envs_per_actor": 16,
                 "entropy_cost": 0.005, "learning_rate": 2e-4, "total_steps": 100_000_000, **_OPTIMISER,
                 **_AS_MEASURED},
    "boxworld-viewport": {"env": "rmc/BoxWorldViewport-v0", "unroll_length": 40, "batch_size": 32,
                          "envs_per_actor": 16, "entropy_cost": 0.005, "learning_rate": 2e-4,
                          "total_steps": 100_000_000, **_OPTIMISER, **_AS_MEASURED},
    "minipacman": {"env": "rmc/MiniPacman-v0", "unroll_length": 20, "batch_size": 32, "envs_per_actor": 16,
                   "entropy_cost": 0.01, "learning_rate": 3e-4, "total_steps": 50_000_000, **_OPTIMISER,
                   **_AS_MEASURED},
    "minipacman-viewport": {"env": "rmc/MiniPacmanViewport-v0", "unroll_length": 20, "batch_size": 32,
                            "envs_per_actor": 16, "entropy_cost": 0.01, "learning_rate": 3e-4,
                            "total_steps": 50_000_000, **_OPTIMISER, **_AS_MEASURED},
}


# The easy RMC preset: the PPO-clipped policy term (fewer collapses late in a run), twice the
# learning rate with it, and batch 32 (each actor's 64 games over two updates): each of these
# raised the share of 20-minute runs that reach 90% (docs/results.md, "Easy Box-World").
_EASY_RMC_EXTRA = {"pg_ratio_clip": 0.2, "learning_rate": 6e-4, "batch_size": 32}


# The -gpu variants: the same agent and task with batches of 256 unrolls, sized for a GPU
# learner, whose update costs about the same for 256 unrolls as for 32 while it is bound by
# kernel launches (docs/results.md, "Learner update"). Each update then consumes 8x the frames
# of a batch-32 update: the same rate takes fewer, less noisy steps per frame. 64 games per
# actor: the actors set the pace on a GPU machine, and the Box-World RMC actor costs 184 us of
# CPU a frame at 64 games against 283 at 16 (benchmarks/games_per_actor.py). The batch-32
# presets stay the papers' setting.
_GPU_BATCH = {"batch_size": 256, "envs_per_actor": 64, "slots_per_actor": 0}


def _make_presets() -> dict[str, dict[str, Any]]:
    presets: dict[str, dict[str, Any]] = {}
    for task, values in _TASKS.items():
        small = task == "boxworld-easy"
        presets[f"{task}-rmc"] = {**values, "core": "rmc", "core_kwargs": dict(_RMC_SMALL if small else _RMC_PAPER),
                                  **(_EASY_RMC_EXTRA if small else {})}
        presets[f"{task}-lstm"] = {**values, "core": "lstm", "core_kwargs": dict(_LSTM_SMALL if small else _LSTM_PAPER)}
    for name in list(presets):
        presets[f"{name}-gpu"] = {**presets[name], **_GPU_BATCH}
    return presets


PRESETS: dict[str, dict[str, Any]] = _make_presets()
"""Named groups of field values: ``<task>-<core>`` for the paper's tasks and both cores, and
``<task>-<core>-gpu`` with batches sized for a GPU learner."""


def resolve_device(name: str) -> torch.device:
    """The learner's device for a config's ``device``: 'auto' is CUDA when available, else the
    CPU. Asking is safe before the actors start (``launch.train`` has torch ask NVML, which
    leaves the process CUDA-free); the learner's first use of the device comes after them."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def config_from_preset(name: str | None, **overrides: Any) -> TrainConfig:
    """A validated config: the defaults, then the preset's values, then ``overrides``."""
    values: dict[str, Any] = {}
    if name is not None:
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; valid presets are {sorted(PRESETS)}")
        values.update(PRESETS[name])
    values.update(overrides)
    try:
        config = TrainConfig.from_json(values)
    except TypeError as error:  # pragma: no cover - from_json already checks keys
        raise ConfigError(str(error)) from None
    config.validate()
    return config


def _literal_fields() -> dict[str, tuple[Any, ...]]:
    hints = typing.get_type_hints(TrainConfig)
    return {name: typing.get_args(hint) for name, hint in hints.items() if typing.get_origin(hint) is Literal}


# --- CLI generated from the dataclass -----------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser, cls: type = TrainConfig,
                         preset: tuple[str, dict[str, Any]] | None = None) -> None:
    """Add one ``--flag`` per dataclass field; unset flags stay absent from the namespace.

    ``preset`` (name, values), when given, adds the preset's value to the help of each field
    it changes, so ``--preset NAME --help`` shows what the run will use."""
    preset_name, preset_values = preset if preset is not None else ("", {})

    def preset_help(name: str, default: Any) -> str:
        if name in preset_values and preset_values[name] != default:
            return f"preset {preset_name}: {json.dumps(preset_values[name])}"
        return ""

    group = parser.add_argument_group("config fields (override the preset)")
    add_dataclass_arguments(group, cls, suppress_defaults=True, extra_help=preset_help)


def parse_train_args(
    argv: list[str] | None = None,
) -> tuple[TrainConfig | None, str | None, dict[str, Any], str | None]:
    """Parse ``launch.train``'s command line.

    Returns:
        ``(config, resume_dir, explicit, preset)``: the config (None when resuming: it is
        read from the run directory), the run directory to resume, the fields given
        explicitly, and the preset name.
    """
    # The preset is read first so that --help can show the values it sets.
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--preset", default=None)
    named = peek.parse_known_args(argv)[0].preset
    parser = argparse.ArgumentParser(
        prog="python -m launch.train",
        description="Train an IMPALA agent (RMC or LSTM core) with CPU actor processes and one learner. "
                    "With --preset NAME, --help also shows the values that preset sets.",
        epilog="Presets: " + ", ".join(sorted(PRESETS)),
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="start from a preset's values")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its latest checkpoint (its config is reused; "
                             "--total-steps and run-time flags given here override it)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (defaults, preset, flags) as JSON and exit without "
                             "starting or writing anything")
    add_config_arguments(parser, preset=(named, PRESETS[named]) if named in PRESETS else None)
    namespace = vars(parser.parse_args(argv))
    preset = namespace.pop("preset")
    resume = namespace.pop("resume")
    print_config = namespace.pop("print_config")
    if resume is not None:
        if preset is not None:
            parser.error("--preset cannot be combined with --resume (the run's saved config is used)")
        if print_config:
            parser.error("--print-config cannot be combined with --resume (the run's config is RUN_DIR/config.json)")
        return None, resume, namespace, None
    try:
        config = config_from_preset(preset, **namespace)
    except ConfigError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits
    if print_config:
        print(json.dumps(config.to_json(), indent=2))
        parser.exit(0)
    return config, None, namespace, preset


RESUME_OVERRIDABLE = frozenset({
    "backend", "ray_address", "ray_max_inflight", "ray_actor_cpus",
    "total_steps", "time_limit_s", "num_actors", "log_interval_s", "checkpoint_interval_s", "keep_checkpoints",
    "best_window_episodes", "actor_timeout_s",
    "max_actor_restarts", "wandb", "wandb_mode", "wandb_project", "device", "record_interval_s", "record_max_steps",
    "compile_core", "compile_update", "compile_acting", "slots_per_actor",
})
"""Fields a ``--resume`` may change: how long and how the run goes on, not what it learns."""
