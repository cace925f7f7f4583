"""Erdős–Rényi densities, mask sampling and static masks on plain torch modules (no SB3)."""

import math

import pytest
import torch
from torch import nn

from sb3_sparse.networks import CriticNetwork, GaussianActorNetwork
from sb3_sparse.sparsity import (
    ZERO_PRESERVING_OPTIMIZERS,
    MaskEnforcer,
    density_report,
    erdos_renyi_densities,
    format_density_report,
    named_masks,
    overall_density,
    prune_erdos_renyi_,
    pruned_weights_are_zero,
    sample_mask,
)


def shapes_of(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(parameter.shape) for name, parameter in module.named_parameters()}


# PAPER.md, "Kernel densities the reference produces": (network, S, input layer, residual kernel, heads)
REFERENCE_DENSITIES = [
    (GaussianActorNetwork(67, 21, 128, 1), 0.8, 0.359, 0.154, 0.874),
    (CriticNetwork(67, 21, 512, 2), 0.8, 1.000, 0.190, 1.000),
    (CriticNetwork(67, 21, 512, 2), 0.9, 0.511, 0.094, 1.000),
    (CriticNetwork(223, 38, 512, 2), 0.8, 0.451, 0.190, 1.000),
    (GaussianActorNetwork(223, 38, 128, 1), 0.8, 0.205, 0.163, 0.570),
]


@pytest.mark.parametrize(("network", "sparsity", "input_density", "residual_density", "head_density"), REFERENCE_DENSITIES)
def test_erdos_renyi_matches_reference_table(network, sparsity, input_density, residual_density, head_density):
    densities = erdos_renyi_densities(shapes_of(network), sparsity)
    assert densities["encoder.embedding.weight"] == pytest.approx(input_density, abs=0.002)
    residual = [d for name, d in densities.items() if ".expand.weight" in name or ".project.weight" in name]
    assert residual and all(d == pytest.approx(residual_density, abs=0.002) for d in residual)
    heads = [d for name, d in densities.items() if name in ("mean.weight", "log_std.weight", "value.weight")]
    assert heads and all(d == pytest.approx(head_density, abs=0.002) for d in heads)
    # Every 1-D tensor (biases, LayerNorm scale and bias) ends up dense.
    one_d = [densities[name] for name, shape in shapes_of(network).items() if len(shape) == 1]
    assert one_d and all(d == 1.0 for d in one_d)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.8, 0.9, 0.95])
def test_erdos_renyi_budget_is_met(sparsity):
    shapes = shapes_of(CriticNetwork(223, 38, 512, 2))
    densities = erdos_renyi_densities(shapes, sparsity)
    kept = sum(densities[name] * math.prod(shape) for name, shape in shapes.items())
    total = sum(math.prod(shape) for shape in shapes.values())
    assert kept / total == pytest.approx(1 - sparsity, abs=1e-4)
    assert all(0 < d <= 1 for d in densities.values())


def test_erdos_renyi_hand_computed():
    # Two kernels, no cap: eps = sum(N - floor(S N)) / sum(raw N) = (10*100 - 500 + 40*40 - 800) / (110 + 80)
    shapes = {"a": (10, 100), "b": (40, 40)}
    densities = erdos_renyi_densities(shapes, 0.5)
    epsilon = (500 + 800) / (110 + 80)
    assert densities["a"] == pytest.approx(epsilon * 110 / 1000)
    assert densities["b"] == pytest.approx(epsilon * 80 / 1600)
    assert erdos_renyi_densities(shapes, 0.0) == {"a": 1.0, "b": 1.0}


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.2, float("nan"), "0.5", True])
def test_erdos_renyi_rejects_bad_sparsity(bad):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        erdos_renyi_densities({"w": (4, 4)}, bad)


def test_erdos_renyi_rejects_bad_shapes():
    with pytest.raises(ValueError, match="at least one tensor"):
        erdos_renyi_densities({}, 0.5)
    with pytest.raises(ValueError, match=r"tensor 'w' must have a non-empty shape with positive sizes, got \(0, 4\)"):
        erdos_renyi_densities({"w": (0, 4)}, 0.5)


def test_only_one_dimensional_tensors_are_pruned_evenly():
    # With no kernel to take the budget, 1-D tensors (raw_l = 1) get density 1 - S.
    assert erdos_renyi_densities({"bias": (8,), "scale": (8,)}, 0.5) == {"bias": 0.5, "scale": 0.5}


def test_realized_density_of_sampled_masks():
    critic = CriticNetwork(223, 38, 512, 2)
    prune_erdos_renyi_(critic, 0.8, torch.Generator().manual_seed(0))
    assert overall_density(critic) == pytest.approx(0.2, abs=0.01)
    assert pruned_weights_are_zero(critic)
    # Masks are buffers next to their parameter, named like torch.nn.utils.prune's.
    assert "encoder.blocks.0.expand.weight_mask" in critic.state_dict()


def test_exact_masks_keep_round_d_times_n():
    mask = sample_mask((64, 32), 0.3, torch.Generator().manual_seed(1), exact=True)
    assert mask.dtype == torch.bool and int(mask.sum()) == round(0.3 * 64 * 32)
    actor = GaussianActorNetwork(17, 6, 64, 1)
    densities = prune_erdos_renyi_(actor, 0.7, torch.Generator().manual_seed(0), exact=True)
    for row in density_report(actor):
        assert row.kept == (round(densities[row.name] * row.numel) if densities[row.name] < 1 else row.numel)


def test_same_generator_seed_same_masks():
    def masks(seed):
        net = CriticNetwork(11, 3, 32, 1)
        prune_erdos_renyi_(net, 0.8, torch.Generator().manual_seed(seed))
        return [mask for _, _, mask in named_masks(net)]

    assert all(torch.equal(a, b) for a, b in zip(masks(3), masks(3), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(masks(3), masks(4), strict=True))


class DriftingSGD(torch.optim.SGD):
    """An optimizer outside ZERO_PRESERVING_OPTIMIZERS that moves every weight, pruned or not."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for parameter in group["params"]:
                parameter.add_(1e-3)
        return loss


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-2),
        lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-2, fused=True),
        lambda params: torch.optim.Adam(params, lr=1e-2, weight_decay=1e-2, amsgrad=True, foreach=True),
        lambda params: torch.optim.SGD(params, lr=1e-2, momentum=0.9, weight_decay=1e-3),
        lambda params: torch.optim.SGD(params, lr=1e-2, momentum=0.9, nesterov=True),
        lambda params: torch.optim.RMSprop(params, lr=1e-3, momentum=0.5, centered=True),
        lambda params: torch.optim.Adamax(params, lr=1e-2, weight_decay=1e-2),
        lambda params: torch.optim.NAdam(params, lr=1e-2, decoupled_weight_decay=True, weight_decay=1e-2),
        lambda params: torch.optim.RAdam(params, lr=1e-2, weight_decay=1e-2),
        lambda params: torch.optim.Adagrad(params, lr=1e-2, initial_accumulator_value=0.1),
        lambda params: torch.optim.Adadelta(params, lr=1.0, weight_decay=1e-3),
        lambda params: DriftingSGD(params, lr=1e-2),
    ],
)
def test_masks_stay_static_under_any_optimizer(make_optimizer):
    torch.manual_seed(0)
    net = GaussianActorNetwork(9, 2, 32, 2)
    prune_erdos_renyi_(net, 0.8, torch.Generator().manual_seed(0))
    kept_before = [row.kept for row in density_report(net)]
    optimizer = make_optimizer(net.parameters())
    enforcer = MaskEnforcer(optimizer, net)
    assert enforcer.num_masked_tensors == len(list(named_masks(net))) > 0
    # Only optimizers outside the list need the weights re-masked after the step.
    assert enforcer.masks_weights_after_step == (type(optimizer) not in ZERO_PRESERVING_OPTIMIZERS)
    for _ in range(20):
        mean, log_std = net(torch.randn(32, 9))
        loss = (mean - 1).square().mean() + log_std.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert pruned_weights_are_zero(net)
    assert [row.kept for row in density_report(net)] == kept_before
    # Gradients of pruned weights were masked before the step, so no optimizer state leaks into them.
    for _, parameter, mask in named_masks(net):
        for key, value in optimizer.state[parameter].items():
            if torch.is_tensor(value) and value.shape == mask.shape and key != "exp_inf":  # Adamax: an eps floor
                assert not value[mask == 0].any()


def test_without_enforcer_masks_drift():
    """The check above can fail: a plain optimizer with weight updates revives pruned weights."""
    torch.manual_seed(0)
    net = GaussianActorNetwork(9, 2, 32, 1)
    prune_erdos_renyi_(net, 0.8, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    mean, _ = net(torch.randn(32, 9))
    mean.square().mean().backward()
    optimizer.step()
    assert not pruned_weights_are_zero(net)


def test_enforcer_clears_optimizer_state_of_weights_pruned_later():
    """Moments left from dense training would move freshly pruned weights under a zero-preserving optimizer."""
    torch.manual_seed(0)
    net = GaussianActorNetwork(9, 2, 32, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(32, 9))[0].square().mean().backward()
        optimizer.step()
    prune_erdos_renyi_(net, 0.8, torch.Generator().manual_seed(0))
    MaskEnforcer(optimizer, net)
    optimizer.zero_grad()
    net(torch.randn(32, 9))[0].square().mean().backward()
    optimizer.step()
    assert pruned_weights_are_zero(net)


def test_enforcer_remove_detaches_hooks():
    net = nn.Sequential(nn.Linear(50, 50), nn.Linear(50, 50))
    prune_erdos_renyi_(net, 0.9, torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    enforcer = MaskEnforcer(optimizer, net)
    enforcer.remove()
    net(torch.randn(4, 50)).sum().backward()
    optimizer.step()
    assert not pruned_weights_are_zero(net)


def test_density_report_text():
    net = nn.Sequential(nn.Linear(50, 40), nn.LayerNorm(40))
    prune_erdos_renyi_(net, 0.5, torch.Generator().manual_seed(0))
    text = format_density_report(net, "demo")
    assert text.splitlines()[0] == "demo"
    assert "0.weight" in text and "1.bias" in text and text.splitlines()[-1].startswith("total")
