"""The IMPALA loss at episode boundaries, with a table policy whose values are known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from agents.distributions import CategoricalDistribution
from agents.loss import LossConfig, impala_loss
from agents.policy import UnrollOutput
from agents.trajectory import Trajectory


class TablePolicy(nn.Module):
    """Observation k -> value table[k] and logits[k]; no core state."""

    def __init__(self, values: list[float], num_actions: int = 2) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.tensor(values))
        self.logits = nn.Parameter(torch.linspace(-1.0, 1.0, len(values) * num_actions).reshape(len(values), -1))

    def unroll(self, obs, previous_action, previous_reward, reset, state):
        return UnrollOutput(self.logits[obs], self.values[obs]), ()

    def distribution(self, params):
        return CategoricalDistribution(params)


def make_trajectory(policy, obs, reset, action, reward, terminated, truncated, off_policy=None):
    obs = torch.tensor(obs).unsqueeze(1)  # [T+1, 1]
    action = torch.tensor(action).unsqueeze(1)
    with torch.no_grad():
        behaviour = policy.distribution(policy.logits[obs[:-1]]).log_prob(action)
    if off_policy is not None:
        behaviour = behaviour + torch.tensor(off_policy).unsqueeze(1)
    steps = len(action)
    return Trajectory(
        obs=obs,
        reset=torch.tensor(reset).unsqueeze(1),
        previous_action=torch.zeros(steps + 1, 1, dtype=torch.int64),
        previous_reward=torch.zeros(steps + 1, 1),
        action=action,
        behaviour_log_prob=behaviour,
        reward=torch.tensor(reward).unsqueeze(1),
        terminated=torch.tensor(terminated).unsqueeze(1),
        truncated=torch.tensor(truncated).unsqueeze(1),
    )


def log_prob(policy, observation, action):
    return torch.log_softmax(policy.logits[observation], -1)[action].item()


CONFIG = LossConfig(discount=0.9, baseline_cost=0.5, entropy_cost=0.0)


def test_termination_zeroes_the_discount():
    policy = TablePolicy([3.0, 100.0, 50.0])
    trajectory = make_trajectory(policy, [0, 1, 2], [False, False, True], [1, 0], [1.0, 0.0], [True, False], [False, False])
    loss = impala_loss(policy, trajectory, (), CONFIG)
    target = 1.0  # no bootstrap from the terminal observation's value (100)
    assert loss.baseline_loss.item() == pytest.approx(0.5 * (target - 3.0) ** 2)
    assert loss.policy_loss.item() == pytest.approx(-log_prob(policy, 0, 1) * (target - 3.0), rel=1e-6)
    assert loss.mean_vtrace_target.item() == pytest.approx(target)


def test_truncation_bootstraps_from_the_final_observation():
    policy = TablePolicy([3.0, 100.0, 50.0])
    trajectory = make_trajectory(policy, [0, 1, 2], [False, False, True], [1, 0], [1.0, 0.0], [False, False], [True, False])
    loss = impala_loss(policy, trajectory, (), CONFIG)
    target = 1.0 + 0.9 * 100.0  # V(final obs), not V(next episode's first obs) = 50
    assert loss.baseline_loss.item() == pytest.approx(0.5 * (target - 3.0) ** 2)
    assert loss.policy_loss.item() == pytest.approx(-log_prob(policy, 0, 1) * (target - 3.0), rel=1e-6)


def test_autoreset_transition_is_masked_and_does_not_leak():
    # t=0 normal, t=1 truncated (final obs 2), t=2 autoreset into obs 3 (new episode), t=3 normal.
    values = [1.0, 2.0, 30.0, 400.0, 5.0]
    policy = TablePolicy(values)
    kwargs = dict(obs=[0, 1, 2, 3, 4], reset=[False, False, False, True, False], action=[0, 1, 0, 1],
                  terminated=[False, False, False, False], truncated=[False, True, False, False])
    trajectory = make_trajectory(policy, reward=[1.0, 2.0, 0.0, 3.0], **kwargs)
    loss = impala_loss(policy, trajectory, (), CONFIG)
    gamma = 0.9
    vs1 = 2.0 + gamma * 30.0
    vs0 = 1.0 + gamma * vs1
    vs3 = 3.0 + gamma * 5.0
    expected_baseline = 0.5 * ((vs0 - 1.0) ** 2 + (vs1 - 2.0) ** 2 + (vs3 - 400.0) ** 2)
    assert loss.baseline_loss.item() == pytest.approx(expected_baseline, rel=1e-6)
    expected_policy = -(log_prob(policy, 0, 0) * (1.0 + gamma * vs1 - 1.0)
                        + log_prob(policy, 1, 1) * (2.0 + gamma * 30.0 - 2.0)
                        + log_prob(policy, 3, 1) * (3.0 + gamma * 5.0 - 400.0))
    assert loss.policy_loss.item() == pytest.approx(expected_policy, rel=1e-6)

    # Whatever the autoreset transition holds, loss and gradients are unchanged.
    loss.total.backward()
    gradients = [p.grad.clone() for p in policy.parameters()]
    policy.zero_grad()
    garbage = make_trajectory(policy, reward=[1.0, 2.0, 77.0, 3.0], off_policy=[0.0, 0.0, 5.0, 0.0], **kwargs)
    garbage = garbage._replace(action=torch.tensor([[0], [1], [1], [1]]), terminated=torch.tensor([[False], [False], [True], [False]]))
    other = impala_loss(policy, garbage, (), CONFIG)
    other.total.backward()
    assert other.total.item() == pytest.approx(loss.total.item())
    for before, after in zip(gradients, (p.grad for p in policy.parameters())):
        torch.testing.assert_close(before, after)
    assert policy.values.grad[2].item() == 0.0  # the final observation's value is only a bootstrap


def test_entropy_reduction_clipping_and_importance_weights():
    policy = TablePolicy([0.0, 0.0, 0.0, 0.0])
    kwargs = dict(obs=[0, 1, 2, 3], reset=[False, False, False, True], action=[0, 1, 1],
                  reward=[5.0, -7.0, 0.0], terminated=[False, True, False], truncated=[False, False, False])
    trajectory = make_trajectory(policy, off_policy=[0.0, math.log(0.5), 3.0], **kwargs)
    summed = impala_loss(policy, trajectory, (), LossConfig(discount=0.9, entropy_cost=0.0, reward_clip=1.0))
    # rewards clipped to +-1; rho_1 = 1 / 0.5 = 2 clipped to 1; the autoreset step is excluded
    assert summed.baseline_loss.item() == pytest.approx(0.5 * ((1.0 + 0.9 * -1.0) ** 2 + 1.0))
    assert summed.mean_importance_weight.item() == pytest.approx((1.0 + 2.0) / 2)  # unclipped pi / mu
    # (rho - 1) - log rho: 0 on-policy, 1 - log 2 where rho = 2; the autoreset step is excluded
    assert summed.behaviour_kl.item() == pytest.approx((0.0 + 1.0 - math.log(2.0)) / 2)
    expected_entropy = CategoricalDistribution(policy.logits[[0, 1]]).entropy().mean().item()
    assert summed.entropy.item() == pytest.approx(expected_entropy)
    averaged = impala_loss(policy, trajectory, (), LossConfig(discount=0.9, entropy_cost=0.0, reward_clip=1.0,
                                                              reduction="mean"))
    assert averaged.total.item() == pytest.approx(summed.total.item() / 2)
    with_entropy = impala_loss(policy, trajectory, (), LossConfig(discount=0.9, entropy_cost=0.1, reward_clip=1.0))
    assert with_entropy.total.item() == pytest.approx(summed.total.item() - 0.1 * 2 * expected_entropy, rel=1e-6)


def test_behaviour_kl_estimates_the_divergence_from_sampled_actions():
    samples = 40_000
    policy = TablePolicy([0.0, 0.0], num_actions=3)  # pi at observation 0: softmax([-1, -0.6, -0.2])
    behaviour_logits = torch.tensor([0.5, -1.0, 0.2])
    generator = torch.Generator().manual_seed(0)
    action = torch.multinomial(torch.softmax(behaviour_logits, -1), samples, replacement=True, generator=generator)

    def batch(behaviour: torch.Tensor) -> Trajectory:
        return Trajectory(
            obs=torch.zeros(2, samples, dtype=torch.int64), reset=torch.zeros(2, samples, dtype=torch.bool),
            previous_action=torch.zeros(2, samples, dtype=torch.int64), previous_reward=torch.zeros(2, samples),
            action=action.unsqueeze(0), behaviour_log_prob=torch.log_softmax(behaviour, -1)[action].unsqueeze(0),
            reward=torch.zeros(1, samples), terminated=torch.zeros(1, samples, dtype=torch.bool),
            truncated=torch.zeros(1, samples, dtype=torch.bool))

    mu = torch.log_softmax(behaviour_logits, -1)
    pi = torch.log_softmax(policy.logits[0].detach(), -1)
    exact = (mu.exp() * (mu - pi)).sum().item()  # KL(mu || pi) = 0.25
    estimate = impala_loss(policy, batch(behaviour_logits), (), CONFIG).behaviour_kl.item()
    assert estimate == pytest.approx(exact, rel=0.05)
    on_policy = impala_loss(policy, batch(policy.logits[0].detach()), (), CONFIG)
    assert on_policy.behaviour_kl.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"discount": 1.5}, "discount must be in \\[0, 1\\], got 1.5"), ({"reward_clip": 0.0}, "reward_clip must be > 0"),
     ({"reduction": "max"}, "reduction must be 'sum' or 'mean', got 'max'"),
     ({"pg_ratio_clip": 1.0}, "pg_ratio_clip must be in \\(0, 1\\) or None, got 1.0")],
)
def test_bad_config_values_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossConfig(**kwargs)


def policy_gradients(policy, trajectory, config):
    policy.zero_grad()
    loss = impala_loss(policy, trajectory, (), config)
    loss.total.backward()  # the logits' gradient comes from the policy term alone (entropy cost 0)
    return loss, policy.logits.grad.clone()


def test_ratio_clip_on_policy_gives_impalas_policy_gradient():
    policy = TablePolicy([0.5, -1.0, 2.0, 0.0])
    trajectory = make_trajectory(policy, [0, 1, 2, 3], [False] * 4, [1, 0, 1], [1.0, -2.0, 3.0],
                                 [False, False, True], [False] * 3)
    impala, impala_grad = policy_gradients(policy, trajectory, CONFIG)
    clipped, clipped_grad = policy_gradients(policy, trajectory, LossConfig(discount=0.9, entropy_cost=0.0,
                                                                            pg_ratio_clip=0.2))
    torch.testing.assert_close(clipped_grad, impala_grad)
    assert clipped.pg_clipped_fraction.item() == 0.0
    assert impala.pg_clipped_fraction.item() == 0.0


@pytest.mark.parametrize("reward", [10.0, -10.0])
def test_ratio_clip_stops_a_sample_pulling_further_once_its_ratio_left_the_range(reward):
    # One step; the learner's pi(a) is twice the actors' mu(a) (ratio 2 > 1.2).
    policy = TablePolicy([0.0, 0.0])
    trajectory = make_trajectory(policy, [0, 1], [False, False], [1], [reward], [True], [False],
                                 off_policy=[-math.log(2.0)])
    config = LossConfig(discount=0.9, entropy_cost=0.0, pg_ratio_clip=0.2)
    loss, gradient = policy_gradients(policy, trajectory, config)
    assert loss.pg_clipped_fraction.item() == 1.0
    if reward > 0:  # raising pi(a) further would gain nothing: no gradient
        assert torch.count_nonzero(gradient) == 0
    else:  # lowering pi(a) back towards mu(a) still pulls, by ratio * advantage * grad log pi
        expected = torch.zeros_like(gradient)
        probs = torch.softmax(policy.logits[0].detach(), -1)
        grad_log_pi = -probs
        grad_log_pi[1] += 1.0
        expected[0] = -2.0 * reward * grad_log_pi
        torch.testing.assert_close(gradient, expected)


@pytest.mark.parametrize("lag", [-math.log(2.0), math.log(2.0)])
def test_clipped_against_the_update_start_the_first_epoch_is_impalas_gradient_whatever_the_lag(lag):
    # The actors' mu(a) is half (or twice) the learner's pi(a): against mu the sample is clipped
    # before the update moves; against the update's start its ratio is 1, and the truncated
    # weight min(1, pi_prox / mu) is V-trace's policy-gradient weight.
    policy = TablePolicy([0.0, 0.0])
    trajectory = make_trajectory(policy, [0, 1], [False, False], [1], [10.0], [True], [False], off_policy=[lag])
    behaviour, _ = policy_gradients(policy, trajectory, LossConfig(discount=0.9, entropy_cost=0.0, pg_ratio_clip=0.2))
    assert behaviour.pg_clipped_fraction.item() == 1.0
    update = LossConfig(discount=0.9, entropy_cost=0.0, pg_ratio_clip=0.2, pg_clip_reference="update")
    decoupled, gradient = policy_gradients(policy, trajectory, update)
    assert decoupled.pg_clipped_fraction.item() == 0.0
    _, impala_gradient = policy_gradients(policy, trajectory, CONFIG)
    torch.testing.assert_close(gradient, impala_gradient)
    torch.testing.assert_close(decoupled.log_prob, torch.tensor([[log_prob(policy, 0, 1)]]))


@pytest.mark.parametrize("reward", [10.0, -10.0])
def test_clipped_against_the_update_start_a_later_epoch_clips_the_updates_own_movement(reward):
    # The proximal policy (the update's start) is the actors' and pi(a) has doubled since: the
    # clip binds as it does against mu, with the importance weight pi_prox / mu = 1.
    policy = TablePolicy([0.0, 0.0])
    trajectory = make_trajectory(policy, [0, 1], [False, False], [1], [reward], [True], [False],
                                 off_policy=[-math.log(2.0)])
    config = LossConfig(discount=0.9, entropy_cost=0.0, pg_ratio_clip=0.2)
    expected_loss, expected = policy_gradients(policy, trajectory, config)
    policy.zero_grad()
    update = LossConfig(discount=0.9, entropy_cost=0.0, pg_ratio_clip=0.2, pg_clip_reference="update")
    loss = impala_loss(policy, trajectory, (), update, proximal_log_prob=trajectory.behaviour_log_prob)
    loss.total.backward()
    assert loss.pg_clipped_fraction.item() == 1.0
    assert loss.policy_loss.item() == pytest.approx(expected_loss.policy_loss.item())
    torch.testing.assert_close(policy.logits.grad, expected)
    with pytest.raises(ValueError, match="pg_clip_reference must be 'behaviour' or 'update', got 'actor'"):
        LossConfig(pg_clip_reference="actor")


@pytest.mark.parametrize("held", [True, False])
def test_actors_exploring_around_their_policy_are_clipped_against_that_policy(held):
    # A held action: the actors' network gave pi(a) (the learner's), the exploring mixture
    # mu(a) = 2 pi(a). Against mu the ratio is 0.5 and a negative advantage gives no gradient;
    # against the actors' network the ratio is 1 and the gradient is IMPALA's times
    # min(1, pi_actor / mu) = 0.5. A sample the mixture made less likely (mu = pi / 2, not
    # held) keeps IMPALA's gradient (the weight 2 truncated to 1).
    policy = TablePolicy([0.0, 0.0])
    lag = math.log(2.0) if held else -math.log(2.0)
    trajectory = make_trajectory(policy, [0, 1], [False, False], [1], [-10.0], [True], [False], off_policy=[lag])
    clip = LossConfig(discount=0.9, entropy_cost=0.0, pg_ratio_clip=0.2)
    against_mu, mu_gradient = policy_gradients(policy, trajectory, clip)
    assert against_mu.pg_clipped_fraction.item() == 1.0
    assert against_mu.behaviour_kl.item() > 0.05
    if held:
        assert torch.count_nonzero(mu_gradient) == 0
    actors = trajectory._replace(policy_log_prob=trajectory.behaviour_log_prob - lag)
    explored, gradient = policy_gradients(policy, actors, clip)
    assert explored.pg_clipped_fraction.item() == 0.0
    assert explored.behaviour_kl.item() == pytest.approx(0.0, abs=1e-6)  # the learner is the actors' policy
    _, impala_gradient = policy_gradients(policy, trajectory._replace(behaviour_log_prob=actors.policy_log_prob),
                                          CONFIG)
    torch.testing.assert_close(gradient, impala_gradient * (0.5 if held else 1.0))
    # where nothing was held the actors' policy is the behaviour and the loss is the plain clip's
    unheld = trajectory._replace(policy_log_prob=trajectory.behaviour_log_prob)
    same, same_gradient = policy_gradients(policy, unheld, clip)
    assert same.total.item() == against_mu.total.item()
    torch.testing.assert_close(same_gradient, mu_gradient)
