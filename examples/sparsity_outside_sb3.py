"""The sparsity tools on any torch module, outside SB3.

Prune a plain MLP with Erdős–Rényi densities, then train it on a regression task with two
optimizers (SGD with momentum and AdamW with weight decay). ``MaskEnforcer`` hooks the
optimizer so that pruned weights are exactly 0 after every step, whatever the optimizer does.
Takes about 10 seconds; ``--smoke`` runs fewer steps.

    python examples/sparsity_outside_sb3.py
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from sb3_sparse.sparsity import (
    MaskEnforcer,
    erdos_renyi_densities,
    format_density_report,
    overall_density,
    prune_erdos_renyi_,
    pruned_weights_are_zero,
)


def make_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="50 steps instead of 1,000")
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args(argv)
    steps = 50 if args.smoke else 1_000

    # The densities alone, from the shapes (every parameter tensor is in the budget).
    shapes = {name: tuple(p.shape) for name, p in make_mlp().named_parameters()}
    for name, density in erdos_renyi_densities(shapes, args.sparsity).items():
        print(f"{name:<10} {shapes[name]!s:<12} density {density:.3f}")

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(1024, 8, generator=generator)
    targets = torch.sin(inputs.sum(dim=1, keepdim=True))
    losses = {}
    for optimizer_name in ("sgd", "adamw"):
        torch.manual_seed(0)
        mlp = make_mlp()
        prune_erdos_renyi_(mlp, sparsity=args.sparsity, generator=torch.Generator().manual_seed(1))
        if optimizer_name == "sgd":
            optimizer = torch.optim.SGD(mlp.parameters(), lr=0.05, momentum=0.9)
        else:
            optimizer = torch.optim.AdamW(mlp.parameters(), lr=1e-3, weight_decay=1e-2)
        MaskEnforcer(optimizer, mlp)  # zero pruned gradients before each step (and weights after, if needed)
        for _ in range(steps):
            loss = nn.functional.mse_loss(mlp(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert pruned_weights_are_zero(mlp)
        losses[optimizer_name] = float(loss.detach())
        print(f"{optimizer_name}: final MSE {loss:.4f}, overall density {overall_density(mlp):.3f}, pruned weights still 0")
    print(format_density_report(mlp, "mlp (after AdamW)"))
    return losses


if __name__ == "__main__":
    main()
