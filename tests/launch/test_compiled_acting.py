"""An actor's compiled acting step: the eager step's outputs, and new weights reach it."""

from __future__ import annotations

import pytest
import torch

from launch.impala.config import TrainConfig
from launch.impala.rollout import Rollout, compiles_acting


def make_rollout(compile_acting: str) -> Rollout:
    config = TrainConfig(env="CartPole-v1", core="rmc", core_kwargs={"mem_slots": 2, "head_size": 4, "num_heads": 2},
                         hidden_size=8, num_actors=1, envs_per_actor=4, batch_size=4, unroll_length=5,
                         compile_acting=compile_acting, device="cpu")
    return Rollout(config, seed=0)


def act_both_ways(rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
    arguments = (torch.as_tensor(rollout.observation), rollout.previous_action, rollout.previous_reward,
                 rollout.reset, rollout.state)
    with torch.inference_mode():
        compiled, _ = rollout.act(*arguments, deterministic=True)
        eager, _ = rollout.policy.act(*arguments, deterministic=True)
    for name in ("policy_params", "value", "action"):  # float32: the compiled graph rounds differently
        torch.testing.assert_close(getattr(compiled, name), getattr(eager, name), rtol=1e-4, atol=1e-5, msg=name)
    return compiled.policy_params, compiled.value


@pytest.mark.timeout(600)  # the first compile of the step takes a while on a CPU
def test_the_compiled_acting_step_equals_the_eager_one_and_reads_new_weights_in_place() -> None:
    rollout = make_rollout("on")
    assert rollout.act is not rollout.policy.act
    before = act_both_ways(rollout)
    with torch.no_grad():  # as SharedWeights.read_into copies the learner's weights
        for parameter in rollout.policy.parameters():
            parameter.mul_(1.5).add_(0.01)
    after = act_both_ways(rollout)
    assert not torch.allclose(after[1], before[1])


def test_acting_compiles_by_default_only_for_a_cuda_learner() -> None:
    rollout = make_rollout("off")
    assert rollout.act == rollout.policy.act
    for device, expected in (("cpu", False), ("cuda", True)):
        config = TrainConfig(env="CartPole-v1", device=device)
        assert compiles_acting(config) is expected
    assert compiles_acting(TrainConfig(env="CartPole-v1", compile_acting="on", device="cpu"))
    assert not compiles_acting(TrainConfig(env="CartPole-v1", compile_acting="off", device="cuda"))
