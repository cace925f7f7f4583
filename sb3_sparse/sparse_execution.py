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

import torch
from torch import nn

from sb3_sparse.sparsity import MASK_SUFFIX

# Built from indices this module computes itself (so invariant checks are off); torch's notice that
# CSR support is "beta" would otherwise print on the first forward pass of every process.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)

#: Choices of the ``sparse_backend`` policy argument.
SPARSE_BACKENDS = ("masked", "csr", "auto")
#: ``auto`` runs a layer with the sparse kernels when both its sizes are at least this ...
AUTO_MIN_FEATURES = 512
#: ... and its density at most this. Measured in full SAC steps (benchmarks/sac_step_speed.py): the
#: residual kernels at sparsity 0.9 (density ~0.08) run faster sparse from width 512 on, those at
#: sparsity 0.8 (density ~0.17) slower at every width.
AUTO_MAX_DENSITY = 0.12


class CSRLinearFunction(torch.autograd.Function):
    """
    ``y = x W^T`` for a CSR weight ``W`` given by its values and two index structures, with
    gradients for ``x`` and for the values only. See the module docstring.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        values: torch.Tensor,
        crow_indices: torch.Tensor,
        col_indices: torch.Tensor,
        transposed_crow_indices: torch.Tensor,
        transposed_col_indices: torch.Tensor,
        transposed_order: torch.Tensor,
        out_features: int,
    ) -> torch.Tensor:
        in_features = x.shape[-1]
        weight = torch.sparse_csr_tensor(
            crow_indices, col_indices, values, (out_features, in_features), check_invariants=False
        )
        ctx.save_for_backward(
            x, values, crow_indices, col_indices, transposed_crow_indices, transposed_col_indices, transposed_order
        )
        ctx.out_features = out_features
        return torch.sparse.mm(weight, x.t()).t()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, values, crow, col, t_crow, t_col, t_order = ctx.saved_tensors
        out_features, in_features = ctx.out_features, x.shape[-1]
        grad_x = grad_values = None
        if ctx.needs_input_grad[0]:
            transposed = torch.sparse_csr_tensor(
                t_crow, t_col, values[t_order], (in_features, out_features), check_invariants=False
            )
            grad_x = torch.sparse.mm(transposed, grad_output.t()).t()
        if ctx.needs_input_grad[1]:
            pattern = torch.sparse_csr_tensor(
                crow, col, torch.zeros_like(values), (out_features, in_features), check_invariants=False
            )
            grad_values = torch.sparse.sampled_addmm(pattern, grad_output.t().contiguous(), x, beta=0.0).values()
        return grad_x, grad_values, None, None, None, None, None, None


class SparseLinear(nn.Module):
    """
    A pruned linear layer that stores and trains only its nonzero weights (``values``, in CSR order:
    row by row, columns ascending). Built from a masked ``nn.Linear`` by :meth:`from_masked_linear`;
    ``dense_weight()`` gives the equivalent dense matrix (zeros at pruned positions).

    :param in_features: input size
    :param out_features: output size
    :param mask: boolean ``(out_features, in_features)`` pattern of the kept weights
    :param bias: keep a (dense) bias
    :param use_sparse_kernels: run on the CPU with :class:`CSRLinearFunction` (else: dense kernel on the scattered weight)
    """

    crow_indices: torch.Tensor
    col_indices: torch.Tensor
    transposed_crow_indices: torch.Tensor
    transposed_col_indices: torch.Tensor
    transposed_order: torch.Tensor
    flat_indices: torch.Tensor

    def __init__(
        self, in_features: int, out_features: int, mask: torch.Tensor, bias: bool = True, use_sparse_kernels: bool = True
    ) -> None:
        super().__init__()
        if mask.shape != (out_features, in_features) or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a bool tensor of shape {(out_features, in_features)}, got {mask.dtype} {tuple(mask.shape)}"
            )
        self.in_features, self.out_features, self.use_sparse_kernels = in_features, out_features, use_sparse_kernels
        rows, cols = mask.nonzero(as_tuple=True)  # row-major: CSR order
        crow = torch.zeros(out_features + 1, dtype=torch.int64)
        crow[1:] = torch.bincount(rows, minlength=out_features).cumsum(0)
        order = torch.argsort(cols * out_features + rows)  # the values in column-major order: CSR of W^T
        transposed_crow = torch.zeros(in_features + 1, dtype=torch.int64)
        transposed_crow[1:] = torch.bincount(cols, minlength=in_features).cumsum(0)
        self.register_buffer("crow_indices", crow)
        self.register_buffer("col_indices", cols.clone())
        self.register_buffer("transposed_crow_indices", transposed_crow)
        self.register_buffer("transposed_col_indices", rows[order].clone())
        self.register_buffer("transposed_order", order)
        self.register_buffer("flat_indices", rows * in_features + cols)
        self.values = nn.Parameter(torch.zeros(len(rows)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_masked_linear(cls, linear: nn.Linear, use_sparse_kernels: bool = True) -> SparseLinear:
        """
        The sparse equivalent of a linear layer with a ``weight_mask`` (:func:`sb3_sparse.sparsity.attach_mask`):
        same kept weights, same bias (and bias mask, if any), same device and dtype.

        :param linear: the masked layer
        :param use_sparse_kernels: see the class
        :return: the new layer
        """
        mask = getattr(linear, "weight" + MASK_SUFFIX, None)
        if mask is None:
            raise ValueError(f"{linear} has no weight{MASK_SUFFIX}: only pruned layers run sparse")
        kept = mask.detach().cpu() != 0
        layer = cls(linear.in_features, linear.out_features, kept, linear.bias is not None, use_sparse_kernels)
        layer = layer.to(device=linear.weight.device)
        with torch.no_grad():
            layer.values.data = linear.weight.detach()[kept.to(linear.weight.device)].clone()
            if linear.bias is not None:
                layer.bias.data = linear.bias.detach().clone()  # type: ignore[union-attr]
                bias_mask = getattr(linear, "bias" + MASK_SUFFIX, None)
                if bias_mask is not None:
                    layer.register_buffer("bias" + MASK_SUFFIX, bias_mask.clone())
        return layer

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
            flat = x.reshape(-1, self.in_features)
            y = CSRLinearFunction.apply(
                flat,
                self.values,
                self.crow_indices,
                self.col_indices,
                self.transposed_crow_indices,
                self.transposed_col_indices,
                self.transposed_order,
                self.out_features,
            )
            y = y.reshape(*x.shape[:-1], self.out_features)
            return y + self.bias if self.bias is not None else y
        return nn.functional.linear(x, self.dense_weight(), self.bias)

    def reset_parameters(self) -> None:
        raise NotImplementedError(
            "a SparseLinear does not know its layer's initialization; build the network with "
            "sparse_backend='masked' to reset it (ResetCallback)"
        )

    def extra_repr(self) -> str:
        density = len(self.flat_indices) / (self.in_features * self.out_features)
        kernels = "sparse kernels on CPU" if self.use_sparse_kernels else "dense kernel"
        return f"in_features={self.in_features}, out_features={self.out_features}, density={density:.3f}, {kernels}"


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
    if backend not in SPARSE_BACKENDS:
        raise ValueError(f"sparse_backend must be one of {SPARSE_BACKENDS}, got {backend!r}")
    mask = getattr(linear, "weight" + MASK_SUFFIX, None)
    if backend == "masked" or mask is None:
        return False
    if backend == "csr":
        return True
    if torch.cuda.is_available():
        return False
    density = float(mask.mean())
    return min(linear.in_features, linear.out_features) >= AUTO_MIN_FEATURES and density <= AUTO_MAX_DENSITY


def to_sparse_execution_(module: nn.Module, backend: str = "auto") -> list[str]:
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
        parent_name, _, leaf = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, leaf, SparseLinear.from_masked_linear(getattr(parent, leaf)))
    return chosen
