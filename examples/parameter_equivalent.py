"""Parameter-equivalent comparison: a small dense network against a large sparse one with the same
number of nonzero weights.

The paper's question: is a large sparse network better than a small dense one when both keep
the same number of weights? The sparse critic here is twice as wide (4x the weights) and pruned
so that its nonzero count matches the dense one; the script prints both counts, trains both on
Pendulum-v1 and writes their evaluation returns to CSV and a bar plot. About 5 minutes on 2 CPU
cores; ``--smoke`` runs it in seconds.

    python examples/parameter_equivalent.py
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import sb3_sparse  # noqa: F401  (registers "SparseSimBaPolicy")
from sb3_sparse.presets import parameter_count


def nonzero_parameters(model: SAC) -> int:
    return sum(int((p != 0).sum()) for net in (model.policy.actor, model.policy.critic) for p in net.parameters())


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few hundred steps on tiny networks")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/examples/parameter_equivalent"))
    args = parser.parse_args(argv)
    width, actor_width = (16, 16) if args.smoke else (64, 64)
    timesteps, learning_starts, episodes = (300, 100, 2) if args.smoke else (8_000, 1_000, 10)

    # Pendulum: 3 observations, 1 action. Sparsity of the wide critic so that its expected nonzero
    # count equals the small dense critic's (Bernoulli masks keep it within a fraction of a percent).
    small = parameter_count(3, 1, actor_width, 1, width, 1, n_critics=2).critic
    large = parameter_count(3, 1, actor_width, 1, 2 * width, 1, n_critics=2).critic
    critic_sparsity = round(1 - small / large, 4)
    configurations = {
        f"dense, critic width {width}": dict(critic_hidden_dim=width, critic_sparsity=0.0),
        f"sparse {critic_sparsity:.2f}, critic width {2 * width}": dict(
            critic_hidden_dim=2 * width, critic_sparsity=critic_sparsity
        ),
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, critic in configurations.items():
        model = SAC(
            "SparseSimBaPolicy",
            "Pendulum-v1",
            learning_rate=1e-3,
            learning_starts=learning_starts,
            seed=0,
            # The same dense actor in both: only the critics differ.
            policy_kwargs=dict(actor_hidden_dim=actor_width, actor_sparsity=0.0, critic_num_blocks=1, **critic),
        )
        total = sum(p.numel() for net in (model.policy.actor, model.policy.critic) for p in net.parameters())
        nonzero = nonzero_parameters(model)
        model.learn(timesteps, progress_bar=not args.smoke)
        mean_return, std_return = evaluate_policy(model, model.get_env(), n_eval_episodes=episodes)
        rows.append(dict(configuration=label, total=total, nonzero=nonzero, mean_return=mean_return, std_return=std_return))
        print(f"{label}: {total:,} parameters, {nonzero:,} nonzero; return {mean_return:.1f} +/- {std_return:.1f}")

    with (args.output_dir / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    figure, axis = plt.subplots(figsize=(6, 4), dpi=110)
    labels = [f"{row['configuration']}\n{row['nonzero']:,} nonzero" for row in rows]
    returns, errors = [row["mean_return"] for row in rows], [row["std_return"] for row in rows]
    axis.bar(labels, returns, yerr=errors, color=["tab:gray", "tab:blue"])
    axis.set_ylabel(f"evaluation return ({episodes} episodes)")
    axis.set_title("same number of nonzero weights", fontsize=10)
    figure.tight_layout()
    path = args.output_dir / "results.png"
    figure.savefig(path)
    plt.close(figure)
    print(f"wrote {args.output_dir / 'results.csv'} and {path}")
    return path


if __name__ == "__main__":
    main()
