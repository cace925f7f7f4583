"""Cost of dynamic sparse training: a topology update, and its amortized share of a gradient step.

For each size, three models with the same sparse SimBa SAC policy (sparsity 0.9, masked layers,
the layout all three rules run on) share the timing rounds, interleaved in one process (each
round starting with the next model) with an explicit number of torch threads: static masks, and
SET and RigL models whose updates are kept out of the timed steps (their step hook still runs and
counts). Their topology updates (actor and critic, the critic's target following) are timed on
their own, called directly. Printed ratios:

* ``step ratio``: a dynamic model's gradient step over the static one's (the hook's per-step cost);
* ``update / step``: one topology update over one static gradient step;
* ``update share``: ``update / (interval x static step)``, the update's own cost spread over the
  ``--interval`` (the policies' default, 1,000 gradient steps) steps it serves;
* ``amortized``: ``(step + update / interval) / static step - 1``, the update share plus the step
  ratio's excess (the step hook's counter, and the timing noise); target: at most 2%.

GMP's update is SET's without the regrowth; it is not timed separately.

    python benchmarks/topology_overhead.py                      # width 1 and width 5
    python benchmarks/topology_overhead.py --sizes base --rounds 2 --steps 2 --updates 1   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

from stable_baselines3 import SAC
from timing import add_timing_arguments, time_gradient_steps, use_threads, warm_model
from tqdm.auto import tqdm

import sb3_sparse  # noqa: F401  (registers the policy)
from sb3_sparse.presets import size_preset
from sb3_sparse.sparsity import pruned_weights_are_zero
from sb3_sparse.topology import DynamicMaskEnforcer

TOPOLOGIES = ("static", "set", "rigl")
#: An interval no timed round reaches: the updates are timed on their own.
NEVER = 10**9


def build(size: str, topology: str, args: argparse.Namespace) -> SAC:
    """A SAC model with a replay buffer of random Pendulum-v1 transitions, ready to train."""
    dynamic = dict(topology=topology, topology_kwargs=dict(update_interval=NEVER)) if topology != "static" else {}
    policy_kwargs = dict(
        size_preset(size),
        actor_sparsity=args.sparsity,
        critic_sparsity=args.sparsity,
        exact_masks=True,
        sparse_backend="masked",
        **dynamic,
    )
    return warm_model(SAC, policy_kwargs, args.warmup, args.batch_size)


def time_update(model: SAC) -> float:
    """Milliseconds of one topology update of the actor and the critic (after a gradient step: RigL reads its gradients)."""
    enforcers = [enforcer for enforcer in model.policy._mask_enforcers.values() if isinstance(enforcer, DynamicMaskEnforcer)]
    start = time.perf_counter()
    for enforcer in enforcers:
        enforcer.update_topology()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["base", "width5"], help="size presets")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--updates", type=int, default=3, help="timed topology updates per dynamic model")
    parser.add_argument("--interval", type=int, default=1000, help="update interval of the amortized figure")
    add_timing_arguments(parser)
    args = parser.parse_args()
    use_threads(args.num_threads)
    print(f"SAC, 2 critics, sparsity {args.sparsity}, batch {args.batch_size}, masked layers; interval {args.interval:,}")
    columns = ("step ms", "step ratio", "update ms", "update / step", "update share", "amortized")
    print(f"{'size':<8} {'topology':<8} " + " ".join(f"{column:>13}" for column in columns))
    for size in args.sizes:
        models = {topology: build(size, topology, args) for topology in TOPOLOGIES}
        for model in models.values():  # untimed: allocator and thread pools warm up
            time_gradient_steps(model, 1, args.batch_size)
        steps: dict[str, list[float]] = {name: [] for name in models}
        updates: dict[str, list[float]] = {name: [] for name in models if name != "static"}
        names = list(models)
        for round_index in tqdm(range(args.rounds), desc=size, leave=False):
            # Each round starts with the next model: no model always runs first (or right after another).
            for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
                steps[name].append(time_gradient_steps(models[name], args.steps, args.batch_size))
        for _ in range(args.updates):
            for name in updates:
                updates[name].append(time_update(models[name]))
        static = statistics.median(steps["static"])
        print(f"{size:<8} {'static':<8} {static:>13.1f} {1:>13.3f}")
        for name in updates:
            step, update = statistics.median(steps[name]), statistics.median(updates[name])
            amortized = (step + update / args.interval) / static - 1
            share = update / (args.interval * static)
            figures = (
                f"{step:.1f}",
                f"{step / static:.3f}",
                f"{update:.1f}",
                f"{update / static:.2f}",
                f"{share:.3%}",
                f"{amortized:.2%}",
            )
            print(f"{size:<8} {name:<8} " + " ".join(f"{figure:>13}" for figure in figures))
        policies = [model.policy for model in models.values()]
        networks = [net for policy in policies for net in (policy.actor, policy.critic, policy.critic_target)]
        print(f"{size}: pruned weights exactly 0 after timing: {all(pruned_weights_are_zero(net) for net in networks)}")


if __name__ == "__main__":
    main()
