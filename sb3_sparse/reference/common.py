"""What the reference algorithms share: the warm-up count, a critic frozen during the actor loss and
losses that may run compiled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import RolloutReturn, TrainFreq
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from sb3_sparse.checks import check_bool
from sb3_sparse.sparse_execution import SparseLinear

#: The reference's networks and optimizer (configs/agent/sac_simba.yaml and ddpg_simba.yaml of the
#: paper's code): one critic (``critic_use_cdq`` is false on DMC), AdamW with weight decay 1e-2 for
#: actor and critic. The Reference algorithms' ``policy_kwargs`` fill in whichever of these they lack.
REFERENCE_POLICY_KWARGS: dict[str, Any] = dict(
    n_critics=1, optimizer_class=torch.optim.AdamW, optimizer_kwargs=dict(weight_decay=1e-2)
)


def with_reference_policy_kwargs(policy_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """
    ``policy_kwargs`` with the reference's network and optimizer settings where they say nothing.

    :param policy_kwargs: the caller's policy kwargs (not modified)
    :return: :data:`REFERENCE_POLICY_KWARGS` updated with ``policy_kwargs``
    """
    return {**REFERENCE_POLICY_KWARGS, **(policy_kwargs or {})}


#: The attribute that names the class which saved a Reference model; saved with the model's other
#: attributes, so that SB3's ``SAC.load`` of it can warn (:mod:`sb3_sparse.registration`).
SAVED_BY = "sb3_sparse_algorithm"

#: The arguments of ``torch.compile`` that ``compile_kwargs`` may set.
COMPILE_ARGUMENTS = ("backend", "dynamic", "fullgraph", "mode", "options")


@contextmanager
def frozen(network: nn.Module) -> Iterator[None]:
    """
    No weight gradients for ``network`` inside the block (gradients still flow through it to its
    inputs): the actor loss needs the critic's input gradient only, and computing the critic's
    weight gradients there would be thrown away.

    :param network: the critic
    """
    trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


class ReferenceWarmup(OffPolicyAlgorithm):
    """
    The reference's warm-up: exactly ``learning_starts`` uniformly random transitions, and the first
    gradient update right after the last of them. SB3 acts at random for the first ``learning_starts``
    transitions too, but adds the exploration noise to them (clipping some at the bounds), and first
    trains after one more (its condition is ``num_timesteps > learning_starts``); this samples the
    action space alone and trains as soon as ``num_timesteps == learning_starts`` as well.
    """

    def _setup_model(self) -> None:
        setattr(self, SAVED_BY, f"sb3_sparse.reference.{type(self).__name__}")  # runs at construction and at load
        super()._setup_model()

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.num_timesteps < learning_starts:
            action_noise = None  # the reference's warm-up actions are uniform over the action space
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        rollout = super().collect_rollouts(
            env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
        )
        if rollout.continue_training and self.num_timesteps == self.learning_starts > 0:
            # SB3's learn() skips this step (num_timesteps > learning_starts is False): train here.
            gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else rollout.episode_timesteps
            if gradient_steps > 0:
                self.train(batch_size=self.batch_size, gradient_steps=gradient_steps)
        return rollout


class CompiledLosses:
    """
    Runs the losses of a gradient step through ``torch.compile`` when ``compile_gradient_step`` is
    set: each loss (the networks' forward passes and the loss arithmetic) becomes one graph, and
    AOTAutograd compiles its backward pass; the optimizer steps, with their mask hooks, stay eager.
    Inductor draws random numbers with torch's own generator (``fallback_random``), so a compiled
    step samples the same noise as an eager one and the two stay equal within float32 rounding.
    Compiled functions are made at the first gradient step and never saved.
    """

    compile_gradient_step: bool
    compile_kwargs: dict[str, Any]
    _compiled_losses: dict[str, Callable[..., Any]]

    def _init_compilation(self, compile_gradient_step: bool, compile_kwargs: dict[str, Any] | None) -> None:
        """
        :param compile_gradient_step: compile the losses of each gradient step (off by default)
        :param compile_kwargs: arguments of ``torch.compile`` (any of :data:`COMPILE_ARGUMENTS`),
            e.g. ``dict(mode="reduce-overhead")`` for CUDA graphs on a GPU
        """
        self.compile_gradient_step = check_bool("compile_gradient_step", compile_gradient_step)
        kwargs = dict(compile_kwargs or {})
        unknown = sorted(set(kwargs) - set(COMPILE_ARGUMENTS))
        if unknown:
            raise ValueError(f"compile_kwargs has {unknown}; torch.compile arguments allowed: {list(COMPILE_ARGUMENTS)}")
        modes = list(torch._inductor.list_mode_options())
        if kwargs.get("mode") is not None and kwargs["mode"] not in modes:
            raise ValueError(f"compile_kwargs mode={kwargs['mode']!r} is not a torch.compile mode; valid: {modes}")
        self.compile_kwargs = kwargs

    def _setup_model(self) -> None:
        super()._setup_model()  # type: ignore[misc]
        self._compiled_losses = {}  # made again for the networks just built (construction, load)
        if not self.compile_gradient_step:
            return
        policy: nn.Module = self.policy  # type: ignore[attr-defined]
        sparse_layers = [name for name, module in policy.named_modules() if isinstance(module, SparseLinear)]
        if sparse_layers:
            # Dynamo cannot trace the CSR kernels: every layer would break the graph and recompile.
            raise ValueError(
                f"compile_gradient_step=True needs masked layers, but {len(sparse_layers)} layers run sparse "
                f"kernels ({sparse_layers[0]}, ...): pass policy_kwargs=dict(sparse_backend='masked'), or "
                "compile_gradient_step=False (to load such a model: load(path, compile_gradient_step=False))"
            )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_compiled_losses"]  # type: ignore[misc]

    def _begin_gradient_step(self) -> None:
        """Tell CUDA graph trees (``mode="reduce-overhead"``) that a new step begins: the last one's graphs are done."""
        if self.compile_gradient_step:
            torch.compiler.cudagraph_mark_step_begin()

    def _loss(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` itself, or its compiled version when ``compile_gradient_step`` is set."""
        if not self.compile_gradient_step:
            return function
        if name not in self._compiled_losses:
            kwargs = dict(self.compile_kwargs)
            if kwargs.get("backend", "inductor") == "inductor":
                # torch.compile takes a mode or options, not both: the mode's options go in the options.
                mode = kwargs.pop("mode", None)
                mode_options = torch._inductor.list_mode_options(mode) if mode else {}
                kwargs["options"] = {**mode_options, "fallback_random": True, **kwargs.get("options", {})}
            self._compiled_losses[name] = torch.compile(function, **kwargs)
        return self._compiled_losses[name]


def record_losses(logger: Logger, logs: dict[str, list[torch.Tensor]]) -> None:
    """
    Record the mean of each list of per-step values as ``train/<key>``. The values stay tensors
    during the steps and are read once here: one device synchronization per ``train`` call.
    """
    for key, values in logs.items():
        if values:
            logger.record(f"train/{key}", torch.stack(values).mean().item())
