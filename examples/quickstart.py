"""Quick start: sparse SimBa SAC on Pendulum-v1, then save, load and evaluate.

A SAC agent whose actor and critic are pruned once, at random, at initialization (80% of their
parameters, Erdős–Rényi layer-wise densities), with masks that stay fixed through training,
saving and loading: the README's code, with small networks (actor 32 wide, one critic 128 wide
with one block) that train 4,000 steps in under a minute on 2 CPU cores. It prints the time it
took and the size of the saved model; ``--default-size`` trains the package's default networks
instead (actor 128 x 1 block, two critics 512 x 2 blocks) to show what they cost;
``--smoke`` runs it in seconds.

    python examples/quickstart.py
    python examples/quickstart.py --default-size --timesteps 300
    python examples/quickstart.py --smoke
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import sb3_sparse  # noqa: F401  (registers "SparseSimBaPolicy")
from sb3_sparse.sparsity import parameter_count, pruned_weights_are_zero


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few hundred steps on tiny networks")
    parser.add_argument("--default-size", action="store_true", help="the policy's default networks (no size kwargs)")
    parser.add_argument("--timesteps", type=int, default=None, help="agent steps (default 4,000; --smoke: 300)")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/examples/quickstart"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    # The README's sizes; the paper's defaults are actor 128, two critics 512 wide with 2 blocks.
    sizes: dict[str, int] = dict(actor_hidden_dim=32, critic_hidden_dim=128, critic_num_blocks=1, n_critics=1)
    timesteps, learning_starts = 4_000, 100
    if args.default_size:
        sizes = {}
    if args.smoke:
        sizes = dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, n_critics=1)
        timesteps = 300
    timesteps = args.timesteps or timesteps

    model = SAC(
        "SparseSimBaPolicy",
        "Pendulum-v1",
        learning_rate=1e-3,
        learning_starts=learning_starts,
        seed=0,
        policy_kwargs=dict(**sizes, actor_sparsity=0.8, critic_sparsity=0.8),
    )
    print(model.policy.format_density_report())  # per-tensor densities: 1-D tensors dense, kernels sparse
    print(f"{parameter_count(model.policy):,} parameters with the target networks (pruned layers at their dense size)")
    model.learn(timesteps, progress_bar=not args.smoke)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "sac_sparse_pendulum.zip"
    model.save(path)
    loaded = SAC.load(path)  # masks (buffers) and observation statistics come back with the model
    assert all(pruned_weights_are_zero(net) for net in (loaded.policy.actor, loaded.policy.critic))
    mean_return, std_return = evaluate_policy(loaded, loaded.get_env() or model.get_env(), n_eval_episodes=5)
    print(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"evaluation of the loaded model over 5 episodes: {mean_return:.1f} +/- {std_return:.1f}")
    print(f"{timesteps:,} steps, saved, loaded and evaluated in {time.perf_counter() - start:.0f} s")
    return path


if __name__ == "__main__":
    main()
