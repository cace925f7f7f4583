"""Returns of Stream AC(lambda) with dense networks, SparseInit 0.9 and static ER 0.9, at widths
128 and 512: ``examples/stream_ac_sparsity.py`` on a longer budget, with the machine and the
wall time printed for benchmarks/README.md. A learning benchmark, not a speed target: one seed
shows how the variants learn, not a significant difference.

    python benchmarks/stream_ac_returns.py                          # Hopper-v5, 100k steps: 19 minutes on 2 cores
    python benchmarks/stream_ac_returns.py --timesteps 1000000 --seeds 0 1 2 3 4 --workers 16
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "stream_ac_sparsity.py"


def load_example():
    """The example as a module registered under its name, so its worker processes can unpickle its functions."""
    spec = importlib.util.spec_from_file_location("stream_ac_sparsity", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/benchmarks/stream_ac_returns"))
    args = parser.parse_args(argv)
    print(
        f"{platform.machine()}, {torch.get_num_threads()} threads available, torch {torch.__version__}, {args.workers} workers"
    )
    start = time.perf_counter()
    example_argv = ["--env", args.env, "--timesteps", str(args.timesteps), "--workers", str(args.workers)]
    load_example().main([*example_argv, "--output-dir", str(args.output_dir), "--seeds", *map(str, args.seeds)])
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
