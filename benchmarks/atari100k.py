"""One Atari-100k game, dense against sparse at one scaled width, through the package's runner with the
settings of ``examples/sweeps/atari100k.yml`` (SB3's DQN with DER's data-efficiency settings, the sparse
NatureCNN policy): seconds per 1,000 agent steps, the final return and its human-normalized score,
with the machine and the thread count printed for benchmarks/README.md. The runs go one after the
other, each with ``--threads`` torch threads. A full run is 100k agent steps; ``--timesteps`` shortens
it (the time per 1,000 steps is then measured on that budget) or lengthens it (the paper's open
question 2).

    python benchmarks/atari100k.py                                    # Pong, width2, 100k steps, dense and 0.8
    python benchmarks/atari100k.py --game Breakout --timesteps 2000   # the time per 1k steps only
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from sb3_sparse import train
from sb3_sparse.atari import ATARI_100K_STEPS, atari_100k_env_id, human_normalized_score
from sb3_sparse.run_directory import read_csv_rows
from sb3_sparse.sweep import Sweep

SWEEP = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "atari100k.yml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Pong")
    parser.add_argument("--preset", default="width2", help="the width the sweep scales (base: a head of 512)")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.8])
    parser.add_argument("--timesteps", type=int, default=ATARI_100K_STEPS)
    parser.add_argument("--final-eval-episodes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/benchmarks/atari100k"))
    args = parser.parse_args(argv)
    sweep = Sweep.from_yaml(SWEEP)
    env_id = atari_100k_env_id(args.game)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads")
    print(f"{env_id}, {args.preset}, {args.timesteps:,} agent steps, {args.final_eval_episodes} final episodes")
    print(f"{'sparsity':>8} {'parameters':>11} {'nonzero':>11} {'s per 1k steps':>15} {'final return':>13} {'HNS':>7}")
    for sparsity in args.sparsities:
        spec = next(run for run in sweep.runs() if run.env == env_id and run.preset == args.preset)
        spec = replace(spec, critic_sparsity=sparsity, seed=args.seed)
        run_dir = args.output_dir / spec.name
        config = replace(
            sweep.run_config(spec, run_dir, num_threads=args.threads),
            timesteps=args.timesteps, eval_freq=args.timesteps, eval_episodes=1,  # one evaluation: the time is training
            final_eval_episodes=args.final_eval_episodes, checkpoint_freq=0, resume=False, restart=True, verbose=0,
            progress_bar=True,
        )  # fmt: skip
        start = time.perf_counter()
        train.run(config)
        wall = time.perf_counter() - start
        result = json.loads((run_dir / "result.json").read_text())
        # SB3's own clock from the start of learn() to its last log row (logged every 4 episodes): training
        # only. Before the 4th episode ends there is none: the wall time, final evaluation included (*).
        timed = [row for row in read_csv_rows(run_dir / "progress.csv") if row.get("time/time_elapsed")]
        seconds, steps, mark = (
            (float(timed[-1]["time/time_elapsed"]), float(timed[-1]["time/total_timesteps"]), " ")
            if timed
            else (wall, args.timesteps, "*")
        )
        per_1k = f"{1000 * seconds / steps:.1f}{mark}"
        score = result["final_mean_return"]
        print(
            f"{sparsity:>8} {result['parameters']:>11,} {result['nonzero_parameters']:>11,} "
            f"{per_1k:>15} {score:>13.1f} {human_normalized_score(env_id, score):>7.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
