"""SB3 callbacks of sb3-sparse."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class ObservationNormalizerCallback(BaseCallback):
    """
    Updates the running observation statistics of a sparse SimBa policy once per collected
    transition, from the observation the policy acted on (``model._last_obs``), the random
    warm-up included; gradient updates, evaluation and ``predict`` never touch them.

    ``import sb3_sparse`` adds this callback to every ``learn()`` of a policy built with
    ``normalize_observations=True`` (unless one is already given), so you rarely create it yourself.

    The reference updates the statistics just before acting on an observation; here they are
    updated right after the environment step that follows it. Each observation is counted
    once either way; only the action on that one observation sees one sample fewer.
    """

    def _init_callback(self) -> None:
        policy = self.model.policy
        if getattr(policy, "observation_normalizer", None) is None:
            raise ValueError(
                f"ObservationNormalizerCallback needs a sb3_sparse policy built with normalize_observations=True, "
                f"got {type(policy).__name__}"
            )

    def _on_step(self) -> bool:
        self.model.policy.update_observation_statistics(self.model._last_obs)  # type: ignore[operator]
        return True
