"""V-trace against a naive numpy sum written straight from the IMPALA paper's formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import vtrace


def naive_vtrace(log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, pg_rho_bar, lambda_=1.0):
    """O(T^2) evaluation of v_s = V(x_s) + sum_t (prod_{i<t} gamma_i c_i) rho_t delta_t,
    with c_i = lambda * min(1, rho_i)."""
    rhos = np.exp(log_rhos)
    clipped_rhos = rhos if rho_bar is None else np.minimum(rhos, rho_bar)
    pg_rhos = rhos if pg_rho_bar is None else np.minimum(rhos, pg_rho_bar)
    cs = lambda_ * np.minimum(rhos, 1.0)
    all_values = np.concatenate([values, bootstrap_value[None]], axis=0)  # V(x_0) .. V(x_T)
    horizon = len(rewards)
    vs = np.zeros_like(values)
    for s in range(horizon):
        total = values[s].copy()
        for t in range(s, horizon):
            trace = np.ones_like(values[s])
            for i in range(s, t):
                trace = trace * discounts[i] * cs[i]
            delta = rewards[t] + discounts[t] * all_values[t + 1] - all_values[t]
            total = total + trace * clipped_rhos[t] * delta
        vs[s] = total
    next_vs = np.concatenate([vs[1:], bootstrap_value[None]], axis=0)
    pg_advantages = pg_rhos * (rewards + discounts * next_vs - values)
    return vs, pg_advantages


def standard_case(horizon: int, batch_size: int):
    """The standard test data of the reference V-trace tests (float64)."""
    size = horizon * batch_size
    log_rhos = np.linspace(-2.5, 2.5, size, endpoint=False).reshape(horizon, batch_size)
    discounts = np.tile(np.array([0.9 / (b + 1) for b in range(batch_size)]), (horizon, 1))
    rewards = np.arange(size, dtype=np.float64).reshape(horizon, batch_size)
    values = np.arange(size, dtype=np.float64).reshape(horizon, batch_size) / batch_size
    bootstrap_value = np.arange(batch_size, dtype=np.float64) + 1.0
    return log_rhos, discounts, rewards, values, bootstrap_value


@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize(("rho_bar", "pg_rho_bar"), [(3.7, 2.2), (1.0, 1.0), (None, None)])
def test_matches_naive_formula(batch_size, rho_bar, pg_rho_bar):
    data = standard_case(5, batch_size)
    expected_vs, expected_adv = naive_vtrace(*data, rho_bar, pg_rho_bar)
    tensors = [torch.tensor(x, dtype=torch.float32) for x in data]
    result = vtrace.from_importance_weights(*tensors, clip_rho_threshold=rho_bar, clip_pg_rho_threshold=pg_rho_bar)
    np.testing.assert_allclose(result.vs.numpy(), expected_vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.pg_advantages.numpy(), expected_adv, rtol=1e-5, atol=1e-5)


def test_on_policy_without_discount_cut_is_the_n_step_return():
    # rho = 1 everywhere: v_s is the discounted return bootstrapped from V(x_T).
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[10.0], [20.0], [30.0]])
    discounts = torch.full((3, 1), 0.5)
    result = vtrace.from_importance_weights(torch.zeros(3, 1), discounts, rewards, values, torch.tensor([8.0]))
    expected = [1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 8, 2 + 0.5 * 3 + 0.25 * 8, 3 + 0.5 * 8]
    np.testing.assert_allclose(result.vs[:, 0].numpy(), expected, rtol=1e-6)


def test_zero_importance_weight_cuts_the_trace():
    # A transition with log-rho -inf contributes nothing: its target is its own value and
    # the step before it bootstraps from that value.
    rewards = torch.tensor([[1.0], [5.0], [7.0]])
    values = torch.tensor([[2.0], [3.0], [4.0]])
    discounts = torch.full((3, 1), 0.9)
    log_rhos = torch.tensor([[0.0], [-float("inf")], [0.0]])
    result = vtrace.from_importance_weights(log_rhos, discounts, rewards, values, torch.tensor([6.0]))
    assert result.vs[1, 0].item() == pytest.approx(3.0)
    assert result.pg_advantages[1, 0].item() == 0.0
    assert result.vs[0, 0].item() == pytest.approx(1.0 + 0.9 * 3.0)
    assert torch.isfinite(result.vs).all() and torch.isfinite(result.pg_advantages).all()


def test_from_log_probs_equals_from_importance_weights():
    generator = torch.Generator().manual_seed(0)
    horizon, batch_size = 7, 4
    behaviour = torch.randn(horizon, batch_size, generator=generator) - 1.0
    target = (torch.randn(horizon, batch_size, generator=generator) - 1.0).requires_grad_()
    discounts = torch.rand(horizon, batch_size, generator=generator)
    rewards = torch.randn(horizon, batch_size, generator=generator)
    values = torch.randn(horizon, batch_size, generator=generator)
    bootstrap = torch.randn(batch_size, generator=generator)
    from_probs = vtrace.from_log_probs(behaviour, target, discounts, rewards, values, bootstrap, 1.3, 0.8)
    from_weights = vtrace.from_importance_weights(
        target.detach() - behaviour, discounts, rewards, values, bootstrap, 1.3, 0.8
    )
    torch.testing.assert_close(from_probs.vs, from_weights.vs)
    torch.testing.assert_close(from_probs.pg_advantages, from_weights.pg_advantages)
    torch.testing.assert_close(from_probs.log_rhos, target.detach() - behaviour)
    assert from_probs.target_log_probs.requires_grad
    assert not from_probs.vs.requires_grad and not from_probs.pg_advantages.requires_grad


def test_higher_rank_inputs_match_per_element_computation():
    generator = torch.Generator().manual_seed(1)
    shape = (6, 3, 2, 4)  # [T, B, extra, extra]
    log_rhos = torch.randn(shape, generator=generator)
    discounts = torch.rand(shape, generator=generator)
    rewards = torch.randn(shape, generator=generator)
    values = torch.randn(shape, generator=generator)
    bootstrap = torch.randn(shape[1:], generator=generator)
    result = vtrace.from_importance_weights(log_rhos, discounts, rewards, values, bootstrap, 3.7, 2.2)
    assert result.vs.shape == shape and result.pg_advantages.shape == shape
    expected_vs, expected_adv = naive_vtrace(
        *(x.double().numpy() for x in (log_rhos, discounts, rewards, values, bootstrap)), 3.7, 2.2
    )
    np.testing.assert_allclose(result.vs.numpy(), expected_vs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.pg_advantages.numpy(), expected_adv, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [("discounts", "discounts must have the rank"), ("values", "values must have the rank"),
     ("bootstrap", "bootstrap_value must have rank")],
)
def test_inconsistent_ranks_are_rejected(bad, message):
    args = {
        "log_rhos": torch.zeros(5, 2),
        "discounts": torch.ones(5, 2),
        "rewards": torch.ones(5, 2),
        "values": torch.ones(5, 2),
        "bootstrap_value": torch.ones(2),
    }
    if bad == "bootstrap":
        args["bootstrap_value"] = torch.ones(5, 2)
    else:
        args[bad] = torch.ones(5, 2, 1)
    with pytest.raises(ValueError, match=message):
        vtrace.from_importance_weights(**args)


def test_mismatched_log_prob_shapes_and_bad_thresholds_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        vtrace.from_log_probs(torch.zeros(3, 2), torch.zeros(3, 1), torch.ones(3, 2), torch.ones(3, 2),
                              torch.ones(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="clip_rho_threshold must be > 0 or None, got -1"):
        vtrace.from_importance_weights(torch.zeros(3, 2), torch.ones(3, 2), torch.ones(3, 2),
                                       torch.ones(3, 2), torch.ones(2), clip_rho_threshold=-1)


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 0.95])
def test_lambda_matches_naive_formula(lambda_):
    data = standard_case(5, 3)
    expected_vs, expected_adv = naive_vtrace(*data, 1.0, 1.0, lambda_)
    tensors = [torch.tensor(x, dtype=torch.float64) for x in data]
    result = vtrace.from_importance_weights(*tensors, lambda_=lambda_)
    np.testing.assert_allclose(result.vs.numpy(), expected_vs, rtol=1e-10)
    np.testing.assert_allclose(result.pg_advantages.numpy(), expected_adv, rtol=1e-10)
    if lambda_ == 0.0:  # one-step TD targets: V + rho_clipped * (r + gamma V' - V)
        log_rhos, discounts, rewards, values, bootstrap = data
        next_values = np.concatenate([values[1:], bootstrap[None]], axis=0)
        one_step = values + np.minimum(np.exp(log_rhos), 1.0) * (rewards + discounts * next_values - values)
        np.testing.assert_allclose(result.vs.numpy(), one_step, rtol=1e-10)
    with pytest.raises(ValueError, match="lambda_"):
        vtrace.from_importance_weights(*tensors, lambda_=1.5)
