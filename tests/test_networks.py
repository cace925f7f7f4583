"""SimBa building blocks: normalizer statistics, shapes, initialization, parameter counts."""

import numpy as np
import pytest
import torch

from sb3_sparse.networks import (
    LAYER_NORM_EPS,
    CriticNetwork,
    DeterministicActorNetwork,
    GaussianActorNetwork,
    RunningObservationNormalizer,
    SimBaEncoder,
    rescale_log_std,
    simba_parameter_count,
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_normalizer_matches_batch_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[3.0, -1.0, 0.5], scale=[2.0, 0.1, 10.0], size=(1000, 3))
    normalizer = RunningObservationNormalizer(3)
    assert not normalizer.has_statistics
    for batch in np.array_split(data, [1, 3, 10, 400, 401]):  # uneven batch sizes, one of size 1
        normalizer.update(torch.as_tensor(batch))
    assert normalizer.has_statistics
    # Exact statistics of the data merged with the prior: mean 0, var 1, pseudo-count 1e-4.
    n, prior = len(data), 1e-4
    mean = n * data.mean(axis=0) / (n + prior)
    var = (prior * 1.0 + n * data.var(axis=0) + data.mean(axis=0) ** 2 * prior * n / (n + prior)) / (n + prior)
    np.testing.assert_allclose(normalizer.obs_mean.numpy(), mean, rtol=1e-10)
    np.testing.assert_allclose(normalizer.obs_var.numpy(), var, rtol=1e-10)
    assert float(normalizer.obs_count) == pytest.approx(n + prior, rel=1e-12)
    x = torch.as_tensor(data[:5], dtype=torch.float32)
    expected = (data[:5] - mean) / np.sqrt(var + 1e-8)
    np.testing.assert_allclose(normalizer(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert normalizer(x).dtype == torch.float32


def test_normalizer_forward_does_not_update():
    normalizer = RunningObservationNormalizer(4)
    normalizer(torch.randn(10, 4))
    assert float(normalizer.obs_count) == pytest.approx(1e-4)
    assert torch.equal(normalizer.obs_mean, torch.zeros(4, dtype=torch.float64))


def test_parameter_count_of_paper_defaults():
    # PAPER.md: default actor 128x1 + single critic 512x2 on dog (obs 223, act 38).
    actor, critic = GaussianActorNetwork(223, 38, 128, 1), CriticNetwork(223, 38, 512, 2)
    assert count(actor) + count(critic) == 4_507_853
    assert count(actor) == simba_parameter_count(223, 128, 1, 2 * 38)
    assert count(critic) == simba_parameter_count(223 + 38, 512, 2, 1)
    humanoid = count(GaussianActorNetwork(67, 21, 128, 1)) + count(CriticNetwork(67, 21, 512, 2))
    assert round(humanoid / 1e6, 2) == 4.39


def test_encoder_structure_and_init():
    torch.manual_seed(0)
    encoder = SimBaEncoder(10, 256, 2)
    assert encoder.final_norm.eps == LAYER_NORM_EPS == 1e-6
    assert len(encoder.blocks) == 2 and encoder.blocks[0].expand.out_features == 1024
    # Orthogonal embedding (gain 1): rows are orthonormal when out <= in, columns here (256 > 10).
    w = encoder.embedding.weight
    torch.testing.assert_close(w.T @ w, torch.eye(10), atol=1e-5, rtol=0)
    # Truncated He-normal: std sqrt(2 / fan_in), no value beyond 2 / 0.8796 of it.
    expand = encoder.blocks[0].expand.weight.detach()
    std = (2 / 256) ** 0.5
    assert float(expand.std()) == pytest.approx(std, rel=0.03)
    assert float(expand.abs().max()) <= 2 * std / 0.87962566103423978 + 1e-6
    assert all(float(b.abs().max()) == 0 for b in (encoder.embedding.bias.detach(), encoder.blocks[0].expand.bias.detach()))
    assert encoder(torch.randn(5, 10)).shape == (5, 256)
    assert SimBaEncoder(3, 8, 0)(torch.randn(2, 3)).shape == (2, 8)


def test_log_std_lies_in_reference_range():
    raw = torch.tensor([-1e4, -1.0, 0.0, 1.0, 1e4])
    log_std = rescale_log_std(raw)
    assert float(log_std[0]) == -10.0 and float(log_std[-1]) == 2.0 and float(log_std[2]) == pytest.approx(-4.0)
    actor = GaussianActorNetwork(5, 3, 16, 1)
    mean, log_std = actor(torch.randn(7, 5) * 100)
    assert mean.shape == log_std.shape == (7, 3)
    assert bool((log_std >= -10).all() and (log_std <= 2).all())


def test_deterministic_actor_and_critic_shapes():
    actions = DeterministicActorNetwork(5, 3, 16, 1)(torch.randn(4, 5) * 100)
    assert actions.shape == (4, 3) and bool((actions.abs() <= 1).all())
    assert CriticNetwork(5, 3, 16, 1)(torch.randn(4, 5), actions).shape == (4, 1)
    assert CriticNetwork(5, 3, 16, 1, num_outputs=25)(torch.randn(4, 5), actions).shape == (4, 25)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(input_dim=4, hidden_dim=0, num_blocks=1), "hidden_dim must be an integer >= 1, got 0"),
        (dict(input_dim=4, hidden_dim=8, num_blocks=-1), "num_blocks must be an integer >= 0, got -1"),
        (dict(input_dim=4, hidden_dim=8.5, num_blocks=1), "hidden_dim must be an integer >= 1, got 8.5"),
    ],
)
def test_encoder_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimBaEncoder(**kwargs)
