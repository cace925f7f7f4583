"""Our sparse SimBa SAC against the peer a user would pick instead: SBX's SAC with its SimBa policy.

SBX (``pip install sbx-rl``, Stable Baselines Jax) is SB3's API in JAX with SimBa actor and critic
networks. Both sides get the same networks (actor ``128 k`` wide with 1 block, one critic ``512 k``
wide with 2 blocks; SBX: ``net_arch=dict(pi=[128 k], qf=[512 k, 512 k])``, ``n_critics=1``),
batch 256, learning rate 1e-4 and a replay buffer of random transitions of a real environment
(``sb3_sparse/dmc-humanoid-run-v0``: 67 observations, 21 actions). Ours is the paper's update
(:class:`~sb3_sparse.reference.ReferenceSAC`, AdamW with weight decay 1e-2) at each sparsity and
``sparse_backend``; SBX has no sparsity (dense). Each configuration lives in its own process,
pinned to the same one core (``os.sched_setaffinity``, ``--core``) with one thread (torch:
``set_num_threads(1)``; XLA: one intra-op thread), and the processes take turns: the rounds are
interleaved and only one configuration runs at a time. The pinning is what holds JAX to one core:
XLA's one-thread flags do not (unpinned, its matrix product ran at 111-117 GFLOP/s on a 2-core AMD
EPYC with them, 59-80 pinned).

Two figures per configuration:

* ms per gradient step: median over rounds of ``model.train(gradient_steps=S, batch_size=256)``
  (each library's own ``train``; SBX's is one jitted loop over the steps, compiled before timing);
* agent steps per second: ``model.learn`` on the environment with 2 gradient steps per agent step
  (the paper's update-to-data ratio), after the warm-up.

The ratio is ours / SBX's at the same width (below 1: ours is faster).

    pip install -e ".[bench]"                         # SBX and JAX, outside the package's dependencies
    python benchmarks/peers.py                        # widths 1 and 2: about 9 minutes on 2 cores
    python benchmarks/peers.py --widths 1 5 --rounds 3 --steps 2
    python benchmarks/peers.py --widths 1 --sparsities 0.8 --rounds 2 --steps 2 --learn-steps 0   # a quick look
    python benchmarks/peers.py --widths 1 2 --sparsities 0 0.8 --backends masked --compile   # eager against compiled

Each width also prints the GFLOP/s of one float32 matrix product at the critic's widest layer in
each library, on its one thread: the figure that sets the dense steps' ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tqdm.auto import tqdm

ENV_ID = "sb3_sparse/dmc-humanoid-run-v0"
BASE_ACTOR_WIDTH, BASE_CRITIC_WIDTH = 128, 512


@dataclass(frozen=True)
class Config:
    """
    One model of the comparison.

    :param peer: ``"ours"`` (ReferenceSAC with SparseSimBaPolicy) or ``"sbx"`` (SBX's SAC with SimbaPolicy)
    :param width: width scale ``k``
    :param sparsity: actor and critic sparsity (SBX: 0)
    :param backend: ours: ``sparse_backend`` (``masked`` or ``auto``); SBX: ``"jax"``
    :param compiled: ours: ``compile_gradient_step=True`` (the losses through ``torch.compile``)
    """

    peer: str
    width: int
    sparsity: float = 0.0
    backend: str = "jax"
    compiled: bool = False

    @property
    def name(self) -> str:
        """How the table names it."""
        if self.peer == "sbx":
            return "SBX SimbaPolicy (dense)"
        return f"ours {self.sparsity:g} {self.backend}" + (" compiled" if self.compiled else "")


def build_model(config: Config, args: argparse.Namespace) -> Any:
    """The model of a configuration, its replay buffer filled with ``args.warmup`` random transitions."""
    import gymnasium as gym

    import sb3_sparse  # noqa: F401  (registers the DMC ids and the policy)

    env = gym.make(ENV_ID)
    common = dict(
        learning_starts=args.warmup, batch_size=args.batch_size, learning_rate=1e-4, gradient_steps=2, seed=0, verbose=0
    )
    if config.peer == "sbx":
        from sbx import SAC as SbxSAC

        net_arch = dict(pi=[BASE_ACTOR_WIDTH * config.width], qf=[BASE_CRITIC_WIDTH * config.width] * 2)
        model = SbxSAC("SimbaPolicy", env, policy_kwargs=dict(net_arch=net_arch, n_critics=1), **common)
    else:
        import torch as th

        from sb3_sparse.presets import scaled_architecture
        from sb3_sparse.reference import ReferenceSAC

        policy_kwargs = dict(
            scaled_architecture(config.width),
            actor_sparsity=config.sparsity,
            critic_sparsity=config.sparsity,
            n_critics=1,
            sparse_backend=config.backend,
            optimizer_class=th.optim.AdamW,
            optimizer_kwargs=dict(weight_decay=1e-2),
        )
        model = ReferenceSAC(
            "SparseSimBaPolicy", env, policy_kwargs=policy_kwargs, compile_gradient_step=config.compiled, **common
        )
    model.learn(args.warmup)  # random warm-up: fills the buffer (and our observation statistics)
    return model


def serve(connection: Connection, config: Config, args: argparse.Namespace) -> None:
    """
    A configuration's process: build its model, then answer the parent's requests one at a time.

    Requests: ``("train", steps)`` -> ms per gradient step; ``("learn", steps)`` -> agent steps per
    second; ``("matmul", repeats)`` -> GFLOP/s of the library's matrix product at the critic's widest
    shape; ``("close", 0)``.
    """
    # One core and one thread on each side, set before the libraries start their thread pools.
    os.sched_setaffinity(0, {args.core})
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    import torch as th

    th.set_num_threads(1)
    model = build_model(config, args)
    model.train(gradient_steps=args.steps, batch_size=args.batch_size)  # untimed: JIT compilation, allocator warm-up
    connection.send("ready")
    while True:
        request, steps = connection.recv()
        if request == "close":
            break
        if request == "matmul":
            connection.send(matmul_gflops(config, args.batch_size, steps))
            continue
        start = time.perf_counter()
        if request == "train":
            model.train(gradient_steps=steps, batch_size=args.batch_size)
            connection.send((time.perf_counter() - start) * 1e3 / steps)
        else:
            model.learn(steps, reset_num_timesteps=False)
            connection.send(steps / (time.perf_counter() - start))


def matmul_gflops(config: Config, batch_size: int, repeats: int) -> float:
    """
    GFLOP/s of one float32 product ``(batch, 512 k) x (512 k, 2048 k)`` (the critic blocks' first
    layer) in the configuration's library, on its one thread: torch's (MKL on x86) or XLA's.
    """
    rows, inner, columns = batch_size, BASE_CRITIC_WIDTH * config.width, 4 * BASE_CRITIC_WIDTH * config.width
    if config.peer == "sbx":
        import jax
        import jax.numpy as jnp

        left, right = jnp.ones((rows, inner), jnp.float32), jnp.ones((inner, columns), jnp.float32)
        product = jax.jit(jnp.matmul)

        def run() -> None:
            product(left, right).block_until_ready()
    else:
        import torch as th

        left_t, right_t = th.ones(rows, inner), th.ones(inner, columns)

        def run() -> None:
            th.matmul(left_t, right_t)

    from timing import gflops_rate

    return gflops_rate(run, 2 * rows * inner * columns, repeats)


def receive(connection: Connection, process: Any, config: Config) -> Any:
    """The next answer of a configuration's process, or an error naming it if the process died (no endless wait)."""
    while not connection.poll(1.0):
        if not process.is_alive():
            raise RuntimeError(
                f"{config.name} (width {config.width}) died with exit code {process.exitcode}; see its traceback above"
            )
    return connection.recv()


def configurations(args: argparse.Namespace) -> list[Config]:
    """SBX's dense model and ours at every sparsity and backend, for each width."""
    configs = []
    for width in args.widths:
        configs.append(Config("sbx", width))
        for sparsity in args.sparsities:
            for backend in ["masked"] if sparsity == 0 else args.backends:
                configs.append(Config("ours", width, sparsity, backend))
            if args.compile:  # compiled steps need masked layers
                configs.append(Config("ours", width, sparsity, "masked", compiled=True))
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2], help="width scales k (5: 109M parameters)")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.8, 0.9])
    parser.add_argument("--backends", nargs="+", default=["masked", "auto"], choices=["masked", "csr", "auto"])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per configuration")
    parser.add_argument("--steps", type=int, default=3, help="gradient steps per round")
    parser.add_argument("--learn-steps", type=int, default=20, help="agent steps per agent-steps-per-second round (0: skip)")
    parser.add_argument("--warmup", type=int, default=1000, help="random transitions collected before timing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--compile", action="store_true", help="also time our masked models with compile_gradient_step=True")
    allowed = sorted(os.sched_getaffinity(0))
    parser.add_argument("--core", type=int, default=allowed[-1], help=f"the core of every model's process ({allowed})")
    args = parser.parse_args()
    if args.core not in allowed:
        parser.error(f"--core must be one of the cores this process may use, {allowed}; got {args.core}")

    import platform

    import torch as th

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {th.__version__}, "
        f"1 thread per model, every model's process pinned to core {args.core}"
    )
    context = multiprocessing.get_context("spawn")  # fresh interpreters: JAX and torch set up apart
    for width in args.widths:
        configs = [config for config in configurations(args) if config.width == width]
        connections, processes = [], []
        for config in tqdm(configs, desc=f"width {width}: building", leave=False):
            parent, child = context.Pipe()
            process = context.Process(target=serve, args=(child, config, args), daemon=True)
            process.start()
            receive(parent, process, config)  # one build at a time: never two models on the cores
            connections.append(parent)
            processes.append(process)
        times: dict[Config, list[float]] = {config: [] for config in configs}
        rates: dict[Config, list[float]] = {config: [] for config in configs}
        for round_index in tqdm(range(args.rounds), desc=f"width {width}: rounds", leave=False):
            # Rotate the order each round: no configuration always runs right after another one.
            order = [(round_index + offset) % len(configs) for offset in range(len(configs))]
            for index in order:
                connections[index].send(("train", args.steps))
                times[configs[index]].append(receive(connections[index], processes[index], configs[index]))
            if round_index < 2 and args.learn_steps:  # two rounds of agent steps per second (each adds to the buffer)
                for index in order:
                    connections[index].send(("learn", args.learn_steps))
                    rates[configs[index]].append(receive(connections[index], processes[index], configs[index]))
        gflops = []
        for index in (0, 1):  # SBX's process, then our first one
            connections[index].send(("matmul", 20))
            gflops.append(receive(connections[index], processes[index], configs[index]))
        for connection, process in zip(connections, processes, strict=True):
            connection.send(("close", 0))
            process.join()
        sbx_ms = statistics.median(times[configs[0]])
        print(f"\nwidth {width} (actor {BASE_ACTOR_WIDTH * width}, critic {BASE_CRITIC_WIDTH * width} x 2 blocks, one critic)")
        print(f"{'model':<26} {'ms/gradient step':>17} {'vs SBX':>7} {'agent steps/s':>14}")
        for config in configs:
            ms = statistics.median(times[config])
            rate = statistics.median(rates[config]) if rates[config] else float("nan")
            print(f"{config.name:<26} {ms:>17.1f} {ms / sbx_ms:>7.2f} {rate:>14.1f}")
        shape = f"{args.batch_size} x {BASE_CRITIC_WIDTH * width} x {4 * BASE_CRITIC_WIDTH * width}"
        print(f"one float32 matrix product {shape}, one thread: XLA {gflops[0]:.0f} GFLOP/s, torch {gflops[1]:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
