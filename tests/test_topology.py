"""Dynamic sparse training (SET, RigL, gradual magnitude pruning): the rules on plain torch
modules, then every sparse policy in real SB3 training loops, save/load and resume."""

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.noise import NormalActionNoise
from torch import nn

from sb3_sparse import PlasticityCallback, ReferenceDDPG, ReferenceSAC
from sb3_sparse.buffers import DrQReplayBuffer
from sb3_sparse.networks import CriticNetwork
from sb3_sparse.sparse_execution import SparseLinear, _to_sparse_execution_, share_index_structures_
from sb3_sparse.sparsity import named_masks, prune_erdos_renyi_, pruned_weights_are_zero
from sb3_sparse.topology import (
    EVER_ACTIVE_SUFFIX,
    STEPS_KEY,
    DynamicMaskEnforcer,
    TopologySchedule,
    drop_smallest,
    prune_gradually_,
    regrow_largest,
)
from tests.conftest import TINY_SIMBA
from tests.test_pixels import PIXEL_ENV, TINY


def active_counts(module: nn.Module) -> dict[str, int]:
    return {name: int(mask.sum()) for name, _, mask in named_masks(module)}


def masks_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: mask.bool().clone() for name, _, mask in named_masks(module)}


# --- the rules, on tensors ---------------------------------------------------------------------


def test_drop_smallest_drops_the_smallest_active_weights():
    weight = torch.tensor([[0.5, -0.1, 3.0], [0.2, -2.0, 0.05]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # 0.05 is inactive: never dropped, though smallest. Active by magnitude: 0.1, 0.2, 0.5, 2, 3.
    survivors = drop_smallest(weight, mask, 2)
    assert survivors.tolist() == [[True, False, True], [False, True, False]]
    assert torch.equal(drop_smallest(weight, mask, 0), mask)


def test_regrow_largest_picks_the_largest_scores_among_inactive_positions():
    mask = torch.tensor([[True, False, False], [False, True, False]])
    scores = torch.tensor([[9.0, 1.0, 5.0], [4.0, 8.0, 2.0]])  # 9 and 8 are active: not candidates
    assert regrow_largest(mask, scores, 2).tolist() == [[False, False, True], [True, False, False]]


def test_schedules_follow_their_formulas():
    rigl = TopologySchedule.create("rigl", dict(drop_fraction=0.4, end_fraction=0.5))
    assert rigl.drop_fraction_at(0.0) == pytest.approx(0.4)
    assert rigl.drop_fraction_at(0.25) == pytest.approx(0.2)  # cos(pi/2) = 0
    assert rigl.updates_at(0.49) and not rigl.updates_at(0.5)
    assert TopologySchedule.create("set").drop_fraction_at(0.9) == 0.3
    gmp = TopologySchedule.create("gmp", dict(begin_fraction=0.2, end_fraction=0.6))
    assert gmp.density_at(0.1, 1.0, 0.1) == 1.0 and gmp.density_at(0.7, 1.0, 0.1) == pytest.approx(0.1)
    assert gmp.density_at(0.4, 1.0, 0.1) == pytest.approx(0.1 + 0.9 * 0.5**3)
    assert not gmp.updates_at(0.1) and gmp.updates_at(0.9)


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("sparse", {}, "topology must be one of"),
        ("set", dict(begin_fraction=0.1), "unknown topology_kwargs \\['begin_fraction'\\]"),
        ("rigl", dict(update_interval=0), "update_interval must be an integer >= 1, got 0"),
        ("set", dict(drop_fraction=1.5), "drop_fraction must be in \\[0, 1\\], got 1.5"),
        ("gmp", dict(begin_fraction=0.8, end_fraction=0.5), "begin_fraction must be below end_fraction"),
        ("gmp", dict(initial_sparsity=1.0), "initial_sparsity must be in \\[0, 1\\), got 1.0"),
    ],
)
def test_bad_schedules_name_the_value(kind, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TopologySchedule.create(kind, kwargs)


# --- the enforcer, on a plain torch network ----------------------------------------------------


def pruned_critic(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    network = CriticNetwork(6, 2, 32, 1)
    generator = torch.Generator().manual_seed(seed)
    if kind == "gmp":
        prune_gradually_(network, 0.8, 0.0, generator)
    else:
        prune_erdos_renyi_(network, 0.8, generator, exact=True)
    return network


def train_steps(network: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        obs, act = torch.randn(16, 6, generator=generator), torch.randn(16, 2, generator=generator)
        optimizer.zero_grad()
        network(obs, act).pow(2).mean().backward()
        optimizer.step()


@pytest.mark.parametrize("kind", ["set", "rigl"])
@pytest.mark.parametrize("optimizer_class", [torch.optim.Adam, torch.optim.Adamax, torch.optim.ASGD])
def test_regrowing_rules_keep_every_count_and_drop_the_smallest(kind, optimizer_class):
    network = pruned_critic(kind)
    target = copy.deepcopy(network)
    optimizer = optimizer_class(network.parameters(), lr=1e-2)
    schedule = TopologySchedule.create(kind, dict(update_interval=5))
    enforcer = DynamicMaskEnforcer(optimizer, network, schedule, targets=[target])
    counts = active_counts(network)
    for update in range(4):
        train_steps(network, optimizer, 4, seed=update)  # the 5th step below updates the topology
        before, weights = masks_of(network), {name: p.detach().clone() for name, p, _ in named_masks(network)}
        train_steps(network, optimizer, 1, seed=100 + update)
        after = masks_of(network)
        assert active_counts(network) == counts
        assert pruned_weights_are_zero(network) and pruned_weights_are_zero(target)
        assert all(torch.equal(mask, masks_of(target)[name]) for name, mask in after.items())
        for name, mask in before.items():  # what left the mask is among the 30% smallest active weights
            smallest = mask & ~drop_smallest(weights[name], mask, int(0.3 * counts[name]))
            left = mask & ~after[name]
            assert left.any() and not (left & ~smallest).any()
    assert optimizer.param_groups[0][STEPS_KEY] == 20
    statistics = enforcer.statistics()
    assert statistics["updates"] == 4 and 0 < statistics["mask_turnover"] <= 0.3
    density = sum(counts.values()) / sum(mask.numel() for mask in before.values())
    assert density < statistics["ever_active_fraction"] <= 1


def test_rigl_regrows_where_the_dense_gradient_is_largest():
    layer = nn.Linear(8, 4, bias=False)
    prune_erdos_renyi_(layer, 0.5, torch.Generator().manual_seed(0), exact=True)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    schedule = TopologySchedule.create("rigl", dict(update_interval=1, drop_fraction=0.25))
    enforcer = DynamicMaskEnforcer(optimizer, layer, schedule)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(4, 8, generator=torch.Generator().manual_seed(1)) * layer.weight_mask)
    mask = layer.weight_mask.bool().clone()
    count = int(0.25 * int(mask.sum()))
    survivors = drop_smallest(layer.weight, mask, count)
    # A known dense gradient: distinct magnitudes, largest where no weight is active after the drop.
    gradient = torch.arange(32, dtype=torch.float32).view(4, 8)
    layer.weight.grad = gradient.clone()
    enforcer.update_topology()
    expected = survivors.view(-1).clone()
    candidates = [i for i in range(32) if not survivors.view(-1)[i]]
    expected[sorted(candidates, key=lambda i: -gradient.view(-1)[i])[:count]] = True
    assert torch.equal(layer.weight_mask.bool().view(-1), expected)
    grown = layer.weight_mask.bool() & ~survivors
    assert int(grown.sum()) == count and not layer.weight[grown].any()  # regrown weights start at 0


def test_regrown_weights_and_their_optimizer_state_start_at_zero():
    network = pruned_critic("set")
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    enforcer = DynamicMaskEnforcer(optimizer, network, TopologySchedule.create("set", dict(update_interval=1000)))
    train_steps(network, optimizer, 3)
    before = masks_of(network)
    enforcer.update_topology()
    for name, parameter, mask in named_masks(network):
        changed = mask.bool() ^ before[name] | (mask.bool() & ~before[name])
        state = optimizer.state[parameter]
        assert not parameter[changed].any()
        assert not state["exp_avg"][changed].any() and not state["exp_avg_sq"][changed].any()


def test_gmp_follows_the_cubic_schedule_to_the_erdos_renyi_densities():
    network = pruned_critic("gmp")
    final = {name: d for name, d in prune_gradually_(copy.deepcopy(network), 0.8).items() if d < 1}
    assert active_counts(network) == {name: p.numel() for name, p, _ in named_masks(network)}  # starts dense
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    schedule = TopologySchedule.create("gmp", dict(update_interval=2, begin_fraction=0.2, end_fraction=0.8))
    enforcer = DynamicMaskEnforcer(optimizer, network, schedule)
    for step in range(10):
        enforcer.progress = step / 9
        train_steps(network, optimizer, 2, seed=step)
        for name, parameter, _ in named_masks(network):
            expected = round(schedule.density_at(enforcer.progress, 1.0, final[name]) * parameter.numel())
            assert active_counts(network)[name] == expected, (step, name)
        assert pruned_weights_are_zero(network)
    assert all(active_counts(network)[name] == round(final[name] * p.numel()) for name, p, _ in named_masks(network))


def csr_copy(network: nn.Module) -> nn.Module:
    copied = copy.deepcopy(network)
    _to_sparse_execution_(copied, "csr")
    return copied


@pytest.mark.parametrize("kind", ["set", "rigl"])
def test_sparse_linear_layers_move_as_masked_ones_do(kind):
    masked = pruned_critic(kind)
    with torch.no_grad():  # no kept weight exactly 0: the pattern can be read from the values
        for _, parameter, mask in named_masks(masked):
            parameter.add_(mask * 1e-3)
    sparse = csr_copy(masked)
    target = copy.deepcopy(sparse)
    share_index_structures_(target, sparse)
    gradients = {}
    for name, parameter, _ in named_masks(masked):  # the same dense gradient for RigL in both layouts
        gradients[name] = torch.randn(parameter.shape, generator=torch.Generator().manual_seed(len(gradients)))
        parameter.grad = gradients[name].clone()
    schedule = TopologySchedule.create(kind, dict(update_interval=1000))
    enforcers = [
        DynamicMaskEnforcer(torch.optim.Adam(network.parameters()), network, schedule, seed=7, targets=targets)
        for network, targets in ((masked, []), (sparse, [target]))
    ]
    layers = {name: layer for name, layer in sparse.named_modules() if isinstance(layer, SparseLinear)}
    assert layers and enforcers[1].num_updated_tensors == len(layers)
    for name, layer in layers.items():
        layer.dense_gradient = gradients[name + ".weight"].clone()
    for enforcer in enforcers:
        enforcer.update_topology()
    for name, layer in layers.items():
        mask = masked.get_submodule(name).weight_mask.bool()
        assert torch.equal(layer._buffers["weight" + EVER_ACTIVE_SUFFIX], masked.get_submodule(name).weight_ever_active)
        assert torch.equal(layer.dense_weight().detach(), masked.get_submodule(name).weight.detach())
        assert int(mask.sum()) == len(layer.values) and torch.equal(DynamicMaskEnforcer._pattern(layer), mask)
        assert target.get_submodule(name).flat_indices is layer.flat_indices  # the target follows
    assert enforcers[0].last_turnover == enforcers[1].last_turnover > 0


def test_sparse_linear_optimizer_state_moves_with_its_values():
    network = csr_copy(pruned_critic("set"))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    enforcer = DynamicMaskEnforcer(optimizer, network, TopologySchedule.create("set", dict(update_interval=1000)))
    train_steps(network, optimizer, 3)
    layer = next(layer for layer in network.modules() if isinstance(layer, SparseLinear))

    def dense(values):
        flat = torch.zeros(layer.in_features * layer.out_features).index_put((layer.flat_indices.long(),), values)
        return flat.view(layer.dense_weight_shape)

    before = {"weight": layer.dense_weight().detach(), "exp_avg": dense(optimizer.state[layer.values]["exp_avg"])}
    pattern = DynamicMaskEnforcer._pattern(layer)
    enforcer.update_topology()
    survivors = pattern & DynamicMaskEnforcer._pattern(layer) & (before["weight"] == layer.dense_weight().detach())
    assert int(survivors.sum()) >= 0.7 * int(pattern.sum()) - 1
    for key, now in (("weight", layer.dense_weight().detach()), ("exp_avg", dense(optimizer.state[layer.values]["exp_avg"]))):
        assert torch.equal(now[survivors], before[key][survivors])
        assert not now[~survivors].any()  # dropped and regrown: 0
    train_steps(network, optimizer, 2)  # the CSR structure was rebuilt: training goes on


@pytest.mark.parametrize("use_sparse_kernels", [True, False])
def test_sparse_linear_records_the_dense_gradient_when_asked(use_sparse_kernels):
    linear = nn.Linear(6, 5)
    prune_erdos_renyi_(linear, 0.5, torch.Generator().manual_seed(0))
    sparse = SparseLinear.from_masked_linear(linear, use_sparse_kernels=use_sparse_kernels)
    x = torch.randn(7, 6)
    for asked in (False, True):
        sparse.wants_dense_gradient = lambda asked=asked: asked
        sparse(x).pow(2).sum().backward()
        assert (sparse.dense_gradient is not None) == asked
    linear(x).pow(2).sum().backward()  # the dense layer's gradient, at every position
    torch.testing.assert_close(sparse.dense_gradient, linear.weight.grad)


# --- the policies, in SB3 training loops -------------------------------------------------------

ALGORITHMS = [SAC, TD3, DDPG, TQC, CrossQ, ReferenceSAC, ReferenceDDPG]
NETWORKS = {
    SAC: ("actor", "critic", "critic_target"),
    ReferenceSAC: ("actor", "critic", "critic_target"),
    ReferenceDDPG: ("actor", "actor_target", "critic", "critic_target"),
    TD3: ("actor", "actor_target", "critic", "critic_target"),
    DDPG: ("actor", "actor_target", "critic", "critic_target"),
    TQC: ("actor", "critic", "critic_target"),
    CrossQ: ("actor", "critic"),
}


def make_model(algorithm, topology, seed=0, env="Pendulum-v1", sparse_backend="masked", **topology_kwargs):
    kwargs = {}
    if algorithm in (TD3, DDPG):
        kwargs["action_noise"] = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
    policy_kwargs = dict(
        TINY_SIMBA,
        actor_sparsity=0.8,
        critic_sparsity=0.8,
        exact_masks=True,
        sparse_backend=sparse_backend,
        topology=topology,
        topology_kwargs=dict(update_interval=10, **topology_kwargs),
    )
    return algorithm(
        "SparseSimBaPolicy", env, learning_starts=50, batch_size=32, seed=seed, policy_kwargs=policy_kwargs, **kwargs
    )


@pytest.mark.parametrize("topology", ["set", "rigl", "gmp"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_policy_trains_saves_and_loads_with_a_dynamic_topology(algorithm, topology, tmp_path):
    model = make_model(algorithm, topology)
    initial = {net: masks_of(getattr(model.policy, net)) for net in NETWORKS[algorithm]}
    model.learn(250)
    policy = model.policy
    for net in NETWORKS[algorithm]:
        network = getattr(policy, net)
        assert pruned_weights_are_zero(network), net
        masks = masks_of(network)
        assert masks.keys() == initial[net].keys()
        assert any(not torch.equal(masks[name], initial[net][name]) for name in masks), f"{net}: no update changed a mask"
        if topology != "gmp":
            assert {k: int(v.sum()) for k, v in masks.items()} == {k: int(v.sum()) for k, v in initial[net].items()}
        if net.endswith("_target"):  # the target follows its online network's topology
            online = masks_of(getattr(policy, net.removesuffix("_target")))
            assert all(torch.equal(mask, online[name]) for name, mask in masks.items())
    statistics = policy.topology_statistics()
    assert statistics.keys() == {"actor", "critic"} and all(s["updates"] > 0 for s in statistics.values())

    model.save(tmp_path / "model.zip")
    loaded = type(model).load(tmp_path / "model.zip", env=gym.make("Pendulum-v1"))
    state = loaded.policy.state_dict()
    assert any(key.endswith(EVER_ACTIVE_SUFFIX) for key in state)
    for key, value in policy.state_dict().items():
        assert torch.equal(value.cpu(), state[key]), key
    for role in ("actor", "critic"):
        steps = [getattr(p, role).optimizer.param_groups[0][STEPS_KEY] for p in (policy, loaded.policy)]
        assert steps[0] == steps[1] > 0
    loaded.learn(100, reset_num_timesteps=False)
    for net in NETWORKS[algorithm]:
        assert pruned_weights_are_zero(getattr(loaded.policy, net)), net


@pytest.mark.parametrize("topology", ["set", "rigl"])
def test_csr_layers_move_and_load_into_either_layout(topology, tmp_path):
    model = make_model(SAC, topology, sparse_backend="csr")
    critic = model.policy.critic
    layers = {name: layer for name, layer in critic.named_modules() if isinstance(layer, SparseLinear)}
    before = {name: DynamicMaskEnforcer._pattern(layer) for name, layer in layers.items()}
    model.learn(250)
    assert any(not torch.equal(DynamicMaskEnforcer._pattern(layer), before[name]) for name, layer in layers.items())
    target = model.policy.critic_target
    for name, layer in layers.items():
        assert len(layer.values) == int(before[name].sum())
        assert target.get_submodule(name).flat_indices is layer.flat_indices
        assert not target.get_submodule(name).dense_weight()[~DynamicMaskEnforcer._pattern(layer)].any()
    model.save(tmp_path / "csr.zip")
    # Moved to a machine where the same policy runs masked (auto on a GPU), and back.
    masked = SAC.load(
        tmp_path / "csr.zip", custom_objects={"policy_kwargs": {**model.policy_kwargs, "sparse_backend": "masked"}}
    )
    for name, layer in layers.items():
        loaded = masked.policy.critic.get_submodule(name)
        assert torch.equal(loaded.weight_mask.bool(), DynamicMaskEnforcer._pattern(layer))
        assert torch.equal(loaded.weight.detach(), layer.dense_weight().detach())
    masked.save(tmp_path / "masked.zip")
    again = SAC.load(
        tmp_path / "masked.zip", custom_objects={"policy_kwargs": {**model.policy_kwargs, "sparse_backend": "csr"}}
    )
    for name, layer in layers.items():
        loaded = again.policy.critic.get_submodule(name)
        assert torch.equal(loaded.flat_indices, layer.flat_indices) and torch.equal(loaded.values, layer.values)
        assert again.policy.critic_target.get_submodule(name).flat_indices is loaded.flat_indices
    again.set_env(gym.make("Pendulum-v1"))
    again.learn(50, reset_num_timesteps=False)


def test_a_loaded_model_continues_the_same_schedule(tmp_path):
    model = make_model(SAC, "set")
    model.learn(200)
    model.save(tmp_path / "model.zip")
    loaded = SAC.load(tmp_path / "model.zip", env=gym.make("Pendulum-v1"))
    # The step count comes back; the next SET update regrows exactly where the original's would.
    for role in ("actor", "critic"):
        original, resumed = model.policy._mask_enforcers[role], loaded.policy._mask_enforcers[role]
        assert resumed.steps == original.steps
        loaded_network, network = getattr(loaded.policy, role), getattr(model.policy, role)
        loaded_network.load_state_dict(network.state_dict())  # same weights as the original now
        original.progress = resumed.progress = 0.5
        original.update_topology()
        resumed.update_topology()
        assert all(torch.equal(mask, masks_of(loaded_network)[name]) for name, mask in masks_of(network).items())
    loaded.learn(50, reset_num_timesteps=False)  # learn() hands the progress over: 250 of 250 agent steps
    assert loaded.policy._mask_enforcers["critic"].progress == 1.0 and loaded._total_timesteps == 250


def test_plasticity_callback_logs_the_topology():
    model = make_model(SAC, "rigl")
    callback = PlasticityCallback(freq=100, batch_size=16, interference_samples=0)
    model.learn(200, callback=callback)
    values = callback.log_diagnostics()
    for net in ("actor", "critic"):
        assert 0 <= values[f"topology/{net}/mask_turnover"] <= 0.3
        assert 0.1 < values[f"topology/{net}/ever_active_fraction"] <= 1
        assert values[f"topology/{net}/updates"] >= 1


def test_pixel_policy_updates_the_encoder_and_its_target_copy():
    model = SAC(
        "SparseSimBaCnnPolicy", gym.make(PIXEL_ENV), buffer_size=1000, learning_starts=24, batch_size=8, seed=0,
        replay_buffer_class=DrQReplayBuffer,
        policy_kwargs=dict(
            TINY, critic_sparsity=0.8, encoder_sparsity=0.5, topology="set", topology_kwargs=dict(update_interval=4)
        ),
    )  # fmt: skip
    encoder, target_encoder = model.policy.conv_encoder, model.policy.critic_target.features_extractor.encoder
    before = masks_of(encoder)
    model.learn(40)
    after = masks_of(encoder)
    assert any(not torch.equal(after[name], before[name]) for name in before)
    assert all(torch.equal(mask, masks_of(target_encoder)[name]) for name, mask in after.items())
    assert pruned_weights_are_zero(encoder) and pruned_weights_are_zero(target_encoder)


def test_static_topology_is_unchanged():
    model = SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(TINY_SIMBA, critic_sparsity=0.8))
    assert not model.policy.dynamic_topology and model.policy.topology_statistics() == {}
    assert not any(key.endswith(EVER_ACTIVE_SUFFIX) for key in model.policy.state_dict())
    assert all(STEPS_KEY not in group for group in model.policy.critic.optimizer.param_groups)


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        (dict(topology="gmp", sparse_backend="csr", critic_sparsity=0.8), "sparse_backend must be 'masked' or 'auto'"),
        (dict(topology_kwargs=dict(update_interval=5)), "topology_kwargs need a dynamic topology"),
        (dict(topology="rigl", actor_sparsity=0.0, critic_sparsity=0.0), "needs a sparse network"),
        (
            dict(topology="gmp", topology_kwargs=dict(initial_sparsity=0.9), critic_sparsity=0.8),
            "initial_sparsity must be at most",
        ),
        (dict(topology="magnitude", critic_sparsity=0.8), "topology must be one of"),
        (dict(critic_topology="densify", sparse_backend="csr"), "critic_topology='densify' changes the number of weights"),
        (
            dict(critic_topology="static", critic_topology_kwargs=dict(update_interval=5)),
            "critic_topology_kwargs need a dynamic critic_topology",
        ),
        (dict(actor_topology="prune"), "actor_topology must be one of"),
        (dict(critic_topology="set", critic_sparsity=0.0, actor_sparsity=0.8), "needs a sparse network"),
    ],
)
def test_bad_topologies_fail_at_construction(policy_kwargs, message):
    with pytest.raises(ValueError, match=message):
        SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(TINY_SIMBA, **policy_kwargs))


def test_auto_backend_runs_gmp_masked_and_set_sparse():
    large = dict(critic_hidden_dim=512, critic_num_blocks=1, critic_sparsity=0.95)
    gmp = SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(large, topology="gmp"))
    assert gmp.policy.architecture.sparse_backend == "masked"
    assert not any(isinstance(layer, SparseLinear) for layer in gmp.policy.critic.modules())
    set_ = SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(large, topology="set"))
    assert set_.policy.architecture.sparse_backend == "auto"
    assert any(isinstance(layer, SparseLinear) for layer in set_.policy.critic.modules()) != torch.cuda.is_available()
    assert math.isnan(set_.policy.topology_statistics()["critic"]["mask_turnover"])
