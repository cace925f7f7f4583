"""Static sparsity for any ``torch.nn.Module``: Erdős–Rényi layer-wise densities,
mask sampling, masks stored as buffers, and masks kept static under any optimizer.

Nothing here knows about Stable-Baselines3 or reinforcement learning.

A mask is a buffer named ``<parameter>_mask`` holding 1.0 (kept) and 0.0 (pruned) in the
parameter's dtype, registered on the module that owns the parameter (the naming of
``torch.nn.utils.prune``), so ``state_dict``, ``load_state_dict``, ``.to(device)``, ``save``
and ``load`` carry it for free. Float in memory: re-masking multiplies faster (benchmarks/README.md);
bool in ``state_dict`` and so in saved files: a quarter of the bytes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from sb3_sparse.checks import check_sparsity

MASK_SUFFIX = "_mask"


def erdos_renyi_densities(shapes: Mapping[str, Sequence[int]], sparsity: float) -> dict[str, float]:
    r"""
    Erdős–Rényi layer-wise densities for a network-wide target sparsity ``S``.

    Every tensor in ``shapes`` (kernels, biases, normalization scales) is in the budget.
    With :math:`N_l` the number of elements of tensor :math:`l` and
    :math:`r_l = \sum \mathrm{shape}_l / \prod \mathrm{shape}_l` (for a kernel
    :math:`(n_{in} + n_{out}) / (n_{in} n_{out})`, for a 1-D tensor exactly 1), and a set
    :math:`D` of tensors forced dense (empty at first):

    .. math::

        \epsilon = \frac{\sum_{l \notin D} (N_l - \lfloor S N_l \rfloor) - \sum_{l \in D} \lfloor S N_l \rfloor}
                        {\sum_{l \notin D} r_l N_l}

    If :math:`\max_{l \notin D} \epsilon r_l > 1`, every tensor whose :math:`r_l` equals that
    maximum joins :math:`D` and :math:`\epsilon` is solved again. The density is
    :math:`d_l = \epsilon r_l`, or 1 for :math:`l \in D`. This is the reference code's
    algorithm (JaxPruner's ``erdos_renyi`` distribution); nothing is excluded by name.

    :param shapes: tensor name -> shape, in any order
    :param sparsity: target fraction of removed elements over all tensors, in [0, 1)
    :return: tensor name -> density in (0, 1]
    :raises ValueError: for a sparsity outside [0, 1), no tensors, or a degenerate shape
    """
    sparsity = check_sparsity("sparsity", sparsity)
    if not shapes:
        raise ValueError("shapes must name at least one tensor, got an empty mapping")
    numel: dict[str, int] = {}
    raw: dict[str, float] = {}
    for name, shape in shapes.items():
        count = math.prod(shape)
        if len(shape) == 0 or count <= 0:
            raise ValueError(f"tensor {name!r} must have a non-empty shape with positive sizes, got {tuple(shape)}")
        numel[name] = count
        raw[name] = sum(shape) / count
    if sparsity == 0.0:
        return dict.fromkeys(shapes, 1.0)

    dense: set[str] = set()
    while True:
        kept_budget = 0.0
        divisor = 0.0
        for name, count in numel.items():
            n_zeros = math.floor(sparsity * count)
            if name in dense:
                kept_budget -= n_zeros
            else:
                kept_budget += count - n_zeros
                divisor += raw[name] * count
        # Never divides by 0: tensors are forced dense only when epsilon * max_raw > 1, which
        # implies the remaining budget exceeds their size and that some tensor with a smaller
        # raw_l stays sparse (if all shared one raw_l, epsilon * raw_l <= 1 would hold).
        epsilon = kept_budget / divisor
        max_raw = max(raw[name] for name in numel if name not in dense)
        if epsilon * max_raw <= 1.0:
            break
        dense.update(name for name in numel if name not in dense and raw[name] == max_raw)
    return {name: 1.0 if name in dense else epsilon * raw[name] for name in numel}


def sample_mask(
    shape: Sequence[int],
    density: float,
    generator: torch.Generator | None = None,
    exact: bool = False,
) -> torch.Tensor:
    """
    Draw a random boolean mask (``True`` = weight kept).

    :param shape: shape of the tensor to mask
    :param density: fraction of kept elements, in (0, 1]
    :param generator: CPU random generator; ``None`` uses torch's global generator
    :param exact: keep exactly ``round(density * numel)`` elements (a uniformly random subset)
        instead of one Bernoulli(density) draw per element (the reference)
    :return: boolean tensor of ``shape`` on the CPU
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if exact:
        numel = math.prod(shape)
        keep = torch.randperm(numel, generator=generator)[: round(density * numel)]
        mask = torch.zeros(numel, dtype=torch.bool)
        mask[keep] = True
        return mask.view(*shape)
    return torch.rand(tuple(shape), generator=generator) < density


def _owner(module: nn.Module, parameter_name: str) -> tuple[nn.Module, str]:
    """Return the submodule that owns ``parameter_name`` and the parameter's local name."""
    path, _, leaf = parameter_name.rpartition(".")
    return (module.get_submodule(path) if path else module), leaf


def attach_mask(module: nn.Module, parameter_name: str, mask: torch.Tensor) -> None:
    """
    Register ``mask`` as the buffer ``<leaf>_mask`` next to the parameter (converted to the
    parameter's dtype and device) and zero the pruned weights.

    :param module: module that contains the parameter
    :param parameter_name: dotted name as given by ``module.named_parameters()``
    :param mask: boolean mask of the parameter's shape (``True`` = kept)
    """
    owner, leaf = _owner(module, parameter_name)
    parameter = owner._parameters.get(leaf)
    if parameter is None:
        raise ValueError(f"{parameter_name!r} is not a parameter of {type(module).__name__}")
    if mask.shape != parameter.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask for {parameter_name!r} must be a bool tensor of shape {tuple(parameter.shape)}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    owner.register_buffer(leaf + MASK_SUFFIX, mask.to(dtype=parameter.dtype, device=parameter.device))
    if _masks_saved_compact not in owner._state_dict_hooks.values():
        owner.register_state_dict_post_hook(_masks_saved_compact)
        owner.register_load_state_dict_pre_hook(_masks_loaded_binary)
    with torch.no_grad():
        parameter.mul_(getattr(owner, leaf + MASK_SUFFIX))


#: The dtype of masks in a state dict (and so in a saved file): the smallest floating type, half of
#: float32's bytes. Not bool: SB3's tools treat every state-dict entry as a float tensor (its own tests
#: fill each with ``th.rand_like``, which torch refuses for bool and integer tensors).
SAVED_MASK_DTYPE = torch.float16


def _masks_saved_compact(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, local_metadata: object) -> None:
    """State-dict hook of a module with masks: its masks go out as :data:`SAVED_MASK_DTYPE`."""
    for name in module._buffers:
        if name.endswith(MASK_SUFFIX) and prefix + name in state_dict:
            state_dict[prefix + name] = state_dict[prefix + name].to(SAVED_MASK_DTYPE)


def _masks_loaded_binary(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *_: object) -> None:
    """
    Load pre-hook of a module with masks: a loaded mask is rounded to the nearest of 0 and 1, whatever its
    dtype (bool, float16, or the float32 masks of 0.1.0 files), and the loaded weights it prunes (or, when
    only the weights are loaded, those the mask held prunes) are set to 0,
    so that a state dict from elsewhere (SB3's tools fill every entry with ``th.rand_like``) leaves no
    pruned weight nonzero. A saved model's masks and weights load unchanged.
    """
    for name, buffer in module._buffers.items():
        if not name.endswith(MASK_SUFFIX) or buffer is None:
            continue
        value = state_dict.get(prefix + name)
        mask = value.float() >= 0.5 if isinstance(value, torch.Tensor) else buffer != 0  # no mask loaded: the one held
        if isinstance(value, torch.Tensor):
            state_dict[prefix + name] = mask
        weight_key = prefix + name.removesuffix(MASK_SUFFIX)
        weight = state_dict.get(weight_key)
        if isinstance(weight, torch.Tensor) and weight.shape == mask.shape:
            state_dict[weight_key] = weight * mask.to(weight.device)


def prune_erdos_renyi_(
    module: nn.Module,
    sparsity: float,
    generator: torch.Generator | None = None,
    exact: bool = False,
    after_each: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """
    Prune ``module`` at random, once, with Erdős–Rényi densities over all its parameters.

    Masks are attached with :func:`attach_mask` to every parameter whose density is below 1;
    pruned weights are set to 0. Attach a :class:`MaskEnforcer` to the optimizer afterwards.

    :param module: the network (its parameters form the budget of :func:`erdos_renyi_densities`)
    :param sparsity: target fraction of removed parameters, in [0, 1)
    :param generator: random generator for the masks (same seed, same masks)
    :param exact: keep exactly ``round(d * N)`` weights per tensor instead of Bernoulli draws
    :param after_each: called with each pruned parameter's name right after its mask is attached
        (it may replace the owning layer; the masks still to come do not depend on it)
    :return: parameter name -> target density
    """
    shapes = {name: tuple(parameter.shape) for name, parameter in module.named_parameters()}
    densities = erdos_renyi_densities(shapes, sparsity)
    for name, density in densities.items():
        if density < 1.0:
            attach_mask(module, name, sample_mask(shapes[name], density, generator, exact))
            if after_each is not None:
                after_each(name)
    return densities


@torch.no_grad()
def sparse_init_(weight: torch.Tensor, sparsity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """
    SparseInit of the streaming RL paper (Elsayed et al., 2024), in place: in every row of a
    ``(out_features, in_features)`` weight, ``ceil(sparsity * in_features)`` entries chosen at
    random are set to 0. Nothing keeps them at 0: unlike a mask, training may regrow them.

    :param weight: 2-D weight tensor, already initialized
    :param sparsity: fraction of each row set to zero, in [0, 1)
    :param generator: CPU random generator; ``None`` uses torch's global generator
    :return: ``weight``
    """
    sparsity = check_sparsity("sparsity", sparsity)
    if weight.dim() != 2:
        raise ValueError(f"sparse_init_ needs a 2-D weight, got shape {tuple(weight.shape)}")
    rows, fan_in = weight.shape
    num_zeros = math.ceil(sparsity * fan_in)
    if num_zeros:
        # One independent random permutation per row, as the reference draws them.
        order = torch.rand((rows, fan_in), generator=generator).argsort(dim=1)[:, :num_zeros]
        weight.scatter_(1, order.to(weight.device), 0.0)
    return weight


def named_masks(module: nn.Module) -> Iterator[tuple[str, nn.Parameter, torch.Tensor]]:
    """
    Iterate over the masked parameters of ``module``.

    :param module: any module
    :return: iterator of (dotted parameter name, parameter, mask of 1.0 and 0.0)
    """
    for prefix, submodule in module.named_modules():
        for buffer_name, mask in submodule.named_buffers(recurse=False):
            leaf = buffer_name.removesuffix(MASK_SUFFIX)
            if buffer_name.endswith(MASK_SUFFIX) and leaf in submodule._parameters:
                yield (f"{prefix}.{leaf}" if prefix else leaf), submodule._parameters[leaf], mask


def without_submodule(network: nn.Module, path: str) -> nn.Module:
    """
    A view of ``network`` without one of its submodules: every other submodule under its own dotted
    name (shared, not copied), so that an enforcer on the view keeps the masks of all but that
    submodule, and target networks of the same structure still match by name. The view is not
    registered anywhere: ``network`` is unchanged.

    :param network: the network
    :param path: dotted path of the submodule to leave out, e.g. ``"features_extractor.encoder"``
    :return: the view
    """
    network.get_submodule(path)  # a clear AttributeError for a path that is not there
    first, _, rest = path.partition(".")
    view = nn.Module()
    # The parameters and masks that ``network`` holds itself, the same dictionaries (not copies).
    view._parameters, view._buffers = network._parameters, network._buffers
    for name, child in network.named_children():
        if name != first:
            view.add_module(name, child)
        elif rest:
            view.add_module(name, without_submodule(child, rest))
    return view


@torch.no_grad()
def apply_masks_(module: nn.Module) -> None:
    """Set every pruned weight of ``module`` to exactly 0."""
    for _, parameter, mask in named_masks(module):
        parameter.mul_(mask)


#: torch optimizers whose update of a weight is exactly 0 when the weight, its gradient and its
#: state are 0 (elementwise rules; weight decay, coupled or decoupled, multiplies the weight). Under
#: them, masking the gradients before each step keeps pruned weights exactly 0 by itself, so the
#: pass that re-masks the weights after the step is skipped: it costs as much memory traffic as the
#: gradient pass (figures: benchmarks/README.md, "Masking overhead").
#: Exact types only: a subclass may change the rule.
ZERO_PRESERVING_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.SGD,
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.Adamax,
    torch.optim.NAdam,
    torch.optim.RAdam,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
    torch.optim.Adadelta,
)


class MaskEnforcer:
    """
    Keeps the masks of ``module`` static under ``optimizer``: before each step the gradients
    of pruned weights are zeroed (so Adam-style moments of pruned weights stay 0 and gradient
    norms read the masked gradient); after each step the pruned weights are set to 0 again
    (so any optimizer leaves them exactly 0), unless the optimizer is one of
    :data:`ZERO_PRESERVING_OPTIMIZERS`, whose updates of pruned weights are exactly 0 already.

    Each hook touches only the parameters of ``module``: an optimizer step hook that modified
    another network's parameters in place could invalidate a pending autograd graph.

    Tensors are looked up at every step (not cached), so ``module.to(device)`` and
    ``load_state_dict`` are followed.

    :param optimizer: the optimizer that updates ``module``'s parameters
    :param module: the masked network
    :param mask_gradients_in_backward: mask every gradient of a masked parameter as autograd computes
        it (a tensor hook per parameter) instead of before the step: the algorithm's own use of the
        gradient between backward and step sees the masked one (PPO's, A2C's and DQN's gradient
        clipping), and so do gradients taken with ``torch.autograd.grad`` (TRPO's natural-gradient
        step, which moves the weights without the optimizer)
    :param mask_weights_after_step: re-mask the weights after every step of the optimizer; ``None``:
        only when the optimizer is not one of :data:`ZERO_PRESERVING_OPTIMIZERS`. ``True`` also catches
        weights moved outside the optimizer before its next step (TRPO's line search)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        module: nn.Module,
        mask_gradients_in_backward: bool = False,
        mask_weights_after_step: bool | None = None,
    ) -> None:
        optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._owners: list[tuple[nn.Module, str]] = []
        for name, parameter, mask in named_masks(module):
            if id(parameter) in optimized:
                self._owners.append(_owner(module, name))
                with torch.no_grad():  # state left from before the pruning would move pruned weights
                    for value in optimizer.state.get(parameter, {}).values():
                        if torch.is_tensor(value) and value.shape == mask.shape:
                            value.mul_(mask)
        #: Whether the weights are re-masked after each step (see :data:`ZERO_PRESERVING_OPTIMIZERS`).
        self.masks_weights_after_step = (
            type(optimizer) not in ZERO_PRESERVING_OPTIMIZERS if mask_weights_after_step is None else mask_weights_after_step
        )
        self.mask_gradients_in_backward = mask_gradients_in_backward
        if mask_gradients_in_backward:
            self._handles: list[Any] = [
                cast(torch.Tensor, owner._parameters[leaf]).register_hook(self._gradient_hook(owner, leaf))
                for owner, leaf in self._owners
            ]
        else:
            self._handles = [optimizer.register_step_pre_hook(self._mask_gradients)]
        if self.masks_weights_after_step:
            self._handles.append(optimizer.register_step_post_hook(self._mask_weights))

    def _gradient_hook(self, owner: nn.Module, leaf: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The tensor hook that masks one parameter's gradient as autograd computes it."""
        return functools.partial(_masked_gradient, owner, leaf)

    @property
    def num_masked_tensors(self) -> int:
        """Number of masked parameter tensors this enforcer keeps static."""
        return len(self._owners)

    @torch.no_grad()
    def _mask_gradients(self, *_: object) -> None:
        for owner, leaf in self._owners:
            grad = cast(torch.Tensor, owner._parameters[leaf]).grad
            if grad is not None:
                grad.mul_(cast(torch.Tensor, owner._buffers[leaf + MASK_SUFFIX]))

    @torch.no_grad()
    def _mask_weights(self, *_: object) -> None:
        for owner, leaf in self._owners:
            cast(torch.Tensor, owner._parameters[leaf]).mul_(cast(torch.Tensor, owner._buffers[leaf + MASK_SUFFIX]))

    def remove(self) -> None:
        """Detach the hooks from the optimizer."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _masked_gradient(owner: nn.Module, leaf: str, gradient: torch.Tensor) -> torch.Tensor:
    return gradient * cast(torch.Tensor, owner._buffers[leaf + MASK_SUFFIX])


@dataclass(frozen=True)
class TensorDensity:
    """
    Density of one parameter tensor.

    :param name: dotted parameter name
    :param shape: tensor shape
    :param numel: number of elements
    :param kept: number of elements the mask keeps (``numel`` when unmasked)
    """

    name: str
    shape: tuple[int, ...]
    numel: int
    kept: int

    @property
    def density(self) -> float:
        """Fraction of kept elements."""
        return self.kept / self.numel


def density_report(module: nn.Module) -> list[TensorDensity]:
    """
    Per-tensor density of every parameter of ``module`` (masked or not); the weight of a
    :class:`sb3_sparse.sparse_execution.SparseLinear` is reported at its dense shape.

    :param module: any module
    :return: one :class:`TensorDensity` per parameter, in ``named_parameters`` order
    """
    masks = {name: mask for name, _, mask in named_masks(module)}
    rows = []
    for name, parameter in module.named_parameters():
        owner, leaf = _owner(module, name)
        if leaf == "values" and hasattr(owner, "dense_weight_shape"):  # a SparseLinear: its nonzero weights
            shape = tuple(cast(tuple[int, int], owner.dense_weight_shape))
            rows.append(TensorDensity(name.removesuffix("values") + "weight", shape, math.prod(shape), parameter.numel()))
            continue
        mask = masks.get(name)
        kept = int(mask.sum()) if mask is not None else parameter.numel()
        rows.append(TensorDensity(name, tuple(parameter.shape), parameter.numel(), kept))
    return rows


def parameter_count(module: nn.Module) -> int:
    """
    Number of parameters of ``module`` as a dense network: a pruned weight counts at its full
    shape, also when a :class:`sb3_sparse.sparse_execution.SparseLinear` stores only its kept values.

    :param module: any module
    :return: the count
    """
    return sum(row.numel for row in density_report(module))


def overall_density(module: nn.Module) -> float:
    """
    Kept parameters over all parameters of ``module``.

    :param module: any module
    :return: density in (0, 1]
    """
    rows = density_report(module)
    return sum(row.kept for row in rows) / sum(row.numel for row in rows)


def format_density_report(module: nn.Module, title: str = "") -> str:
    """
    A fixed-width table of :func:`density_report` with a total line.

    :param module: any module
    :param title: heading printed above the table
    :return: the table as text
    """
    rows = density_report(module)
    width = max([len(row.name) for row in rows] + [len("total")])
    lines = [title] if title else []
    lines.append(f"{'tensor':<{width}}  {'shape':>14}  {'kept':>11}  {'total':>11}  density")
    for row in rows:
        shape = "x".join(map(str, row.shape))
        lines.append(f"{row.name:<{width}}  {shape:>14}  {row.kept:>11,}  {row.numel:>11,}  {row.density:7.3f}")
    kept, total = sum(row.kept for row in rows), sum(row.numel for row in rows)
    lines.append(f"{'total':<{width}}  {'':>14}  {kept:>11,}  {total:>11,}  {kept / total:7.3f}")
    return "\n".join(lines)


def pruned_weights_are_zero(module: nn.Module) -> bool:
    """
    Whether every pruned weight of ``module`` is exactly 0.0.

    :param module: any module
    :return: ``True`` when the masks hold
    """
    return all(not parameter[mask == 0].any() for _, parameter, mask in named_masks(module))
