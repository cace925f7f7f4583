"""Plasticity diagnostics of the paper, as pure functions on tensors and modules (no SB3).

Dormant neuron ratio, stable rank, feature/parameter/gradient norms and gradient interference.
Every function is exact; none needs more memory than a batch of activations and an
``N x N`` matrix, so they stay usable on 100M-parameter networks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sb3_sparse.sparsity import named_masks


@dataclass
class NetworkProbe:
    """
    Where to read the diagnostics of one network: a policy describes its networks with these
    (``diagnostic_probes()``), and the plasticity callback measures through them.

    :param module: the network (parameters for norms and gradients, optimizer for gradient norms)
    :param post_activation: hidden activation modules (dormant ratio, original definition)
    :param pre_activation: hidden linear layers (dormant ratio on their outputs, the reference code's definition)
    :param features: module whose output is the final hidden features (srank, feature norm)
    :param encoder: a convolutional encoder that runs inside ``module`` (pixel policies: the critic's),
        measured too: dormant channels after each ReLU, srank and norm of its flattened output
    :param evaluate: runs the network on ``(observations, actions)`` of a batch (``None``: an actor's
        ``_predict(observations)`` or a critic's ``module(observations, actions)``)
    :param optimizer: the optimizer that trains ``module`` (``None``: ``module.optimizer``); a policy
        with one optimizer for all its networks (PPO, A2C) names it here
    :param target: the network's Polyak target, if it has one (kept equal to it after a reset)
    """

    module: nn.Module
    post_activation: list[nn.Module]
    pre_activation: list[nn.Module]
    features: nn.Module | None
    encoder: nn.Module | None = None
    evaluate: Callable[[torch.Tensor, torch.Tensor], object] | None = None
    optimizer: torch.optim.Optimizer | None = None
    target: nn.Module | None = None

    @property
    def network_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer that trains the network."""
        optimizer = self.optimizer if self.optimizer is not None else getattr(self.module, "optimizer", None)
        if optimizer is None:
            raise ValueError(f"the probe of {type(self.module).__name__} names no optimizer and the module has none")
        return optimizer


def dormant_ratios(activations: Sequence[torch.Tensor], taus: Sequence[float]) -> dict[float, float]:
    r"""
    Pooled dormant-neuron ratio over layers (Sokar et al., 2023).

    For each layer with outputs :math:`a` of shape ``(batch, units)``, neuron :math:`i` has
    score :math:`s_i = \mathrm{mean}_{batch} |a_i|`, and is dormant when
    :math:`s_i / \mathrm{mean}_j s_j \le \tau`. The ratio is the number of dormant neurons over
    all layers divided by the number of neurons (a fraction in [0, 1]). A layer whose scores are
    all 0 counts entirely as dormant; with :math:`\tau = 0` only exactly silent neurons count.

    :param activations: one ``(batch, units)`` tensor per layer
    :param taus: thresholds
    :return: threshold -> pooled dormant fraction
    """
    if not activations:
        raise ValueError("dormant_ratios needs at least one layer of activations, got none")
    dormant = dict.fromkeys(taus, 0)
    total = 0
    for layer in activations:
        scores = layer.detach().abs().reshape(-1, layer.shape[-1]).mean(dim=0)
        mean_score = scores.mean()
        normalized = scores / mean_score if mean_score > 0 else torch.zeros_like(scores)
        for tau in taus:
            dormant[tau] += int((normalized <= tau).sum())
        total += scores.numel()
    return {tau: count / total for tau, count in dormant.items()}


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """
    Singular values of a 2-D matrix, descending, from the eigenvalues of its smaller Gram matrix
    in float64 (fast and stable for tall or wide matrices; avoids threaded SVD stalls on small CPUs).

    :param matrix: ``(rows, cols)`` tensor
    :return: ``min(rows, cols)`` singular values
    """
    m = matrix.detach().to(torch.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eigenvalues = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    return eigenvalues.sqrt().flip(0)


def stable_rank(features: torch.Tensor, delta: float = 0.01) -> int:
    r"""
    Stable rank (srank, Kumar et al. 2021) of a feature matrix.

    With singular values :math:`\sigma_1 \ge \sigma_2 \ge \dots` of ``features`` (batch x width),
    :math:`\mathrm{srank} = \min \{k : \sum_{i \le k} \sigma_i \ge (1 - \delta) \sum_i \sigma_i\}`.
    It cannot exceed ``min(batch, width)``: measure wide networks on batches a few times their width.

    :param features: ``(batch, width)`` features
    :param delta: tolerance, 0.01 in the paper
    :return: srank (0 for an all-zero matrix)
    """
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must be in [0, 1), got {delta!r}")
    sigma = singular_values(features)
    total = sigma.sum()
    if total <= 0:
        return 0
    cumulative = torch.cumsum(sigma, dim=0)
    return int(torch.searchsorted(cumulative, (1.0 - delta) * total).item()) + 1


def feature_norm(features: torch.Tensor) -> float:
    """
    Mean L2 norm of the feature vectors.

    :param features: ``(batch, width)`` features
    :return: ``mean_b ||features_b||_2``
    """
    return float(features.detach().norm(dim=-1).mean())


def parameter_norm(module: nn.Module) -> float:
    """
    L2 norm of all parameters of ``module`` (pruned weights are 0 and add nothing).

    :param module: any module
    :return: ``sqrt(sum_p ||p||^2)``
    """
    return float(torch.nn.utils.get_total_norm([p.detach() for p in module.parameters()]))


def parameter_rms(module: nn.Module) -> float:
    """
    Root mean square of the parameters that exist: the sum of squares divided by the number of
    kept (unpruned) parameters, so that a sparse and a dense network are comparable.

    :param module: any module, masked or not
    :return: ``sqrt(sum_p ||p||^2 / kept)``
    """
    kept = sum(p.numel() for p in module.parameters())
    kept -= sum(int((mask == 0).sum()) for _, _, mask in named_masks(module))
    return parameter_norm(module) / kept**0.5


def total_gradient_norm(parameters: Iterable[nn.Parameter]) -> torch.Tensor:
    """
    L2 norm of the current gradients as a tensor on their device, without a device synchronization.
    Read it after the masks were applied to get the masked gradient.

    :param parameters: parameters whose ``.grad`` is read (``None`` gradients count as 0)
    :return: ``sqrt(sum_p ||grad_p||^2)`` (a 0-d tensor, 0 when no parameter has a gradient)
    """
    gradients = [p.grad.detach() for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(gradients) if gradients else torch.tensor(0.0)


def gradient_norm(parameters: Iterable[nn.Parameter]) -> float:
    """
    L2 norm of the current gradients, as a float (see :func:`total_gradient_norm`).

    :param parameters: parameters whose ``.grad`` is read (``None`` gradients count as 0)
    :return: ``sqrt(sum_p ||grad_p||^2)``
    """
    return float(total_gradient_norm(parameters))


@contextmanager
def record_outputs(modules: Sequence[nn.Module]) -> Iterator[dict[nn.Module, list[torch.Tensor]]]:
    """
    Record the outputs of the given modules during the forward passes inside the block.

    :param modules: modules to watch (duplicates are watched once)
    :return: module -> its outputs, in call order
    """
    outputs: dict[nn.Module, list[torch.Tensor]] = {}
    handles = []
    for module in dict.fromkeys(modules):
        outputs[module] = []
        handles.append(module.register_forward_hook(lambda m, _inputs, output: outputs[m].append(output.detach())))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def per_sample_gradient_gram(module: nn.Module, per_sample_losses: Callable[[], torch.Tensor]) -> torch.Tensor:
    r"""
    Exact Gram matrix :math:`K_{ij} = \langle g_i, g_j \rangle` of the per-sample gradients of
    ``module``'s parameters, without ever forming the ``N x P`` matrix of per-sample gradients.

    For a linear layer used once per sample, the per-sample weight gradient is
    :math:`g^{out}_i x_i^\top`, so its contribution is :math:`(G G^\top) \odot (X X^\top)` and
    :math:`G G^\top` for the bias, with :math:`X` the layer inputs and :math:`G` the gradients of
    the loss with respect to its outputs. A LayerNorm contributes
    :math:`(G \odot \hat X)(G \odot \hat X)^\top` (scale) and :math:`G G^\top` (bias), with
    :math:`\hat X` its normalized input. One forward and one backward pass in all.

    The gradient is taken with respect to every weight entry, pruned ones included (the raw
    gradient, as ``jax.grad`` gives it in the reference); samples must not interact in the
    forward pass (no batch normalization), and every parameter of ``module`` must belong to an
    ``nn.Linear`` or ``nn.LayerNorm`` called once per forward.

    :param module: the network whose parameters the gradients are taken for
    :param per_sample_losses: runs the forward pass and returns one loss per sample, shape ``(N,)``
    :return: ``(N, N)`` float64 Gram matrix
    """
    layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.LayerNorm))]
    owned = {id(p) for layer in layers for p in layer.parameters(recurse=False)}
    missing = [name for name, p in module.named_parameters() if id(p) not in owned]
    if missing:
        raise ValueError(f"per_sample_gradient_gram handles nn.Linear and nn.LayerNorm parameters only, got {missing}")
    inputs: dict[nn.Module, torch.Tensor] = {}
    output_grads: dict[nn.Module, torch.Tensor] = {}

    def save_input_and_watch_output(layer: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if layer in inputs:
            raise ValueError(f"{type(layer).__name__} is called more than once per forward pass")
        inputs[layer] = args[0].detach()
        if output.requires_grad:  # a tensor hook, not a module backward hook: inputs need no gradient
            output.register_hook(lambda grad: output_grads.__setitem__(layer, grad.detach()))

    handles = [layer.register_forward_hook(save_input_and_watch_output) for layer in layers]
    try:
        losses = per_sample_losses()
        if losses.dim() != 1:
            raise ValueError(f"per_sample_losses must return a 1-D tensor of losses, got shape {tuple(losses.shape)}")
        parameters = [p for p in module.parameters() if p.requires_grad]
        # Gradients through autograd.grad leave .grad untouched; the hooks capture what is needed.
        torch.autograd.grad(losses.sum(), parameters, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()

    n = losses.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64, device=losses.device)
    for layer in layers:
        if layer not in output_grads:
            continue  # not on the loss's path: zero gradient
        x = inputs[layer].double().reshape(n, -1, inputs[layer].shape[-1])
        g = output_grads[layer].double().reshape(n, -1, output_grads[layer].shape[-1])
        if x.shape[1] != 1:
            raise ValueError("per_sample_gradient_gram needs one input vector per sample")
        x, g = x[:, 0], g[:, 0]
        if isinstance(layer, nn.Linear):
            gram += (g @ g.T) * (x @ x.T)
            if layer.bias is not None:
                gram += g @ g.T
        else:
            normalized = F.layer_norm(x, layer.normalized_shape, eps=layer.eps)
            if layer.weight is not None:
                scaled = g * normalized
                gram += scaled @ scaled.T
            if layer.bias is not None:
                gram += g @ g.T
    return gram


def cosine_matrix(gram: torch.Tensor) -> torch.Tensor:
    """
    Cosine similarities from a Gram matrix: ``K_ij / sqrt(K_ii K_jj)`` (0 where a gradient is 0).

    :param gram: ``(N, N)`` Gram matrix
    :return: ``(N, N)`` cosine matrix
    """
    norms = gram.diagonal().clamp_min(0.0).sqrt()
    denominator = norms[:, None] * norms[None, :]
    return torch.where(denominator > 0, gram / denominator.clamp_min(1e-300), torch.zeros_like(gram))


def gradient_interference(cosines: torch.Tensor) -> float:
    """
    Mean off-diagonal cosine similarity of per-sample gradients: positive values mean updates on
    one state help the others (generalization), negative values that they interfere.

    :param cosines: ``(N, N)`` cosine matrix, ``N >= 2``
    :return: mean of the ``N (N - 1)`` off-diagonal entries
    """
    n = cosines.shape[0]
    if n < 2:
        raise ValueError(f"gradient interference needs at least 2 samples, got {n}")
    return float((cosines.sum() - cosines.diagonal().sum()) / (n * (n - 1)))
