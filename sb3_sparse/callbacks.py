"""SB3 callbacks of sb3-sparse."""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch as th
from sb3_contrib import TRPO
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor
from torch import nn

from sb3_sparse.algorithms import entry_of
from sb3_sparse.checks import check_fraction, check_int
from sb3_sparse.diagnostics import (
    NetworkProbe,
    cosine_matrix,
    dormant_ratios,
    feature_norm,
    gradient_interference,
    parameter_norm,
    per_sample_gradient_gram,
    record_outputs,
    stable_rank,
    total_gradient_norm,
)
from sb3_sparse.evaluations import evaluation_seed
from sb3_sparse.networks import reset_parameters_
from sb3_sparse.probes import network_probes
from sb3_sparse.sparse_execution import SparseLinear
from sb3_sparse.sparsity import apply_masks_, overall_density
from sb3_sparse.threads import FreeCores, default_num_threads, threads_for


@dataclass(frozen=True)
class _Batch:
    """Observations and actions drawn from an on-policy rollout buffer (what a replay sample has)."""

    observations: th.Tensor
    actions: th.Tensor


class ObservationNormalizerCallback(BaseCallback):
    """
    Updates the running observation statistics of a sparse SimBa policy once per collected
    transition, from the observation the policy acted on (``model._last_obs``), the random
    warm-up included; gradient updates, evaluation and ``predict`` never touch them.

    ``import sb3_sparse`` adds this callback to every ``learn()`` of a policy built with
    ``normalize_observations=True`` (unless one is already given), so you rarely create it yourself.

    The reference updates the statistics just before acting on an observation; here they are
    updated right after the environment step that follows it. Each observation is counted
    once either way; only the action on that one observation sees one sample fewer.
    """

    def _init_callback(self) -> None:
        policy = self.model.policy
        if getattr(policy, "observation_normalizer", None) is None:
            raise ValueError(
                f"ObservationNormalizerCallback needs a sb3_sparse policy built with normalize_observations=True, "
                f"got {type(policy).__name__}"
            )
        if self.model.get_vec_normalize_env() is not None:
            warnings.warn(
                f"{type(policy).__name__} normalizes observations itself (normalize_observations=True) and the env is "
                "wrapped in VecNormalize too: observations are normalized twice. Drop one of them (VecNormalize also "
                "clips at 10 by default, which the paper's normalizer does not)",
                stacklevel=2,
            )

    def _on_step(self) -> bool:
        self.model.policy.update_observation_statistics(self.model._last_obs)  # type: ignore[operator]
        return True


def sparsity_values(policy: Any) -> dict[str, float]:
    """
    The density and topology keys of a policy, one meaning each for every family (docs/diagnostics.rst):

    * ``sparsity/<role>/density``: kept parameters over all parameters (weights, biases, norms) of
      what ``<role>_sparsity`` prunes (:meth:`~sb3_sparse.policies.common.SparsePolicyBase.pruned_networks`):
      ``actor``, ``critic`` (all critics, or the Q-network, or the value network) and ``encoder`` (the
      image encoder of a pixel policy); SB3's own policies: the networks of the diagnostics' probes;
    * ``topology/<role>/mask_density`` and the other ``topology/<role>/*`` statistics, for each network
      with a dynamic topology: over the weight tensors its rule updates (biases and norms aside).

    :param policy: a policy
    :return: key -> value
    """
    pruned = getattr(policy, "pruned_networks", None)
    networks = pruned() if callable(pruned) else {name: probe.module for name, probe in network_probes(policy).items()}
    values = {f"sparsity/{role}/density": overall_density(network) for role, network in networks.items()}
    topology: dict[str, dict[str, float]] = getattr(policy, "topology_statistics", dict)()
    for role, statistics in topology.items():
        values.update({f"topology/{role}/{key}": value for key, value in statistics.items()})
    return values


class SparsityLogCallback(BaseCallback):
    """
    Records :func:`sparsity_values` (``sparsity/<role>/density``, and ``topology/<role>/*`` for a
    dynamic topology) at the start of training (from step 0) and at each rollout's end, so that
    every log SB3 writes (stdout, CSV, TensorBoard) has them. They are measured again only when the
    masks have changed (a topology update), so recording costs nothing at the other steps. A
    resumed ``learn()`` records nothing at its start: the values it would log are those of the last
    rollout's end, which a checkpoint's logger state brings back (a resumed run logs what the
    uninterrupted one logs).

    ``import sb3_sparse`` adds this callback to every ``learn()`` of a sparse SimBa policy, so plain
    Python and RL Zoo users get the same keys as the runner.
    """

    def __init__(self) -> None:
        super().__init__()
        # Set here, not at the training start: SB3's tests call collect_rollouts without learn().
        self._measured_at: int | None = None
        self._values: dict[str, float] = {}

    def _on_training_start(self) -> None:
        self._measured_at = None
        if self.model.num_timesteps == 0:
            self._record()

    def _record(self) -> None:
        policy = self.model.policy
        updates = getattr(policy, "topology_update_count", lambda: 0)()
        if updates != self._measured_at:
            self._values, self._measured_at = sparsity_values(policy), updates
        for key, value in self._values.items():
            self.logger.record(key, value)

    def _on_rollout_end(self) -> None:
        self._record()

    def _on_step(self) -> bool:
        return True


class ProgressLinesCallback(BaseCallback):
    """
    The progress bar of a log that is not a terminal (a file, a job scheduler's log, a pipe), where
    SB3's bar shows nothing until the end: a line every ``interval`` seconds with the agent steps
    done, their rate and the time left, and one at the end. The runner uses it in place of the bar
    when its standard output is not a terminal.

    :param interval: seconds between lines, > 0
    :param file: where the lines go (``None``: standard output at the time of the line)
    """

    def __init__(self, interval: float = 60.0, file: Any = None) -> None:
        super().__init__()
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError(f"interval must be a number of seconds > 0, got {interval!r}")
        self.interval, self.file = float(interval), file

    def _on_training_start(self) -> None:
        self._start, self._start_steps = time.monotonic(), self.num_timesteps
        self._next = self._start + self.interval
        self._printed_at: int | None = None

    def _line(self) -> None:
        total, done = self.model._total_timesteps, self.num_timesteps
        if done == self._printed_at:  # the end right after a timed line: once is enough
            return
        self._printed_at = done
        elapsed = time.monotonic() - self._start
        rate = (done - self._start_steps) / elapsed if elapsed > 0 else 0.0
        left = f", {_duration((total - done) / rate)} left" if rate > 0 and done < total else ""
        print(
            f"agent steps {done:,}/{total:,} ({100 * done / max(total, 1):.0f}%), {rate:.1f} per second{left}",
            file=self.file or sys.stdout,
            flush=True,
        )

    def _on_step(self) -> bool:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.interval
            self._line()
        return True

    def _on_training_end(self) -> None:
        self._line()


def _duration(seconds: float) -> str:
    """``1h 02m``, ``3m 05s`` or ``12s``."""
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 60}m {whole % 60:02d}s" if whole >= 60 else f"{whole}s"


class AdaptiveThreadsCallback(BaseCallback):
    """
    Keeps torch's intra-op threads at the cores other processes leave free (:mod:`sb3_sparse.threads`):
    every ``interval`` seconds of training it measures them and sets ``torch.set_num_threads``
    (at least 1, at most ``maximum``). The runner adds it when ``--num-threads`` is not given.

    :param maximum: at most this many threads (``None``: :func:`sb3_sparse.threads.default_num_threads`)
    :param interval: seconds between measurements, > 0
    """

    def __init__(self, maximum: int | None = None, interval: float = 5.0) -> None:
        super().__init__()
        if maximum is not None:
            check_int("maximum", maximum)
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ValueError(f"interval must be a number of seconds > 0, got {interval!r}")
        self.maximum, self.interval = maximum, float(interval)
        self.changes: list[tuple[int, int]] = []  # (agent steps, threads) at each change

    def _on_training_start(self) -> None:
        self._maximum = self.maximum or default_num_threads()
        self._monitor = FreeCores()
        self._next = time.monotonic() + self.interval

    def _on_step(self) -> bool:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.interval
            free = self._monitor.measure()
            if free is not None:
                threads = threads_for(free, self._maximum)
                if threads != th.get_num_threads():
                    th.set_num_threads(threads)
                    self.changes.append((self.num_timesteps, threads))
        return True


class TopologyScheduleCallback(BaseCallback):
    """
    Tells a policy with a dynamic topology (``topology="set"``, ``"rigl"`` or ``"gmp"``) how far
    training is: agent steps done over the ``learn()`` budget (with ``reset_num_timesteps=False``,
    the budget includes the steps before), at the start of training and before each round of
    gradient steps. ``import sb3_sparse`` adds it to every ``learn()`` of such a policy.
    """

    def _init_callback(self) -> None:
        policy = self.model.policy
        if not callable(getattr(policy, "set_training_progress", None)):
            raise ValueError(f"TopologyScheduleCallback needs a sb3_sparse policy, got {type(policy).__name__}")
        actor_schedule = cast(Any, policy).architecture.schedule_of("actor")
        if isinstance(self.model, TRPO) and actor_schedule is not None and actor_schedule.kind == "rigl":
            raise ValueError(
                "TRPO moves its policy by a line search, not by the optimizer whose steps RigL counts: no gradient of "
                "the policy loss is there to regrow by. actor_topology must be 'static', 'set', 'gmp' or 'densify', got 'rigl'"
            )

    def _tell_progress(self) -> None:
        total = max(self.model._total_timesteps, 1)
        cast(Any, self.model.policy).set_training_progress(min(self.model.num_timesteps / total, 1.0))

    def _on_training_start(self) -> None:
        self._tell_progress()

    def _on_rollout_end(self) -> None:
        self._tell_progress()

    def _on_step(self) -> bool:
        return True


class PlasticityCallback(BaseCallback):
    """
    Logs the paper's plasticity diagnostics of the actor and the critic every ``freq`` agent steps,
    on one replay batch (on-policy algorithms: observations of the rollout buffer; DQN: the Q-network
    only, as the critic), through the SB3 logger (stdout, CSV, TensorBoard), then dumps the logger:

    * ``plasticity/<net>/dormant_ratio_<tau>``: pooled dormant-neuron fraction over the hidden layers
      (post-activation by default, the original definition; ``pre_activation=True`` measures the
      outputs of every hidden linear layer, as the reference code does);
    * ``plasticity/<net>/srank`` (delta ``srank_delta``) and ``plasticity/<net>/feature_norm`` of the
      final hidden features (of the first critic for the critic); srank saturates at
      ``min(batch_size, width)``, so use a batch a few times the width for wide networks;
    * ``plasticity/<net>/param_norm`` (L2) and ``plasticity/<net>/grad_norm``: mean L2 norm of the
      gradient at each optimizer step since the last log, read in an optimizer hook after the masks
      were applied (the masked gradient; after the algorithm's gradient clipping where it clips
      between backward and step: PPO, A2C, DQN);
    * ``plasticity/<net>/grad_interference``: mean off-diagonal cosine of per-sample gradients over
      ``interference_samples`` states, computed exactly with
      :func:`sb3_sparse.diagnostics.per_sample_gradient_gram`; actor: the algorithm's actor loss
      (SAC/TQC/CrossQ: ``alpha log pi - Q``, TD3/DDPG: ``-Q1``); critic: the squared TD error
      against ``r + gamma (1 - done) Q_target(s', pi_det(s'))`` (the target critic, or the critic
      when there is none, and the deterministic next action); DQN and QR-DQN: the Q-network's
      squared TD error against ``r + gamma (1 - done) max_a' Q_target(s', a')``; NaN when the
      network has layers other than linear and LayerNorm (e.g. BatchRenorm), and for the
      on-policy algorithms (PPO, A2C, TRPO, MaskablePPO: no per-sample losses here);
    * ``sparsity/<role>/density``: kept parameters over all parameters of what ``<role>_sparsity``
      prunes (``encoder`` too for pixel policies; :func:`sparsity_values`);
    * per network with a dynamic topology (``set``, ``rigl``, ``gmp``, ``densify``): ``topology/<net>/mask_density``
      (active positions of the weight tensors its rule updates, now), ``topology/<net>/mask_turnover``
      (fraction of the active weights the last update deactivated), ``topology/<net>/ever_active_fraction``
      (positions of the sparse tensors ever active: in-time over-parameterization) and ``topology/<net>/updates``;
    * pixel policies (``SparseSimBaCnnPolicy``) also log ``plasticity/encoder/dormant_ratio_<tau>``
      (channels after each ReLU of the convolutional encoder, scores averaged over batch and
      positions), ``plasticity/encoder/srank`` and ``plasticity/encoder/feature_norm`` (its
      flattened output), measured during the critic's pass; the critic's gradient interference is
      NaN there (convolutions are outside the exact per-sample Gram).

    Training is untouched: the batch is sampled and the stochastic actor queried inside
    saved-and-restored numpy and torch random states, the networks are put back in their mode,
    and gradients are taken with ``torch.autograd.grad`` (``.grad`` is not written).

    :param freq: agent steps (callback calls) between measurements
    :param batch_size: replay samples for dormant ratio, srank and norms
    :param taus: dormant thresholds
    :param interference_samples: states for the gradient interference (0 to skip it)
    :param srank_delta: srank tolerance
    :param pre_activation: measure dormancy on linear outputs instead of activation outputs
    :param save_interference_dir: where to save each actor cosine matrix as ``interference_<step>.npy`` (optional)
    :param verbose: verbosity
    """

    def __init__(
        self,
        freq: int = 5000,
        batch_size: int = 256,
        taus: Sequence[float] = (0.0, 0.1, 0.2),
        interference_samples: int = 64,
        srank_delta: float = 0.01,
        pre_activation: bool = False,
        save_interference_dir: str | Path | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        freq, batch_size = check_int("freq", freq), check_int("batch_size", batch_size, minimum=2)
        interference_samples = check_int("interference_samples", interference_samples, minimum=0)
        if interference_samples == 1:
            raise ValueError("interference_samples must be 0 (off) or >= 2, got 1")
        if not taus or any(not 0.0 <= tau < 1.0 for tau in taus):
            raise ValueError(f"taus must be thresholds in [0, 1), got {taus!r}")
        srank_delta = check_fraction("srank_delta", srank_delta)
        self.freq = freq
        self.batch_size = batch_size
        self.taus = tuple(taus)
        self.interference_samples = interference_samples
        self.srank_delta = srank_delta
        self.pre_activation = pre_activation
        self.save_interference_dir = Path(save_interference_dir) if save_interference_dir is not None else None
        # Per network: sum of the gradient norms since the last log (a tensor: no sync per update) and their count.
        self._grad_norm_sums: dict[str, th.Tensor | float] = {}
        self._grad_norm_counts: dict[str, int] = {}
        self._hook_handles: list[Any] = []
        self.last_actor_cosines: th.Tensor | None = None

    def _init_callback(self) -> None:
        if not isinstance(self.model, (OffPolicyAlgorithm, OnPolicyAlgorithm)):
            raise ValueError(
                "PlasticityCallback needs an algorithm with a replay buffer (off-policy) or a rollout buffer "
                f"(on-policy), got {type(self.model).__name__}"
            )
        self.probes = network_probes(self.model.policy)
        self._grad_norm_sums = dict.fromkeys(self.probes, 0.0)
        self._grad_norm_counts = dict.fromkeys(self.probes, 0)
        entry = entry_of(type(self.model))
        self.losses = entry.losses if entry is not None else None
        if self.save_interference_dir is not None:
            self.save_interference_dir.mkdir(parents=True, exist_ok=True)

    def _on_training_start(self) -> None:
        for name, probe in self.probes.items():
            optimizer = probe.network_optimizer
            own = {id(p) for p in probe.module.parameters()}  # one optimizer may train several networks (PPO)
            parameters = [p for group in optimizer.param_groups for p in group["params"] if id(p) in own]
            # Registered after the policy's mask hooks, so it reads the masked gradient.
            handle = optimizer.register_step_pre_hook(
                lambda *_, name=name, parameters=parameters: self._record_gradient_norm(name, parameters)
            )
            self._hook_handles.append(handle)

    @property
    def _replay_buffer(self) -> ReplayBuffer | None:
        return cast(OffPolicyAlgorithm, self.model).replay_buffer if isinstance(self.model, OffPolicyAlgorithm) else None

    def _rollout_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The observations and actions of the rollout buffer filled so far, one row per transition."""
        buffer = cast(OnPolicyAlgorithm, self.model).rollout_buffer
        filled = buffer.buffer_size if buffer.full else buffer.pos
        observations = cast(np.ndarray, buffer.observations)
        if buffer.generator_ready:  # train() flattened the arrays to (buffer_size * n_envs, ...)
            return observations, buffer.actions
        shape = observations.shape[2:]
        return observations[:filled].reshape(-1, *shape), buffer.actions[:filled].reshape(-1, buffer.actions.shape[-1])

    def _available(self) -> int:
        buffer = self._replay_buffer
        return buffer.size() if buffer is not None else len(self._rollout_rows()[0])

    def _record_gradient_norm(self, name: str, parameters: list[th.nn.Parameter]) -> None:
        self._grad_norm_sums[name] = self._grad_norm_sums[name] + total_gradient_norm(parameters)
        self._grad_norm_counts[name] += 1

    def _on_training_end(self) -> None:
        for handle in self._hook_handles:
            handle.remove()
        self._hook_handles = []

    def _on_step(self) -> bool:
        if self.n_calls % self.freq == 0 and self._available() >= 2:
            self.log_diagnostics()
        return True

    def _sample(self, batch_size: int) -> Any:
        state = np.random.get_state()
        try:
            buffer = self._replay_buffer
            if buffer is not None:
                return buffer.sample(batch_size, env=self.model._vec_normalize_env)
            # On-policy: the rollout so far (observations as the policy saw them), rows drawn with replacement.
            observations, actions = self._rollout_rows()
            rows = np.random.randint(0, len(observations), size=batch_size)
            device = self.model.policy.device
            return _Batch(
                cast(th.Tensor, obs_as_tensor(observations[rows], device)), th.as_tensor(actions[rows], device=device)
            )
        finally:
            np.random.set_state(state)

    def _interference(self, name: str, batch: Any) -> tuple[float, th.Tensor | None]:
        module, model, losses = self.probes[name].module, self.model, self.losses
        if losses is None:
            return float("nan"), None
        try:
            if name == "actor":
                actor_losses = losses.actor
                if actor_losses is None:
                    return float("nan"), None
                gram = per_sample_gradient_gram(module, lambda: actor_losses(model, batch.observations))
            else:
                # Targets first, outside the Gram's hooks: CrossQ has no target critic and reuses the critic.
                targets = losses.targets(model, batch)
                gram = per_sample_gradient_gram(module, lambda: losses.critic(model, batch, targets))
        except ValueError:  # layers the exact Gram does not cover (e.g. BatchRenorm)
            return float("nan"), None
        cosines = cosine_matrix(gram)
        return gradient_interference(cosines), cosines

    def log_diagnostics(self) -> dict[str, float]:
        """
        Measure and log every diagnostic now.

        :return: the logged values by key
        """
        policy = self.model.policy
        was_training = policy.training
        policy.set_training_mode(False)
        values: dict[str, float] = {}
        devices = [policy.device] if policy.device.type == "cuda" else []
        try:
            with th.random.fork_rng(devices=devices):
                batch = self._sample(self.batch_size)
                for name, probe in self.probes.items():
                    values.update(self._measure(name, probe, batch))
                if self.interference_samples:
                    small = self._sample(self.interference_samples)
                    for name in self.probes:
                        value, cosines = self._interference(name, small)
                        values[f"plasticity/{name}/grad_interference"] = value
                        if name == "actor" and cosines is not None:
                            self.last_actor_cosines = cosines
                            if self.save_interference_dir is not None:
                                path = self.save_interference_dir / f"interference_{self.num_timesteps}.npy"
                                np.save(path, cosines.cpu().numpy())
        finally:
            policy.set_training_mode(was_training)
        values.update(sparsity_values(policy))
        for name in self.probes:
            count = self._grad_norm_counts[name]
            values[f"plasticity/{name}/grad_norm"] = float(self._grad_norm_sums[name]) / count if count else float("nan")
            self._grad_norm_sums[name], self._grad_norm_counts[name] = 0.0, 0
        for key, value in values.items():
            self.logger.record(key, value)
        # As EvalCallback does: the CSV row needs its step (TensorBoard gets it from dump()).
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        return values

    @th.no_grad()
    def _measure(self, name: str, probe: NetworkProbe, batch: Any) -> dict[str, float]:
        layers = probe.pre_activation if self.pre_activation else probe.post_activation
        watched = [*layers, probe.features] if probe.features is not None else list(layers)
        encoder_layers = [m for m in probe.encoder.modules() if isinstance(m, nn.ReLU)] if probe.encoder is not None else []
        if probe.encoder is not None:
            watched += [*encoder_layers, probe.encoder]
        with record_outputs(watched) as outputs:
            network = cast(Any, probe.module)
            if probe.evaluate is not None:
                probe.evaluate(batch.observations, batch.actions)
            elif name == "actor":
                network._predict(batch.observations, deterministic=True)
            else:
                network(batch.observations, batch.actions)
        prefix = f"plasticity/{name}"
        values: dict[str, float] = {}
        layer_outputs = [outputs[layer][0] for layer in layers]
        ratios = dormant_ratios(layer_outputs, self.taus) if layer_outputs else dict.fromkeys(self.taus, float("nan"))
        for tau, ratio in ratios.items():
            values[f"{prefix}/dormant_ratio_{tau}"] = ratio
        if probe.features is not None:
            features = outputs[probe.features][0]
            values[f"{prefix}/srank"] = float(stable_rank(features, self.srank_delta))
            values[f"{prefix}/feature_norm"] = feature_norm(features)
        if probe.encoder is not None:
            channels_last = [outputs[layer][0].movedim(1, -1) for layer in encoder_layers]  # a channel is a unit
            for tau, ratio in dormant_ratios(channels_last, self.taus).items():
                values[f"plasticity/encoder/dormant_ratio_{tau}"] = ratio
            encoded = outputs[probe.encoder][0]
            values["plasticity/encoder/srank"] = float(stable_rank(encoded, self.srank_delta))
            values["plasticity/encoder/feature_norm"] = feature_norm(encoded)
        values[f"{prefix}/param_norm"] = parameter_norm(probe.module)
        return values


class ResetCallback(BaseCallback):
    """
    The paper's reset baseline (Nikishin et al., 2022): every ``interval`` agent steps, re-initialize
    the chosen networks (or only some of their layers) with their original initialization, clear
    their optimizer state, and copy them into their target networks. Masks of sparse policies are
    kept: pruned weights are zeroed again right after the re-initialization. The observation
    statistics are data, not parameters, and are kept too.

    :param interval: agent steps (callback calls) between resets
    :param networks: which networks to reset, among ``"actor"`` and ``"critic"``
    :param layers: regular expressions of submodule names (relative to the network, e.g.
        ``r"q_networks\\.\\d+\\.value"`` for the critics' heads); ``None`` resets every layer
    :param verbose: 1 prints each reset
    """

    def __init__(
        self,
        interval: int,
        networks: Sequence[str] = ("actor", "critic"),
        layers: Sequence[str] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        interval = check_int("interval", interval)
        unknown = [name for name in networks if name not in ("actor", "critic")]
        if not networks or unknown:
            raise ValueError(f"networks must be a non-empty subset of ('actor', 'critic'), got {tuple(networks)!r}")
        self.interval = interval
        self.networks = tuple(networks)
        self.layer_patterns = [re.compile(pattern) for pattern in layers] if layers is not None else None
        self.num_resets = 0

    def _selected_modules(self, network: nn.Module) -> list[nn.Module]:
        if self.layer_patterns is None:
            return [network]
        selected = [
            module for name, module in network.named_modules() if name and any(p.fullmatch(name) for p in self.layer_patterns)
        ]
        if not selected:
            names = [name for name, _ in network.named_modules() if name]
            raise ValueError(f"layers {[p.pattern for p in self.layer_patterns]} match no submodule; names are {names}")
        return selected

    def _init_callback(self) -> None:
        self.probes = network_probes(self.model.policy)
        missing = [name for name in self.networks if name not in self.probes]
        if missing:
            raise ValueError(
                f"{type(self.model.policy).__name__} has no {' or '.join(missing)} network: networks must be among "
                f"{tuple(self.probes)}, got {self.networks!r}"
            )
        for name in self.networks:
            selected = self._selected_modules(self.probes[name].module)  # fail now, not at the first reset
            if any(isinstance(module, SparseLinear) for root in selected for module in root.modules()):
                raise ValueError(
                    f"ResetCallback cannot re-initialize the {name}'s SparseLinear layers (sparse_backend='csr' or "
                    "'auto'): build the policy with sparse_backend='masked' to reset it"
                )

    def _on_step(self) -> bool:
        if self.n_calls % self.interval == 0:
            self.reset()
        return True

    @th.no_grad()
    def reset(self) -> None:
        """Re-initialize the chosen networks now."""
        for name in self.networks:
            probe = self.probes[name]
            network, optimizer = probe.module, probe.network_optimizer
            for module in self._selected_modules(network):
                reset_parameters_(module)
                parameters = {id(p) for p in module.parameters()}
                for parameter in list(optimizer.state):
                    if id(parameter) in parameters:
                        del optimizer.state[parameter]
            apply_masks_(network)
            if probe.target is not None:
                probe.target.load_state_dict(network.state_dict())
        self.num_resets += 1
        self.logger.record("reset/count", self.num_resets)
        if self.verbose:
            print(f"ResetCallback: reset {', '.join(self.networks)} at step {self.num_timesteps}")


class SeededEvalCallback(EvalCallback):
    """
    SB3's ``EvalCallback`` whose every evaluation seeds the evaluation environments from the run's
    seed and the evaluation's step (:func:`~sb3_sparse.evaluations.evaluation_seed`): the
    episodes an evaluation plays do not depend on the evaluations before it, so a run stopped and
    resumed evaluates exactly as the run never stopped.

    :param eval_env: the evaluation environment
    :param run_seed: the run's seed
    :param kwargs: ``EvalCallback``'s arguments
    """

    def __init__(self, eval_env: Any, run_seed: int, **kwargs: Any) -> None:
        super().__init__(eval_env, **kwargs)
        self.run_seed = run_seed

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.eval_env.seed(evaluation_seed(self.run_seed, self.num_timesteps))
        return super()._on_step()
