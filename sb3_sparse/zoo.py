"""The RL Baselines3 Zoo with sb3-sparse's own algorithms (``reference_sac``, ``reference_ddpg``).

The zoo builds its ``--algo`` choices from ``rl_zoo3.utils.ALGOS`` before it imports any
``--gym-packages``, so algorithms that are not SB3's or sb3-contrib's must be added first. This
module adds them and hands over to the zoo's own command::

    python -m sb3_sparse.zoo train --algo reference_sac --env sb3_sparse/dmc-dog-run-v0 \\
        -conf "$(python -m sb3_sparse.hyperparams reference_sac)"
    python -m sb3_sparse.zoo enjoy --algo reference_sac --env sb3_sparse/dmc-dog-run-v0 -f logs/

Every other flag is the zoo's. ``train ... -optimize`` searches the sparse policies' sparsity, width
and depth with the zoo's hyperparameters (:mod:`sb3_sparse.optimize`). In your own scripts, call
:func:`register_zoo_algorithms` before importing ``rl_zoo3.train`` or ``rl_zoo3.enjoy``.
"""

from __future__ import annotations

import importlib
import sys

from sb3_sparse.algorithms import ALGORITHM_TABLE

COMMANDS = ("train", "enjoy")


def register_zoo_algorithms() -> list[str]:
    """
    Add the algorithm table's zoo algorithms that ``rl_zoo3.utils.ALGOS`` lacks (never replaces one).

    :return: the names added
    """
    from rl_zoo3.utils import ALGOS

    added = [entry.name for entry in ALGORITHM_TABLE if entry.zoo and entry.name not in ALGOS]
    for entry in ALGORITHM_TABLE:
        if entry.name in added:
            ALGOS[entry.name] = entry.algorithm
    return added


def main(argv: list[str] | None = None) -> None:
    """
    ``python -m sb3_sparse.zoo {train,enjoy} [the zoo's flags]``.

    :param argv: the command and the zoo's arguments (``None``: ``sys.argv[1:]``)
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m sb3_sparse.zoo {{{','.join(COMMANDS)}}} [rl_zoo3 flags]; got {argv[:1]}")
    register_zoo_algorithms()
    command, *zoo_args = argv
    module = importlib.import_module(f"rl_zoo3.{command}")
    if command == "train":  # -optimize: trials of sparse policies draw sparsity, width and depth
        from sb3_sparse.optimize import SparseExperimentManager, register_samplers

        register_samplers()
        module.ExperimentManager = SparseExperimentManager  # type: ignore[attr-defined]
    sys.argv = [f"rl_zoo3.{command}", "--gym-packages", "sb3_sparse", *zoo_args]
    getattr(module, command)()  # rl_zoo3.train.train, rl_zoo3.enjoy.enjoy


if __name__ == "__main__":
    main()
