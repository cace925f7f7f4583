"""The paper's setup on one DMC hard task (humanoid-run), with the package's hyperparameters,
through the package's runner and through the RL Baselines3 Zoo.

Both read the ``sb3_sparse/dmc-humanoid-run-v0`` entry of ``sac.yml``: AdamW lr 1e-4 with weight
decay 1e-2, one critic, 2 updates per agent step, sparsity 0.8, 500k agent steps (1M environment
steps). The full run takes about three days on 2 CPU cores (~0.25 s per update, 1M updates);
``--timesteps`` shortens it, and ``--smoke`` runs both paths for 200 steps (random warm-up only)
in under a minute.

    python examples/paper_setup_dmc.py --timesteps 20000
    python examples/paper_setup_dmc.py --smoke
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from sb3_sparse import train
from sb3_sparse.hyperparams import hyperparams_path

ENV_ID = "sb3_sparse/dmc-humanoid-run-v0"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="200 agent steps, one evaluation episode")
    parser.add_argument("--timesteps", type=int, default=None, help="agent steps (default: the entry's 500k)")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/examples/paper_setup_dmc"))
    args = parser.parse_args(argv)
    timesteps = 200 if args.smoke else args.timesteps
    budget = ["--timesteps", str(timesteps)] if timesteps else []
    evaluation = ["--eval-episodes", "1", "--final-eval-episodes", "1", "--diagnostics-freq", "0"] if args.smoke else []

    # 1. The package's runner: reference evaluation protocol, CSV + PNG curve, diagnostics, model.
    run_dir = train.main(
        ["--env", ENV_ID, *budget, *evaluation, "--output-dir", str(args.output_dir / "runner"), "--no-progress-bar"]
    )

    # 2. The zoo, with the same file.
    zoo = [sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", ENV_ID, "--gym-packages", "sb3_sparse"]
    zoo += ["-conf", str(hyperparams_path("sac")), "--log-folder", str(args.output_dir / "zoo"), "--seed", "0"]
    if timesteps:
        zoo += ["-n", str(timesteps)]
    if args.smoke:
        zoo += ["--eval-freq", "-1", "-params", "buffer_size:10000"]
    print(" ".join(zoo))
    subprocess.run(zoo, check=True)
    print(f"runner outputs in {run_dir}; zoo outputs in {args.output_dir / 'zoo'}")
    return run_dir


if __name__ == "__main__":
    main()
