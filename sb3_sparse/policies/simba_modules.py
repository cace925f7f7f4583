"""The SB3 modules around :mod:`sb3_sparse.networks`: the actor and critic wrappers that build and
prune their SimBa networks, the load hooks that convert saved layer layouts, and the diagnostics
probe of SimBa networks."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution, StateDependentNoiseDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

from sb3_sparse.checks import check_int
from sb3_sparse.diagnostics import NetworkProbe
from sb3_sparse.networks import CriticNetwork, GaussianActorNetwork, SimBaEncoder
from sb3_sparse.policies.architecture import SimBaSpec
from sb3_sparse.sparse_execution import convert_optimizer_state_layouts_, convert_state_dict_layouts_


class SimBaActorBase(BasePolicy):
    """
    An SB3 actor around one SimBa actor network (``network_class``), pruned at construction.

    :param observation_space: observation space
    :param action_space: action space
    :param features_extractor: the network's input stage (:mod:`~sb3_sparse.policies.input_stage`) or pixel features
    :param spec: sizes of the SimBa network and its pruner (a target actor's has the same seed: the same masks)
    :param normalize_images: whether SB3's preprocessing scales images to [0, 1]
    """

    network_class: ClassVar[type[nn.Module]]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: BaseFeaturesExtractor,
        spec: SimBaSpec,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.spec = spec
        self.network, self.densities = spec.build(self.network_class, get_action_dim(action_space))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return part_constructor_parameters(self)

    def simba_encoders(self) -> list[SimBaEncoder]:
        """The SimBa encoder of the actor network (for diagnostics)."""
        return [self.network.encoder]


class SimBaActor(SimBaActorBase):
    """
    SB3's SAC ``Actor`` (for SAC, TQC and CrossQ) around :class:`sb3_sparse.networks.GaussianActorNetwork`,
    pruned at construction; the arguments are those of :class:`SimBaActorBase`, and SB3's gSDE ones:

    :param use_sde: gSDE (SB3's ``StateDependentNoiseDistribution``): the SimBa mean head gives the mean, a
        dense log-std matrix over the encoder's features the exploration noise (the network's own log-std
        head is then unused)
    :param log_std_init: initial value of the gSDE log-std matrix
    :param full_std: one log-std per feature and action (``False``: per feature)
    :param use_expln: gSDE's ``expln`` instead of ``exp`` for the standard deviation
    :param clip_mean: with gSDE, the mean is clipped to [-clip_mean, clip_mean] (0: no clipping)
    """

    network_class = GaussianActorNetwork
    action_space: spaces.Box

    def __init__(
        self,
        *args: Any,
        use_sde: bool = False,
        log_std_init: float = -3.0,
        full_std: bool = True,
        use_expln: bool = False,
        clip_mean: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.use_sde, self.log_std_init, self.full_std = use_sde, log_std_init, full_std
        self.use_expln, self.clip_mean = use_expln, clip_mean
        action_dim = get_action_dim(self.action_space)
        self.action_dist: SquashedDiagGaussianDistribution | StateDependentNoiseDistribution
        if use_sde:
            self.action_dist = StateDependentNoiseDistribution(
                action_dim, full_std=full_std, use_expln=use_expln, learn_features=True, squash_output=True
            )
            hidden_dim = self.spec.hidden_dim
            _, self.log_std = self.action_dist.proba_distribution_net(hidden_dim, log_std_init, latent_sde_dim=hidden_dim)
        else:
            self.action_dist = SquashedDiagGaussianDistribution(action_dim)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            super()._get_constructor_parameters(),
            use_sde=self.use_sde,
            log_std_init=self.log_std_init,
            full_std=self.full_std,
            use_expln=self.use_expln,
            clip_mean=self.clip_mean,
        )

    def get_std(self) -> th.Tensor:
        """The standard deviation of gSDE's exploration noise (SB3's ``Actor.get_std``)."""
        if not isinstance(self.action_dist, StateDependentNoiseDistribution):
            raise RuntimeError("get_std() is only available when using gSDE (use_sde=True)")
        return self.action_dist.get_std(self.log_std)

    def reset_noise(self, batch_size: int = 1) -> None:
        """Sample new gSDE exploration weights (SB3's ``Actor.reset_noise``)."""
        if not isinstance(self.action_dist, StateDependentNoiseDistribution):
            raise RuntimeError("reset_noise() is only available when using gSDE (use_sde=True)")
        self.action_dist.sample_weights(self.log_std, batch_size=batch_size)

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """
        :param obs: raw observations
        :return: Gaussian mean, log standard deviation (in [-10, 2]; gSDE: its log-std matrix) and, with gSDE,
            the encoder's features as ``latent_sde``
        """
        features = self.extract_features(obs, self.features_extractor)
        if not self.use_sde:
            mean_actions, log_std = self.network(features)
            return mean_actions, log_std, {}
        latent = self.network.encoder(features)
        mean_actions = self.network.mean(latent)
        if self.clip_mean > 0:
            mean_actions = nn.functional.hardtanh(mean_actions, -self.clip_mean, self.clip_mean)
        return mean_actions, self.log_std, {"latent_sde": latent}

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        mean_actions, log_std, kwargs = self.get_action_dist_params(obs)
        return self.action_dist.actions_from_params(mean_actions, log_std, deterministic=deterministic, **kwargs)

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        :param obs: raw observations
        :return: squashed sampled actions and their log-probability (with the tanh correction)
        """
        mean_actions, log_std, kwargs = self.get_action_dist_params(obs)
        return self.action_dist.log_prob_from_params(mean_actions, log_std, **kwargs)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class SimBaContinuousCritic(BaseModel):
    """
    SB3's ``ContinuousCritic`` (SAC, TD3, DDPG, CrossQ) of ``n_critics`` independent
    :class:`sb3_sparse.networks.CriticNetwork` networks, each pruned with its own Erdős–Rényi masks.

    :param observation_space: observation space
    :param action_space: action space
    :param spec: sizes of each SimBa critic network and the pruner, which prunes them in turn
    :param features_extractor: the network's input stage (:mod:`~sb3_sparse.policies.input_stage`) or pixel features
    :param n_critics: number of critics (1 = the paper's DMC setup, 2 = clipped double Q)
    :param num_outputs: outputs of each critic's head (1 Q-value, or several quantiles)
    :param normalize_images: whether SB3's preprocessing scales images to [0, 1]
    :param share_features_extractor: whether the features extractor is the actor's; as in SB3, the
        critic's loss then does not reach it
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        spec: SimBaSpec,
        features_extractor: BaseFeaturesExtractor,
        n_critics: int = 2,
        num_outputs: int = 1,
        normalize_images: bool = True,
        share_features_extractor: bool = False,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        action_dim = get_action_dim(self.action_space)
        self.spec, self.num_outputs = spec, num_outputs
        self.share_features_extractor = share_features_extractor
        self.n_critics = check_int("n_critics", n_critics)
        # Each critic is pruned (and converted) before the next is built: one dense network at a time.
        self.q_networks, self.densities = nn.ModuleList(), []
        for _ in range(n_critics):
            q_net, densities = spec.build(CriticNetwork, action_dim, num_outputs)
            self.densities.append(densities)
            self.q_networks.append(q_net)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return part_constructor_parameters(
            self,
            n_critics=self.n_critics,
            num_outputs=self.num_outputs,
            share_features_extractor=self.share_features_extractor,
        )

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        with th.set_grad_enabled(not self.share_features_extractor):  # SB3's: only the actor trains a shared extractor
            features = self.extract_features(obs, self.features_extractor)  # type: ignore[arg-type]
        return tuple(q_net(features, actions) for q_net in self.q_networks)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-value of the first critic only (TD3's actor loss; as in SB3, no gradient reaches the extractor)."""
        with th.no_grad():
            features = self.extract_features(obs, self.features_extractor)  # type: ignore[arg-type]
        return self.q_networks[0](features, actions)

    def simba_encoders(self) -> list[SimBaEncoder]:
        """The SimBa encoders of the critic networks, in order (for diagnostics)."""
        return [cast(SimBaEncoder, q_net.encoder) for q_net in self.q_networks]


def part_constructor_parameters(part: BaseModel, **family_arguments: Any) -> dict[str, Any]:
    """
    What SB3's ``save`` and ``load`` of one network alone (an actor, a critic, a Q-network) rebuild it
    from: its spaces, its input stage, its :class:`~sb3_sparse.policies.architecture.SimBaSpec` (the
    same pruner seed, so the same masks) and the family's own arguments.

    :param part: the network wrapper (it has a ``spec``)
    :param family_arguments: the wrapper's further constructor arguments
    :return: the keyword arguments of its constructor
    """
    return dict(
        observation_space=part.observation_space,
        action_space=part.action_space,
        features_extractor=part.features_extractor,
        spec=part.spec,
        normalize_images=part.normalize_images,
        **family_arguments,
    )


def convert_state_dict(module: nn.Module, state_dict: dict[str, th.Tensor], prefix: str, *_: Any) -> None:
    """A policy's load_state_dict pre-hook: saved layer layouts (masked or SparseLinear) converted to the built ones."""
    convert_state_dict_layouts_(module, state_dict, prefix)


def convert_optimizer_state(network: nn.Module, optimizer: th.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """An optimizer's load_state_dict pre-hook (bound to its network): the state converted as the layers were."""
    convert_optimizer_state_layouts_(network, optimizer, state_dict)


def simba_probe(
    network: nn.Module, encoders: list[SimBaEncoder] | None = None, target: nn.Module | None = None, **probe_kwargs: Any
) -> NetworkProbe:
    """
    The diagnostics probe of SimBa networks: the residual blocks' activations, the encoders' linear
    layers and the (first) encoder's output as features.

    :param network: the module measured (norms, gradients), e.g. a SimBa actor or critic wrapper
    :param encoders: its SimBa encoders (``None``: ``network.simba_encoders()``)
    :param target: the network's Polyak target, if any
    :param probe_kwargs: further :class:`~sb3_sparse.diagnostics.NetworkProbe` fields (``evaluate``, ``optimizer``)
    :return: the probe
    """
    if encoders is None:
        encoders = network.simba_encoders()  # type: ignore[operator]
    return NetworkProbe(
        module=network,
        post_activation=[cast(nn.Module, block.activation) for encoder in encoders for block in encoder.blocks],
        pre_activation=[layer for encoder in encoders for layer in encoder.modules() if isinstance(layer, nn.Linear)],
        features=encoders[0],
        target=target,
        **probe_kwargs,
    )
