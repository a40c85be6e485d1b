"""The unrolls an actor writes follow the Trajectory contract (NEXT_STEP autoreset,
overlapping observations, previous action/reward, core state, policy version), and the
learner batches them; weights cross processes through the seqlock."""

from __future__ import annotations

import multiprocessing
import threading

import gymnasium as gym
import numpy as np
import pytest
import torch

from launch.impala.actor import ActorLoop, ActorSpec
from launch.impala.buffers import RolloutBuffers, buffers_per_actor, space_layout, split_batch
from launch.impala.config import TrainConfig
from launch.impala.env_factory import EnvConfigError, episode_stats, make_vector_env
from launch.impala.policy_factory import build_policy
from launch.impala.shared_weights import SharedWeights

T, E = 25, 3


def collect_unrolls(config: TrainConfig, count: int) -> tuple[RolloutBuffers, list[int], list, SharedWeights]:
    """Run an actor loop on a thread over ``count`` slots; return them in the order written."""
    env = make_vector_env(config.env, 1)
    policy = build_policy(config, env.single_observation_space, env.single_action_space)
    weights = SharedWeights(policy.state_dict(), version=5)
    buffers = RolloutBuffers(count, config.unroll_length, config.envs_per_actor, env.single_observation_space,
                             policy.action_shape, policy.action_dtype, policy.initial_state(config.envs_per_actor))
    learner_end, actor_end = multiprocessing.Pipe(duplex=True)
    spec = ActorSpec(index=0, generation=0, config=config, buffers=buffers, weights=weights,
                     buffer_ids=list(range(count)), connection=actor_end, parent_pid=0, seed=3)
    loop = ActorLoop(spec)
    failures: list[BaseException] = []

    def target() -> None:
        try:
            loop.run()
        except BaseException as error:  # StopActor ends the loop
            failures.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    order, episodes = [], []
    for _ in range(count):
        assert learner_end.poll(60), "the actor wrote no unroll within 60 s"
        kind, slot, ended = learner_end.recv()
        assert kind == "unroll"
        order.append(slot)
        episodes.extend(ended)
    learner_end.send(("stop",))
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert [type(error).__name__ for error in failures] == ["StopActor"]
    return buffers, order, episodes, weights


def test_cartpole_unrolls_follow_the_trajectory_contract() -> None:
    config = TrainConfig(env="CartPole-v1", core="lstm", core_kwargs={"hidden_size": 8}, hidden_size=8,
                         unroll_length=T, envs_per_actor=E, batch_size=E)
    buffers, order, episodes, _ = collect_unrolls(config, 3)
    assert order == [0, 1, 2]
    assert buffers.policy_version.tolist() == [5, 5, 5]
    # consecutive unrolls overlap by one observation
    for first, second in zip(order, order[1:]):
        assert torch.equal(buffers.obs[first, T], buffers.obs[second, 0])
        assert torch.equal(buffers.reset[first, T], buffers.reset[second, 0])
    assert buffers.reset[0, 0].all()  # the first observation starts every game's episode
    reset = torch.cat([buffers.reset[slot, :T] for slot in order])  # [3T, E]
    terminated = torch.cat([buffers.terminated[slot] for slot in order])
    truncated = torch.cat([buffers.truncated[slot] for slot in order])
    reward = torch.cat([buffers.reward[slot] for slot in order])
    previous_reward = torch.cat([buffers.previous_reward[slot, :T] for slot in order])
    previous_action = torch.cat([buffers.previous_action[slot, :T] for slot in order])
    action = torch.cat([buffers.action[slot] for slot in order])
    done = terminated | truncated
    assert done.any(), "a random CartPole policy ends episodes within 75 steps"
    for t in range(1, reset.shape[0]):
        # NEXT_STEP: the step after a done step is the reset step (reward 0), then obs is new
        if t >= 2:
            assert torch.equal(reset[t], done[t - 2])
        assert torch.equal(reward[t][done[t - 1]], torch.zeros(int(done[t - 1].sum())))
        expected_reward = torch.where(reset[t], 0.0, reward[t - 1])
        assert torch.equal(previous_reward[t], expected_reward)
        assert torch.equal(previous_action[t], torch.where(reset[t], 0, action[t - 1]))
    lengths = [episode.length for episode in episodes]
    assert episodes and all(episode.return_ == episode.length for episode in episodes)  # CartPole: +1 per step
    assert len(episodes) == int(done.sum())
    assert all(episode.success is None for episode in episodes)
    assert min(lengths) >= 1


def test_boxworld_unrolls_carry_success_and_gather_into_a_batch() -> None:
    config = TrainConfig(env="rmc/BoxWorldEasy-v0", core="rmc", hidden_size=16, unroll_length=T,
                         core_kwargs={"mem_slots": 2, "head_size": 8, "num_heads": 1}, envs_per_actor=E,
                         batch_size=2 * E, env_kwargs={"max_steps": 10})
    buffers, order, episodes, _ = collect_unrolls(config, 2)
    assert episodes and all(episode.success in (0.0, 1.0) for episode in episodes)
    assert buffers.obs.dtype == torch.uint8
    trajectory, state, versions = buffers.gather(order, torch.device("cpu"))
    assert trajectory.obs.shape[:2] == (T + 1, 2 * E) and trajectory.action.shape == (T, 2 * E)
    assert torch.equal(trajectory.obs[:, E:], buffers.obs[order[1]])
    assert torch.equal(trajectory.reward[:, :E], buffers.reward[order[0]])
    assert [part.shape[0] for part in state] == [2 * E] * len(state)
    assert versions.tolist() == [5, 5]


def test_a_gathered_batch_splits_into_equal_batches_of_whole_unrolls() -> None:
    config = TrainConfig(env="rmc/BoxWorldEasy-v0", core="rmc", hidden_size=16, unroll_length=T,
                         core_kwargs={"mem_slots": 2, "head_size": 8, "num_heads": 1}, envs_per_actor=E,
                         batch_size=1, env_kwargs={"max_steps": 10})
    assert (config.unrolls_per_batch, config.updates_per_batch) == (1, E)
    buffers, order, _, _ = collect_unrolls(config, 1)
    trajectory, state, _ = buffers.gather(order, torch.device("cpu"))
    parts = split_batch(trajectory, state, E)
    assert len(parts) == E
    for index, field in enumerate(trajectory):
        pieces = [part[index] for part, _ in parts]
        if field is None:  # an optional field this run does not fill stays absent in every part
            assert all(piece is None for piece in pieces)
            continue
        assert all(piece.shape[1] == 1 for piece in pieces)
        assert torch.equal(torch.cat(pieces, dim=1), field)
    for index, whole in enumerate(state):
        assert torch.equal(torch.cat([part_state[index] for _, part_state in parts], dim=0), whole)
    with pytest.raises(ValueError, match=f"cannot split a batch of {E} unrolls into 2 equal parts"):
        split_batch(trajectory, state, 2)


def _read_weights(weights: SharedWeights, result: multiprocessing.Queue) -> None:
    module = torch.nn.Linear(3, 2)
    version = weights.read_into(module)
    result.put((version, module.weight.tolist(), weights.read_into(module, version)))  # plain data: the child exits


def test_weights_published_by_the_learner_reach_another_process() -> None:
    module = torch.nn.Linear(3, 2)
    weights = SharedWeights(module.state_dict(), version=0)
    with torch.no_grad():
        module.weight.fill_(7.0)
    weights.publish(module.state_dict(), version=4)
    assert weights.version == 4
    context = torch.multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=_read_weights, args=(weights, result))
    process.start()
    version, weight, again = result.get(timeout=120)
    process.join(timeout=30)
    assert version == 4 and weight == [[7.0] * 3] * 2 and again is None


def test_space_layouts_and_unsupported_spaces() -> None:
    space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (2, 2, 3), np.uint8),
                             "pair": gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.MultiBinary(4)))})
    assert space_layout(space) == {"image": ((2, 2, 3), torch.uint8), "pair": (((), torch.int64), ((4,), torch.int8))}
    with pytest.raises(ValueError, match="unsupported space Text"):
        space_layout(gym.spaces.Text(4))
    with_mission = gym.spaces.Dict({**space.spaces, "mission": gym.spaces.Text(4)})  # the agent leaves it out
    buffers = RolloutBuffers(2, 5, 3, with_mission, (), torch.int64, (), shared=False)
    assert set(buffers.obs) == {"image", "pair"} and buffers.obs["image"].shape == (2, 6, 3, 2, 2, 3)
    assert buffers_per_actor(unrolls_per_batch=8, num_actors=2) == 5
    assert buffers_per_actor(unrolls_per_batch=1, num_actors=4) == 2
    # a CPU learner sets the pace: one slot each while the actors outnumber a batch's unrolls
    assert buffers_per_actor(unrolls_per_batch=1, num_actors=2, learner_sets_pace=True) == 1
    assert buffers_per_actor(unrolls_per_batch=2, num_actors=2, learner_sets_pace=True) == 2
    assert buffers_per_actor(unrolls_per_batch=8, num_actors=2, learner_sets_pace=True) == 5


def test_env_factory_uses_the_batch_native_vector_env_when_registered() -> None:
    native = make_vector_env("rmc/BoxWorldEasy-v0", 4)
    assert type(native.unwrapped).__name__ == "BoxWorldVectorEnv"
    sync = make_vector_env("Acrobot-v1", 2)
    assert isinstance(sync.unwrapped, gym.vector.SyncVectorEnv)
    wrapped = make_vector_env("rmc/BoxWorldEasy-v0", 2, wrappers=["gymnasium.wrappers:FlattenObservation"])
    assert isinstance(wrapped.unwrapped, gym.vector.SyncVectorEnv)
    assert wrapped.single_observation_space.shape == (int(np.prod(native.single_observation_space.shape)),)
    with pytest.raises(EnvConfigError, match="did you mean"):
        make_vector_env("CartPol-v1", 1)
    with pytest.raises(EnvConfigError, match="could not be found"):
        make_vector_env("CartPole-v1", 1, wrappers=["gymnasium.wrappers:NoSuchWrapper"])
    for env in (native, sync, wrapped):
        env.close()


def test_episode_stats_reads_returns_lengths_and_success() -> None:
    info = {"episode": {"r": np.array([0.0, 3.5, 1.0]), "l": np.array([0, 7, 2])},
            "_episode": np.array([False, True, True]),
            "success": np.array([False, True, False]), "_success": np.array([False, True, False])}
    assert episode_stats(info) == [(3.5, 7, 1.0, True), (1.0, 2, None, True)]
    assert episode_stats(info, np.array([True, False, True])) == [(3.5, 7, 1.0, False), (1.0, 2, None, True)]
    assert episode_stats({}) == []
