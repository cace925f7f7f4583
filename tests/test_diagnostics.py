"""The plasticity metrics against values computed by hand on crafted inputs."""

import math

import pytest
import torch
from torch import nn

from sb3_sparse.diagnostics import (
    cosine_matrix,
    dormant_ratios,
    feature_norm,
    gradient_interference,
    gradient_norm,
    parameter_norm,
    parameter_rms,
    per_sample_gradient_gram,
    record_outputs,
    singular_values,
    stable_rank,
)
from sb3_sparse.networks import CriticNetwork
from sb3_sparse.sparsity import prune_erdos_renyi_


def test_dormant_ratio_of_a_layer_with_known_dead_units():
    # Unit scores mean_b |a|: 0 (dead), 0.25, 2.75 -> normalized by their mean 1.0: 0, 0.25, 2.75.
    layer = torch.tensor([[0.0, 0.25, -2.75], [0.0, -0.25, 2.75]])
    assert dormant_ratios([layer], taus=(0.0, 0.2, 0.3)) == {0.0: 1 / 3, 0.2: 1 / 3, 0.3: 2 / 3}


def test_dormant_ratio_pools_neurons_over_layers():
    healthy = torch.tensor([[1.0, 1.0, 1.0]])
    silent = torch.zeros(4, 2)  # a layer where everything is dead counts fully
    assert dormant_ratios([healthy, silent], taus=(0.0, 0.5)) == {0.0: 2 / 5, 0.5: 2 / 5}
    with pytest.raises(ValueError, match="at least one layer"):
        dormant_ratios([], taus=(0.0,))


def random_orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def features_with_singular_values(sigma: list[float], batch: int = 32, width: int = 16) -> torch.Tensor:
    k = len(sigma)
    return (
        random_orthonormal(batch, k, 0)
        @ torch.diag(torch.tensor(sigma, dtype=torch.float64))
        @ random_orthonormal(width, k, 1).T
    )


def test_singular_values_match_the_constructed_ones():
    sigma = [6.0, 3.0, 1.0]
    features = features_with_singular_values(sigma)
    values = singular_values(features)
    assert values.shape == (16,)
    torch.testing.assert_close(values[:3], torch.tensor(sigma, dtype=torch.float64))
    assert values[3:].abs().max() < 1e-6
    torch.testing.assert_close(singular_values(features.T), values)  # wide matrices too


def test_stable_rank_of_features_with_known_singular_values():
    features = features_with_singular_values([6.0, 3.0, 1.0]).float()
    # Cumulative sums 6, 9, 10 of a total of 10.
    assert stable_rank(features, delta=0.01) == 3  # needs 9.9
    assert stable_rank(features, delta=0.15) == 2  # needs 8.5
    assert stable_rank(features, delta=0.45) == 1  # needs 5.5
    assert stable_rank(torch.zeros(8, 4)) == 0
    with pytest.raises(ValueError, match=r"delta must be in \[0, 1\), got 1.0"):
        stable_rank(features, delta=1.0)


def test_feature_parameter_and_gradient_norms():
    assert feature_norm(torch.tensor([[3.0, 4.0], [0.0, 0.0]])) == 2.5
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 2.0]]))
        layer.bias.copy_(torch.tensor([4.0, 0.0]))
    assert parameter_norm(layer) == pytest.approx(5.0)  # sqrt(1 + 4 + 4 + 16)
    assert gradient_norm(layer.parameters()) == 0.0  # no gradients yet
    layer.weight.grad = torch.full((2, 2), 0.5)
    assert gradient_norm(layer.parameters()) == pytest.approx(1.0)  # a None bias gradient counts as 0


def test_parameter_rms_counts_only_kept_weights():
    layer = nn.Linear(4, 4, bias=False)
    prune_erdos_renyi_(layer, sparsity=0.5, generator=torch.Generator().manual_seed(0), exact=True)
    with torch.no_grad():
        layer.weight.mul_(0).add_(layer.weight_mask * 2.0)  # every kept weight is 2
    assert parameter_rms(layer) == pytest.approx(2.0)


def test_record_outputs_sees_every_call_and_removes_its_hooks():
    layer = nn.Linear(3, 2)
    with record_outputs([layer, layer]) as outputs:
        layer(torch.ones(1, 3))
        layer(torch.zeros(1, 3))
    assert len(outputs[layer]) == 2
    layer(torch.ones(1, 3))
    assert len(outputs[layer]) == 2 and not layer._forward_hooks


def test_gradient_interference_of_identical_and_orthogonal_gradients():
    # loss_i = w . x_i, so the per-sample gradient is x_i: samples 0 and 1 agree, 2 is orthogonal.
    layer = nn.Linear(2, 1, bias=False)
    inputs = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    gram = per_sample_gradient_gram(layer, lambda: layer(inputs).reshape(-1))
    torch.testing.assert_close(gram, (inputs @ inputs.T).double())
    cosines = cosine_matrix(gram)
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(cosines, expected)
    assert gradient_interference(cosines) == pytest.approx(2 / 6)  # off-diagonal sum 2 over 3 * 2 entries
    opposite = cosine_matrix(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    assert gradient_interference(opposite) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        gradient_interference(torch.ones(1, 1))


def test_a_zero_gradient_has_zero_cosine():
    cosines = cosine_matrix(torch.tensor([[0.0, 0.0], [0.0, 4.0]], dtype=torch.float64))
    torch.testing.assert_close(cosines, torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64))


def explicit_per_sample_gradients(module: nn.Module, losses: torch.Tensor) -> torch.Tensor:
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, list(module.parameters()), retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, module.parameters(), strict=True)
                ]
            )
        )
    return torch.stack(rows).double()


def test_gram_shortcut_equals_explicit_per_sample_gradients_on_a_sparse_simba_critic():
    torch.manual_seed(0)
    critic = CriticNetwork(observation_dim=3, action_dim=2, hidden_dim=8, num_blocks=2)
    prune_erdos_renyi_(critic, sparsity=0.7, generator=torch.Generator().manual_seed(0))
    observations, actions, targets = torch.randn(6, 3), torch.randn(6, 2), torch.randn(6)

    def losses() -> torch.Tensor:
        return (critic(observations, actions).reshape(-1) - targets).square()

    gram = per_sample_gradient_gram(critic, losses)
    explicit = explicit_per_sample_gradients(critic, losses())
    torch.testing.assert_close(gram, explicit @ explicit.T, rtol=1e-6, atol=1e-9)
    assert all(p.grad is None for p in critic.parameters())  # .grad is never written


def test_gram_ignores_layers_off_the_loss_path_and_rejects_unknown_layers():
    two_heads = nn.ModuleDict({"used": nn.Linear(3, 1), "unused": nn.Linear(3, 1)})
    inputs = torch.randn(4, 3)
    gram = per_sample_gradient_gram(two_heads, lambda: two_heads["used"](inputs).reshape(-1))
    expected = explicit_per_sample_gradients(two_heads, two_heads["used"](inputs).reshape(-1))
    torch.testing.assert_close(gram, expected @ expected.T)
    conv = nn.Sequential(nn.Conv1d(1, 1, 2), nn.Flatten(), nn.Linear(2, 1))
    with pytest.raises(ValueError, match=r"nn.Linear and nn.LayerNorm parameters only, got \['0.weight', '0.bias'\]"):
        per_sample_gradient_gram(conv, lambda: conv(torch.randn(4, 1, 3)).reshape(-1))
    layer = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="called more than once"):
        per_sample_gradient_gram(layer, lambda: layer(inputs).reshape(-1) + layer(inputs).reshape(-1))
    with pytest.raises(ValueError, match=r"1-D tensor of losses, got shape \(4, 1\)"):
        per_sample_gradient_gram(layer, lambda: layer(inputs))
    assert math.isfinite(float(per_sample_gradient_gram(layer, lambda: layer(inputs).reshape(-1)).sum()))
