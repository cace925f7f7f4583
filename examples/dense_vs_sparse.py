"""Dense vs sparse at the same size, measured with PlasticityCallback, ending in the diagnostics plot.

Two SAC agents with the same SimBa networks, one dense and one with 80% of its weights pruned,
train on Pendulum-v1 with the plasticity diagnostics of the paper (dormant ratio, stable rank,
gradient norm, gradient interference) logged to CSV; the figure overlays the two runs and the
heatmaps compare their gradient interference matrices. About 5 minutes on 2 CPU cores;
``--smoke`` runs it in seconds.

    python examples/dense_vs_sparse.py
    python examples/dense_vs_sparse.py --smoke
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

import sb3_sparse  # noqa: F401  (registers "SparseSimBaPolicy")
from sb3_sparse.callbacks import PlasticityCallback
from sb3_sparse.plots import plot_diagnostics, plot_interference


def train(sparsity: float, run_dir: Path, smoke: bool) -> None:
    tiny, small = dict(actor_hidden_dim=16, critic_hidden_dim=32), dict(actor_hidden_dim=64, critic_hidden_dim=128)
    sizes = dict(**(tiny if smoke else small), critic_num_blocks=1)
    timesteps, learning_starts, freq = (300, 100, 100) if smoke else (6_000, 1_000, 500)
    model = SAC(
        "SparseSimBaPolicy",
        "Pendulum-v1",
        learning_rate=1e-3,
        learning_starts=learning_starts,
        seed=0,
        policy_kwargs=dict(**sizes, actor_sparsity=sparsity, critic_sparsity=sparsity),
    )
    model.set_logger(configure(str(run_dir), ["csv"]))  # progress.csv: returns and diagnostics by step
    callbacks = [
        EvalCallback(Monitor(gym.make("Pendulum-v1")), eval_freq=freq, n_eval_episodes=2 if smoke else 5),
        PlasticityCallback(freq=freq, interference_samples=16 if smoke else 64, save_interference_dir=run_dir),
    ]
    model.learn(timesteps, callback=callbacks, progress_bar=not smoke)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few hundred steps on tiny networks")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/examples/dense_vs_sparse"))
    args = parser.parse_args(argv)
    runs = {"dense": args.output_dir / "dense", "sparse 0.8": args.output_dir / "sparse"}
    for label, run_dir in runs.items():
        train(0.0 if label == "dense" else 0.8, run_dir, args.smoke)
    figure = plot_diagnostics({label: [run_dir] for label, run_dir in runs.items()}, args.output_dir / "diagnostics.png")
    last = max(int(p.stem.split("_")[1]) for p in runs["dense"].glob("interference_*.npy"))
    heatmaps = plot_interference(
        {label: run_dir / f"interference_{last}.npy" for label, run_dir in runs.items()},
        args.output_dir / "interference.png",
        title=f"actor gradient interference at step {last}",
    )
    print(f"wrote {figure} and {heatmaps}")
    return figure


if __name__ == "__main__":
    main()
