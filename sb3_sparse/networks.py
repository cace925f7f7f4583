"""SimBa building blocks (Lee et al., ICLR 2025) as plain ``torch.nn`` modules.

Running observation normalizer, pre-LayerNorm residual block, encoder with a final
LayerNorm, actor heads and the critic network, with the reference initializations.
Nothing here imports Stable-Baselines3.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from sb3_sparse.checks import check_int

LAYER_NORM_EPS = 1e-6
LOG_STD_MIN = -10.0
LOG_STD_MAX = 2.0
# Standard deviation of a standard normal truncated to [-2, 2]: dividing by it makes the
# truncated draw have the untruncated variance (jax.nn.initializers.he_normal does the same).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def he_normal_truncated_(weight: torch.Tensor) -> torch.Tensor:
    """
    He-normal initialization with fan-in, drawn from a normal truncated at 2 standard
    deviations and rescaled to keep variance ``2 / fan_in`` (as ``jax.nn.initializers.he_normal``).

    :param weight: a ``(fan_out, fan_in)`` kernel, filled in place
    :return: ``weight``
    """
    std = math.sqrt(2.0 / weight.shape[1]) / _TRUNCATED_NORMAL_STD
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class OrthogonalLinear(nn.Linear):
    """
    A linear layer initialized with an orthogonal kernel (gain 1 by default) and a zero bias.

    :param in_features: input size
    :param out_features: output size
    :param gain: scale of the orthogonal matrix
    """

    def __init__(self, in_features: int, out_features: int, gain: float = 1.0) -> None:
        self.gain = gain
        super().__init__(in_features, out_features)  # calls reset_parameters

    def reset_parameters(self) -> None:
        """(Re-)initialize: orthogonal kernel, zero bias."""
        nn.init.orthogonal_(self.weight, gain=self.gain)
        nn.init.zeros_(self.bias)


class RunningObservationNormalizer(nn.Module):
    r"""
    Running mean/variance of observations and the normalization :math:`(x - \mu) / \sqrt{\sigma^2 + \varepsilon}`.

    Statistics are merged batch by batch with the parallel Welford (Chan et al.) formula,
    starting from mean 0, variance 1 and count ``initial_count``; no clipping. They change only
    through :meth:`update`, never in :meth:`forward`. Stored in float64 buffers named ``obs_*``.

    :param size: observation size
    :param epsilon: added to the variance under the square root
    :param initial_count: pseudo-count of the initial statistics
    """

    obs_mean: torch.Tensor
    obs_var: torch.Tensor
    obs_count: torch.Tensor

    def __init__(self, size: int, epsilon: float = 1e-8, initial_count: float = 1e-4) -> None:
        super().__init__()
        self.size = check_int("size", size)
        self.epsilon = epsilon
        self.initial_count = initial_count
        self.register_buffer("obs_mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("obs_var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("obs_count", torch.tensor(initial_count, dtype=torch.float64))

    @property
    def has_statistics(self) -> bool:
        """Whether :meth:`update` has seen at least one observation."""
        return bool(self.obs_count > self.initial_count)

    @torch.no_grad()
    def update(self, observations: torch.Tensor) -> None:
        """
        Merge a batch of observations into the statistics, in place.

        :param observations: tensor of shape ``(batch, size)`` (or ``(size,)``)
        """
        batch = observations.reshape(-1, self.size).to(device=self.obs_mean.device, dtype=torch.float64)
        batch_count = batch.shape[0]
        batch_mean = batch.mean(dim=0)
        batch_var = batch.var(dim=0, unbiased=False)
        total = self.obs_count + batch_count
        delta = batch_mean - self.obs_mean
        second_moment = (
            self.obs_var * self.obs_count + batch_var * batch_count + delta.square() * self.obs_count * batch_count / total
        )
        # In place: the buffers may be referenced by several networks (actor, critic, target).
        self.obs_mean.add_(delta * batch_count / total)
        self.obs_var.copy_(second_moment / total)
        self.obs_count.copy_(total)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        mean = self.obs_mean.to(observations.dtype)
        std = torch.sqrt(self.obs_var + self.epsilon).to(observations.dtype)
        return (observations - mean) / std

    def extra_repr(self) -> str:
        return f"size={self.size}, epsilon={self.epsilon}"


class ResidualBlock(nn.Module):
    r"""
    Pre-LayerNorm residual feed-forward block: :math:`z + W_2\,\mathrm{relu}(W_1 \mathrm{LN}(z) + b_1) + b_2`.

    :math:`W_1: h \to 4h` and :math:`W_2: 4h \to h` use truncated He-normal (fan-in) kernels,
    biases start at 0, LayerNorm has eps 1e-6 and a learnable scale and bias.

    :param hidden_dim: width ``h``
    :param expansion: inner width factor (4 in SimBa)
    """

    def __init__(self, hidden_dim: int, expansion: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim, eps=LAYER_NORM_EPS)
        self.expand = nn.Linear(hidden_dim, expansion * hidden_dim)
        self.activation = nn.ReLU()
        self.project = nn.Linear(expansion * hidden_dim, hidden_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re-)initialize: truncated He-normal kernels, zero biases, LayerNorm scale 1 and bias 0."""
        self.norm.reset_parameters()
        for layer in (self.expand, self.project):
            he_normal_truncated_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.project(self.activation(self.expand(self.norm(z))))


class SimBaEncoder(nn.Module):
    """
    SimBa encoder: an orthogonal linear embedding (no activation), ``num_blocks``
    :class:`ResidualBlock`, and a final LayerNorm.

    :param input_dim: input size
    :param hidden_dim: width of the residual stream
    :param num_blocks: number of residual blocks (0 allowed)
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_blocks: int) -> None:
        super().__init__()
        check_int("input_dim", input_dim)
        check_int("hidden_dim", hidden_dim)
        check_int("num_blocks", num_blocks, minimum=0)
        self.embedding = OrthogonalLinear(input_dim, hidden_dim)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden_dim) for _ in range(num_blocks)))
        self.final_norm = nn.LayerNorm(hidden_dim, eps=LAYER_NORM_EPS)
        self.hidden_dim = hidden_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_norm(self.blocks(self.embedding(x)))


def rescale_log_std(
    raw_log_std: torch.Tensor, log_std_min: float = LOG_STD_MIN, log_std_max: float = LOG_STD_MAX
) -> torch.Tensor:
    r"""
    Map an unbounded output smoothly into ``[log_std_min, log_std_max]``:
    :math:`\min + \tfrac12 (\max - \min)(1 + \tanh(x))`.

    :param raw_log_std: head output
    :param log_std_min: lower bound (-10 in the reference)
    :param log_std_max: upper bound (2 in the reference)
    :return: the bounded log standard deviation
    """
    return log_std_min + 0.5 * (log_std_max - log_std_min) * (1.0 + torch.tanh(raw_log_std))


class GaussianActorNetwork(nn.Module):
    """
    SimBa actor for a tanh-squashed Gaussian policy: encoder, then two orthogonal
    linear heads giving the mean and the log standard deviation (rescaled into [-10, 2]).

    :param observation_dim: (normalized) observation size
    :param action_dim: action size
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    """

    def __init__(self, observation_dim: int, action_dim: int, hidden_dim: int, num_blocks: int) -> None:
        super().__init__()
        self.encoder = SimBaEncoder(observation_dim, hidden_dim, num_blocks)
        self.mean = OrthogonalLinear(hidden_dim, action_dim)
        self.log_std = OrthogonalLinear(hidden_dim, action_dim)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        :param observations: normalized observations ``(batch, observation_dim)``
        :return: Gaussian mean and log standard deviation before the tanh squashing
        """
        features = self.encoder(observations)
        return self.mean(features), rescale_log_std(self.log_std(features))


class DeterministicActorNetwork(nn.Module):
    """
    SimBa actor for a deterministic policy (DDPG/TD3): encoder, an orthogonal linear
    head and ``tanh``, so actions lie in [-1, 1].

    :param observation_dim: (normalized) observation size
    :param action_dim: action size
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    """

    def __init__(self, observation_dim: int, action_dim: int, hidden_dim: int, num_blocks: int) -> None:
        super().__init__()
        self.encoder = SimBaEncoder(observation_dim, hidden_dim, num_blocks)
        self.action = OrthogonalLinear(hidden_dim, action_dim)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.action(self.encoder(observations)))


class CriticNetwork(nn.Module):
    """
    SimBa state-action value network: encoder over ``concat(observation, action)`` and an
    orthogonal linear head with ``num_outputs`` values (1 for a Q-value, more for quantiles).

    :param observation_dim: (normalized) observation size
    :param action_dim: action size
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    :param num_outputs: size of the head's output
    """

    def __init__(self, observation_dim: int, action_dim: int, hidden_dim: int, num_blocks: int, num_outputs: int = 1) -> None:
        super().__init__()
        self.encoder = SimBaEncoder(observation_dim + action_dim, hidden_dim, num_blocks)
        self.value = OrthogonalLinear(hidden_dim, check_int("num_outputs", num_outputs))

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.value(self.encoder(torch.cat([observations, actions], dim=-1)))


class SimBaActorCriticEncoders(nn.Module):
    """
    Two SimBa encoders over the same features, one for the policy and one for the value function,
    with the interface of SB3's ``MlpExtractor`` (on-policy algorithms): ``latent_dim_pi``,
    ``latent_dim_vf``, ``forward_actor``, ``forward_critic``.

    :param features_dim: input size
    :param actor_hidden_dim: policy encoder width (``latent_dim_pi``)
    :param actor_num_blocks: policy encoder residual blocks
    :param critic_hidden_dim: value encoder width (``latent_dim_vf``)
    :param critic_num_blocks: value encoder residual blocks
    """

    def __init__(
        self, features_dim: int, actor_hidden_dim: int, actor_num_blocks: int, critic_hidden_dim: int, critic_num_blocks: int
    ) -> None:
        super().__init__()
        self.policy_net = SimBaEncoder(features_dim, actor_hidden_dim, actor_num_blocks)
        self.value_net = SimBaEncoder(features_dim, critic_hidden_dim, critic_num_blocks)
        self.latent_dim_pi, self.latent_dim_vf = actor_hidden_dim, critic_hidden_dim

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """The policy's latent features."""
        return cast(torch.Tensor, self.policy_net(features))

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """The value function's latent features."""
        return cast(torch.Tensor, self.value_net(features))


class DiscreteQNetwork(nn.Module):
    """
    SimBa network for discrete actions (DQN, QR-DQN): an encoder over the observation and an
    orthogonal linear head with ``num_outputs`` values (one per action, or per action and quantile).

    :param observation_dim: (normalized) observation or features size
    :param num_outputs: size of the head's output
    :param hidden_dim: encoder width
    :param num_blocks: encoder residual blocks
    """

    def __init__(self, observation_dim: int, num_outputs: int, hidden_dim: int, num_blocks: int) -> None:
        super().__init__()
        self.encoder = SimBaEncoder(observation_dim, hidden_dim, num_blocks)
        self.value = OrthogonalLinear(hidden_dim, check_int("num_outputs", num_outputs))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.value(self.encoder(observations)))


def simba_parameter_count(input_dim: int, hidden_dim: int, num_blocks: int, head_outputs: int) -> int:
    """
    Exact number of parameters of a SimBa encoder plus a linear head, before any network is built.

    ``(d_in + 1) h`` for the embedding, ``8h^2 + 7h`` per block (LayerNorm ``2h``,
    ``h -> 4h`` and ``4h -> h`` with biases), ``2h`` for the final LayerNorm and
    ``(h + 1) o`` for a head with ``o`` outputs.

    :param input_dim: encoder input size
    :param hidden_dim: width ``h``
    :param num_blocks: residual blocks
    :param head_outputs: total outputs of the linear head(s) on top of the encoder
    :return: the number of parameters
    """
    h = hidden_dim
    return (input_dim + 1) * h + num_blocks * (8 * h * h + 7 * h) + 2 * h + (h + 1) * head_outputs


def reset_parameters_(module: nn.Module) -> list[str]:
    """
    Re-initialize every submodule of ``module`` that defines ``reset_parameters`` (SimBa layers use
    their own initializations, torch layers their defaults), in module order; masks are not applied.

    :param module: the module to reset
    :return: names of the submodules that were reset
    """
    reset = []
    for name, submodule in module.named_modules():
        # ResidualBlock resets its own LayerNorm and linears; skip them to draw each tensor once.
        parent = name.rpartition(".")[0]
        if parent and isinstance(module.get_submodule(parent), ResidualBlock):
            continue
        if callable(getattr(submodule, "reset_parameters", None)):
            submodule.reset_parameters()
            reset.append(name)
    return reset


class DrQConvEncoder(nn.Module):
    """
    The convolutional encoder of DrQ-v2 (Yarats et al., 2022): inputs in [0, 1] are shifted to
    [-0.5, 0.5], then a 3x3 convolution with stride 2 and three with stride 1, 32 channels each,
    ReLU after each, flattened (32 x 35 x 35 = 39,200 features for 84 x 84 frames). Orthogonal
    initialization with the ReLU gain, zero biases.

    :param in_channels: input channels (3 x stacked frames)
    :param image_size: input height and width
    :param channels: channels of every convolution
    """

    def __init__(self, in_channels: int, image_size: int = 84, channels: int = 32) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("channels", channels)
        check_int("image_size", image_size, minimum=15)  # four 3x3 convolutions, the first with stride 2
        layers: list[nn.Module] = []
        for index in range(4):
            first = index == 0
            layers += [nn.Conv2d(in_channels if first else channels, channels, 3, stride=2 if first else 1), nn.ReLU()]
        self.convolutions = nn.Sequential(*layers)
        side = (image_size - 3) // 2 + 1 - 3 * 2
        self.output_dim = channels * side * side
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.convolutions:
            if isinstance(layer, nn.Conv2d):
                nn.init.orthogonal_(layer.weight, gain=nn.init.calculate_gain("relu"))
                nn.init.zeros_(cast(torch.Tensor, layer.bias))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.convolutions(images - 0.5).flatten(start_dim=1)


class PixelTrunk(nn.Module):
    """
    DrQ-v2's trunk between the convolutional encoder and a network's head: Linear to
    ``feature_dim``, LayerNorm, Tanh. Each of actor and critic has its own.

    :param input_dim: encoder output size
    :param feature_dim: output size (50 in DrQ-v2)
    """

    def __init__(self, input_dim: int, feature_dim: int = 50) -> None:
        super().__init__()
        check_int("input_dim", input_dim)
        self.linear = OrthogonalLinear(input_dim, check_int("feature_dim", feature_dim))
        self.norm = nn.LayerNorm(feature_dim)
        self.activation = nn.Tanh()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.linear(features)))
