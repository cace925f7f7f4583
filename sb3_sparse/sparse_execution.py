"""Sparse execution of pruned linear layers: compute from the nonzero weights only.

A masked ``nn.Linear`` trains a dense matrix of which most entries are 0: the forward and
backward passes, the gradient and the optimizer state cost as much as a dense layer. A
:class:`SparseLinear` keeps only the nonzero weights, as the values of a CSR matrix, and the
parameter *is* those values, so gradients and optimizer moments exist for them alone.

On the CPU the passes run through :class:`CSRLinearFunction` (MKL sparse kernels): ``y = x W^T``
and ``dL/dx = dL/dy W`` as sparse-dense products (the second with a transposed CSR structure built
once), and ``dL/dW`` with ``torch.sparse.sampled_addmm``, which computes ``dL/dy^T x`` only at the
nonzero positions. These kernels reach a fraction of dense FLOP efficiency, so they pay only for
large, very sparse layers: :func:`use_sparse_kernels` picks per layer. On an accelerator a
:class:`SparseLinear` scatters its values into a dense matrix and calls the dense kernel (the
same math; stock sparse kernels do not beat cuBLAS at these sparsities).

Nothing here imports Stable-Baselines3.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from sb3_sparse.checks import check_choice, check_int
from sb3_sparse.sparsity import MASK_SUFFIX, prune_erdos_renyi_

#: Choices of the ``sparse_backend`` policy argument.
SPARSE_BACKENDS = ("masked", "csr", "auto")
#: ``auto`` runs a layer with the sparse kernels when both its sizes are at least this ...
AUTO_MIN_FEATURES = 512
#: ... and its density at most this. Measured in full SAC steps (benchmarks/sac_step_speed.py): the
#: residual kernels at sparsity 0.9 (density ~0.08) run faster sparse from width 512 on, those at
#: sparsity 0.8 (density ~0.17) slower at every width.
AUTO_MAX_DENSITY = 0.12
#: Width of the column blocks a :class:`SparseLinear` splits its weight into (see the class).
BLOCK_COLUMNS = 2560


class CSRLinearFunction(torch.autograd.Function):
    """
    ``y = x W^T`` for the weight of a :class:`SparseLinear` (its ``values`` and index structures),
    with gradients for ``x`` and for the values only. See the module docstring.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, values: torch.Tensor, layer: SparseLinear) -> torch.Tensor:
        # Row-major x^T: each column block of W reads a contiguous band of its rows.
        x_t = x.t().contiguous()
        ctx.save_for_backward(x_t, values)
        ctx.layer = layer
        return _blocked_product(layer.column_blocks(values), x_t).t()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_t, values = ctx.saved_tensors
        layer: SparseLinear = ctx.layer
        grad_x = grad_values = None
        # Both products read dL/dy^T by rows: one row-major copy serves the two.
        grad_output_t = grad_output.t().contiguous()
        if ctx.needs_input_grad[0]:
            grad_x = _blocked_product(layer.transposed_row_blocks(values), grad_output_t).t()
        if layer.wants_dense_gradient is not None and layer.wants_dense_gradient():
            layer._store_dense_gradient(grad_output_t @ x_t.t())  # dL/dW everywhere: once per RigL update
        if ctx.needs_input_grad[1]:
            # dL/dW = dL/dy^T x, computed only at the kept positions, block by block.
            parts = [
                torch.sparse.sampled_addmm(pattern, grad_output_t, x_t[columns].t(), beta=0.0).values()
                for pattern, columns in layer.column_blocks(torch.zeros_like(values))
            ]
            grad_values = parts[0] if len(parts) == 1 else torch.cat(parts)
        return grad_x, grad_values, None


def _blocked_product(blocks: list[tuple[torch.Tensor, slice]], dense: torch.Tensor) -> torch.Tensor:
    """``sum_b A_b @ dense[rows_b]`` for CSR blocks ``A_b`` that split a matrix's columns."""
    (first, rows), *rest = blocks
    result = torch.sparse.mm(first, dense[rows])
    for block, rows in rest:
        result += torch.sparse.mm(block, dense[rows])
    return result


class SparseLinear(nn.Module):
    """
    A pruned linear layer that stores and trains only its nonzero weights (``values``). Built from
    a masked ``nn.Linear`` by :meth:`from_masked_linear`; ``dense_weight()`` gives the equivalent
    dense matrix (zeros at pruned positions).

    The weight is held as CSR blocks of at most ``block_columns`` input columns (``values`` in that
    order: block by block, then row by row, columns ascending), and its transpose, for the backward
    pass, as blocks of at most ``block_columns`` output rows. A sparse-dense product reads the rows
    of the dense operand named by the nonzero columns; when that operand is larger than the caches
    (thousands of rows at batch 256), blocks that each read one band of it run faster (figures:
    benchmarks/README.md, "SAC gradient step").

    :param in_features: input size
    :param out_features: output size
    :param mask: boolean ``(out_features, in_features)`` pattern of the kept weights
    :param bias: keep a (dense) bias
    :param use_sparse_kernels: run on the CPU with :class:`CSRLinearFunction` (else: dense kernel on the scattered weight)
    :param block_columns: width of the column blocks (``None``: :data:`BLOCK_COLUMNS`)
    """

    crow_indices: torch.Tensor
    col_indices: torch.Tensor
    transposed_crow_indices: torch.Tensor
    transposed_col_indices: torch.Tensor
    transposed_order: torch.Tensor
    flat_indices: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mask: torch.Tensor,
        bias: bool = True,
        use_sparse_kernels: bool = True,
        block_columns: int | None = None,
    ) -> None:
        super().__init__()
        if mask.shape != (out_features, in_features) or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a bool tensor of shape {(out_features, in_features)}, got {mask.dtype} {tuple(mask.shape)}"
            )
        block_columns = BLOCK_COLUMNS if block_columns is None else block_columns
        block_columns = check_int("block_columns", block_columns)
        self.in_features, self.out_features, self.use_sparse_kernels = in_features, out_features, use_sparse_kernels
        self.block_columns = block_columns
        for name, buffer in self._index_structures(mask).items():
            self.register_buffer(name, buffer)
        self.values = nn.Parameter(torch.zeros(len(self.flat_indices)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        #: Set by a dynamic topology (RigL): asked at each backward pass whether to keep the dense
        #: gradient ``dL/dW`` (all positions, kept or not) in :attr:`dense_gradient` for the next update.
        self.wants_dense_gradient: Callable[[], bool] | None = None
        self.dense_gradient: torch.Tensor | None = None

    def _index_structures(self, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The index buffers (:data:`INDEX_BUFFERS`) of a pattern, on the CPU."""
        out_features, in_features, block_columns = self.out_features, self.in_features, self.block_columns
        rows, cols = mask.detach().cpu().nonzero(as_tuple=True)
        # 32-bit indices wherever they fit: MKL's sparse products and torch's gathers run as fast with
        # them, and the index structures, not the values, are most of a sparse layer's memory.
        index_dtype = torch.int32 if in_features * out_features < 2**31 else torch.int64
        # Parameter order: column block, then row, then column.
        order = torch.argsort((cols // block_columns) * (out_features * in_features) + rows * in_features + cols)
        rows, cols = rows[order], cols[order]
        crow, local_cols = _csr_blocks(rows, cols, out_features, in_features, block_columns)
        # The transpose W^T (rows: input units) in blocks of output units, and where its entries sit in ``values``.
        transposed_order = torch.argsort((rows // block_columns) * (out_features * in_features) + cols * out_features + rows)
        transposed_crow, transposed_local_cols = _csr_blocks(
            cols[transposed_order], rows[transposed_order], in_features, out_features, block_columns
        )
        structures = dict(
            crow_indices=crow,
            col_indices=local_cols,
            transposed_crow_indices=transposed_crow,
            transposed_col_indices=transposed_local_cols,
            transposed_order=transposed_order,
            flat_indices=rows * in_features + cols,
        )
        return {name: buffer.to(index_dtype) for name, buffer in structures.items()}

    @torch.no_grad()
    def set_pattern_(self, mask: torch.Tensor) -> None:
        """
        Move the kept weights to a new pattern with as many of them, in place: the index buffers are
        rewritten (so layers sharing them follow); ``values`` are left as they are (the caller maps them).

        :param mask: boolean ``(out_features, in_features)`` pattern with ``len(values)`` kept weights
        """
        if mask.shape != self.dense_weight_shape or int(mask.sum()) != len(self.flat_indices):
            raise ValueError(
                f"a new pattern must keep {len(self.flat_indices)} weights in shape {self.dense_weight_shape}, "
                f"got {int(mask.sum())} in {tuple(mask.shape)}"
            )
        for name, buffer in self._index_structures(mask).items():
            getattr(self, name).copy_(buffer)

    def _store_dense_gradient(self, gradient: torch.Tensor) -> None:
        self.dense_gradient = gradient.detach().reshape(self.dense_weight_shape).clone()

    @classmethod
    def from_masked_linear(
        cls, linear: nn.Linear, use_sparse_kernels: bool = True, block_columns: int | None = None
    ) -> SparseLinear:
        """
        The sparse equivalent of a linear layer with a ``weight_mask`` (:func:`sb3_sparse.sparsity.attach_mask`):
        same kept weights, same bias (and bias mask, if any), same device and dtype.

        :param linear: the masked layer
        :param use_sparse_kernels: see the class
        :param block_columns: see the class
        :return: the new layer
        """
        mask = getattr(linear, "weight" + MASK_SUFFIX, None)
        if mask is None:
            raise ValueError(f"{linear} has no weight{MASK_SUFFIX}: only pruned layers run sparse")
        kept = mask.detach().cpu() != 0
        layer = cls(linear.in_features, linear.out_features, kept, linear.bias is not None, use_sparse_kernels, block_columns)
        layer = layer.to(device=linear.weight.device)
        with torch.no_grad():
            layer.values.data = linear.weight.detach().flatten()[layer.flat_indices].clone()
            if linear.bias is not None:
                layer.bias.data = linear.bias.detach().clone()  # type: ignore[union-attr]
                bias_mask = getattr(linear, "bias" + MASK_SUFFIX, None)
                if bias_mask is not None:
                    layer.register_buffer("bias" + MASK_SUFFIX, bias_mask.clone())
        return layer

    def column_blocks(self, values: torch.Tensor) -> list[tuple[torch.Tensor, slice]]:
        """
        The weight as CSR blocks of input columns, each with the input rows it multiplies.

        :param values: values in parameter order (the layer's own, or others with its pattern)
        :return: (CSR block with these values, slice of the input features) per block
        """
        return self._blocks(values, self.crow_indices, self.col_indices, self.out_features, self.in_features)

    def transposed_row_blocks(self, values: torch.Tensor) -> list[tuple[torch.Tensor, slice]]:
        """
        The transposed weight ``W^T`` as CSR blocks of output units, each with the gradient rows it multiplies.

        :param values: values in parameter order
        :return: (CSR block of ``W^T``, slice of the output features) per block
        """
        values = values[self.transposed_order]
        return self._blocks(
            values, self.transposed_crow_indices, self.transposed_col_indices, self.in_features, self.out_features
        )

    def _blocks(
        self, values: torch.Tensor, crow: torch.Tensor, cols: torch.Tensor, num_rows: int, num_columns: int
    ) -> list[tuple[torch.Tensor, slice]]:
        blocks, start = [], 0
        for index, count in enumerate(crow[:, -1].tolist()):
            first = index * self.block_columns
            width = min(self.block_columns, num_columns - first)
            entries = slice(start, start + count)
            with warnings.catch_warnings():  # torch's "CSR support is in beta" notice, here and nowhere else
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
                # Built from indices this module computes itself, so the invariant checks are off.
                matrix = torch.sparse_csr_tensor(
                    crow[index], cols[entries], values[entries], (num_rows, width), check_invariants=False
                )
            blocks.append((matrix, slice(first, first + width)))
            start += count
        return blocks

    @property
    def dense_weight_shape(self) -> tuple[int, int]:
        """Shape of the equivalent dense weight."""
        return (self.out_features, self.in_features)

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense weight (differentiable with respect to ``values``)."""
        flat = torch.zeros(self.out_features * self.in_features, dtype=self.values.dtype, device=self.values.device)
        return flat.index_put((self.flat_indices,), self.values).view(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_sparse_kernels and x.device.type == "cpu":
            y = CSRLinearFunction.apply(x.reshape(-1, self.in_features), self.values, self)
            y = y.reshape(*x.shape[:-1], self.out_features)
            return y + self.bias if self.bias is not None else y
        weight = self.dense_weight()
        if weight.requires_grad and self.wants_dense_gradient is not None and self.wants_dense_gradient():
            weight.register_hook(self._store_dense_gradient)
        return nn.functional.linear(x, weight, self.bias)

    def reset_parameters(self) -> None:
        raise NotImplementedError(
            "a SparseLinear does not know its layer's initialization; build the network with "
            "sparse_backend='masked' to reset it (ResetCallback)"
        )

    def extra_repr(self) -> str:
        density = len(self.flat_indices) / (self.in_features * self.out_features)
        kernels = "sparse kernels on CPU" if self.use_sparse_kernels else "dense kernel"
        return f"in_features={self.in_features}, out_features={self.out_features}, density={density:.3f}, {kernels}"


def _csr_blocks(
    rows: torch.Tensor, cols: torch.Tensor, num_rows: int, num_columns: int, block_columns: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Row pointers and local column indices of CSR blocks of ``block_columns`` columns, for entries
    already sorted by (column block, row, column).

    :return: ``(num_blocks, num_rows + 1)`` row pointers, and each entry's column within its block
    """
    num_blocks = -(-num_columns // block_columns)
    counts = torch.bincount((cols // block_columns) * num_rows + rows, minlength=num_blocks * num_rows)
    crow = torch.zeros(num_blocks, num_rows + 1, dtype=torch.int64)
    crow[:, 1:] = counts.view(num_blocks, num_rows).cumsum(1)
    return crow, cols % block_columns


def check_sparse_backend(backend: str) -> str:
    """
    Validate a ``sparse_backend`` value.

    :param backend: the value to check
    :return: the backend
    :raises ValueError: when it is not one of :data:`SPARSE_BACKENDS`
    """
    return check_choice("sparse_backend", backend, SPARSE_BACKENDS)


def use_sparse_kernels(linear: nn.Linear, backend: str) -> bool:
    """
    Whether a masked linear layer should run as a :class:`SparseLinear` with the sparse kernels.

    :param linear: a linear layer (with or without ``weight_mask``)
    :param backend: ``"masked"`` (never), ``"csr"`` (every masked layer) or ``"auto"`` (masked layers
        with both sizes >= :data:`AUTO_MIN_FEATURES` and density <= :data:`AUTO_MAX_DENSITY`, and
        only without a GPU: the layers are built before SB3 moves them, and SB3's default device
        is the GPU when there is one, where the masked dense layers are the faster choice)
    :return: the decision
    """
    check_sparse_backend(backend)
    mask = getattr(linear, "weight" + MASK_SUFFIX, None)
    if backend == "masked" or mask is None:
        return False
    if backend == "csr":
        return True
    if torch.cuda.is_available():
        return False
    density = float(mask.mean())
    return min(linear.in_features, linear.out_features) >= AUTO_MIN_FEATURES and density <= AUTO_MAX_DENSITY


def _to_sparse_execution_(module: nn.Module, backend: str = "auto") -> list[str]:
    """
    Replace, in place, the masked ``nn.Linear`` submodules of ``module`` chosen by
    :func:`use_sparse_kernels` with equivalent :class:`SparseLinear` layers. Call it after pruning
    and before building the optimizer (the parameters change).

    :param module: a pruned network
    :param backend: ``"masked"``, ``"csr"`` or ``"auto"``
    :return: names of the replaced layers
    """
    chosen = [
        name for name, layer in module.named_modules() if isinstance(layer, nn.Linear) and use_sparse_kernels(layer, backend)
    ]
    for name in chosen:
        _replace_with_sparse_linear(module, name)
    return chosen


def _replace_with_sparse_linear(module: nn.Module, layer_name: str) -> None:
    """Swap the masked linear submodule ``layer_name`` of ``module`` for its :class:`SparseLinear`."""
    parent_name, _, leaf = layer_name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, leaf, SparseLinear.from_masked_linear(getattr(parent, leaf)))


def prune_for_execution_(
    module: nn.Module,
    sparsity: float,
    generator: torch.Generator | None = None,
    exact: bool = False,
    backend: str = "auto",
) -> dict[str, float]:
    """
    :func:`sb3_sparse.sparsity.prune_erdos_renyi_` followed by :func:`_to_sparse_execution_`, with
    each chosen layer converted as soon as its weight is masked: the same masks and weights, but the
    dense weight and float mask of a converted layer are freed before the next layer's mask is drawn,
    which lowers the peak memory of building a large sparse network.

    :param module: the network
    :param sparsity: target fraction of removed parameters, in [0, 1)
    :param generator: random generator for the masks
    :param exact: exact-count masks instead of Bernoulli draws
    :param backend: ``"masked"``, ``"csr"`` or ``"auto"``
    :return: parameter name -> target density
    """
    check_sparse_backend(backend)

    def convert(name: str) -> None:
        layer_name, _, leaf = name.rpartition(".")
        layer = module.get_submodule(layer_name) if layer_name else module
        if leaf == "weight" and layer is not module and isinstance(layer, nn.Linear) and use_sparse_kernels(layer, backend):
            _replace_with_sparse_linear(module, layer_name)

    return prune_erdos_renyi_(module, sparsity, generator, exact, after_each=convert)


#: The index buffers of a :class:`SparseLinear` (everything but its values and bias).
INDEX_BUFFERS = (
    "crow_indices",
    "col_indices",
    "transposed_crow_indices",
    "transposed_col_indices",
    "transposed_order",
    "flat_indices",
)


def share_index_structures_(copy: nn.Module, original: nn.Module) -> int:
    """
    Let the :class:`SparseLinear` layers of ``copy`` (a target network) use the index buffers of
    the same-named layers of ``original`` where they are equal (the same masks): the indices are
    most of a sparse layer's memory, and a target network only ever differs in its values.
    ``state_dict`` still holds both; ``load_state_dict`` writes the same indices into the shared tensors.

    :param copy: the network that gives up its own index buffers
    :param original: the network whose buffers are shared
    :return: the number of layers now sharing their indices
    """
    originals = {name: layer for name, layer in original.named_modules() if isinstance(layer, SparseLinear)}
    shared = 0
    for name, layer in copy.named_modules():
        source = originals.get(name)
        if not isinstance(layer, SparseLinear) or source is None:
            continue
        if all(torch.equal(getattr(layer, buffer), getattr(source, buffer)) for buffer in INDEX_BUFFERS):
            for buffer in INDEX_BUFFERS:
                setattr(layer, buffer, getattr(source, buffer))
            shared += 1
    return shared


def _pattern_order(layer: nn.Linear, block_columns: int | None = None) -> torch.Tensor:
    """Positions (row-major) of a masked layer's kept weights in the order a :class:`SparseLinear` stores them."""
    mask = getattr(layer, "weight" + MASK_SUFFIX).detach().cpu() != 0
    return SparseLinear(
        layer.in_features, layer.out_features, mask, bias=False, block_columns=block_columns
    ).flat_indices.long()


def convert_state_dict_layouts_(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str = "") -> list[str]:
    """
    Rewrite, in place, the entries of a state dict saved with the other layout of ``module``'s pruned
    layers: a masked ``nn.Linear``'s ``weight`` and ``weight_mask`` for a :class:`SparseLinear` of
    ``module``, or a :class:`SparseLinear`'s ``values`` and index buffers for a masked ``nn.Linear``.
    A model saved where ``sparse_backend="auto"`` chose one layout thus loads where it chooses the
    other, with the same weights. A saved mask that differs from a layer's pattern (a dynamic topology
    moved it) becomes the layer's pattern if it keeps as many weights.

    :param module: the module about to load ``state_dict``
    :param state_dict: the state dict (modified)
    :param prefix: the prefix of ``module``'s keys in ``state_dict``
    :return: names of the converted layers
    :raises ValueError: when a saved mask keeps another number of weights than the layer
    """
    converted = []
    for name, layer in module.named_modules():
        key = f"{prefix}{name}." if name else prefix
        if isinstance(layer, SparseLinear) and key + "weight" in state_dict and key + "values" not in state_dict:
            weight, mask = state_dict.pop(key + "weight"), state_dict.pop(key + "weight" + MASK_SUFFIX)
            saved = mask.detach().cpu() != 0
            kept = torch.zeros(layer.in_features * layer.out_features, dtype=torch.bool)
            kept[layer.flat_indices.long().cpu()] = True
            if not torch.equal(saved.flatten(), kept):
                if int(saved.sum()) != len(layer.flat_indices):
                    raise ValueError(
                        f"{key}weight_mask keeps {int(saved.sum())} weights; "
                        f"the layer it loads into keeps {len(layer.flat_indices)}"
                    )
                layer.set_pattern_(saved.view(layer.dense_weight_shape))  # masks a dynamic topology moved
            flat = layer.flat_indices.long().cpu()
            state_dict[key + "values"] = weight.flatten()[flat.to(weight.device)]
            for buffer in INDEX_BUFFERS:
                state_dict[key + buffer] = getattr(layer, buffer)
            converted.append(name)
        elif (
            isinstance(layer, nn.Linear)
            and hasattr(layer, "weight" + MASK_SUFFIX)
            and key + "values" in state_dict
            and key + "weight" not in state_dict
        ):
            values, flat = state_dict.pop(key + "values"), state_dict[key + "flat_indices"].long()
            for buffer in INDEX_BUFFERS:
                state_dict.pop(key + buffer)
            size = layer.in_features * layer.out_features
            dense = torch.zeros(size, dtype=values.dtype, device=values.device).index_put((flat.to(values.device),), values)
            mask = torch.zeros(size, dtype=torch.bool).index_put((flat.cpu(),), torch.tensor(True))
            state_dict[key + "weight"] = dense.view(layer.out_features, layer.in_features)
            state_dict[key + "weight" + MASK_SUFFIX] = mask.view(layer.out_features, layer.in_features)
            converted.append(name)
    return converted


def convert_optimizer_state_layouts_(module: nn.Module, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """
    Rewrite, in place, an optimizer state dict saved with the other layout of ``module``'s pruned
    layers (see :func:`convert_state_dict_layouts_`): per-weight state tensors (Adam's moments)
    shaped ``(out, in)`` for a :class:`SparseLinear`'s ``values``, or shaped like the values for a
    masked layer's ``weight``.

    :param module: the network whose parameters ``optimizer`` updates
    :param optimizer: the optimizer about to load ``state_dict``
    :param state_dict: the optimizer's saved state dict (modified)
    """
    layers: dict[int, nn.Module] = {id(layer.values): layer for layer in module.modules() if isinstance(layer, SparseLinear)}
    layers.update(
        (id(layer.weight), layer)
        for layer in module.modules()
        if isinstance(layer, nn.Linear) and hasattr(layer, "weight" + MASK_SUFFIX)
    )
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    saved_groups = [index for group in state_dict["param_groups"] for index in group["params"]]
    for parameter, index in zip(parameters, saved_groups, strict=False):
        layer, state = layers.get(id(parameter)), state_dict["state"].get(index)
        if layer is None or not state:
            continue
        for name, value in state.items():
            if not torch.is_tensor(value) or value.dim() == 0 or value.shape == parameter.shape:
                continue
            if isinstance(layer, SparseLinear):  # saved dense (out, in): keep the kept positions
                state[name] = value.flatten()[layer.flat_indices.long().to(value.device)]
            else:  # saved as sparse values: scatter them into the dense shape
                order = _pattern_order(cast(nn.Linear, layer)).to(value.device)
                dense = torch.zeros(parameter.numel(), dtype=value.dtype, device=value.device)
                state[name] = dense.index_put((order,), value).view(parameter.shape)
