"""Going on from where a run stopped: whether a run directory may be trained into, the checkpoint
callback that writes what a killed run needs, and the restore of a model, its normalizer, its
replay buffer and its evaluations from a checkpoint. The runner (:mod:`sb3_sparse.train`) calls
these in this order; the files themselves belong to :mod:`sb3_sparse.run_directory`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_normalize

from sb3_sparse.run_config import RESUMABLE_FIELDS, RunConfig
from sb3_sparse.run_directory import CHECKPOINT_EVALUATIONS, MODEL, REPLAY_BUFFER, RESULT, VEC_NORMALIZE, RunDirectory


def configuration_differences(stored: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    """``"key: stored -> now"`` for each key whose value differs between two identities."""
    keys = sorted(set(stored) | set(identity))
    return [f"{key}: {stored.get(key)!r} -> {identity.get(key)!r}" for key in keys if stored.get(key) != identity.get(key)]


def prepare_run_directory(config: RunConfig, directory: RunDirectory, identity: dict[str, Any]) -> bool:
    """
    Decide what a run does with its directory: clear it (``restart``), leave a finished run alone,
    refuse a started run without ``resume`` or with another configuration, or go on.

    :param config: the run
    :param directory: its directory (locked by the caller)
    :param identity: what a resumed run must share with its checkpoint (:meth:`RunConfig.identity`)
    :return: whether there is training to do
    :raises SystemExit: the directory holds a run this configuration may not continue
    """
    stored = directory.read_config()
    differences = configuration_differences(stored["identity"], identity) if stored is not None else []
    if config.restart:
        directory.clear()
    elif directory.finished:
        if differences:
            raise SystemExit(
                f"{directory.path} is a finished run of another configuration: {'; '.join(differences)}. "
                "Use another --output-dir, or --restart to discard it and train this one"
            )
        directory.remove_leftovers()
        print(f"{directory.path} is a finished run (it has {RESULT}): nothing to do; --restart trains it again")
        return False
    elif directory.started:
        if not config.resume:
            raise SystemExit(
                f"{directory.path} already holds a run: pass --resume to go on from its checkpoint, or --restart to discard it"
            )
        if differences:
            raise SystemExit(
                f"--resume: the configuration differs from the run in {directory.path}: {'; '.join(differences)}. "
                f"Only {', '.join(RESUMABLE_FIELDS)} may change; use another --output-dir, or --restart to discard it"
            )
    return True


class RunCheckpointCallback(BaseCallback):
    """
    Every ``freq`` agent steps, save what a killed run needs to go on into a new checkpoint of
    its :class:`~sb3_sparse.run_directory.RunDirectory`: the model, its replay buffer, the
    evaluations so far and the log history. SB3's algorithms save between two collect/train cycles
    (rollouts), at the first one ``freq`` or more steps after the last checkpoint.

    :param directory: the run's directory
    :param freq: agent steps between checkpoints
    :param eval_callback: the run's evaluation callback, whose results are saved too
    :param history: log rows up to the checkpoint this attempt started from
    """

    def __init__(self, directory: RunDirectory, freq: int, eval_callback: EvalCallback, history: list[dict[str, str]]) -> None:
        super().__init__()
        self.directory, self.freq, self.eval_callback, self.history = directory, freq, eval_callback, history
        self._last_saved = 0

    @property
    def _between_rollouts(self) -> bool:
        # SB3 calls the step callbacks before it stores the step's transition and trains on it; at a
        # rollout start (each collect/train cycle: a step for SAC, train_freq steps for DQN, n_steps
        # for PPO) every transition and gradient step so far is done, and a resumed run repeats the
        # uninterrupted run's cycles. StreamAC learns in one rollout: it saves at steps.
        return isinstance(self.model, (OnPolicyAlgorithm, OffPolicyAlgorithm))

    def _on_training_start(self) -> None:
        self._last_saved = self.model.num_timesteps

    def _on_step(self) -> bool:
        if not self._between_rollouts and self.num_timesteps % self.freq == 0:
            self.save()
        return True

    def _on_rollout_start(self) -> None:
        if self._between_rollouts and self.model.num_timesteps - self._last_saved >= self.freq:
            self.save()

    def save(self) -> None:
        """Write a checkpoint now, then make it the current one."""
        step = self._last_saved = self.model.num_timesteps
        staging = self.directory.new_checkpoint(step)
        self.model.save(staging / MODEL)
        if isinstance(self.model, OffPolicyAlgorithm):  # streaming algorithms keep no replay buffer
            self.model.save_replay_buffer(staging / REPLAY_BUFFER)
        normalizer = self.model.get_vec_normalize_env()
        if normalizer is not None:
            normalizer.save(str(staging / VEC_NORMALIZE))
        evaluations = dict(
            timesteps=[int(t) for t in self.eval_callback.evaluations_timesteps],
            results=[[float(r) for r in row] for row in self.eval_callback.evaluations_results],
            ep_lengths=[[int(n) for n in row] for row in self.eval_callback.evaluations_length],
        )
        (staging / CHECKPOINT_EVALUATIONS).write_text(json.dumps(evaluations))
        rows = self.directory.progress_rows(self.history, up_to_step=step)
        self.directory.write_progress(rows, staging)
        self.directory.commit_checkpoint(staging, step)
        self.directory.write_progress(rows)  # the run's progress.csv follows its checkpoints


def restore_checkpoint(
    model: BaseAlgorithm,
    checkpoint: Path,
    env: VecEnv,
    eval_callback: EvalCallback,
    callbacks: Sequence[BaseCallback],
    device: str,
) -> BaseAlgorithm:
    """
    The model of a checkpoint, with the normalizer statistics, replay buffer and evaluations it
    trained with, and the callbacks counting on from its step.

    :param model: the freshly built model (its class loads the checkpoint)
    :param checkpoint: the checkpoint's directory
    :param env: the training environment (its ``VecNormalize`` takes the saved statistics)
    :param eval_callback: takes the saved evaluations
    :param callbacks: every callback of the run
    :param device: torch device
    :return: the loaded model
    """
    normalizer = unwrap_vec_normalize(env)
    if normalizer is not None:  # the statistics the checkpointed model trained with
        saved_normalizer = VecNormalize.load(str(checkpoint / VEC_NORMALIZE), normalizer.venv)
        normalizer.obs_rms, normalizer.ret_rms = saved_normalizer.obs_rms, saved_normalizer.ret_rms
    model = type(model).load(checkpoint / MODEL, env=env, device=device)
    if isinstance(model, OffPolicyAlgorithm):
        model.load_replay_buffer(checkpoint / REPLAY_BUFFER)
    saved = json.loads((checkpoint / CHECKPOINT_EVALUATIONS).read_text())
    eval_callback.evaluations_timesteps = saved["timesteps"]
    eval_callback.evaluations_results = saved["results"]
    eval_callback.evaluations_length = saved["ep_lengths"]
    for callback in callbacks:  # frequencies count calls: go on counting from the checkpoint
        callback.n_calls = model.num_timesteps // env.num_envs
    print(f"resuming from the checkpoint at {model.num_timesteps:,} agent steps")
    return model
