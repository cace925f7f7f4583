"""Wall-time share of PlasticityCallback at its defaults in a default-size sparse SimBa SAC run.

Two models with the same seed train side by side in one process, in interleaved rounds of agent
steps (so machine noise hits both alike): one plain, one with the callback at its defaults
(``freq=5000, batch_size=256, interference_samples=64``). The callback costs two things:

* an optimizer hook per actor and critic update that adds up the gradient norm, timed inside the
  run and also visible as the ratio of the two models' step times;
* one measurement (``log_diagnostics``: dormant ratio, srank, norms, per-sample gradient
  interference of actor and critic) every ``freq`` agent steps, timed on the trained model.

On 2 CPU cores a default-size step takes ~0.25 s, so a measurement would fire only after ~20
minutes; the share at the defaults is therefore computed from the timed parts, per ``freq`` steps:
``(hooks * freq + measurement) / (step_with_callback * freq + measurement)`` (target: at most 2%).
``--rounds`` x ``--round-steps`` at least ``freq`` runs real measurements inside the rounds too.

    python benchmarks/callback_overhead.py             # default sizes, about 7 minutes on 2 cores
    python benchmarks/callback_overhead.py --rounds 2 --round-steps 5 --critic-hidden-dim 64   # smoke run
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch as th
from stable_baselines3 import SAC

import sb3_sparse  # noqa: F401  (registers the policy)
from sb3_sparse.callbacks import PlasticityCallback


class TimedPlasticityCallback(PlasticityCallback):
    """PlasticityCallback that adds up the seconds spent in its hooks and measurements."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hook_seconds = 0.0
        self.hook_calls = 0
        self.measurement_seconds: list[float] = []

    def _record_gradient_norm(self, name: str, parameters: list[th.nn.Parameter]) -> None:
        start = time.perf_counter()
        super()._record_gradient_norm(name, parameters)
        self.hook_seconds += time.perf_counter() - start
        self.hook_calls += 1

    def log_diagnostics(self) -> dict[str, float]:
        start = time.perf_counter()
        values = super().log_diagnostics()
        self.measurement_seconds.append(time.perf_counter() - start)
        return values


def build_model(args: argparse.Namespace) -> SAC:
    """A default SAC with a sparse SimBa policy, after its random warm-up."""
    model = SAC(
        "SparseSimBaPolicy",
        "Pendulum-v1",
        learning_starts=args.warmup,
        seed=0,
        policy_kwargs=dict(
            actor_hidden_dim=args.actor_hidden_dim,
            critic_hidden_dim=args.critic_hidden_dim,
            actor_sparsity=args.sparsity,
            critic_sparsity=args.sparsity,
        ),
    )
    model.learn(args.warmup)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per model")
    parser.add_argument("--round-steps", type=int, default=40, help="agent steps (one update each) per round")
    parser.add_argument("--measurements", type=int, default=5, help="timed log_diagnostics calls")
    parser.add_argument("--warmup", type=int, default=1_000, help="random warm-up transitions before timing")
    parser.add_argument("--actor-hidden-dim", type=int, default=128)
    parser.add_argument("--critic-hidden-dim", type=int, default=512)
    parser.add_argument("--sparsity", type=float, default=0.8)
    args = parser.parse_args()
    for name in ("rounds", "round_steps", "measurements", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    plain, watched = build_model(args), build_model(args)
    callback = TimedPlasticityCallback()  # the defaults under test
    freq = callback.freq
    parameters = sum(p.numel() for net in (plain.policy.actor, plain.policy.critic) for p in net.parameters())
    print(
        f"SAC + SparseSimBaPolicy on Pendulum-v1: actor {args.actor_hidden_dim}, critic {args.critic_hidden_dim}, "
        f"sparsity {args.sparsity}, {parameters:,} actor + critic parameters; "
        f"torch {th.__version__}, {th.get_num_threads()} threads, {platform.machine()}"
    )
    times: dict[str, list[float]] = {"plain": [], "callback": []}
    for _ in range(args.rounds):
        for name, model, callbacks in (("plain", plain, None), ("callback", watched, callback)):
            start = time.perf_counter()
            model.learn(args.round_steps, callback=callbacks, reset_num_timesteps=False)
            times[name].append((time.perf_counter() - start) * 1e3 / args.round_steps)
    in_round_measurements = len(callback.measurement_seconds)
    for _ in range(args.measurements):
        callback.log_diagnostics()
    measurement_ms = statistics.median(callback.measurement_seconds) * 1e3

    plain_ms, watched_ms = statistics.median(times["plain"]), statistics.median(times["callback"])
    steps = args.rounds * args.round_steps
    hooks_ms = callback.hook_seconds * 1e3 / steps  # per agent step: one actor and one critic update
    share = (hooks_ms * freq + measurement_ms) / (watched_ms * freq + measurement_ms)
    print(f"{'model':<22}{'median ms/step':>16}{'min ms/step':>14}")
    for name in times:
        print(f"{name:<22}{statistics.median(times[name]):>16.2f}{min(times[name]):>14.2f}")
    print(f"gradient-norm hooks: {hooks_ms:.3f} ms per agent step ({callback.hook_calls} hook calls over {steps} steps)")
    print(
        f"one measurement (batch {callback.batch_size}, {callback.interference_samples} interference samples): "
        f"{measurement_ms:.1f} ms (median of {len(callback.measurement_seconds)}, {in_round_measurements} inside the rounds)"
    )
    print(f"step-time ratio with/without callback (hooks only, noisy): {watched_ms / plain_ms:.3f}")
    print(f"callback wall-time share at freq={freq}: {100 * share:.2f}%  (target <= 2%)")


if __name__ == "__main__":
    main()
