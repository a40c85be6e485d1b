"""The learner loop's batches: whole actor buffers per update, or one buffer's games split
over several updates when the batch is smaller than an actor's games."""

from __future__ import annotations

import statistics

import pytest
import torch

from launch.impala.config import ConfigError, TrainConfig
from launch.train import Trainer


def small_config(**overrides) -> TrainConfig:
    values = {"env": "CartPole-v1", "core": "lstm", "core_kwargs": {"hidden_size": 8}, "hidden_size": 8,
              "num_actors": 1, "unroll_length": 5, "log_interval_s": 1e9, "checkpoint_interval_s": 1e9, **overrides}
    return TrainConfig(**values)


@pytest.mark.parametrize(("envs_per_actor", "batch_size", "unrolls", "updates"), [(4, 8, 2, 1), (4, 4, 1, 1),
                                                                                    (4, 2, 1, 2), (4, 1, 1, 4)])
def test_batch_size_sets_buffers_taken_and_updates_made(envs_per_actor: int, batch_size: int, unrolls: int,
                                                        updates: int) -> None:
    config = small_config(envs_per_actor=envs_per_actor, batch_size=batch_size)
    assert (config.unrolls_per_batch, config.updates_per_batch) == (unrolls, updates)
    assert config.steps_per_update == 5 * batch_size


@pytest.mark.parametrize("batch_size", [3, 6])
def test_a_batch_neither_multiple_nor_divisor_of_the_games_is_refused(batch_size: int) -> None:
    with pytest.raises(ConfigError, match=f"multiple or a divisor of envs_per_actor \\(4\\), got {batch_size}"):
        small_config(envs_per_actor=4, batch_size=batch_size).validate()


def test_a_batch_smaller_than_an_actors_games_makes_one_update_per_part() -> None:
    # 4 games per actor, batch 2, unroll 5: each buffer feeds two updates of 10 steps
    config = small_config(envs_per_actor=4, batch_size=2, total_steps=200)
    trainer = Trainer(config, run=None, log=lambda text: None)
    try:
        trainer.start()
        seen: list[int] = []
        update = trainer.learner.update

        def recording_update(trajectory, state, time_fraction=0.0):
            seen.append(trajectory.reward.shape[1])
            assert all(part.shape[0] == 2 for part in state)
            return update(trajectory, state, time_fraction)

        trainer.learner.update = recording_update
        trainer.run_loop(learn=True, duration_s=120.0)
        assert trainer.counters.step == 200
        assert trainer.counters.updates == trainer.learner.updates == len(seen) == 20
        assert set(seen) == {2}
    finally:
        trainer.close()


@pytest.mark.timeout(600)  # the learner's first update compiles the step (tens of seconds on CPU)
def test_compile_core_compiles_the_learners_rmc_step_and_training_goes_on() -> None:
    config = small_config(core="rmc", core_kwargs={"mem_slots": 2, "head_size": 4, "num_heads": 2},
                          envs_per_actor=2, batch_size=2, total_steps=20, compile_core=True)
    trainer = Trainer(config, run=None, log=lambda text: None)
    try:
        trainer.start()
        assert hasattr(trainer.policy.core._step, "_torchdynamo_orig_callable")  # the learner's copy only
        trainer.run_loop(learn=True, duration_s=300.0)
        assert trainer.counters.updates == 2 and trainer.counters.step == 20
        assert all(torch.isfinite(p).all() for p in trainer.policy.parameters())
    finally:
        trainer.close()


def test_compile_core_with_an_lstm_core_trains_as_without_it() -> None:
    config = small_config(compile_core=True, envs_per_actor=2, batch_size=2, total_steps=10)
    trainer = Trainer(config, run=None, log=lambda text: None)
    try:
        trainer.start()
        forward = type(trainer.policy.core).forward
        trainer.run_loop(learn=True, duration_s=120.0)
        assert trainer.counters.updates == 1 and type(trainer.policy.core).forward is forward
    finally:
        trainer.close()


def test_a_cpu_learner_gives_each_actor_one_slot_so_its_data_is_typically_two_updates_old() -> None:
    # 2 actors, one buffer per batch: one slot each (a second would only queue older data).
    # An actor acts with the weights published when its slot came back, while the learner
    # trains on the other actor's slot: 2 updates behind when its own is taken, in the steady
    # state. Not a hard bound: an actor the OS holds back (start-up, a loaded machine) can
    # return a batch 3 or more updates old while the learner trains on the other's; with two
    # slots each the typical batch is 4 old.
    config = small_config(num_actors=2, envs_per_actor=4, batch_size=4, total_steps=200, device="cpu")
    trainer = Trainer(config, run=None, log=lambda text: None)
    try:
        assert trainer.buffers.num_buffers == 2
        trainer.start()
        lags: list[int] = []
        gather = trainer.buffers.gather

        def recording_gather(slots, device):
            trajectory, state, versions = gather(slots, device)
            lags.append(trainer.learner.updates - int(versions.min()))
            return trajectory, state, versions

        trainer.buffers.gather = recording_gather
        trainer.run_loop(learn=True, duration_s=120.0)
        assert trainer.counters.updates == len(lags) == 10  # no deadlock
        assert min(lags) >= 0 and statistics.median(lags) <= 2
    finally:
        trainer.close()
    explicit = Trainer(small_config(num_actors=2, envs_per_actor=4, batch_size=4, slots_per_actor=3, device="cpu"),
                       run=None, log=lambda text: None)
    try:
        assert explicit.buffers.num_buffers == 6
    finally:
        explicit.close()
