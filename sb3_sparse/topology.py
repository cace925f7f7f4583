"""Dynamic sparse training: masks that change during training, for any ``torch.nn.Module``.

Three rules, each chosen by name in a :class:`TopologySchedule`:

* ``"set"`` (Mocanu et al., 2018): every ``update_interval`` optimizer steps, each masked tensor
  drops the ``drop_fraction`` of its active weights smallest in magnitude and regrows as many at
  random among its inactive positions.
* ``"rigl"`` (Evci et al., ICML 2020): drops as SET does, regrows where the magnitude of the dense
  gradient (the gradient before the masks are applied) is largest; the drop fraction decays on a
  cosine, and updates stop at ``end_fraction`` of training.
* ``"gmp"``, gradual magnitude pruning (Zhu & Gupta, 2017), dense-to-sparse: starts dense (or at
  ``initial_sparsity``) and, between ``begin_fraction`` and ``end_fraction`` of training, prunes
  each tensor's smallest-magnitude active weights down to its Erdős–Rényi density on the cubic
  schedule.
* ``"densify"``, sparse-to-dense (the third regime of Ma et al.'s Module-Specific Training, arXiv
  2510.12096): starts at the Erdős–Rényi masks of the network's sparsity and, between
  ``begin_fraction`` and ``end_fraction``, grows each tensor back to dense on the mirrored cubic
  schedule, at random positions (drawn as SET draws its regrowth); grown weights start at 0.

SET and RigL keep every tensor's count of active weights exactly as drawn at initialization;
regrown weights start at 0 and their optimizer state is reset. :class:`DynamicMaskEnforcer` runs
the updates from the optimizer's step hook and keeps target networks on their online network's
topology. Nothing here knows about Stable-Baselines3: the training progress (a fraction of the
budget) is handed to the enforcer by whoever knows the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

import torch
from torch import nn

from sb3_sparse.checks import check_choice, check_fraction, check_int, check_sparsity
from sb3_sparse.sparse_execution import SparseLinear
from sb3_sparse.sparsity import (
    MASK_SUFFIX,
    MaskEnforcer,
    _masked_gradient,
    _owner,
    attach_mask,
    erdos_renyi_densities,
    named_masks,
    sample_mask,
)

#: Choices of the ``topology`` policy argument; ``"static"`` keeps the masks drawn at initialization.
TOPOLOGIES = ("static", "set", "rigl", "gmp", "densify")
#: The rules that change the number of active weights on a cubic schedule (masked layers only).
GRADUAL_TOPOLOGIES = ("gmp", "densify")
#: Suffix of the buffer that marks every position ever active (in-time over-parameterization).
EVER_ACTIVE_SUFFIX = "_ever_active"
#: Key of the optimizer's first parameter group that counts its steps: saved with the optimizer's
#: state, so a loaded model continues the same schedule.
STEPS_KEY = "topology_steps"
#: Key beside :data:`STEPS_KEY` that counts the updates that ran.
UPDATES_KEY = "topology_updates"
#: Key beside :data:`STEPS_KEY` with the mask turnover of the last update (absent before the first).
TURNOVER_KEY = "topology_last_turnover"
#: Attribute of a module pruned by :func:`prune_gradually_`: parameter leaf -> (initial, final) density.
GRADUAL_DENSITIES = "gradual_densities"
#: The arguments each dynamic rule takes, with its defaults (RigL stops at 75% of training as in its
#: paper; GMP prunes between 20% and 80%, as Graesser et al. (2022) and Obando-Ceron et al. (2024);
#: densify grows back over the same span).
RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "set": dict(update_interval=1000, drop_fraction=0.3, end_fraction=1.0),
    "rigl": dict(update_interval=1000, drop_fraction=0.3, end_fraction=0.75),
    "gmp": dict(update_interval=1000, initial_sparsity=0.0, begin_fraction=0.2, end_fraction=0.8),
    "densify": dict(update_interval=1000, begin_fraction=0.2, end_fraction=0.8),
}


@dataclass(frozen=True)
class TopologySchedule:
    """
    When and how a dynamic topology changes. Build it with :meth:`create`, which fills the rule's
    defaults and refuses arguments the rule does not take.

    :param kind: ``"set"``, ``"rigl"``, ``"gmp"`` or ``"densify"``
    :param update_interval: optimizer steps of the network between topology updates
    :param drop_fraction: SET and RigL: fraction of each tensor's active weights dropped (and
        regrown) per update; RigL's decays as ``drop_fraction / 2 (1 + cos(pi p / end_fraction))``
    :param begin_fraction: GMP, densify: fraction of training at which pruning (growing) starts
    :param end_fraction: fraction of training at which updates stop (SET, RigL) or the final
        density is reached (GMP: the network's sparsity; densify: dense)
    :param initial_sparsity: GMP: sparsity of the (random, Erdős–Rényi) masks at initialization
    """

    kind: str
    update_interval: int = 1000
    drop_fraction: float = 0.3
    begin_fraction: float = 0.0
    end_fraction: float = 1.0
    initial_sparsity: float = 0.0

    @classmethod
    def create(cls, kind: str, kwargs: Mapping[str, Any] | None = None) -> TopologySchedule:
        """
        Validate a rule and its arguments (``topology`` and ``topology_kwargs`` of the policies).

        :param kind: ``"set"``, ``"rigl"``, ``"gmp"`` or ``"densify"``
        :param kwargs: the rule's arguments (see the class); missing ones take the rule's defaults
        :return: the schedule
        :raises ValueError: for an unknown rule, an argument the rule does not take or a value out of range
        """
        kind = check_choice("topology", kind, tuple(RULE_DEFAULTS))
        defaults = RULE_DEFAULTS[kind]
        given = dict(kwargs or {})
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            valid = ", ".join(sorted(defaults))
            raise ValueError(f"topology={kind!r} got unknown topology_kwargs {unknown}; valid ones: {valid}")
        values = {**defaults, **given}
        values["update_interval"] = check_int("update_interval", values["update_interval"])
        values["drop_fraction"] = check_fraction("drop_fraction", values.get("drop_fraction", 0.3), include_one=True)
        values["initial_sparsity"] = check_sparsity("initial_sparsity", values.get("initial_sparsity", 0.0))
        begin = check_fraction("begin_fraction", values.get("begin_fraction", 0.0), include_one=True)
        end = check_fraction("end_fraction", values["end_fraction"], include_one=True)
        if kind in GRADUAL_TOPOLOGIES and not begin < end:
            raise ValueError(f"begin_fraction must be below end_fraction, got begin_fraction={begin} and end_fraction={end}")
        if kind not in GRADUAL_TOPOLOGIES and end == 0.0:
            raise ValueError(f"end_fraction must be in (0, 1], got {end}")
        values["begin_fraction"], values["end_fraction"] = begin, end
        return cls(kind=kind, **{field.name: values[field.name] for field in fields(cls) if field.name != "kind"})

    @property
    def gradual(self) -> bool:
        """Whether the rule changes the number of active weights on the cubic schedule (GMP, densify)."""
        return self.kind in GRADUAL_TOPOLOGIES

    @property
    def regrows(self) -> bool:
        """Whether dropped weights are regrown elsewhere (SET, RigL), keeping the count of active weights."""
        return self.kind in ("set", "rigl")

    def updates_at(self, progress: float) -> bool:
        """Whether an update due at this fraction of training changes anything."""
        return progress >= self.begin_fraction if self.gradual else progress < self.end_fraction

    def drop_fraction_at(self, progress: float) -> float:
        """SET: ``drop_fraction``; RigL: its cosine decay to 0 at ``end_fraction``."""
        if self.kind == "rigl":
            return self.drop_fraction / 2 * (1 + math.cos(math.pi * min(progress / self.end_fraction, 1.0)))
        return self.drop_fraction

    def density_at(self, progress: float, initial_density: float, final_density: float) -> float:
        r"""
        The cubic schedule: with :math:`t = \mathrm{clip}((p - b) / (e - b), 0, 1)`,
        :math:`d(p) = d_f + (d_i - d_f)(1 - t)^3` (GMP: :math:`d_i > d_f`; densify: :math:`d_f = 1`).

        :param progress: fraction of training done, :math:`p`
        :param initial_density: :math:`d_i`, the density before ``begin_fraction``
        :param final_density: :math:`d_f`, the density from ``end_fraction`` on
        :return: the density
        """
        t = min(max((progress - self.begin_fraction) / (self.end_fraction - self.begin_fraction), 0.0), 1.0)
        return final_density + (initial_density - final_density) * (1.0 - t) ** 3


def drop_smallest(weight: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """
    The mask without the ``count`` active weights smallest in magnitude.

    :param weight: the weights
    :param mask: boolean mask of the active weights
    :param count: how many to drop, at most the number of active weights
    :return: a new boolean mask
    """
    survivors = mask.clone()
    if count > 0:
        magnitude = weight.detach().abs().masked_fill(~mask, math.inf)
        survivors.view(-1)[torch.topk(magnitude.view(-1), count, largest=False).indices] = False
    return survivors


def regrow_largest(mask: torch.Tensor, scores: torch.Tensor, count: int) -> torch.Tensor:
    """
    The ``count`` inactive positions with the largest ``scores`` (random scores: SET's uniform choice).

    :param mask: boolean mask of the active weights
    :param scores: one score per position
    :param count: how many to grow, at most the number of inactive positions
    :return: a boolean mask of the grown positions
    """
    grown = torch.zeros_like(mask)
    if count > 0:
        candidates = scores.detach().float().masked_fill(mask, -math.inf)
        grown.view(-1)[torch.topk(candidates.view(-1), count).indices] = True
    return grown


def prune_gradually_(
    module: nn.Module,
    final_sparsity: float,
    initial_sparsity: float = 0.0,
    generator: torch.Generator | None = None,
    exact: bool = False,
) -> dict[str, float]:
    """
    Prepare ``module`` for a gradual rule (:data:`GRADUAL_TOPOLOGIES`): every tensor whose
    Erdős–Rényi density at ``initial_sparsity`` or at ``final_sparsity`` is below 1 gets a mask,
    random at its density at ``initial_sparsity`` (all ones when that is 1, i.e. dense). Both
    densities are kept on the owning module (:data:`GRADUAL_DENSITIES`) for
    :class:`DynamicMaskEnforcer`. Pruning (GMP): ``initial_sparsity <= final_sparsity``; growing
    back (densify): ``final_sparsity = 0`` and ``initial_sparsity`` the network's sparsity.

    :param module: the network
    :param final_sparsity: sparsity reached at the end of the schedule, in [0, 1)
    :param initial_sparsity: sparsity at initialization, in [0, 1)
    :param generator: random generator of the initial masks
    :param exact: exact-count masks instead of Bernoulli draws
    :return: parameter name -> final density
    """
    initial_sparsity = check_sparsity("initial_sparsity", initial_sparsity)
    final_sparsity = check_sparsity("final_sparsity", final_sparsity)
    pruning = initial_sparsity <= final_sparsity
    shapes = {name: tuple(parameter.shape) for name, parameter in module.named_parameters()}
    final = erdos_renyi_densities(shapes, final_sparsity)
    initial = erdos_renyi_densities(shapes, initial_sparsity)
    for name, density in final.items():
        # Clipped Erdős–Rényi densities need not be monotone per tensor: never start past the end.
        start = max(initial[name], density) if pruning else min(initial[name], density)
        if min(start, density) < 1.0:
            attach_mask(module, name, sample_mask(shapes[name], start, generator, exact))
            owner, leaf = _owner(module, name)
            owner.__dict__.setdefault(GRADUAL_DENSITIES, {})[leaf] = (start, density)
    return final


class DynamicMaskEnforcer(MaskEnforcer):
    """
    A :class:`~sb3_sparse.sparsity.MaskEnforcer` whose masks change on a :class:`TopologySchedule`.

    At every ``update_interval``-th step of ``optimizer`` (counted in its first parameter group,
    :data:`STEPS_KEY`, so the count is saved and loaded with the optimizer), before the step and
    before the gradients are masked, each sparse tensor of ``module`` is updated (GMP and densify:
    pruned or grown to the schedule's density; SET and RigL: a fraction dropped and regrown): the dropped weights
    and any regrown ones are set to 0 with their optimizer state, and the pattern is rewritten (a
    mask buffer, or a :class:`~sb3_sparse.sparse_execution.SparseLinear`'s index buffers, its values
    and their optimizer state moved to the new order). Every target network (same structure, e.g. a
    Polyak copy) gets the same pattern and zeros at the same moment. A ``<param>_ever_active``
    buffer (``weight_ever_active`` for a SparseLinear) on the online and target networks records
    every position ever active.

    :param optimizer: the optimizer that updates ``module``'s parameters
    :param module: the sparse network (masks from :func:`~sb3_sparse.sparsity.prune_erdos_renyi_`, or
        :func:`prune_gradually_` for GMP and densify; SparseLinear layers for SET and RigL only,
        whose count of weights is fixed)
    :param schedule: the rule and its timing
    :param seed: seed of the random regrowth of SET and densify (each update draws from ``seed`` and
        its step, so a loaded model regrows as the uninterrupted one would)
    :param targets: networks that follow ``module``'s topology
    :param counter: suffix of the step and update counters' keys, for several enforcers on one
        optimizer (the on-policy policies' actor and critic): ``topology_steps<counter>``
    :param mask_gradients_in_backward: see :class:`~sb3_sparse.sparsity.MaskEnforcer`; RigL then
        keeps the dense gradient of the backward pass before an update as the hook sees it
    :param mask_weights_after_step: see :class:`~sb3_sparse.sparsity.MaskEnforcer`
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        module: nn.Module,
        schedule: TopologySchedule,
        seed: int = 0,
        targets: Sequence[nn.Module] = (),
        counter: str = "",
        mask_gradients_in_backward: bool = False,
        mask_weights_after_step: bool | None = None,
    ) -> None:
        self.optimizer, self.schedule, self.seed = optimizer, schedule, seed
        self.steps_key, self.updates_key = STEPS_KEY + counter, UPDATES_KEY + counter
        self.turnover_key = TURNOVER_KEY + counter
        #: RigL with gradients masked in backward: (owner id, leaf) -> the dense gradient before the update.
        self._dense_gradients: dict[tuple[int, str], torch.Tensor] = {}
        super().__init__(optimizer, module, mask_gradients_in_backward, mask_weights_after_step)
        if mask_gradients_in_backward:  # the step hook still counts the steps and updates the topology
            self._handles.append(optimizer.register_step_pre_hook(self._mask_gradients))
        optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
        #: Masked tensors: (owner module, leaf name, the owners of the same tensor in the targets).
        self._masked: list[tuple[nn.Module, str, list[nn.Module]]] = []
        for name, parameter, mask in list(named_masks(module)):  # the loop registers buffers
            if id(parameter) not in optimized:
                continue
            owner, leaf = _owner(module, name)
            if schedule.gradual and leaf not in owner.__dict__.get(GRADUAL_DENSITIES, {}):
                raise ValueError(
                    f"topology={schedule.kind!r} needs masks from prune_gradually_; {name!r} was pruned otherwise"
                )
            followers = [_owner(target, name)[0] for target in targets]
            for holder in [owner, *followers]:
                if leaf + EVER_ACTIVE_SUFFIX not in holder._buffers:
                    holder.register_buffer(leaf + EVER_ACTIVE_SUFFIX, mask.bool())
            self._masked.append((owner, leaf, followers))
        #: SparseLinear layers, with the same layers of the targets.
        self._sparse: list[tuple[SparseLinear, list[SparseLinear]]] = []
        for name, layer in module.named_modules():
            if not isinstance(layer, SparseLinear) or id(layer.values) not in optimized:
                continue
            if schedule.gradual:
                raise ValueError(
                    f"topology={schedule.kind!r} changes the number of weights, which a SparseLinear ({name!r}) holds fixed: "
                    "build the network with sparse_backend='masked'"
                )
            copies = [cast(SparseLinear, target.get_submodule(name)) for target in targets]
            for holder in [layer, *copies]:
                if "weight" + EVER_ACTIVE_SUFFIX not in holder._buffers:
                    holder.register_buffer("weight" + EVER_ACTIVE_SUFFIX, self._pattern(layer))
            if schedule.kind == "rigl":  # the layer keeps dL/dW of the backward pass before an update
                layer.wants_dense_gradient = self._next_step_updates
            self._sparse.append((layer, copies))
        for key in (self.steps_key, self.updates_key):
            optimizer.param_groups[0].setdefault(key, 0)
        #: Fraction of training done, in [0, 1]: set by the trainer (``TopologyScheduleCallback`` in SB3).
        self.progress = 0.0

    @property
    def last_turnover(self) -> float:
        """Fraction of the weights active before the last update that it deactivated (NaN before the first);
        kept in the optimizer's state, so a resumed run logs what the uninterrupted one does."""
        return float(self.optimizer.param_groups[0].get(self.turnover_key, math.nan))

    @last_turnover.setter
    def last_turnover(self, value: float) -> None:
        self.optimizer.param_groups[0][self.turnover_key] = value

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far (saved with the optimizer's state)."""
        return int(self.optimizer.param_groups[0].get(self.steps_key, 0))

    @property
    def num_updated_tensors(self) -> int:
        """Number of tensors whose pattern the updates change (masked tensors and SparseLinear weights)."""
        return len(self._masked) + len(self._sparse)

    def _next_step_updates(self) -> bool:
        """Whether the optimizer's next step updates the topology (a backward pass now belongs to it)."""
        return (self.steps + 1) % self.schedule.update_interval == 0 and self.schedule.updates_at(self.progress)

    def _gradient_hook(self, owner: nn.Module, leaf: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def masked_gradient(gradient: torch.Tensor) -> torch.Tensor:
            if self.schedule.kind == "rigl" and self._next_step_updates():
                self._dense_gradients[(id(owner), leaf)] = gradient.detach().clone()
            return _masked_gradient(owner, leaf, gradient)

        return masked_gradient

    def _mask_gradients(self, *args: object) -> None:
        due = self._next_step_updates()
        group = self.optimizer.param_groups[0]
        group[self.steps_key] = group.get(self.steps_key, 0) + 1  # absent after loading a state saved without it
        if due:
            self.update_topology()
            group[self.updates_key] = group.get(self.updates_key, 0) + 1
        super()._mask_gradients(*args)  # also masks the gradients of dropped weights when masked in backward

    @staticmethod
    def _pattern(layer: SparseLinear) -> torch.Tensor:
        """A SparseLinear's kept positions as a dense boolean mask."""
        pattern = torch.zeros(layer.in_features * layer.out_features, dtype=torch.bool, device=layer.values.device)
        pattern[layer.flat_indices.long()] = True
        return pattern.view(layer.dense_weight_shape)

    def _new_pattern(
        self, weight: torch.Tensor, mask: torch.Tensor, gradient: torch.Tensor | None, generator: torch.Generator, gradual: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The survivors of the drop and the new mask of one tensor (``gradual``: GMP's (initial, final) densities)."""
        active = int(mask.sum())
        if self.schedule.gradual:
            initial, final = gradual
            kept = round(self.schedule.density_at(self.progress, initial, final) * weight.numel())
            if kept >= active:  # densify: grow at random; GMP at its final density: nothing
                scores = torch.rand(weight.shape, generator=generator).to(weight.device)
                return mask, mask | regrow_largest(mask, scores, kept - active)
            survivors = drop_smallest(weight, mask, active - kept)
            return survivors, survivors
        count = int(self.schedule.drop_fraction_at(self.progress) * active)
        survivors = drop_smallest(weight, mask, count)
        if self.schedule.kind == "rigl":
            scores = gradient.abs() if gradient is not None else torch.zeros_like(weight)
        else:
            scores = torch.rand(weight.shape, generator=generator).to(weight.device)
        return survivors, survivors | regrow_largest(survivors, scores, count)

    @torch.no_grad()
    def update_topology(self) -> None:
        """Update every sparse tensor now (called by the step hook on schedule). RigL reads the dense gradients."""
        generator = torch.Generator().manual_seed((self.seed + self.steps) % 2**63)
        deactivated = active_before = 0
        for owner, leaf, followers in self._masked:
            weight = cast(torch.Tensor, owner._parameters[leaf])
            mask = cast(torch.Tensor, owner._buffers[leaf + MASK_SUFFIX]).bool()
            gradual = owner.__dict__.get(GRADUAL_DENSITIES, {}).get(leaf)
            # Gradients masked in backward: the hook kept RigL's dense one; else .grad is still dense here.
            gradient = self._dense_gradients.pop((id(owner), leaf), None) if self.mask_gradients_in_backward else weight.grad
            survivors, new_mask = self._new_pattern(weight, mask, gradient, generator, gradual)
            for holder, state in [(owner, self.optimizer.state.get(weight, {})), *((f, {}) for f in followers)]:
                _move_masked_tensor(holder, leaf, survivors, new_mask, state)
            deactivated += int((mask & ~new_mask).sum())
            active_before += int(mask.sum())
        for layer, sparse_followers in self._sparse:
            mask = self._pattern(layer)
            survivors, new_mask = self._new_pattern(layer.dense_weight(), mask, layer.dense_gradient, generator, None)
            layer.dense_gradient = None
            old_order = layer.flat_indices.to(torch.long, copy=True)
            for holder in [layer, *sparse_followers]:
                if holder is layer or holder.flat_indices is not layer.flat_indices:  # shared indices move once
                    holder.set_pattern_(new_mask)
                state = self.optimizer.state.get(layer.values, {}) if holder is layer else {}
                _move_sparse_values(holder, old_order, survivors, new_mask, state)
            deactivated += int((mask & ~new_mask).sum())
            active_before += int(mask.sum())
        self.last_turnover = deactivated / active_before if active_before else math.nan

    def statistics(self) -> dict[str, float]:
        """
        ``mask_density`` (active positions over all positions of the sparse tensors, now: biases and
        norms, which ``sparsity/<role>/density`` counts, aside),
        ``mask_turnover`` (of the last update), ``ever_active_fraction`` (positions ever active over
        all positions of the sparse tensors: in-time over-parameterization) and ``updates`` (so far).
        """
        ever_active = [cast(torch.Tensor, owner._buffers[leaf + EVER_ACTIVE_SUFFIX]) for owner, leaf, _ in self._masked]
        ever_active += [cast(torch.Tensor, layer._buffers["weight" + EVER_ACTIVE_SUFFIX]) for layer, _ in self._sparse]
        total = sum(buffer.numel() for buffer in ever_active)
        active = sum(int(cast(torch.Tensor, owner._buffers[leaf + MASK_SUFFIX]).sum()) for owner, leaf, _ in self._masked)
        active += sum(layer.values.numel() for layer, _ in self._sparse)
        return {
            "mask_density": active / total if total else math.nan,
            "mask_turnover": self.last_turnover,
            "ever_active_fraction": sum(int(buffer.sum()) for buffer in ever_active) / total if total else math.nan,
            "updates": float(self.optimizer.param_groups[0].get(self.updates_key, 0)),
        }


def _move_masked_tensor(
    owner: nn.Module, leaf: str, survivors: torch.Tensor, new_mask: torch.Tensor, state: dict[str, Any]
) -> None:
    """Zero what did not survive (dropped and regrown) in a masked weight and its state; install the new mask."""
    weight = cast(torch.Tensor, owner._parameters[leaf])
    keep = survivors.to(weight.dtype)
    weight.mul_(keep)
    for value in state.values():
        if torch.is_tensor(value) and value.shape == weight.shape:
            value.mul_(keep.to(value.dtype))
    cast(torch.Tensor, owner._buffers[leaf + MASK_SUFFIX]).copy_(new_mask)
    ever_active = cast(torch.Tensor, owner._buffers[leaf + EVER_ACTIVE_SUFFIX])
    ever_active |= new_mask


def _move_sparse_values(
    layer: SparseLinear, old_order: torch.Tensor, survivors: torch.Tensor, new_mask: torch.Tensor, state: dict[str, Any]
) -> None:
    """Carry a SparseLinear's surviving values (and their state) from ``old_order`` to its new order; the rest start at 0."""
    kept_before = survivors.view(-1)[old_order]
    new_order = layer.flat_indices.long()

    def moved(values: torch.Tensor) -> torch.Tensor:
        dense = torch.zeros(survivors.numel(), dtype=values.dtype, device=values.device)
        return dense.index_put((old_order,), values * kept_before.to(values.dtype))[new_order]

    layer.values.copy_(moved(layer.values))
    for value in state.values():
        if torch.is_tensor(value) and value.shape == layer.values.shape:
            value.copy_(moved(value))
    ever_active = cast(torch.Tensor, layer._buffers["weight" + EVER_ACTIVE_SUFFIX])
    ever_active |= new_mask
