"""ActorCritic over a battery of spaces: builds, acts, learns; acting equals the unroll."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from agents import ActorCritic, UnsupportedSpaceError
from agents.loss import LossConfig, impala_loss
from agents.spaces import map_leaves
from agents.trajectory import Trajectory

TINY_CORES = {
    "rmc": {"mem_slots": 2, "head_size": 8, "num_heads": 2},
    "lstm": {"hidden_size": 16},
    "none": None,
}

OBSERVATION_SPACES = {
    "image": gym.spaces.Box(0, 255, (6, 5, 3), np.uint8),
    "vector": gym.spaces.Box(-2.0, 2.0, (4,), np.float32),
    "discrete": gym.spaces.Discrete(5, start=1),
    "dict": gym.spaces.Dict({
        "frame": gym.spaces.Box(0, 255, (5, 5, 3), np.uint8),
        "held": gym.spaces.Discrete(3),
        "speed": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    }),
    "tuple": gym.spaces.Tuple((gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.MultiDiscrete([2, 3]),
                               gym.spaces.MultiBinary(2))),
}

ACTION_SPACES = {
    "discrete": gym.spaces.Discrete(3),
    "multi_discrete": gym.spaces.MultiDiscrete([3, 2]),
    "multi_binary": gym.spaces.MultiBinary(3),
    "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
}


def make_policy(observation_space, action_space, core, **kwargs):
    return ActorCritic(observation_space, action_space, core=core, core_kwargs=TINY_CORES[core], hidden_size=16, **kwargs)


def sample_batch(space: gym.Space, shape: tuple[int, ...], seed: int):
    """Observations of ``space`` stacked into ``[*shape, ...]`` tensors per leaf."""
    space.seed(seed)
    samples = [space.sample() for _ in range(int(np.prod(shape)))]

    def stack(*leaves):
        return torch.as_tensor(np.stack(leaves)).reshape(*shape, *np.shape(leaves[0]))

    if isinstance(space, gym.spaces.Dict):
        return {key: stack(*(s[key] for s in samples)) for key in space.spaces}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(stack(*(s[i] for s in samples)) for i in range(len(space.spaces)))
    return stack(*samples)


def random_trajectory(policy: ActorCritic, steps: int, batch_size: int, seed: int) -> Trajectory:
    generator = torch.Generator().manual_seed(seed)
    obs = sample_batch(policy.observation_space, (steps + 1, batch_size), seed)
    policy.action_space.seed(seed)
    action = torch.stack([
        torch.as_tensor(np.stack([policy.action_space.sample() for _ in range(batch_size)])) for _ in range(steps)
    ])
    if isinstance(policy.action_space, gym.spaces.Box):
        action = action.float()
    else:
        action = action.long()
    reset = torch.zeros(steps + 1, batch_size, dtype=torch.bool)
    reset[0] = True
    reset[steps // 2 + 1, 0] = True  # an autoreset inside the unroll
    terminated = torch.zeros(steps, batch_size, dtype=torch.bool)
    terminated[steps // 2 - 1, 0] = True
    previous_action = torch.cat([torch.zeros_like(action[:1]), action])
    previous_reward = torch.randn(steps + 1, batch_size, generator=generator)
    return Trajectory(
        obs=obs, reset=reset, previous_action=previous_action, previous_reward=previous_reward, action=action,
        behaviour_log_prob=-torch.rand(steps, batch_size, generator=generator),
        reward=previous_reward[1:], terminated=terminated, truncated=torch.zeros_like(terminated),
    )


@pytest.mark.parametrize("core", ["rmc", "lstm", "none"])
@pytest.mark.parametrize("action_name", list(ACTION_SPACES))
@pytest.mark.parametrize("observation_name", list(OBSERVATION_SPACES))
def test_builds_acts_and_learns(observation_name, action_name, core):
    torch.manual_seed(0)
    observation_space, action_space = OBSERVATION_SPACES[observation_name], ACTION_SPACES[action_name]
    policy = make_policy(observation_space, action_space, core)
    batch_size = 3

    state = policy.initial_state(batch_size)
    assert all(s.shape[0] == batch_size for s in state)
    assert (state == ()) == (core == "none")
    output, next_state = policy.act(
        sample_batch(observation_space, (batch_size,), 1),
        torch.zeros(batch_size, *policy.action_shape, dtype=policy.action_dtype),
        torch.zeros(batch_size), torch.ones(batch_size, dtype=torch.bool), state,
    )
    assert output.action.shape == (batch_size, *policy.action_shape) and output.action.dtype == policy.action_dtype
    assert output.log_prob.shape == (batch_size,) and torch.isfinite(output.log_prob).all()
    assert output.value.shape == (batch_size,)
    assert [s.shape for s in next_state] == [s.shape for s in state]
    env_actions = policy.to_env_action(output.action)
    assert all(action_space.contains(a) for a in env_actions)

    trajectory = random_trajectory(policy, steps=4, batch_size=batch_size, seed=2)
    initial_state = policy.initial_state(batch_size)
    before, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                              trajectory.reset, initial_state)
    assert before.policy_params.shape[:2] == (5, batch_size) and before.value.shape == (5, batch_size)
    loss = impala_loss(policy, trajectory, initial_state, LossConfig())
    assert loss.total.requires_grad and torch.isfinite(loss.total)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.01)
    optimizer.zero_grad()
    loss.total.backward()
    optimizer.step()
    with torch.no_grad():
        after, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                                 trajectory.reset, initial_state)
    assert not torch.allclose(before.value, after.value)
    assert not torch.allclose(before.policy_params, after.policy_params)


@pytest.mark.parametrize("core", ["rmc", "lstm", "none"])
def test_acting_step_by_step_equals_the_unroll(core):
    torch.manual_seed(0)
    space = OBSERVATION_SPACES["dict"]
    policy = make_policy(space, ACTION_SPACES["discrete"], core)
    steps, batch_size = 7, 3
    trajectory = random_trajectory(policy, steps, batch_size, seed=3)
    reset = trajectory.reset.clone()
    reset[3, 2] = True
    reset[4, 1] = True
    state0 = policy.initial_state(batch_size)
    if core == "rmc":  # start from a state that is not the initial one
        state0 = tuple(s + 0.1 * torch.randn_like(s) for s in state0)
        reset[0] = torch.tensor([False, True, False])
    with torch.no_grad():
        unrolled, final_state = policy.unroll(trajectory.obs, trajectory.previous_action,
                                              trajectory.previous_reward, reset, state0)
    state = state0
    for t in range(steps + 1):
        obs_t = map_leaves(lambda leaf: leaf[t], trajectory.obs)
        step, state = policy.act(obs_t, trajectory.previous_action[t], trajectory.previous_reward[t], reset[t],
                                 state, deterministic=True)
        distribution = policy.distribution(unrolled.policy_params[t])
        torch.testing.assert_close(step.value, unrolled.value[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step.action, distribution.mode())
        torch.testing.assert_close(step.log_prob, distribution.log_prob(step.action), atol=1e-5, rtol=1e-5)
    for a, b in zip(state, final_state):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("core", ["rmc", "lstm"])
def test_a_text_mission_is_left_out_and_the_agent_acts_and_learns_on_the_rest(core):
    numeric = {"image": gym.spaces.Box(0, 255, (5, 5, 3), np.uint8), "direction": gym.spaces.Discrete(4)}
    space = gym.spaces.Dict({**numeric, "mission": gym.spaces.Text(12)})  # MiniGrid's observation, in small
    torch.manual_seed(0)
    policy = make_policy(space, ACTION_SPACES["discrete"], core)
    torch.manual_seed(0)
    reference = make_policy(gym.spaces.Dict(numeric), ACTION_SPACES["discrete"], core)
    assert policy.state_dict().keys() == reference.state_dict().keys()
    assert all(torch.equal(value, reference.state_dict()[name]) for name, value in policy.state_dict().items())

    batch_size = 3
    space.seed(1)
    samples = [space.sample() for _ in range(batch_size)]
    raw = {"image": np.stack([sample["image"] for sample in samples]),  # batched as a vector env batches it
           "direction": np.array([sample["direction"] for sample in samples]),
           "mission": tuple(sample["mission"] for sample in samples)}
    inputs = (torch.zeros(batch_size, dtype=torch.long), torch.zeros(batch_size),
              torch.ones(batch_size, dtype=torch.bool))
    acted, _ = policy.act(raw, *inputs, policy.initial_state(batch_size), deterministic=True)
    expected, _ = reference.act({"image": raw["image"], "direction": raw["direction"]}, *inputs,
                                reference.initial_state(batch_size), deterministic=True)
    torch.testing.assert_close(acted.policy_params, expected.policy_params)
    torch.testing.assert_close(acted.value, expected.value)

    trajectory = random_trajectory(reference, steps=4, batch_size=batch_size, seed=2)  # the buffers' layout: no mission
    initial_state = policy.initial_state(batch_size)
    unrolled, _ = policy.unroll(trajectory.obs, trajectory.previous_action, trajectory.previous_reward,
                                trajectory.reset, initial_state)
    assert unrolled.value.shape == (5, batch_size)
    loss = impala_loss(policy, trajectory, initial_state, LossConfig())
    loss.total.backward()
    assert torch.isfinite(loss.total) and policy.encoder.image_encoders[0].convolutions[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("core", ["rmc", "lstm", "none"])
def test_previous_action_and_reward_are_used_and_zeroed_at_resets(core):
    torch.manual_seed(0)
    policy = make_policy(OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"], core)
    obs = sample_batch(OBSERVATION_SPACES["image"], (1, 4), 0)
    reset = torch.tensor([[True, True, False, False]])
    state = policy.initial_state(4)
    zeros, _ = policy.unroll(obs, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4), reset, state)
    other, _ = policy.unroll(obs, torch.full((1, 4), 2), torch.full((1, 4), 5.0), reset, state)
    torch.testing.assert_close(zeros.value[:, :2], other.value[:, :2])
    assert not torch.allclose(zeros.value[:, 2:], other.value[:, 2:])

    blind = make_policy(OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"], core, use_previous_action_reward=False)
    out, _ = blind.unroll(obs, None, None, reset, blind.initial_state(4))
    assert out.value.shape == (1, 4)


def test_image_cells_become_rmc_input_rows():
    policy = make_policy(OBSERVATION_SPACES["dict"], ACTION_SPACES["discrete"], "rmc")
    # 5x5 frame -> 3x3 cells of 24 features + 2 coordinates; flat parts (embedding 32 + MLP 16)
    # and previous action (3) / reward (1) are appended to every row.
    rows = policy._core_input(sample_batch(OBSERVATION_SPACES["dict"], (2,), 0),
                              torch.zeros(2, 4))
    assert rows.shape == (2, 9, 24 + 2 + 32 + 16 + 4)


def test_rmc_output_is_normalised_so_values_stay_bounded_while_memory_grows():
    # forget_bias=+inf, input_bias=+inf: every step adds tanh(update) to the memory, the
    # saturated-gate regime in which a diverging run's memory grew by ~1 per step.
    space, actions = OBSERVATION_SPACES["vector"], ACTION_SPACES["discrete"]
    kwargs = {**TINY_CORES["rmc"], "forget_bias": float("inf"), "input_bias": float("inf")}
    values = {}
    for norm in (True, False):
        torch.manual_seed(0)
        policy = ActorCritic(space, actions, core="rmc", core_kwargs=kwargs, hidden_size=16, core_output_norm=norm)
        assert isinstance(policy.core_output_norm, torch.nn.LayerNorm if norm else torch.nn.Identity)
        steps = 200
        obs = torch.full((steps, 1, 4), 0.5)
        reset = torch.zeros(steps, 1, dtype=torch.bool)
        reset[0] = True
        out, state = policy.unroll(obs, torch.zeros(steps, 1, dtype=torch.long), torch.zeros(steps, 1), reset,
                                   policy.initial_state(1))
        assert state[0].abs().max() > 50  # the memory itself does grow
        values[norm] = out.value[:, 0].detach()
    assert (values[True][-50:] - values[True][-100:-50]).abs().max() < 0.05  # settled
    assert (values[False][-1] - values[False][100]).abs() > 10 * (values[True][-1] - values[True][100]).abs()
    lstm = make_policy(space, actions, "lstm")
    assert isinstance(lstm.core_output_norm, torch.nn.Identity)  # the LSTM's output is bounded already


def _input_gate_logits(policy: ActorCritic, image: torch.Tensor) -> torch.Tensor:
    """The input-gate logit (input part, before the memory part and the bias) of each image,
    through the core's own input encoding (the code path training uses)."""
    no_extras = torch.zeros(image.shape[0], policy.action_head.encoded_action_size + 1)
    rows = policy._core_input(image, no_extras)  # [B, R, F]
    _, _, gate_from_input = policy.core._encode_inputs(rows, policy.core._low_rank_factors(False))  # [B, 2]
    return gate_from_input[:, 0]


def test_adam_cannot_swing_the_default_agents_rmc_gates_shut():
    # Box-World-sized boards (10 x 9 pixels with the held-key row: 7 x 8 = 56 input rows after
    # the two 2x2 convolutions). Ten Adam steps at the presets' learning rate push the input
    # gate's logit down as hard as they can: with the reference's flattened gate input (one
    # Linear over 56 x 64 values) the logit moves many times further than with the agent's
    # mean-pooled one, which is how a run's gates once went to 0 and blinded the agent.
    space, actions = gym.spaces.Box(0, 255, (10, 9, 3), np.uint8), gym.spaces.Discrete(4)
    image = sample_batch(space, (64,), seed=0)
    moved = {}
    for pooling in ("mean", "flatten"):
        torch.manual_seed(0)
        policy = ActorCritic(space, actions, core_kwargs={"mem_slots": 2, "head_size": 32, "num_heads": 2,
                                                          "gate_style": "memory"},
                             hidden_size=32, rmc_gate_input_pooling=pooling)
        rows = policy.core.num_input_rows
        assert policy.core.gate_input.in_features == (64 if pooling == "mean" else rows * 64)
        optimiser = torch.optim.Adam(policy.parameters(), lr=3e-4)
        before = _input_gate_logits(policy, image).detach()
        for _ in range(10):
            optimiser.zero_grad()
            _input_gate_logits(policy, image).mean().backward()
            optimiser.step()
        moved[pooling] = (before - _input_gate_logits(policy, image).detach()).mean().item()
    assert 0 < moved["mean"] < 0.25
    assert moved["flatten"] > 4 * moved["mean"]


def test_rmc_gate_pooling_defaults_to_mean_and_core_kwargs_win():
    space, actions = OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"]
    assert make_policy(space, actions, "rmc").core.gate_input_pooling == "mean"
    assert make_policy(space, actions, "rmc", rmc_gate_input_pooling="flatten").core.gate_input_pooling == "flatten"
    explicit = ActorCritic(space, actions, core_kwargs={**TINY_CORES["rmc"], "gate_input_pooling": "flatten"},
                           hidden_size=16)
    assert explicit.core.gate_input_pooling == "flatten"
    with pytest.raises(ValueError, match="rmc_gate_input_pooling must be 'flatten' or 'mean', got 'max'"):
        make_policy(space, actions, "rmc", rmc_gate_input_pooling="max")


def test_core_presets_and_bad_arguments():
    space, actions = OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"]
    paper = ActorCritic(space, actions, core_kwargs="rmc_boxworld_paper", hidden_size=16)
    assert paper.core.output_size == 1024  # 4 memories x 4 heads x 64: the "1024 total units"
    assert ActorCritic(space, actions, hidden_size=16).core.output_size == 4 * 64
    with pytest.raises(ValueError, match="unknown core preset 'lstm_256' for core='rmc'"):
        ActorCritic(space, actions, core_kwargs="lstm_256")
    with pytest.raises(ValueError, match="core must be 'rmc', 'lstm' or 'none', got 'gru'"):
        ActorCritic(space, actions, core="gru")
    with pytest.raises(ValueError, match="previous_reward_transform must be"):
        ActorCritic(space, actions, previous_reward_transform="scale")
    with pytest.raises(UnsupportedSpaceError, match="unsupported observation space Text"):
        ActorCritic(gym.spaces.Text(4), actions)
    with pytest.raises(UnsupportedSpaceError, match="unsupported action space Text"):
        ActorCritic(space, gym.spaces.Text(4))


def test_rmc_attention_and_missing_inputs():
    policy = make_policy(OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"], "rmc")
    obs = sample_batch(OBSERVATION_SPACES["image"], (3, 2), 0)
    reset = torch.zeros(3, 2, dtype=torch.bool)
    output, _ = policy.unroll(obs, torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2), reset,
                              policy.initial_state(2), return_attention=True)
    rows = 2 + 4 * 3  # memories + cells of the 6x5 frame's 4x3 feature map
    assert output.attention.shape == (3, 2, 1, 2, rows, rows)
    torch.testing.assert_close(output.attention.sum(-1), torch.ones(3, 2, 1, 2, rows))
    with pytest.raises(ValueError, match="previous_action and previous_reward are required"):
        policy.unroll(obs, None, None, reset, policy.initial_state(2))


def test_act_returns_this_steps_attention_and_policy_params():
    policy = make_policy(OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"], "rmc")
    obs = sample_batch(OBSERVATION_SPACES["image"], (2, 2), 1)
    action = torch.tensor([[0, 0], [2, 1]])
    reward = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    reset = torch.tensor([[True, True], [False, False]])
    expected, _ = policy.unroll(obs, action, reward, reset, policy.initial_state(2), return_attention=True)
    state = policy.initial_state(2)
    plain, state_plain = policy.act(obs[0], action[0], reward[0], reset[0], state, deterministic=True)
    assert plain.attention is None
    first, state = policy.act(obs[0], action[0], reward[0], reset[0], state, deterministic=True,
                              return_attention=True)
    torch.testing.assert_close(state, state_plain)
    torch.testing.assert_close(first.value, plain.value)
    torch.testing.assert_close(first.policy_params, plain.policy_params)
    second, _ = policy.act(obs[1], action[1], reward[1], reset[1], state, deterministic=True, return_attention=True)
    torch.testing.assert_close(second.attention, expected.attention[1])  # the core's own weights at t = 1
    torch.testing.assert_close(second.policy_params, expected.policy_params[1])
    assert second.action.tolist() == expected.policy_params[1].argmax(-1).tolist()
    with pytest.raises(ValueError, match="return_attention"):
        feed_forward = make_policy(OBSERVATION_SPACES["image"], ACTION_SPACES["discrete"], "none")
        feed_forward.act(obs[0], action[0], reward[0], reset[0], (), return_attention=True)


def test_lstm_core_follows_hidden_size_and_gets_a_forget_bias():
    policy = ActorCritic(OBSERVATION_SPACES["vector"], ACTION_SPACES["discrete"], core="lstm", hidden_size=24)
    assert policy.core.output_size == 24
    biases = sum(p for name, p in policy.core.named_parameters() if name.endswith("bias_ih_l0") or
                 name.endswith("bias_hh_l0")).detach().reshape(4, 24)  # gates i, f, g, o
    assert biases[1].mean().item() == pytest.approx(1.0, abs=0.15)
    assert biases[[0, 2, 3]].mean().abs().item() < 0.15


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("action_name", ["multi_discrete", "box"])
def test_policy_and_loss_run_on_the_module_device(device, action_name):
    torch.manual_seed(0)
    policy = make_policy(OBSERVATION_SPACES["dict"], ACTION_SPACES[action_name], "rmc").to(device)
    trajectory = random_trajectory(policy, steps=3, batch_size=2, seed=0)
    trajectory = Trajectory(*(map_leaves(lambda leaf: leaf.to(device), field) for field in trajectory))
    state = policy.initial_state(2, device=device)
    assert all(s.device.type == device for s in state)
    obs0 = map_leaves(lambda leaf: leaf[0].cpu().numpy(), trajectory.obs)  # numpy observations are accepted
    output, _ = policy.act(obs0, trajectory.previous_action[0], trajectory.previous_reward[0], trajectory.reset[0],
                           state)
    assert output.action.device.type == device and output.value.device.type == device
    loss = impala_loss(policy, trajectory, state, LossConfig())
    loss.total.backward()
    assert all(p.grad is not None and p.grad.device.type == device for p in policy.head_mlp.parameters())


@pytest.mark.parametrize("core", ["rmc", "lstm", "none"])
def test_tanh_mlps_and_orthogonal_initialisation(core):
    space, actions = OBSERVATION_SPACES["dict"], ACTION_SPACES["discrete"]
    torch.manual_seed(0)
    policy = ActorCritic(space, actions, core=core, core_kwargs=TINY_CORES[core], hidden_size=16,
                         mlp_activation="tanh", orthogonal_init=True)
    parts = [policy.encoder.flat_encoders, policy.head_mlp] + ([policy.torso] if policy.torso is not None else [])
    activations = [module for part in parts for module in part.modules() if isinstance(module, (nn.ReLU, nn.Tanh))]
    assert activations and all(isinstance(module, nn.Tanh) for module in activations)
    assert all(isinstance(module, nn.ReLU) for module in policy.encoder.image_encoders.modules()
               if isinstance(module, (nn.ReLU, nn.Tanh)))  # the image encoder keeps ReLU
    layers = [module for part in parts + [policy.encoder.image_encoders] for module in part.modules()
              if isinstance(module, (nn.Linear, nn.Conv2d))]
    for layer, gain in [*((layer, 2.0 ** 0.5) for layer in layers), (policy.action_head.linear, 0.01),
                        (policy.value_head, 1.0)]:
        weight = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        small = weight if weight.shape[0] <= weight.shape[1] else weight.T  # orthonormal rows, times the gain
        torch.testing.assert_close(small @ small.T, gain ** 2 * torch.eye(small.shape[0]), atol=1e-5 * max(gain, 1) ** 2,
                                   rtol=0)
        assert torch.count_nonzero(layer.bias) == 0
    default = ActorCritic(space, actions, core=core, core_kwargs=TINY_CORES[core], hidden_size=16)
    assert not any(isinstance(module, nn.Tanh) for module in default.modules())
    with pytest.raises(ValueError, match="mlp_activation must be one of"):
        ActorCritic(space, actions, core=core, core_kwargs=TINY_CORES[core], mlp_activation="gelu")
