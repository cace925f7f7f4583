"""Gradual magnitude pruning of DQN on an Atari game: one run of ``examples/sweeps/dqn_gmp.yml``
(Obando-Ceron et al., ICML 2024) through the package's runner, on a CPU budget.

The sweep's settings, with the budget cut to ``--timesteps`` agent steps (default 100k: 20k
updates of a 6M-parameter network, hours on a CPU, not timed here) and, so that the shorter run
still learns and fits in memory, learning from a tenth of it and a replay buffer of its size. The schedule keeps its
fractions: dense until 20% of the run, 95% sparse from 80% on. Prints the Q-network's density at
each diagnostics row and the final return; ``--smoke`` runs a few hundred steps in seconds.

    python examples/dqn_gmp.py                                # Pong, base width, 100k agent steps
    python examples/dqn_gmp.py --game Breakout --preset width3
    python examples/dqn_gmp.py --smoke
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from sb3_sparse import train
from sb3_sparse.atari import atari_100k_env_id
from sb3_sparse.run_directory import read_csv_rows
from sb3_sparse.sweep import Sweep

SWEEP = Path(__file__).resolve().parent / "sweeps" / "dqn_gmp.yml"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Pong")
    parser.add_argument("--preset", default="base", help="the width multiplier: base, width3 or width5")
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/examples/dqn_gmp"))
    parser.add_argument("--smoke", action="store_true", help="a few hundred steps, a head a quarter wide: seconds")
    args = parser.parse_args(argv)
    sweep = Sweep.from_yaml(SWEEP)
    env_id = atari_100k_env_id(args.game)
    spec = next(run for run in sweep.runs() if run.env == env_id and run.preset == args.preset and run.topology == "gmp")
    timesteps = 600 if args.smoke else args.timesteps
    spec = replace(spec, seed=args.seed, preset="width0.25" if args.smoke else spec.preset)
    config = sweep.run_config(spec, args.output_dir / spec.name)
    hyperparams = dict(
        config.hyperparams or {},
        learning_starts=min(20_000, timesteps // 10),
        buffer_size=min(1_000_000, timesteps),
        target_update_interval=min(8_000, max(timesteps // 50, 1)),
    )
    # Updates every 1,000 optimizer steps leave a short run few: as many updates as the full run's ratio
    # of optimizer steps to updates allows, at least ten.
    optimizer_steps = (timesteps - hyperparams["learning_starts"]) // int(hyperparams["train_freq"])
    topology_kwargs = dict(config.topology_kwargs or {}, update_interval=max(min(1000, optimizer_steps // 10), 1))
    config = replace(
        config, timesteps=timesteps, hyperparams=hyperparams, topology_kwargs=topology_kwargs, eval_freq=timesteps,
        eval_episodes=1, final_eval_episodes=2 if args.smoke else 10, diagnostics_freq=max(timesteps // 10, 1),
        checkpoint_freq=0, resume=False, restart=True, progress_bar=not args.smoke, verbose=0,
    )  # fmt: skip
    train.run(config)
    run_dir = Path(config.output_dir)
    print(f"{env_id}, {args.preset}, GMP to sparsity 0.95 between 20% and 80% of {timesteps:,} agent steps")
    print(f"{'agent steps':>12} {'Q-network density':>18} {'topology updates':>17}")
    for row in read_csv_rows(run_dir / "progress.csv"):
        if row.get("topology/critic/mask_density"):
            steps, density = int(float(row["time/total_timesteps"])), float(row["topology/critic/mask_density"])
            print(f"{steps:>12,} {density:>18.3f} {int(float(row['topology/critic/updates'])):>17}")
    result = json.loads((run_dir / "result.json").read_text())
    print(f"final return {result['final_mean_return']:.1f} +/- {result['final_std_return']:.1f}; run in {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
