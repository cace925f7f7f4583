"""The networks and running statistics of Stream AC(lambda) (Elsayed et al., 2024), as plain
``torch.nn`` modules: MLPs with parameter-free LayerNorm and LeakyReLU, a Gaussian actor with
a softplus standard deviation, a value network, the streaming paper's initialization
(uniform in :math:`\\pm 1/\\sqrt{\\text{fan-in}}`, zero biases, optionally SparseInit), and
sample-by-sample (Welford) mean and variance for observation normalization and reward scaling.

Nothing here imports Stable-Baselines3.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sb3_sparse.checks import check_int, check_sparsity
from sb3_sparse.sparsity import sparse_init_


class WelfordStatistics(nn.Module):
    r"""
    Running mean and sample variance, one sample at a time (Welford), as the streaming paper's
    ``SampleMeanStd``: the first sample sets the mean; the variance is 1 until two samples were
    seen, then :math:`M_2 / (n - 1)`. :meth:`forward` normalizes,
    :math:`(x - \mu) / \sqrt{\sigma^2 + \varepsilon}`; only :meth:`update` changes the statistics.
    float64 buffers, so ``state_dict``, save and load carry them.

    :param size: size of a sample
    :param epsilon: added to the variance under the square root
    """

    mean: torch.Tensor
    m2: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.size = check_int("size", size)
        self.epsilon = epsilon
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @property
    def variance(self) -> torch.Tensor:
        """Sample variance (1 before the second sample)."""
        if int(self.count) < 2:
            return torch.ones_like(self.m2)
        return self.m2 / (int(self.count) - 1)

    @torch.no_grad()
    def update(self, sample: torch.Tensor) -> None:
        """
        Add one sample.

        :param sample: tensor of ``size`` elements (any shape that flattens to it)
        """
        x = sample.reshape(self.size).to(device=self.mean.device, dtype=torch.float64)
        if int(self.count) == 0:
            self.mean.copy_(x)
        count = int(self.count) + 1
        previous_mean = self.mean.clone()
        self.mean.add_((x - previous_mean) / count)
        self.m2.add_((x - previous_mean) * (x - self.mean))
        self.count.fill_(count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.sqrt(self.variance + self.epsilon)
        return ((x - self.mean.to(x.dtype)) / std.to(x.dtype)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}, epsilon={self.epsilon}"


class RewardScaler(nn.Module):
    r"""
    The streaming paper's reward scaling: a discounted sum of rewards
    :math:`u \leftarrow \gamma (1 - \text{done}) u + r` is tracked, its running variance
    estimated (:class:`WelfordStatistics`), and each reward divided by the standard deviation,
    :math:`r / \sqrt{\sigma_u^2 + \varepsilon}`. The mean is not subtracted.

    :param gamma: discount of the tracked sum
    :param epsilon: added to the variance under the square root
    """

    trace: torch.Tensor

    def __init__(self, gamma: float, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.gamma = gamma
        self.statistics = WelfordStatistics(1, epsilon)
        self.register_buffer("trace", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def scale(self, reward: float, episode_end: bool) -> float:
        """
        Update the statistics with this step's reward and return it scaled.

        :param reward: the environment's reward
        :param episode_end: whether this step ended the episode (terminated or truncated)
        :return: the scaled reward
        """
        # As the reference: the sum restarts at the step that ends an episode, not after it.
        self.trace.mul_(self.gamma * (1.0 - float(episode_end))).add_(reward)
        self.statistics.update(self.trace)
        return float(reward / torch.sqrt(self.statistics.variance[0] + self.statistics.epsilon))

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


def streaming_linear(in_features: int, out_features: int) -> nn.Linear:
    """
    A linear layer with the streaming paper's initialization: weights uniform in
    :math:`\\pm 1/\\sqrt{\\text{fan-in}}`, biases zero (SparseInit, when used, is applied after).

    :param in_features: input size
    :param out_features: output size
    :return: the layer
    """
    layer = nn.Linear(in_features, out_features)
    bound = 1.0 / math.sqrt(in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()
    return layer


class StreamingMLP(nn.Sequential):
    """
    ``num_layers`` times Linear, parameter-free LayerNorm, LeakyReLU (the streaming paper's hidden layers).

    :param input_dim: input size
    :param hidden_dim: width of every hidden layer
    :param num_layers: hidden layers
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int) -> None:
        check_int("hidden_dim", hidden_dim)
        check_int("num_layers", num_layers)
        layers: list[nn.Module] = []
        for index in range(num_layers):
            layers += [
                streaming_linear(input_dim if index == 0 else hidden_dim, hidden_dim),
                nn.LayerNorm(hidden_dim, elementwise_affine=False),
                nn.LeakyReLU(),
            ]
        super().__init__(*layers)
        self.output_dim = hidden_dim


class StreamingGaussianActor(nn.Module):
    """
    Gaussian policy: an MLP, a mean head and a standard-deviation head through softplus.
    Actions are not squashed; the environment clips them.

    :param observation_dim: observation size
    :param action_dim: action size
    :param hidden_dim: hidden width
    :param num_layers: hidden layers
    """

    def __init__(self, observation_dim: int, action_dim: int, hidden_dim: int = 128, num_layers: int = 2) -> None:
        super().__init__()
        self.trunk = StreamingMLP(observation_dim, hidden_dim, num_layers)
        self.mean = streaming_linear(hidden_dim, action_dim)
        self.std = streaming_linear(hidden_dim, action_dim)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(observations)
        return self.mean(features), nn.functional.softplus(self.std(features))


class StreamingCritic(nn.Module):
    """
    State-value network: an MLP and a linear head with one output.

    :param observation_dim: observation size
    :param hidden_dim: hidden width
    :param num_layers: hidden layers
    """

    def __init__(self, observation_dim: int, hidden_dim: int = 128, num_layers: int = 2) -> None:
        super().__init__()
        self.trunk = StreamingMLP(observation_dim, hidden_dim, num_layers)
        self.value = streaming_linear(hidden_dim, 1)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.value(self.trunk(observations))


def sparse_init_network_(module: nn.Module, sparsity: float, generator: torch.Generator | None = None) -> None:
    """
    SparseInit (:func:`sb3_sparse.sparsity.sparse_init_`) on the weight of every linear layer of
    ``module``, heads included, as the reference applies it.

    :param module: the network
    :param sparsity: fraction of each row set to zero, in [0, 1)
    :param generator: random generator
    """
    check_sparsity("sparse_init", sparsity)
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            sparse_init_(layer.weight, sparsity, generator)
