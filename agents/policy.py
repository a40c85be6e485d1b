"""A space-generic recurrent actor-critic around the Relational Memory Core.

The agent of Santoro et al. 2018 ("Relational recurrent neural networks", App. A.3) trained
with IMPALA (Espeholt et al. 2018): an observation encoder chosen from the observation
space, a recurrent core (``rmc``, ``lstm``, or ``none`` for a feed-forward baseline), and an
MLP followed by a value head and a policy head chosen from the action space.

How the core receives its input (``N = T * B`` observations at once):

- ``rmc``: each cell of each image feature map becomes one input row, with its x / y
  coordinates in ``[-1, 1]`` appended (``num_input_rows = sum H' * W'``). The flat features
  of the non-image leaves and the previous action / reward are appended to *every* row
  (so every row's projection sees them; no extra row is added). Without an image leaf the
  core gets one row: the flat features plus the previous action / reward.
- ``lstm`` and ``none``: the feature maps are flattened (no coordinates: position is
  implicit in the flat layout), concatenated with the flat features and the previous
  action / reward, and passed through ``Linear(hidden_size) + ReLU``; that vector is the
  LSTM's input, or the torso output for ``none``.

Previous action and reward (IMPALA's optional inputs; on by default, here, in
``launch.train``'s default config and in the game presets, see its ``use_previous_action_reward``):
the action as the head encodes it (one-hot for Discrete, concatenated one-hots for
MultiDiscrete, bits for MultiBinary, the clipped vector for Box) and the reward transformed by
``previous_reward_transform``: ``"signed_log"`` (default, ``sign(r) * log(1 + |r|)``,
which keeps the difference between a +1 key and a +10 gem) or ``"clip"`` (to ``[-1, 1]``,
as IMPALA). Both are zeroed inside the policy wherever ``reset`` is set, whatever the
caller stored there.

After the core: ``Linear(hidden_size) + ReLU``, then a ``Linear`` value head and the action
head. The core's output is the flattened memory for the RMC (as in the reference), the
hidden state for the LSTM. The RMC's output is layer-normalised first (``core_output_norm``,
on by default; an addition of this agent, not of the paper): its memory is unbounded and,
with saturated gates, grows with the episode's length, which made V-trace's bootstrapped
values diverge. The RMC's gates read the *mean* of its projected input rows
(``rmc_gate_input_pooling="mean"``, the default; the reference flattens all rows into one
wide Linear): see ``rmc_gate_input_pooling`` below for why.

Core defaults: the paper's Box-World RMC is available as ``core_kwargs="rmc_boxworld_paper"``.
The paper gives it as "4 memories, 4 heads, 1024 total units, 1 block, scalar gating"
(App. A.3); "total units" is read as the whole memory, ``mem_slots * num_heads * head_size``,
so 4 heads of size 64 (each memory 256 wide). The same reading of the N-th farthest setting
("8 or 16 memories, 2048 total units") gives 256 or 128 per memory; reading it per memory
would give 16 memories of 2048 units for a 40-number input. On one CPU thread it acts at
0.57x and learns at 0.31x the speed of a 256-unit LSTM policy (``benchmarks/policy_speed.py``,
docs/results.md). The default ``"rmc_small"`` keeps the paper's layout (4 memories, 1 block,
'memory' gating, 2-layer attention MLP) with 2 heads of size 32.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import rmc_core
from agents.distributions import ActionDistribution
from agents.encoders import ObservationEncoder, feature_map_rows, mlp_activation_module
from agents.heads import make_action_head
from agents.normalization import PopArtValueHead
from agents.spaces import encodable_observation, map_leaves

__all__ = ["CORE_PRESETS", "ActorCritic", "UnrollOutput", "ActOutput"]

CoreState = tuple[torch.Tensor, ...]

CORE_PRESETS: dict[str, dict[str, Any]] = {
    "rmc_small": dict(mem_slots=4, head_size=32, num_heads=2, num_blocks=1, gate_style="memory",
                      attention_mlp_layers=2),
    "rmc_boxworld_paper": dict(mem_slots=4, head_size=64, num_heads=4, num_blocks=1, gate_style="memory",
                               attention_mlp_layers=2),
    "lstm_256": dict(hidden_size=256),
}
"""Named core settings usable as ``core_kwargs``; ``rmc_boxworld_paper`` is the RMC paper's
Box-World core (App. A.3; 4 x 4 x 64 = 1024 units, see above), which the Box-World and Mini
PacMan presets of ``launch.train`` use; ``rmc_small`` is the default RMC."""

DEFAULT_CORE_KWARGS: dict[str, dict[str, Any] | str] = {"rmc": "rmc_small", "lstm": {}}  # lstm: hidden_size


class UnrollOutput(NamedTuple):
    """The policy's outputs over a time-major unroll.

    Attributes:
        policy_params: ``[T, B, P]`` parameters of the action distribution.
        value: ``[T, B]`` state values.
        attention: ``[T, B, num_blocks, num_heads, rows, rows]`` RMC attention weights when
            requested with ``return_attention=True``, else None.
    """

    policy_params: torch.Tensor
    value: torch.Tensor
    attention: torch.Tensor | None = None


class ActOutput(NamedTuple):
    """One acting step for a batch of ``B`` games.

    Attributes:
        action: ``[B, *action_shape]`` in the head's tensor layout.
        log_prob: ``[B]`` behaviour log-probability of ``action``.
        value: ``[B]`` state value.
        policy_params: ``[B, P]`` parameters of the action distribution (``distribution``
            turns them into probabilities).
        attention: ``[B, num_blocks, num_heads, rows, rows]`` RMC attention weights of this
            step (rows: the memory slots, then the input rows); only with
            ``return_attention=True``, else None.
    """

    action: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor
    policy_params: torch.Tensor
    attention: torch.Tensor | None = None


def _resolve_core_kwargs(core: str, core_kwargs: dict[str, Any] | str | None) -> dict[str, Any]:
    if core == "none":
        if core_kwargs:
            raise ValueError(f"core='none' takes no core_kwargs, got {core_kwargs!r}")
        return {}
    if core_kwargs is None:
        core_kwargs = DEFAULT_CORE_KWARGS[core]
    if isinstance(core_kwargs, str):
        if core_kwargs not in CORE_PRESETS or not core_kwargs.startswith(core):
            valid = sorted(name for name in CORE_PRESETS if name.startswith(core))
            raise ValueError(f"unknown core preset {core_kwargs!r} for core={core!r}; valid: {valid}")
        core_kwargs = CORE_PRESETS[core_kwargs]
    return dict(core_kwargs)


class ActorCritic(nn.Module):
    """Recurrent actor-critic for any supported Gymnasium observation and action space.

    Args:
        observation_space: the single (unbatched) observation space.
        action_space: the single (unbatched) action space.
        core: ``"rmc"`` (default), ``"lstm"`` or ``"none"`` (feed-forward).
        core_kwargs: keyword arguments of the core (``rmc_core.RelationalMemory`` or
            ``rmc_core.LSTMCore``), or the name of one of ``CORE_PRESETS``; None uses
            ``"rmc_small"`` for the RMC and an LSTM of ``hidden_size`` units.
        encoder: image encoder: ``"auto"``, ``"small"`` (the paper's) or ``"deep"``.
        use_previous_action_reward: feed the previous action and reward to the core.
        hidden_size: width of the vector MLPs, the LSTM/feed-forward torso and the head MLP.
        embedding_size: size of Discrete observation embeddings.
        previous_reward_transform: ``"signed_log"`` or ``"clip"`` (see the module docstring).
        core_output_norm: layer-normalise the RMC's flattened memory before the policy and
            value heads (RMC only; an addition of this agent, not part of the RMC). The
            RMC's memory is not bounded: once a forget gate saturates, each step adds up to
            one more unit, so the features grow with the episode's length. A linear value
            of features that are larger at the next state than at this one is the textbook
            case where bootstrapped (TD / V-trace) value learning diverges, and it did: an
            easy Box-World run's values reached -1e5 within 100 updates (docs/results.md).
            The normalisation keeps the heads' input at a fixed scale. False reproduces
            the agents of checkpoints written before this option existed.
        rmc_gate_input_pooling: how the RMC's input and forget gates read the input rows
            (RMC only; ``core_kwargs["gate_input_pooling"]`` wins when given). ``"mean"``
            (default; not the reference): one Linear over the mean projected row.
            ``"flatten"`` (the reference): one Linear over all rows concatenated, which for
            the 49 cells of easy Box-World is 3,136 inputs per gate. Adam moves every weight
            by about the learning rate per step, so such a wide gate's logit moves about 20x
            faster than the mean-pooled one (measured in ``tests/agents/test_policy.py``); in
            training the flattened gates sat at logits of 4-10 and, once, swung to input and forget
            gates of 0.000 and 0.002: the memory went to zero, the agent went blind and its
            training success fell from about 0.7 to 0.1 (docs/results.md). ``"flatten"``
            reproduces the agents of checkpoints written before this option existed.
        value_normalization: ``"popart"`` (default): the value head predicts values normalised
            by running statistics of the value targets and rescales itself to preserve its
            outputs when they change (``agents.normalization.PopArtValueHead``; Hessel et al.
            2019), so the loss can weigh its terms the same for any reward scale.
            ``"none"``: a plain Linear value head, as IMPALA's.
        observation_normalization: normalise Box vector observations by running per-feature
            statistics (``agents.normalization.ObservationNormalizer``); off by default.
        lstm_output_norm: layer-normalise the LSTM's output ``h`` before the heads (LSTM
            only; off here, on in ``launch.train``'s defaults). ``h`` starts small (a standard
            deviation of about 0.03 at initialisation), and a step of Adam, whose size does not
            depend on the scale of a layer's input, then moves the heads' outputs little: the
            normalised ``h`` reaches the heads at unit scale.
        mlp_activation: the activation of the vector encoder's MLP, the LSTM / feed-forward
            torso and the head MLP: ``"relu"`` (default here) or ``"tanh"`` (as the MLP
            policies of Stable-Baselines3 and CleanRL). The image encoder keeps ReLU.
        orthogonal_init: initialise the encoder's layers, the torso and the head MLP
            orthogonally with gain sqrt(2) and zero biases, the action head with gain 0.01
            and the value head with gain 1 (as PPO's reference implementations do); False
            keeps PyTorch's default initialisation with the action head scaled by 0.01. The
            cores keep their own initialisation either way. See ``launch.tools.gradient_overlap``:
            with PyTorch's default initialisation and ReLU, the policy's gradients at
            different states point almost the same way, so the first updates move the policy
            at every state together (docs/learning.md, candidate I).
        image_normalization: normalise image observations per channel by running statistics
            (``agents.encoders.ImageEncoder``); off here.
        image_symbols: read ``uint8`` image observations as grids of symbols, one learned
            embedding per channel value (``agents.encoders.ImageEncoder``), as MiniGrid's
            grids want; off here (``launch.train --image-encoding auto`` turns it on for MiniGrid envs).

    Raises:
        ValueError: for an unknown core, preset or option.
        agents.spaces.UnsupportedSpaceError: for a space the agent cannot handle.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        core: Literal["rmc", "lstm", "none"] = "rmc",
        core_kwargs: dict[str, Any] | str | None = None,
        encoder: Literal["auto", "small", "deep"] = "auto",
        use_previous_action_reward: bool = True,
        hidden_size: int = 256,
        embedding_size: int = 32,
        previous_reward_transform: Literal["signed_log", "clip"] = "signed_log",
        core_output_norm: bool = True,
        rmc_gate_input_pooling: Literal["flatten", "mean"] = "mean",
        value_normalization: Literal["popart", "none"] = "popart",
        observation_normalization: bool = False,
        lstm_output_norm: bool = False,
        mlp_activation: Literal["relu", "tanh"] = "relu",
        orthogonal_init: bool = False,
        image_normalization: bool = False,
        image_symbols: bool = False,
    ) -> None:
        super().__init__()
        if core not in ("rmc", "lstm", "none"):
            raise ValueError(f"core must be 'rmc', 'lstm' or 'none', got {core!r}")
        if previous_reward_transform not in ("signed_log", "clip"):
            raise ValueError(
                f"previous_reward_transform must be 'signed_log' or 'clip', got {previous_reward_transform!r}"
            )
        if rmc_gate_input_pooling not in ("flatten", "mean"):
            raise ValueError(f"rmc_gate_input_pooling must be 'flatten' or 'mean', got {rmc_gate_input_pooling!r}")
        if value_normalization not in ("popart", "none"):
            raise ValueError(f"value_normalization must be 'popart' or 'none', got {value_normalization!r}")
        if hidden_size < 1:
            raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.core_kind = core
        self.use_previous_action_reward = use_previous_action_reward
        self.previous_reward_transform = previous_reward_transform

        self.encoder = ObservationEncoder(observation_space, encoder, hidden_size, embedding_size,
                                          normalize_vectors=observation_normalization, mlp_activation=mlp_activation,
                                          normalize_images=image_normalization, image_symbols=image_symbols)
        self.action_head = make_action_head(action_space, hidden_size)  # reads the head MLP's output
        extras_size = self.action_head.encoded_action_size + 1 if use_previous_action_reward else 0
        map_shapes = self.encoder.feature_map_shapes
        flat_size = self.encoder.flat_size
        kwargs = _resolve_core_kwargs(core, core_kwargs)

        self.row_projections = nn.ModuleList()
        self.core_output_norm: nn.Module = nn.Identity()  # replaced for the RMC, see the docstring
        if core == "rmc":
            row_widths = [channels + 2 for channels, _, _ in map_shapes]
            width = max(row_widths, default=0)
            for row_width in row_widths:  # cells of maps with fewer channels are projected up
                self.row_projections.append(nn.Identity() if row_width == width else nn.Linear(row_width, width))
            num_rows = sum(h * w for _, h, w in map_shapes) or 1
            kwargs.setdefault("gate_input_pooling", rmc_gate_input_pooling)
            self.core = rmc_core.make_core("rmc", width + flat_size + extras_size, num_input_rows=num_rows, **kwargs)
            self.torso = None
            core_output_size = self.core.output_size
            if core_output_norm:
                self.core_output_norm = nn.LayerNorm(core_output_size)
        else:
            torso_input = sum(c * h * w for c, h, w in map_shapes) + flat_size + extras_size
            self.torso = nn.Sequential(nn.Linear(torso_input, hidden_size), mlp_activation_module(mlp_activation))
            if core == "lstm":
                kwargs.setdefault("hidden_size", hidden_size)
                self.core = rmc_core.make_core("lstm", hidden_size, **kwargs)
                core_output_size = self.core.output_size
                if lstm_output_norm:
                    self.core_output_norm = nn.LayerNorm(core_output_size)
            else:
                self.core = None
                core_output_size = hidden_size
        self.head_mlp = nn.Sequential(nn.Linear(core_output_size, hidden_size), mlp_activation_module(mlp_activation))
        self.value_head = PopArtValueHead(hidden_size) if value_normalization == "popart" else nn.Linear(hidden_size, 1)
        if orthogonal_init:
            self._initialise_orthogonally()
        else:
            with torch.no_grad():  # a near-uniform first policy (as SB3 and CleanRL initialise theirs)
                self.action_head.linear.weight.mul_(0.01)
                self.action_head.linear.bias.zero_()

    def _initialise_orthogonally(self) -> None:
        """PPO's initialisation (see ``orthogonal_init``): hidden layers at gain sqrt(2), the
        action head at 0.01 (a near-uniform first policy), the value head at 1, biases 0."""
        hidden_layers = [module for part in (self.encoder, self.torso, self.head_mlp) if part is not None
                         for module in part.modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
        for layer, gain in [*((layer, 2.0 ** 0.5) for layer in hidden_layers),
                            (self.action_head.linear, 0.01), (self.value_head, 1.0)]:
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)

    def value_scale(self) -> torch.Tensor | None:
        """PopArt's ``sigma`` (the scale of the value targets), or None without PopArt."""
        return self.value_head.scale if isinstance(self.value_head, PopArtValueHead) else None

    def update_value_normalization(self, targets: torch.Tensor, mask: torch.Tensor) -> None:
        """Move PopArt's statistics towards a batch's value targets, preserving every value
        the policy outputs (``agents.normalization``); nothing without PopArt."""
        if isinstance(self.value_head, PopArtValueHead):
            self.value_head.update(targets, mask)

    def update_observation_normalization(self, obs: Any) -> None:
        """Move the normalised observations' running statistics (vector leaves, images) towards a
        batch ``[T, B, ...]`` per leaf (the layout of ``unroll``); nothing without normalisation."""
        flat = map_leaves(lambda leaf: leaf.reshape(leaf.shape[0] * leaf.shape[1], *leaf.shape[2:]), obs)  # [T*B, ...]
        self.encoder.update_normalization(flat)

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Tensor shape of one action (Discrete: ``()``, MultiDiscrete: ``(k,)``, ...)."""
        return self.action_head.action_shape

    @property
    def action_dtype(self) -> torch.dtype:
        """Tensor dtype of actions: int64 for discrete spaces, float32 for Box."""
        return self.action_head.action_dtype

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> CoreState:
        """The core state at an episode start: a tuple of ``[B, ...]`` tensors (empty for 'none')."""
        if self.core is None:
            return ()
        return tuple(self.core.initial_state(batch_size, device=device))

    def distribution(self, policy_params: torch.Tensor) -> ActionDistribution:
        """The action distribution for ``[..., P]`` policy parameters."""
        return self.action_head.distribution(policy_params)

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        """A batch of actions in tensor layout -> numpy actions for the (vector) env."""
        return self.action_head.to_env_action(action)

    def _previous_action_reward(self, previous_action: torch.Tensor, previous_reward: torch.Tensor,
                                reset: torch.Tensor) -> torch.Tensor:
        n = reset.numel()
        action = previous_action.reshape(n, *self.action_shape)
        reward = previous_reward.reshape(n, 1).float()
        if self.previous_reward_transform == "signed_log":
            reward = torch.sign(reward) * torch.log1p(reward.abs())
        else:
            reward = reward.clamp(-1.0, 1.0)
        extras = torch.cat([self.action_head.encode_action(action), reward], dim=-1)  # [N, A + 1]
        return extras * (~reset.reshape(n, 1)).to(extras.dtype)

    def _core_input(self, observation: Any, extras: torch.Tensor | None) -> torch.Tensor:
        """Encodes a flat batch ``[N, ...]`` into the core's input: ``[N, R, F]`` or ``[N, F]``."""
        encoded = self.encoder(observation)
        per_observation = [x for x in (encoded.flat, extras) if x is not None]
        if self.core_kind == "rmc":
            if encoded.feature_maps:
                rows = torch.cat([projection(feature_map_rows(feature_map)) for projection, feature_map
                                  in zip(self.row_projections, encoded.feature_maps)], dim=1)  # [N, R, C+2]
                if per_observation:
                    shared = torch.cat(per_observation, dim=-1)  # [N, E]
                    rows = torch.cat([rows, shared.unsqueeze(1).expand(-1, rows.shape[1], -1)], dim=-1)
                return rows  # [N, R, F]
            return torch.cat(per_observation, dim=-1).unsqueeze(1)  # [N, 1, F]
        parts = [feature_map.flatten(1) for feature_map in encoded.feature_maps] + per_observation
        return self.torso(torch.cat(parts, dim=-1))  # [N, hidden]

    def unroll(
        self,
        obs: Any,
        previous_action: torch.Tensor | None,
        previous_reward: torch.Tensor | None,
        reset: torch.Tensor,
        state: CoreState,
        return_attention: bool = False,
    ) -> tuple[UnrollOutput, CoreState]:
        """Runs the policy over a time-major unroll.

        Args:
            obs: ``[T, B, *obs_shape]`` per leaf (nested dict / tuple for Dict / Tuple
                spaces), raw dtype; the leaves of ``encodable_space(observation_space)``
                (the rollout buffers' layout), as tensors.
            previous_action: ``[T, B, *action_shape]`` (ignored, may be None, when
                ``use_previous_action_reward`` is False).
            previous_reward: ``[T, B]`` float (same).
            reset: ``[T, B]`` bool, True where ``obs[t]`` starts an episode: the core state
                is reset before step t and the previous action / reward are zeroed there.
            state: the core state at the unroll's start (``initial_state`` for new games).
            return_attention: also return the RMC's attention weights (``rmc`` only).

        Returns:
            ``(UnrollOutput, final_state)``.
        """
        reset = reset.bool()
        steps, batch_size = reset.shape
        n = steps * batch_size
        flat_obs = map_leaves(lambda leaf: leaf.reshape(n, *leaf.shape[2:]), obs)  # [T*B, ...]
        extras = None
        if self.use_previous_action_reward:
            if previous_action is None or previous_reward is None:
                raise ValueError(
                    "previous_action and previous_reward are required when use_previous_action_reward=True, got None"
                )
            extras = self._previous_action_reward(previous_action, previous_reward, reset)
        core_input = self._core_input(flat_obs, extras)
        attention = None
        if self.core is None:
            if return_attention:
                raise ValueError("return_attention=True needs core='rmc', got core='none'")
            core_output, final_state = core_input, ()
        else:
            sequence = core_input.reshape(steps, batch_size, *core_input.shape[1:])  # [T, B, (R,) F]
            result = self.core.unroll(sequence, reset, tuple(state), return_attention=return_attention)
            core_output, final_state = result[0].reshape(n, -1), tuple(result[1])
            if return_attention:
                attention = result[2]
        hidden = self.head_mlp(self.core_output_norm(core_output))  # [T*B, hidden]
        policy_params = self.action_head(hidden).reshape(steps, batch_size, -1)
        value = self.value_head(hidden).reshape(steps, batch_size)
        return UnrollOutput(policy_params, value, attention), final_state

    @torch.no_grad()
    def act(
        self,
        obs: Any,
        previous_action: torch.Tensor | None,
        previous_reward: torch.Tensor | None,
        reset: torch.Tensor,
        state: CoreState,
        deterministic: bool = False,
        return_attention: bool = False,
    ) -> tuple[ActOutput, CoreState]:
        """One step for ``B`` games; equals ``unroll`` with ``T = 1``.

        Args:
            obs: ``[B, *obs_shape]`` per leaf (numpy arrays are converted), as the env
                gives it or already reduced to ``encodable_space`` (a rollout buffer
                slot): leaves the agent does not encode, such as a MiniGrid mission
                string, are dropped here, before anything becomes a tensor.
            previous_action: ``[B, *action_shape]``.
            previous_reward: ``[B]``.
            reset: ``[B]`` bool, True where ``obs`` is an episode's first observation.
            state: the core state before this step.
            deterministic: take the distribution's mode instead of sampling.
            return_attention: also return this step's RMC attention weights (for watching
                an agent; ``rmc`` core only). The default path does not compute them.

        Returns:
            ``(ActOutput(action, log_prob, value, policy_params[, attention]), next_state)``.
        """
        device = self.value_head.weight.device
        if self.encoder.left_out_paths:
            obs = encodable_observation(obs, self.observation_space)

        def add_time(leaf: Any) -> torch.Tensor:
            return torch.as_tensor(leaf, device=device).unsqueeze(0)

        output, next_state = self.unroll(
            map_leaves(add_time, obs),
            None if previous_action is None else add_time(previous_action),
            None if previous_reward is None else add_time(previous_reward),
            add_time(reset),
            state,
            return_attention=return_attention,
        )
        distribution = self.distribution(output.policy_params[0])
        action = distribution.mode() if deterministic else distribution.sample()
        attention = output.attention[0] if return_attention else None
        return ActOutput(action, distribution.log_prob(action), output.value[0], output.policy_params[0],
                         attention), next_state
