"""Where a dense SAC step's time goes on one CPU thread, and how fast each library multiplies matrices.

Two measurements, both on one thread:

1. A profile (``torch.profiler``) of ``ReferenceSAC``'s gradient step at width ``k`` (actor
   ``128 k`` x 1 block, one critic ``512 k`` x 2 blocks, masked layers, humanoid's dimensions: 67
   observations, 21 actions; batch 256): the share of the step's CPU time spent in matrix
   products (``aten::mm`` and ``aten::addmm``), the number of products per step, and the top
   operators.
2. GFLOP/s of one float32 product ``(256, 512 k) x (512 k, 2048 k)`` (the critic blocks' first
   layer) through torch's default path (MKL on x86), oneDNN (``torch.ops.mkldnn._linear_pointwise``),
   NumPy's BLAS and, when JAX is installed (``pip install -e ".[bench]"``), XLA.

If products take most of the step, the step's speed against another library is the ratio of
their product rates (benchmarks/README.md, "Against SBX's SimBa SAC").

    python benchmarks/step_profile.py              # about 1 minute on 2 cores
    python benchmarks/step_profile.py --width 2
"""

from __future__ import annotations

import os

# One thread in every library, set before any of them starts its thread pool.
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[variable] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch as th  # noqa: E402
from gymnasium import spaces  # noqa: E402
from timing import gflops_rate  # noqa: E402

import sb3_sparse  # noqa: E402, F401  (registers the policy)
from sb3_sparse.presets import scaled_architecture  # noqa: E402
from sb3_sparse.reference import ReferenceSAC  # noqa: E402


class HumanoidShapedEnv(gym.Env):
    """Random observations and zero rewards with humanoid's dimensions: the step costs nothing."""

    observation_space = spaces.Box(-1.0, 1.0, (67,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (21,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.observation_space.sample(), 0.0, False, False, {}


def profile_step(width: int, steps: int) -> None:
    """Print the matrix products' share of ``steps`` gradient steps and the top operators."""
    policy_kwargs = dict(
        scaled_architecture(width), n_critics=1, sparse_backend="masked", actor_sparsity=0.8, critic_sparsity=0.8
    )
    model = ReferenceSAC("SparseSimBaPolicy", HumanoidShapedEnv(), learning_starts=300, policy_kwargs=policy_kwargs, seed=0)
    model.learn(300)  # random warm-up, then one update
    model.train(gradient_steps=2, batch_size=256)  # untimed: allocator warm-up
    with th.profiler.profile() as profiler:
        model.train(gradient_steps=steps, batch_size=256)
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    products = [event for event in events if event.key in ("aten::mm", "aten::addmm")]
    share = sum(event.self_cpu_time_total for event in products) / total
    count = sum(event.count for event in products) / steps
    print(f"ReferenceSAC step, width {width}, sparsity 0.8 masked: {total / steps / 1e3:.1f} ms of CPU time per step")
    print(f"matrix products (aten::mm, aten::addmm): {share:.1%} of it, {count:.0f} products per step")
    for event in sorted(events, key=lambda event: -event.self_cpu_time_total)[:8]:
        print(f"  {event.key:<40} {event.self_cpu_time_total / total:>6.1%}")


def product_rates(width: int, repeats: int) -> None:
    """Print GFLOP/s of one float32 product at the critic blocks' first layer in each library."""
    rows, inner, columns = 256, 512 * width, 2048 * width
    flops = 2.0 * rows * inner * columns
    left, weight, bias = th.randn(rows, inner), th.randn(columns, inner), th.zeros(columns)
    rates = {
        "torch (default: MKL on x86)": gflops_rate(lambda: th.nn.functional.linear(left, weight, bias), flops, repeats),
        "torch through oneDNN": gflops_rate(
            lambda: th.ops.mkldnn._linear_pointwise(left, weight, bias, "none", [], ""), flops, repeats
        ),
    }
    left_np, right_np = left.numpy(), np.ascontiguousarray(weight.numpy().T)
    rates["NumPy"] = gflops_rate(lambda: left_np @ right_np, flops, repeats)
    if importlib.util.find_spec("jax") is not None:
        import jax
        import jax.numpy as jnp

        left_jax, right_jax = jnp.asarray(left_np), jnp.asarray(right_np)
        product = jax.jit(jnp.matmul)
        rates["XLA (JAX)"] = gflops_rate(lambda: product(left_jax, right_jax).block_until_ready(), flops, repeats)
    print(f"one float32 product {rows} x {inner} x {columns}, one thread:")
    for name, gflops in rates.items():
        print(f"  {name:<28} {gflops:>6.0f} GFLOP/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1, help="width scale k")
    parser.add_argument("--steps", type=int, default=5, help="profiled gradient steps")
    parser.add_argument("--repeats", type=int, default=50, help="timed products per library")
    args = parser.parse_args()
    th.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {th.__version__}, 1 thread")
    profile_step(args.width, args.steps)
    product_rates(args.width, args.repeats)


if __name__ == "__main__":
    main()
