"""Streaming RL: Stream AC(lambda) with dense networks, the streaming paper's SparseInit, and static
Erdős–Rényi masks, at two widths.

Six agents learn from one stream of Hopper-v5 transitions each (no replay buffer, batch size 1):
dense (no zeros at all), SparseInit 0.9 (90% of each row zero at initialization, free to regrow),
and ER 0.9 (90% of all parameters pruned for good), each with hidden width 128 and 512. The script
writes ``returns.csv`` (every finished training episode) and ``returns.png`` (returns against
steps, smoothed). The default budget (50,000 steps per agent, two agents at a time) takes about 10
minutes on 2 CPU cores (100,000 steps took 19); ``--smoke`` runs it in seconds. ``benchmarks/stream_ac_returns.py`` runs it
longer and prints the table recorded in ``benchmarks/README.md``.

    python examples/stream_ac_sparsity.py
    python examples/stream_ac_sparsity.py --env Walker2d-v5 --timesteps 200000 --seeds 0 1 2
    python examples/stream_ac_sparsity.py --smoke
"""

from __future__ import annotations

import argparse
import csv
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from sb3_sparse import StreamAC

#: name -> policy_kwargs besides the width. SparseInit is off (0.0) for the dense and ER agents.
VARIANTS = {
    "dense": dict(sparse_init=0.0),
    "SparseInit 0.9": dict(sparse_init=0.9),
    "ER 0.9": dict(sparse_init=0.0, actor_sparsity=0.9, critic_sparsity=0.9),
}
WIDTHS = (128, 512)


class EpisodeReturns(BaseCallback):
    """Records ``(step, return)`` of every finished training episode (Monitor's ``episode`` info)."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.episodes.append((self.num_timesteps, float(info["episode"]["r"])))
        return True


def train(env_id: str, variant: str, width: int, seed: int, timesteps: int) -> list[dict[str, object]]:
    """Train one agent; return one row per finished episode."""
    torch.set_num_threads(1)  # agents run side by side, one core each
    model = StreamAC("SparseSimBaPolicy", env_id, seed=seed, policy_kwargs=dict(hidden_dim=width, **VARIANTS[variant]))
    callback = EpisodeReturns()
    model.learn(timesteps, callback=callback)
    return [dict(variant=variant, width=width, seed=seed, step=step, episode_return=r) for step, r in callback.episodes]


def run_all(env_id: str, timesteps: int, seeds: list[int], widths: tuple[int, ...], workers: int) -> list[dict[str, object]]:
    """Train every variant x width x seed, ``workers`` at a time; return all episode rows."""
    jobs = [(env_id, variant, width, seed, timesteps) for width in widths for variant in VARIANTS for seed in seeds]
    if workers == 1:
        results = [train(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(train, *zip(*jobs, strict=True)))
    return [row for rows in results for row in rows]


def final_return(rows: list[dict[str, object]], fraction: float = 0.1) -> float:
    """Mean return of the episodes that ended in the last ``fraction`` of the run (nan if none)."""
    if not rows:
        return float("nan")
    last_step = max(int(row["step"]) for row in rows)
    late = [float(row["episode_return"]) for row in rows if int(row["step"]) >= (1 - fraction) * last_step]
    return float(np.mean(late))


def plot(rows: list[dict[str, object]], path: Path, title: str) -> Path:
    """Returns against steps, one line per variant and width (seeds pooled, moving average of 10 episodes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=110)
    widths = sorted({int(row["width"]) for row in rows})
    for width, style in zip(widths, ("-", "--", ":"), strict=False):
        for variant, color in zip(VARIANTS, ("tab:gray", "tab:orange", "tab:blue"), strict=True):
            group = [row for row in rows if row["variant"] == variant and row["width"] == width]
            points = sorted((int(row["step"]), float(row["episode_return"])) for row in group)
            if not points:
                continue
            steps, returns = np.array(points).T
            window = min(10, len(returns))
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            axis.plot(steps[window - 1 :], smooth, style, color=color, label=f"{variant}, width {width}")
    axis.set_xlabel("environment steps")
    axis.set_ylabel("episode return (training)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--timesteps", type=int, default=50_000, help="steps per agent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=2, help="agents trained at a time")
    parser.add_argument("--smoke", action="store_true", help="a few hundred steps on Pendulum-v1, narrow networks")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/examples/stream_ac_sparsity"))
    args = parser.parse_args(argv)
    env_id, timesteps, widths = ("Pendulum-v1", 400, (16, 32)) if args.smoke else (args.env, args.timesteps, WIDTHS)
    rows = run_all(env_id, timesteps, args.seeds, widths, args.workers)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with (args.output_dir / "returns.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["variant", "width", "seed", "step", "episode_return"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{'variant':<16}{'width':>6}  mean return of the last 10% of the run ({env_id}, {timesteps:,} steps)")
    for width in widths:
        for variant in VARIANTS:
            group = [row for row in rows if row["variant"] == variant and row["width"] == width]
            print(f"{variant:<16}{width:>6}  {final_return(group):10.1f}")
    path = plot(rows, args.output_dir / "returns.png", f"StreamAC on {env_id}: dense, SparseInit, static ER")
    print(f"wrote {args.output_dir / 'returns.csv'} and {path}")
    return path


if __name__ == "__main__":
    main()
