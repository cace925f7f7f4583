"""Overshooting-bounded gradient descent (ObGD) with eligibility traces, the optimizer of
Stream AC(lambda) (Elsayed et al., *Streaming Deep Reinforcement Learning Finally Works*, 2024).

Plain torch; nothing here imports Stable-Baselines3.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class ObGD(torch.optim.Optimizer):
    r"""
    Semi-gradient TD(lambda)-style updates with a step size bounded against overshooting.

    The caller puts the gradient of the quantity to follow into ``.grad`` (for a value network
    :math:`\nabla_\theta (-v(s))`, for a policy :math:`\nabla_\theta (-\log \pi(a|s))` plus the
    entropy term), then calls :meth:`step` with the TD error :math:`\delta`. With every parameter's
    eligibility trace :math:`z`:

    .. math::

        z &\leftarrow \gamma \lambda z + g \\
        M &= \alpha \kappa \max(|\delta|, 1) \lVert z \rVert_1
            \quad \text{(the L1 norm over all parameters of the optimizer)} \\
        \alpha' &= \alpha / M \text{ if } M > 1 \text{ else } \alpha \\
        \theta &\leftarrow \theta - \alpha' \delta z

    so an update can move the TD error by at most about :math:`1 / \kappa` of itself. The traces
    are the optimizer's state (``state[p]["eligibility_trace"]``), saved with ``state_dict``;
    ``reset=True`` zeroes them after the update, at the end of an episode. Masks kept by
    :class:`sb3_sparse.sparsity.MaskEnforcer` hold: its pre-step hook zeroes pruned gradients
    before they enter the traces, so pruned entries of the traces stay 0.

    :param params: parameters (or parameter groups) to optimize
    :param lr: step size :math:`\alpha`
    :param gamma: discount :math:`\gamma`
    :param lamda: trace decay :math:`\lambda` (spelled as in the reference code: ``lambda`` is a Python keyword)
    :param kappa: overshooting bound :math:`\kappa`
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict],
        lr: float = 1.0,
        gamma: float = 0.99,
        lamda: float = 0.8,
        kappa: float = 2.0,
    ) -> None:
        if not lr > 0.0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        if not 0.0 <= lamda <= 1.0:
            raise ValueError(f"lamda must be in [0, 1], got {lamda!r}")
        if not kappa > 0.0:
            raise ValueError(f"kappa must be > 0, got {kappa!r}")
        super().__init__(params, dict(lr=lr, gamma=gamma, lamda=lamda, kappa=kappa))

    def _traces(self) -> Iterable[tuple[dict, torch.nn.Parameter, torch.Tensor]]:
        for group in self.param_groups:
            for parameter in group["params"]:
                state = self.state[parameter]
                if "eligibility_trace" not in state:
                    state["eligibility_trace"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
                yield group, parameter, state["eligibility_trace"]

    @torch.no_grad()
    def step(self, delta: float, reset: bool = False) -> float:  # type: ignore[override]
        """
        Decay the traces, add the gradients, and take one bounded step along ``delta * z``.

        :param delta: the TD error of this transition
        :param reset: zero the traces after the update (the episode ended)
        :return: the step size used, :math:`\\alpha'` of the last parameter group
        """
        norms = []
        for group, parameter, trace in self._traces():
            trace.mul_(group["gamma"] * group["lamda"])
            if parameter.grad is not None:
                trace.add_(parameter.grad)
            norms.append(trace.abs().sum(dtype=torch.float64))
        trace_norm = float(torch.stack(norms).sum()) if norms else 0.0  # one device sync per step
        delta_bar = max(abs(delta), 1.0)
        step_size = 0.0
        for group in self.param_groups:
            bound = group["lr"] * group["kappa"] * delta_bar * trace_norm
            step_size = group["lr"] / bound if bound > 1.0 else group["lr"]
            for parameter in group["params"]:
                trace = self.state[parameter]["eligibility_trace"]
                parameter.add_(trace, alpha=-step_size * delta)
                if reset:
                    trace.zero_()
        return step_size
