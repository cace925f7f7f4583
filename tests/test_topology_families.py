"""Dynamic topologies beyond the off-policy actor-critics: value-based (DQN, QR-DQN) and on-policy
(PPO, A2C, TRPO, MaskablePPO) policies in real SB3 training loops, one rule per network
(``actor_topology``, ``critic_topology``) and the sparse-to-dense rule (``densify``)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import QRDQN, TRPO, MaskablePPO
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from sb3_sparse.sparsity import attach_mask, named_masks, pruned_weights_are_zero
from sb3_sparse.topology import GRADUAL_DENSITIES, STEPS_KEY, DynamicMaskEnforcer, TopologySchedule, prune_gradually_
from tests.conftest import TINY_SIMBA
from tests.test_on_policy import SyntheticEnv, cartpole, frame_env


def masks_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: mask.bool().clone() for name, _, mask in named_masks(module)}


def counts_of(module: nn.Module) -> dict[str, int]:
    return {name: int(mask.sum()) for name, _, mask in named_masks(module)}


def changed_positions(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> int:
    return sum(int((before[name] != after[name]).sum()) for name in before)


class RecordCounts(BaseCallback):
    """After each step: the enforcer's training progress and the active weights of each tensor."""

    def __init__(self, role: str, network: str) -> None:
        super().__init__()
        self.role, self.network, self.records = role, network, []

    def _on_step(self) -> bool:
        enforcer = self.model.policy._mask_enforcers[self.role]
        self.records.append((enforcer.progress, enforcer.steps, counts_of(getattr(self.model.policy, self.network))))
        return True


def gradual_targets(module: nn.Module, schedule: TopologySchedule, progress: float) -> dict[str, int]:
    """Each masked tensor's active count on the cubic schedule at ``progress``."""
    counts = {}
    for name, parameter, _ in named_masks(module):
        owner = module.get_submodule(name.rpartition(".")[0])
        initial, final = owner.__dict__[GRADUAL_DENSITIES][name.rpartition(".")[2]]
        counts[name] = round(schedule.density_at(progress, initial, final) * parameter.numel())
    return counts


@pytest.mark.parametrize("algorithm", [DQN, QRDQN])
def test_gmp_prunes_value_networks_on_schedule_online_and_target_alike(algorithm, tmp_path):
    policy_kwargs = dict(
        critic_hidden_dim=32, critic_num_blocks=1, critic_sparsity=0.9, exact_masks=True, topology="gmp",
        topology_kwargs=dict(update_interval=20),
    )  # fmt: skip
    if algorithm is QRDQN:
        policy_kwargs["n_quantiles"] = 5
    model = algorithm(
        "SparseSimBaPolicy", "CartPole-v1", learning_starts=50, train_freq=1, target_update_interval=30, batch_size=32,
        seed=0, policy_kwargs=policy_kwargs,
    )  # fmt: skip
    online = model.policy.network_attribute
    network, target = getattr(model.policy, online), getattr(model.policy, f"{online}_target")
    assert all(mask.all() for mask in masks_of(network).values())  # GMP starts dense
    recorder = RecordCounts("critic", online)
    model.learn(700, callback=recorder)
    schedule = model.policy._mask_enforcers["critic"].schedule
    updates = [(p, counts) for p, steps, counts in recorder.records if steps % schedule.update_interval == 0 and steps]
    assert len(updates) > 10
    for progress, counts in updates:  # right after each update: the schedule's count, tensor by tensor
        assert counts == gradual_targets(network, schedule, progress), progress
    assert counts_of(network) == gradual_targets(network, schedule, 1.0)  # the final density, reached at 80%
    assert any(p < schedule.begin_fraction for p, _ in updates) and any(p > schedule.end_fraction for p, _ in updates)
    assert masks_of(target).keys() == masks_of(network).keys()
    assert all(torch.equal(mask, masks_of(network)[name]) for name, mask in masks_of(target).items())
    assert pruned_weights_are_zero(network) and pruned_weights_are_zero(target)
    done = [p for p, _ in updates if p >= schedule.begin_fraction]  # due before it, an update changes nothing
    assert model.policy.topology_statistics()["critic"]["updates"] == len(done)
    assert "Q-network" in model.policy.format_density_report()

    model.save(tmp_path / "model.zip")
    loaded = algorithm.load(tmp_path / "model.zip", env=gym.make("CartPole-v1"))
    assert loaded.policy.optimizer.param_groups[0][STEPS_KEY] == model.policy.optimizer.param_groups[0][STEPS_KEY]
    loaded_network = getattr(loaded.policy, online)
    assert all(torch.equal(mask, masks_of(network)[name]) for name, mask in masks_of(loaded_network).items())


def test_rigl_on_dqn_regrows_by_the_dense_gradient_though_gradients_are_masked_in_backward():
    model = DQN(
        "SparseSimBaPolicy", "CartPole-v1", learning_starts=50, train_freq=1, batch_size=32, max_grad_norm=0.5, seed=0,
        policy_kwargs=dict(
            critic_hidden_dim=32, critic_num_blocks=1, sparse_backend="masked", exact_masks=True, topology="rigl",
            topology_kwargs=dict(update_interval=20),
        ),
    )  # fmt: skip
    before, counts = masks_of(model.policy.q_net), counts_of(model.policy.q_net)
    model.learn(300)
    assert changed_positions(before, masks_of(model.policy.q_net)) > 0 and counts_of(model.policy.q_net) == counts
    assert pruned_weights_are_zero(model.policy.q_net) and pruned_weights_are_zero(model.policy.q_net_target)


def test_rigl_keeps_the_dense_gradient_of_a_backward_whose_gradients_it_masks():
    layer = nn.Linear(4, 3, bias=False)
    attach_mask(layer, "weight", torch.eye(3, 4, dtype=torch.bool))  # column 3 inactive in every row
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 3.0, 0]]))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    schedule = TopologySchedule.create("rigl", dict(update_interval=1, drop_fraction=0.34))
    DynamicMaskEnforcer(optimizer, layer, schedule, mask_gradients_in_backward=True)
    # dL/dW[i, j] = c_i x_j: only column 3 has a gradient, largest in row 1.
    (layer(torch.tensor([[0.0, 0.0, 0.0, 1.0]])) * torch.tensor([1.0, 5.0, 2.0])).sum().backward()
    assert not layer.weight.grad[:, 3].any()  # masked as autograd computed it
    optimizer.step()
    # One weight moves (a third of 3): the smallest, (0, 0), to the largest dense gradient, (1, 3).
    assert layer.weight_mask.bool().tolist() == [
        [False, False, False, False],
        [False, True, False, True],
        [False, False, True, False],
    ]


ON_POLICY = dict(n_steps=64, seed=0)


@pytest.mark.parametrize(
    ("algorithm", "kwargs", "topology"),
    [
        (PPO, dict(batch_size=32, n_epochs=2), "rigl"),
        (A2C, dict(n_steps=8), "set"),
        (TRPO, dict(batch_size=32, n_critic_updates=2), "set"),
        (MaskablePPO, dict(batch_size=32, n_epochs=2), "rigl"),
    ],
)
def test_on_policy_topologies_keep_density_and_change_masks(algorithm, kwargs, topology, tmp_path):
    model = algorithm(
        "SparseSimBaPolicy", cartpole(algorithm), **{**ON_POLICY, **kwargs},
        policy_kwargs=dict(
            TINY_SIMBA, sparse_backend="masked", exact_masks=True, topology=topology, topology_kwargs=dict(update_interval=4)
        ),
    )  # fmt: skip
    before, counts = masks_of(model.policy), counts_of(model.policy)
    model.learn(512)
    assert counts_of(model.policy) == counts  # every tensor keeps its count of active weights
    assert changed_positions(before, masks_of(model.policy)) > 0
    assert pruned_weights_are_zero(model.policy)
    statistics = model.policy.topology_statistics()
    assert statistics.keys() == {"actor", "critic"} and all(s["updates"] > 0 for s in statistics.values())
    group = model.policy.optimizer.param_groups[0]  # one optimizer, a step counter per network
    assert group[STEPS_KEY + "_actor"] == group[STEPS_KEY + "_critic"] > 0

    model.save(tmp_path / "model.zip")
    loaded = algorithm.load(tmp_path / "model.zip", env=cartpole(algorithm))
    assert all(torch.equal(mask, masks_of(model.policy)[name]) for name, mask in masks_of(loaded.policy).items())
    assert loaded.policy.optimizer.param_groups[0][STEPS_KEY + "_actor"] == group[STEPS_KEY + "_actor"]


def test_trpo_refuses_rigl_for_its_line_searched_actor():
    model = TRPO(
        "SparseSimBaPolicy", "CartPole-v1", n_steps=64, batch_size=64, policy_kwargs=dict(TINY_SIMBA, actor_topology="rigl")
    )
    with pytest.raises(ValueError, match=r"TRPO moves its policy by a line search.*got 'rigl'"):
        model.learn(64)


def test_sac_keeps_a_static_actor_beside_a_rigl_critic():
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, seed=0,
        policy_kwargs=dict(
            TINY_SIMBA, sparse_backend="masked", critic_topology="rigl", critic_topology_kwargs=dict(update_interval=10)
        ),
    )  # fmt: skip
    policy = model.policy
    assert not isinstance(policy._mask_enforcers["actor"], DynamicMaskEnforcer)
    actor, critic = masks_of(policy.actor), masks_of(policy.critic)
    model.learn(250)
    assert changed_positions(actor, masks_of(policy.actor)) == 0
    assert changed_positions(critic, masks_of(policy.critic)) > 0
    assert all(torch.equal(mask, masks_of(policy.critic_target)[name]) for name, mask in masks_of(policy.critic).items())
    assert policy.topology_statistics().keys() == {"critic"}
    assert STEPS_KEY not in policy.actor.optimizer.param_groups[0]


def test_each_network_takes_its_own_rule_and_arguments():
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, seed=0,
        policy_kwargs=dict(
            TINY_SIMBA, actor_sparsity=0.7, critic_sparsity=0.0, exact_masks=True, topology="set",
            topology_kwargs=dict(update_interval=7), actor_topology="densify", actor_topology_kwargs=dict(update_interval=10),
        ),
    )  # fmt: skip
    policy = model.policy
    assert policy.architecture.schedule_of("actor") == TopologySchedule.create("densify", dict(update_interval=10))
    assert policy.architecture.schedule_of("critic") == TopologySchedule.create("set", dict(update_interval=7))
    sparse = counts_of(policy.actor)
    model.learn(250)
    # Sparse-to-dense: grown back to every position by 80% of training; the grown weights learn from 0.
    assert all(mask.all() for mask in masks_of(policy.actor).values())
    assert sum(counts_of(policy.actor).values()) > 2 * sum(sparse.values())
    assert policy.topology_statistics().keys() == {"actor"}  # the dense critic has nothing to move


def test_densify_grows_a_tensor_back_to_dense_on_the_mirrored_cubic_schedule():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 20))
    prune_gradually_(network, final_sparsity=0.0, initial_sparsity=0.9, generator=torch.Generator().manual_seed(0), exact=True)
    schedule = TopologySchedule.create("densify", dict(update_interval=1, begin_fraction=0.2, end_fraction=0.8))
    optimizer = torch.optim.Adam(network.parameters())
    enforcer = DynamicMaskEnforcer(optimizer, network, schedule)
    start = counts_of(network)
    assert sum(start.values()) < 0.2 * (40 * 30 + 30 * 20)
    for progress in (0.1, 0.2, 0.5, 0.8, 1.0):
        enforcer.progress = progress
        before = masks_of(network)
        network(torch.randn(8, 40)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        assert counts_of(network) == gradual_targets(network, schedule, progress)
        assert all((before[name] & ~mask).sum() == 0 for name, mask in masks_of(network).items())  # nothing dropped
    assert all(mask.all() for mask in masks_of(network).values())


def encoder_and_head(policy) -> tuple[nn.Module, nn.Module, nn.Module | None]:
    """The convolutional encoder, a part of the critic outside it, and the encoder's target copy (None: no target)."""
    if isinstance(policy, ActorCriticPolicy):  # PPO: one NatureCNN shared by both heads, no target
        return policy.features_extractor, policy.mlp_extractor.value_net, None
    if hasattr(policy, "q_net"):  # DQN: each network its own NatureCNN
        return policy.q_net.features_extractor, policy.q_net.network, policy.q_net_target.features_extractor
    critic = policy.critic  # SAC: DrQ-v2's encoder inside the critic
    return critic.features_extractor.encoder, critic.q_networks, policy.critic_target.features_extractor.encoder


IMAGE_MODELS = {
    "SAC": lambda kwargs: SAC(
        "SparseSimBaCnnPolicy", SyntheticEnv(spaces.Box(-1, 1, (1,)), spaces.Box(0, 255, (16, 16, 3), np.uint8)),
        buffer_size=500, learning_starts=24, batch_size=8, seed=0, policy_kwargs=dict(feature_dim=16, **TINY_SIMBA, **kwargs),
    ),
    "DQN": lambda kwargs: DQN(
        "SparseSimBaCnnPolicy", frame_env(), buffer_size=500, learning_starts=24, batch_size=8, train_freq=1,
        target_update_interval=20, seed=0, policy_kwargs=dict(critic_hidden_dim=32, critic_num_blocks=1, **kwargs),
    ),
    "PPO": lambda kwargs: PPO(
        "SparseSimBaCnnPolicy", frame_env(), n_steps=32, batch_size=16, n_epochs=2, seed=0,
        policy_kwargs=dict(**TINY_SIMBA, **kwargs),
    ),
}  # fmt: skip


@pytest.mark.parametrize("algorithm", list(IMAGE_MODELS))
def test_a_convolutional_encoder_takes_its_own_rule_beside_the_critics(algorithm, tmp_path):
    """Module-Specific Training's split: SET moves the encoder's masks while the critic's stay static
    (and the reverse), each network on its own step counter; targets follow; save/load keeps both."""
    sparse = dict(encoder_sparsity=0.5, sparse_backend="masked", exact_masks=True)
    model = IMAGE_MODELS[algorithm](dict(sparse, encoder_topology="set", encoder_topology_kwargs=dict(update_interval=4)))
    policy = model.policy
    encoder, head, target_encoder = encoder_and_head(policy)
    assert policy.architecture.schedule_of("encoder") == TopologySchedule.create("set", dict(update_interval=4))
    assert policy.architecture.schedule_of("critic") is None
    encoder_masks, head_masks = masks_of(encoder), masks_of(head)
    model.learn(96)
    assert changed_positions(encoder_masks, masks_of(encoder)) > 0
    assert counts_of(encoder) == {name: int(mask.sum()) for name, mask in encoder_masks.items()}  # SET keeps counts
    assert changed_positions(head_masks, masks_of(head)) == 0
    assert pruned_weights_are_zero(encoder) and pruned_weights_are_zero(head)
    if target_encoder is not None:
        assert all(torch.equal(mask, masks_of(target_encoder)[name]) for name, mask in masks_of(encoder).items())
        assert pruned_weights_are_zero(target_encoder)
    assert policy.topology_statistics().keys() == {"encoder"}
    steps = policy._mask_enforcers["encoder"].steps
    assert steps > 0 and STEPS_KEY + "_encoder" in policy._mask_enforcers["encoder"].optimizer.param_groups[0]

    model.save(tmp_path / "model.zip")
    loaded = type(model).load(tmp_path / "model.zip", env=model.get_env())
    loaded_encoder = masks_of(encoder_and_head(loaded.policy)[0])
    assert all(torch.equal(mask, loaded_encoder[name]) for name, mask in masks_of(encoder).items())
    assert loaded.policy._mask_enforcers["encoder"].steps == steps

    # The reverse: a RigL critic beside the encoder's static masks.
    model = IMAGE_MODELS[algorithm](
        dict(sparse, encoder_topology="static", critic_topology="rigl", critic_topology_kwargs=dict(update_interval=4))
    )
    encoder, head, _ = encoder_and_head(model.policy)
    encoder_masks, head_masks = masks_of(encoder), masks_of(head)
    model.learn(96)
    assert changed_positions(encoder_masks, masks_of(encoder)) == 0
    assert changed_positions(head_masks, masks_of(head)) > 0
    assert model.policy.topology_statistics().keys() == {"critic"}


def test_a_dynamic_encoder_rule_needs_a_sparse_encoder():
    message = r"encoder_topology='set' changes the masks .* encoder_sparsity must be in \(0, 1\), got 0.0"
    with pytest.raises(ValueError, match=message):
        PPO("SparseSimBaCnnPolicy", frame_env(), n_steps=32, policy_kwargs=dict(TINY_SIMBA, encoder_topology="set"))
    with pytest.raises(ValueError, match="encoder_topology must be one of"):
        PPO("SparseSimBaCnnPolicy", frame_env(), n_steps=32, policy_kwargs=dict(TINY_SIMBA, encoder_topology="prune"))
