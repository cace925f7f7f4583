"""Sparse execution: SparseLinear against the masked dense layer, the per-layer choice, and SAC
trained with sparse_backend="csr" matching the masked model step for step."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC, TD3

import sb3_sparse  # registers the policies
from sb3_sparse import sparse_execution
from sb3_sparse.networks import CriticNetwork
from sb3_sparse.sparse_execution import SparseLinear, _to_sparse_execution_, prune_for_execution_, use_sparse_kernels
from sb3_sparse.sparsity import attach_mask, density_report, prune_erdos_renyi_, sample_mask

TINY = dict(actor_hidden_dim=32, critic_hidden_dim=64, n_critics=1, actor_sparsity=0.9, critic_sparsity=0.9)


def masked_linear(in_features, out_features, density, seed=0):
    torch.manual_seed(seed)
    linear = torch.nn.Linear(in_features, out_features)
    attach_mask(linear, "weight", sample_mask((out_features, in_features), density, torch.Generator().manual_seed(seed)))
    return linear


@pytest.mark.parametrize("sparse_kernels, block_columns", [(True, None), (True, 16), (False, None)])
def test_sparse_linear_matches_the_masked_layer_forward_and_backward(sparse_kernels, block_columns):
    linear = masked_linear(48, 40, density=0.1)
    sparse = SparseLinear.from_masked_linear(linear, use_sparse_kernels=sparse_kernels, block_columns=block_columns)
    num_blocks = 1 if block_columns is None else 3  # 48 input columns and 40 output rows in blocks of 16
    assert len(sparse.column_blocks(sparse.values)) == len(sparse.transposed_row_blocks(sparse.values)) == num_blocks
    kept = linear.weight_mask.bool()
    assert sparse.values.numel() == int(kept.sum()) and torch.equal(sparse.dense_weight(), linear.weight.detach())
    x = torch.randn(3, 5, 48, requires_grad=True)  # any leading shape
    x_sparse = x.detach().clone().requires_grad_()
    grad = torch.randn(3, 5, 40)
    linear(x).backward(grad)
    output = sparse(x_sparse)
    output.backward(grad)
    torch.testing.assert_close(output, linear(x))
    torch.testing.assert_close(x_sparse.grad, x.grad)
    # The gradient of the kept weights only, in the layer's order of its values.
    assert torch.equal(torch.sort(sparse.flat_indices).values, kept.flatten().nonzero().squeeze(1))
    torch.testing.assert_close(sparse.values.grad, linear.weight.grad.flatten()[sparse.flat_indices])
    torch.testing.assert_close(sparse.bias.grad, linear.bias.grad)


def test_block_columns_is_checked():
    with pytest.raises(ValueError, match="block_columns must be an integer >= 1, got 0"):
        SparseLinear.from_masked_linear(masked_linear(8, 8, density=0.5), block_columns=0)


def test_backends_choose_layers():
    small = torch.nn.Sequential(masked_linear(64, 256, 0.05), torch.nn.ReLU(), torch.nn.Linear(256, 4))
    assert not use_sparse_kernels(small[0], "masked") and use_sparse_kernels(small[0], "csr")
    assert not use_sparse_kernels(small[0], "auto")  # too small to pay
    assert not use_sparse_kernels(small[2], "csr")  # no mask: stays dense
    assert _to_sparse_execution_(small, "csr") == ["0"] and isinstance(small[0], SparseLinear)
    large = masked_linear(512, 2048, density=0.05)
    # auto: large and very sparse layers, on machines without a GPU (where SB3 trains on the CPU)
    assert use_sparse_kernels(large, "auto") == (not torch.cuda.is_available())
    assert not use_sparse_kernels(masked_linear(512, 2048, density=0.3), "auto")
    with pytest.raises(ValueError, match=r"sparse_backend must be one of \('masked', 'csr', 'auto'\), got 'sparse'"):
        use_sparse_kernels(large, "sparse")
    with pytest.raises(ValueError, match=r"sparse_backend must be one of \('masked', 'csr', 'auto'\), got 'fast'"):
        SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(sparse_backend="fast"))


def test_prune_for_execution_matches_prune_then_convert():
    """Converting each layer as soon as it is masked gives the same masks, weights and layers."""
    networks = []
    for prune in ("then_convert", "for_execution"):
        torch.manual_seed(0)
        network = CriticNetwork(10, 2, 64, 2)
        generator = torch.Generator().manual_seed(1)
        if prune == "then_convert":
            densities = prune_erdos_renyi_(network, 0.9, generator)
            _to_sparse_execution_(network, "csr")
        else:
            densities = prune_for_execution_(network, 0.9, generator, backend="csr")
        networks.append((network, densities))
    (first, first_densities), (second, second_densities) = networks
    assert first_densities == second_densities
    assert [type(m) for m in first.modules()] == [type(m) for m in second.modules()]
    assert sum(isinstance(m, SparseLinear) for m in second.modules()) == 5  # embedding and residual kernels
    first_tensors, second_tensors = first.state_dict(), second.state_dict()
    assert first_tensors.keys() == second_tensors.keys()
    for name in first_tensors:
        assert torch.equal(first_tensors[name], second_tensors[name]), name
    with pytest.raises(ValueError, match="sparse_backend must be one of"):
        prune_for_execution_(CriticNetwork(10, 2, 64, 1), 0.9, backend="sparse")


def dense_equivalent(network):
    """Every parameter by name, SparseLinear weights scattered back to their dense shape."""
    values = {}
    for name, module in network.named_modules():
        if isinstance(module, SparseLinear):
            values[f"{name}.weight"] = module.dense_weight().detach()
    for name, parameter in network.named_parameters():
        if not name.endswith(".values"):
            values[name] = parameter.detach()
    return values


@pytest.mark.parametrize("algorithm, block_columns", [(SAC, None), (TD3, None), (SAC, 48)])
def test_first_100_gradient_steps_match_the_masked_model(algorithm, block_columns, monkeypatch):
    if block_columns is not None:  # the critic's 64- and 256-wide layers split into column blocks
        monkeypatch.setattr(sparse_execution, "BLOCK_COLUMNS", block_columns)
    models = [
        algorithm("SparseSimBaPolicy", "Pendulum-v1", seed=0, batch_size=64, policy_kwargs=dict(TINY, sparse_backend=backend))
        for backend in ("masked", "csr")
    ]
    layers = [m for m in models[1].policy.critic.modules() if isinstance(m, SparseLinear)]
    assert layers and max(len(layer.column_blocks(layer.values)) for layer in layers) == (1 if block_columns is None else 6)
    for model in models:  # the same transitions in both buffers, the same random draws in both updates
        rng = np.random.default_rng(0)
        for _ in range(300):
            observation, next_observation = rng.normal(size=(2, 1, 3)).astype(np.float32)
            model.replay_buffer.add(
                observation, next_observation, rng.uniform(-1, 1, (1, 1)), rng.normal(size=1), np.array([False]), [{}]
            )
        model.policy.update_observation_statistics(model.replay_buffer.observations[:300, 0])
        model._setup_learn(100, None)
        np.random.seed(1)
        torch.manual_seed(1)
        model.train(gradient_steps=100, batch_size=64)
    for network in ("actor", "critic", "critic_target"):
        masked, sparse = (dense_equivalent(getattr(model.policy, network)) for model in models)
        assert masked.keys() == sparse.keys()
        for name in masked:
            torch.testing.assert_close(sparse[name], masked[name], rtol=1e-5, atol=1e-5, msg=f"{network}.{name}")


def assert_target_shares_indices(model):
    """The target critic's sparse layers use the critic's index tensors (one copy in memory) but their own values."""
    critic = dict(model.policy.critic.named_modules())
    targets = model.policy.critic_target.named_modules()
    pairs = [(layer, critic[name]) for name, layer in targets if isinstance(layer, SparseLinear)]
    assert pairs
    for target_layer, layer in pairs:
        assert all(getattr(target_layer, name) is getattr(layer, name) for name in sparse_execution.INDEX_BUFFERS)
        assert target_layer.values is not layer.values


def test_csr_model_trains_saves_and_loads(tmp_path):
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", seed=0, learning_starts=100, policy_kwargs=dict(TINY, sparse_backend="csr")
    )
    critic_rows = {row.name: row for row in density_report(model.policy.critic)}
    dense_rows = {
        row.name: row
        for row in density_report(SAC("SparseSimBaPolicy", "Pendulum-v1", seed=0, policy_kwargs=TINY).policy.critic)
    }
    assert critic_rows == dense_rows  # the same names, shapes and kept counts as the masked model
    stored = sum(p.numel() for p in model.policy.critic.parameters())
    assert stored < 0.3 * sum(row.numel for row in critic_rows.values())  # only the nonzero weights are parameters
    assert_target_shares_indices(model)
    model.learn(300)
    model.save(tmp_path / "csr")
    loaded = SAC.load(tmp_path / "csr", env=gym.make("Pendulum-v1"))
    assert_target_shares_indices(loaded)
    for name, layer in model.policy.critic_target.named_modules():  # own values, shared indices, all saved
        if isinstance(layer, SparseLinear):
            loaded_layer = loaded.policy.critic_target.get_submodule(name)
            assert torch.equal(loaded_layer.values, layer.values)
            assert torch.equal(loaded_layer.flat_indices, layer.flat_indices)
    observation = np.zeros(3, dtype=np.float32)
    np.testing.assert_array_equal(
        model.predict(observation, deterministic=True)[0], loaded.predict(observation, deterministic=True)[0]
    )
    loaded.learn(50, reset_num_timesteps=False)
    with pytest.raises(ValueError, match="cannot re-initialize the actor's SparseLinear layers"):
        loaded.learn(10, callback=sb3_sparse.ResetCallback(interval=5), reset_num_timesteps=False)
