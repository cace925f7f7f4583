"""Where the plasticity diagnostics read a policy: sb3-sparse's policies describe their own networks
(``policy.diagnostic_probes()``); SB3's and sb3-contrib's MLP policies get the same description
from the small adapter :func:`mlp_policy_probes`."""

from __future__ import annotations

from typing import Any

from torch import nn

from sb3_sparse.diagnostics import NetworkProbe

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Softplus)


def _mlp_probe_parts(mlp: nn.Module, hidden_only: bool) -> tuple[list[nn.Module], list[nn.Module], nn.Module | None]:
    """Hidden activations, hidden linears and feature module of an SB3 ``nn.Sequential`` MLP."""
    layers = list(mlp.children())
    if not hidden_only:  # the last linear (and what follows) is the head
        last_linear = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear))
        layers = layers[:last_linear]
    post: list[nn.Module] = [layer for layer in layers if isinstance(layer, ACTIVATIONS)]
    pre: list[nn.Module] = [layer for layer in layers if isinstance(layer, nn.Linear)]
    return post, pre, (layers[-1] if layers else None)


def mlp_policy_probes(policy: Any) -> dict[str, NetworkProbe]:
    """
    Probes of an SB3/sb3-contrib MLP actor-critic policy (SAC, TD3, DDPG, TQC, CrossQ): the actor's
    ``latent_pi`` (SAC family) or ``mu`` without its head (TD3 family), and the hidden layers of
    every critic's ``q_networks`` entry.

    :param policy: the policy
    :return: ``{"actor": ..., "critic": ...}``
    """
    actor, critic = policy.actor, policy.critic
    if hasattr(actor, "latent_pi"):  # SAC, TQC, CrossQ: latent_pi is all hidden
        actor_parts = _mlp_probe_parts(actor.latent_pi, hidden_only=True)
    elif hasattr(actor, "mu"):  # TD3/DDPG: mu ends with the action head
        actor_parts = _mlp_probe_parts(actor.mu, hidden_only=False)
    else:
        raise ValueError(f"the plasticity diagnostics do not know the actor of {type(policy).__name__}")
    critic_parts = [_mlp_probe_parts(q_net, hidden_only=False) for q_net in critic.q_networks]
    return {
        "actor": NetworkProbe(actor, *actor_parts, target=getattr(policy, "actor_target", None)),
        "critic": NetworkProbe(
            critic,
            [m for parts in critic_parts for m in parts[0]],
            [m for parts in critic_parts for m in parts[1]],
            critic_parts[0][2],
            target=getattr(policy, "critic_target", None),
        ),
    }


def network_probes(policy: Any) -> dict[str, NetworkProbe]:
    """
    The probes of any supported policy: its own ``diagnostic_probes()``, or the MLP adapter.

    :param policy: the policy
    :return: network name -> probe
    """
    describe = getattr(policy, "diagnostic_probes", None)
    return describe() if callable(describe) else mlp_policy_probes(policy)
