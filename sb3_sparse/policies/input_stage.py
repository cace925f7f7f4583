"""The input stage of every sparse SimBa policy, SB3's own with the paper's running statistics in front:

    observation -> SB3's ``preprocess_obs`` (images / 255, one-hot Discrete and MultiDiscrete,
    float MultiBinary) -> running normalization of the continuous parts -> a features extractor
    (SB3's ``FlattenExtractor``, ``CombinedExtractor``, ``NatureCNN`` or the user's
    ``features_extractor_class``) -> the sparse SimBa encoder

The running statistics (:class:`~sb3_sparse.networks.RunningObservationNormalizer`) cover every Box
of the observation that is not an image (SB3's ``is_image_space``), flattened and concatenated in
the Dict's key order: the continuous states the paper normalizes. Images are scaled by SB3
(``normalize_images``); one-hot and binary inputs are already in [0, 1]. One normalizer is shared by
every network of a policy (actor, critics, targets), so they all see the same statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
)

from sb3_sparse.networks import RunningObservationNormalizer

#: The key of a non-Dict observation space in :func:`continuous_parts`.
WHOLE = ""


def continuous_parts(observation_space: spaces.Space) -> dict[str, spaces.Box]:
    """
    The parts of an observation that the running statistics normalize: every Box that is not an
    image, by Dict key (:data:`WHOLE` for a non-Dict space), in the space's key order.

    :param observation_space: the policy's observation space
    :return: key -> Box
    """
    if isinstance(observation_space, spaces.Dict):
        items = list(observation_space.spaces.items())
    else:
        items = [(WHOLE, observation_space)]
    return {key: space for key, space in items if isinstance(space, spaces.Box) and not is_image_space(space)}


def default_extractor_class(observation_space: spaces.Space) -> type[BaseFeaturesExtractor]:
    """SB3's default features extractor for a space: ``CombinedExtractor`` for Dicts, else ``FlattenExtractor``."""
    return CombinedExtractor if isinstance(observation_space, spaces.Dict) else FlattenExtractor


def make_normalizer(observation_space: spaces.Space) -> RunningObservationNormalizer | None:
    """
    The running statistics of a space's continuous parts, or ``None`` when it has none (Discrete
    observations, images only).

    :param observation_space: the policy's observation space
    :return: the normalizer
    """
    size = sum(int(np.prod(space.shape)) for space in continuous_parts(observation_space).values())
    return RunningObservationNormalizer(size) if size else None


def continuous_rows(observation_space: spaces.Space, observations: np.ndarray | th.Tensor | Mapping[str, Any]) -> th.Tensor:
    """
    Raw observations (as the environment returns them) as the rows the running statistics count:
    the continuous parts (:func:`continuous_parts`), flattened and concatenated.

    :param observation_space: the policy's observation space
    :param observations: an array of shape ``(n, *shape)``, or key -> such arrays for a Dict space
    :return: float64 tensor of shape ``(n, size)``
    """
    parts = [
        cast(Mapping[str, Any], observations)[key] if key != WHOLE else observations
        for key in continuous_parts(observation_space)
    ]
    tensors = [th.as_tensor(part) for part in parts]
    return th.cat([part.reshape(part.shape[0], -1).to(th.float64) for part in tensors], dim=1)


class NormalizedInput(BaseFeaturesExtractor):
    """
    A features extractor behind the running normalization of the observation's continuous parts
    (see the module's docstring). Several of them (one per network) share one normalizer.

    :param observation_space: the policy's observation space
    :param extractor: the features extractor the normalized observations go through
    :param normalizer: the policy's shared normalizer (:func:`make_normalizer`)
    """

    def __init__(
        self, observation_space: spaces.Space, extractor: BaseFeaturesExtractor, normalizer: RunningObservationNormalizer
    ) -> None:
        super().__init__(observation_space, features_dim=extractor.features_dim)
        self.normalizer = normalizer
        self.extractor = extractor
        self._parts = continuous_parts(observation_space)

    def __getattr__(self, name: str) -> Any:
        # The user's extractor stays reachable as SB3 exposes it (``policy.features_extractor.<its layer>``).
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "extractor":
                raise
            return getattr(self.extractor, name)

    def normalize(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor | dict[str, th.Tensor]:
        """
        The preprocessed observations with their continuous parts normalized, in their own shapes.

        :param observations: a tensor, or key -> tensor (after SB3's ``preprocess_obs``)
        :return: the same structure
        """
        if not isinstance(observations, dict):
            flat = cast(th.Tensor, observations)
            return self.normalizer(flat.reshape(flat.shape[0], -1)).reshape(flat.shape)
        parts = [observations[key] for key in self._parts]
        normalized = self.normalizer(th.cat([part.reshape(part.shape[0], -1) for part in parts], dim=1))
        result = dict(observations)
        start = 0
        for key, part in zip(self._parts, parts, strict=True):
            size = part[0].numel()
            result[key] = normalized[:, start : start + size].reshape(part.shape)
            start += size
        return result

    def forward(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        return cast(th.Tensor, self.extractor(self.normalize(observations)))


def make_input_stage(
    observation_space: spaces.Space,
    extractor: BaseFeaturesExtractor,
    normalizer: RunningObservationNormalizer | None,
) -> BaseFeaturesExtractor:
    """
    One network's input stage: the extractor behind the shared normalizer, or the extractor alone
    when there is nothing to normalize (its state-dict names are then SB3's own).

    :param observation_space: the policy's observation space
    :param extractor: the network's features extractor
    :param normalizer: the policy's shared normalizer, or ``None``
    :return: the features extractor of the network
    """
    if normalizer is None:
        return extractor
    return NormalizedInput(observation_space, extractor, normalizer)
