"""The budget cut of the documentation's examples (tests/test_docs_run.py), loaded at the start of
every Python process whose ``PYTHONPATH`` holds this folder, the sweep's run processes included.
The examples run as written; only how long they train and evaluate is cut:

* every ``learn()`` trains at most ``SB3_SPARSE_DOCS_STEPS`` agent steps (default 128), through
  ``BaseAlgorithm._setup_learn``, which every SB3, sb3-contrib and sb3-sparse algorithm calls;
* every evaluation (``evaluate_policy``, so ``EvalCallback`` and the runner's) runs at most 2 episodes;
* a sweep file read with ``Sweep.from_yaml`` keeps its first seed and at most that many agent steps.

Network sizes, replay buffers and everything else stay as the text gives them, so an example
that cannot be built (e.g. a replay buffer larger than the memory) still fails.
"""

import os

STEPS = int(os.environ.get("SB3_SPARSE_DOCS_STEPS", "128"))
EPISODES = 2


def _cut() -> None:
    from stable_baselines3.common import callbacks, evaluation
    from stable_baselines3.common.base_class import BaseAlgorithm

    setup_learn = BaseAlgorithm._setup_learn

    def _setup_learn(self, total_timesteps, *args, **kwargs):  # type: ignore[no-untyped-def]
        return setup_learn(self, min(int(total_timesteps), STEPS), *args, **kwargs)

    BaseAlgorithm._setup_learn = _setup_learn  # type: ignore[method-assign]
    evaluate_policy = evaluation.evaluate_policy

    def _evaluate_policy(model, env, n_eval_episodes=10, *args, **kwargs):  # type: ignore[no-untyped-def]
        return evaluate_policy(model, env, min(n_eval_episodes, EPISODES), *args, **kwargs)

    evaluation.evaluate_policy = _evaluate_policy
    callbacks.evaluate_policy = _evaluate_policy  # bound by name when SB3 was imported

    from dataclasses import replace

    from sb3_sparse import sweep

    from_yaml = sweep.Sweep.from_yaml.__func__  # type: ignore[attr-defined]

    def _from_yaml(cls, path):  # type: ignore[no-untyped-def]
        read = from_yaml(cls, path)
        return replace(read, seeds=read.seeds[:1], timesteps=min(read.timesteps or STEPS, STEPS))

    sweep.Sweep.from_yaml = classmethod(_from_yaml)  # type: ignore[method-assign, assignment]


# A process that the imports above start (a probe of an optional package) loads this file too: it
# skips the cut, or each would start the next.
GUARD = "SB3_SPARSE_DOCS_CUT"
if os.environ.get(GUARD) != "loading":
    os.environ[GUARD] = "loading"
    try:
        _cut()
    finally:
        os.environ[GUARD] = "done"
