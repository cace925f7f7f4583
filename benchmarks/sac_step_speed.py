"""Speed and memory of a full SAC gradient step, masked-dense against sparse execution.

For width scales k = 1, 2, 5 (actor 128k x 1 block, critic 512k x 2 blocks: 4.5M, 17.7M and 109M
parameters on dog's 223 observations and 38 actions; one critic, AdamW with weight decay 1e-2,
batch 256, the paper's setup) and sparsity 0, 0.8 and 0.9, each ``sparse_backend`` (``masked``,
``csr``, ``auto``) is measured in its own process:

* ms per gradient step: median of ``--steps`` calls of ``SAC.train(gradient_steps=1)`` (actor,
  temperature, critic and target update) after one warm-up step;
* agent steps per second, from the measured parts at the paper's 2 updates per agent step:
  ``1000 / (2 * ms_per_update + ms_per_action)`` (``ms_per_action``: one ``predict`` and one step
  of an environment that costs nothing, so the figure is the learner's ceiling);
* peak memory while training: the process's peak resident memory during the timed steps (the
  kernel's high-water mark is reset once the model is built, through ``/proc/self/clear_refs``)
  minus its resident memory before the model was built: networks, optimizer state, activations
  (the replay buffer holds 1,000 transitions);
* peak memory while building: the same high-water mark up to the end of the model's construction,
  which builds each network dense and pruned before converting its layers to sparse execution.

Ratios are against the masked model of the same size and sparsity, measured in the same run.

    python benchmarks/sac_step_speed.py                       # all sizes: about 15 minutes on 2 cores
    python benchmarks/sac_step_speed.py --widths 1 --steps 3  # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import torch

OBSERVATION_DIM, ACTION_DIM = 223, 38  # dog


class FreeEnv(gym.Env):
    """dog's spaces, no physics: the benchmark times the learner."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBSERVATION_DIM,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(OBSERVATION_DIM, np.float32), {}

    def step(self, action):
        return self.np_random.normal(size=OBSERVATION_DIM).astype(np.float32), 0.0, False, False, {}


def resident_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * resource.getpagesize() / 2**20


def peak_resident_mb() -> float:
    """The process's peak resident memory (VmHWM) since it started or since :func:`reset_peak`."""
    with open("/proc/self/status") as file:
        return next(int(line.split()[1]) / 1024 for line in file if line.startswith("VmHWM:"))


def reset_peak() -> None:
    """Reset the kernel's peak-resident-memory mark of this process to its current resident memory."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def measure(width: int, sparsity: float, backend: str, steps: int) -> dict[str, float]:
    """Build one model and time it (runs in a fresh process: peak memory is per configuration)."""
    from stable_baselines3 import SAC

    import sb3_sparse  # noqa: F401  (registers the policy)
    from sb3_sparse.presets import scaled_architecture

    baseline = resident_mb()
    policy_kwargs = dict(
        **scaled_architecture(width_scale=width),
        actor_sparsity=sparsity,
        critic_sparsity=sparsity,
        sparse_backend=backend,
        n_critics=1,
        optimizer_class=torch.optim.AdamW,
        optimizer_kwargs=dict(weight_decay=1e-2),
    )
    model = SAC("SparseSimBaPolicy", FreeEnv(), learning_rate=1e-4, batch_size=256, seed=0, policy_kwargs=policy_kwargs)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        observations = rng.normal(size=(2, 1, OBSERVATION_DIM)).astype(np.float32)
        action = rng.uniform(-1, 1, (1, ACTION_DIM))
        model.replay_buffer.add(observations[0], observations[1], action, rng.normal(size=1), np.array([False]), [{}])
    model.policy.update_observation_statistics(model.replay_buffer.observations[:1000, 0])
    build_peak = peak_resident_mb() - baseline
    reset_peak()
    model._setup_learn(10, None)
    model.train(gradient_steps=1, batch_size=256)  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train(gradient_steps=1, batch_size=256)
        times.append(time.perf_counter() - start)
    env, observation = FreeEnv(), np.zeros(OBSERVATION_DIM, np.float32)
    start = time.perf_counter()
    for _ in range(20):
        action, _ = model.predict(observation)
        observation = env.step(action)[0]
    ms_action = (time.perf_counter() - start) / 20 * 1000
    ms_update = statistics.median(times) * 1000
    parameters = sum(p.numel() for net in (model.policy.actor, model.policy.critic) for p in net.parameters())
    return dict(
        ms_per_update=ms_update,
        agent_steps_per_s=1000 / (2 * ms_update + ms_action),
        peak_mb=peak_resident_mb() - baseline,
        build_peak_mb=build_peak,
        stored_parameters=parameters,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.8, 0.9])
    parser.add_argument("--steps", type=int, default=5, help="timed gradient steps per configuration")
    parser.add_argument("--measure", nargs=3, metavar=("WIDTH", "SPARSITY", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # the child process
        width, sparsity, backend = int(args.measure[0]), float(args.measure[1]), args.measure[2]
        print(json.dumps(measure(width, sparsity, backend, args.steps)))
        return
    print(f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}")
    header = (
        f"{'k':>2} {'sparsity':>8} {'backend':>7} {'stored params':>14} {'ms/update':>10} {'agent steps/s':>14}"
        f" {'peak MB':>8} {'build MB':>9}"
    )
    print(header + f" {'speed-up':>9} {'memory /':>9} {'build /':>8}")
    for width in args.widths:
        for sparsity in args.sparsities:
            reference = None
            for backend in ("masked",) if sparsity == 0 else ("masked", "csr", "auto"):
                command = [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(width),
                    str(sparsity),
                    backend,
                    "--steps",
                    str(args.steps),
                ]
                result = json.loads(
                    subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
                )
                reference = reference or result
                speedup = reference["ms_per_update"] / result["ms_per_update"]
                memory = reference["peak_mb"] / result["peak_mb"]
                build_memory = reference["build_peak_mb"] / result["build_peak_mb"]
                row = f"{width:>2} {sparsity:>8.1f} {backend:>7} {result['stored_parameters']:>14,}"
                row += f" {result['ms_per_update']:>10.1f} {result['agent_steps_per_s']:>14.2f}"
                row += f" {result['peak_mb']:>8.0f} {result['build_peak_mb']:>9.0f}"
                print(f"{row} {speedup:>8.2f}x {memory:>8.2f}x {build_memory:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
