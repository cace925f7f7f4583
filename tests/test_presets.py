"""Size presets and parameter counts before any network is built."""

from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import pytest
from sb3_contrib import QRDQN, TQC
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

import sb3_sparse  # noqa: F401
from sb3_sparse.envs import dmc_env_id
from sb3_sparse.presets import (
    SIZE_PRESETS,
    env_dimensions,
    parameter_count,
    parameter_count_for_env,
    scale_sizes,
    scaled_architecture,
    size_preset,
)
from sb3_sparse.sweep import Sweep

EXAMPLE_SWEEPS = Path(__file__).parent.parent / "examples" / "sweeps"


def trained_parameters(model):
    return sum(p.numel() for net in (model.policy.actor, model.policy.critic) for p in net.parameters())


@pytest.mark.parametrize(
    ("algorithm", "name", "policy_kwargs"),
    [
        (SAC, "sac", dict(actor_hidden_dim=24, actor_num_blocks=2, critic_hidden_dim=40, critic_num_blocks=3, n_critics=2)),
        (SAC, "sac", dict(actor_hidden_dim=8, actor_num_blocks=0, critic_hidden_dim=16, critic_num_blocks=1, n_critics=1)),
        (TD3, "td3", dict(actor_hidden_dim=16, critic_hidden_dim=24, critic_num_blocks=1, n_critics=2)),
        (DDPG, "ddpg", dict(actor_hidden_dim=16, critic_hidden_dim=24, critic_num_blocks=1, n_critics=1)),
        (TQC, "tqc", dict(actor_hidden_dim=16, critic_hidden_dim=24, critic_num_blocks=1, n_critics=3, n_quantiles=7)),
    ],
)
def test_count_matches_the_built_networks(algorithm, name, policy_kwargs):
    model = algorithm("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(policy_kwargs, critic_sparsity=0.8))
    assert parameter_count(3, 1, algorithm=name, **policy_kwargs).total == trained_parameters(model)


def all_trained_parameters(policy):
    """Every parameter of the policy but those of its target networks."""
    targets = {id(p) for name, child in policy.named_children() if name.endswith("_target") for p in child.parameters()}
    return sum(p.numel() for p in policy.parameters() if id(p) not in targets)


SIZES = dict(actor_hidden_dim=24, actor_num_blocks=2, critic_hidden_dim=40, critic_num_blocks=1)


@pytest.mark.parametrize(
    ("algorithm", "name", "env_id", "policy_kwargs"),
    [
        (PPO, "ppo", "Pendulum-v1", SIZES),
        (PPO, "ppo", "CartPole-v1", SIZES),
        (A2C, "a2c", "Acrobot-v1", SIZES),
        (DQN, "dqn", "Acrobot-v1", dict(critic_hidden_dim=40, critic_num_blocks=2)),
        (QRDQN, "qrdqn", "CartPole-v1", dict(critic_hidden_dim=40, critic_num_blocks=1, n_quantiles=7)),
        (QRDQN, "qrdqn", "CartPole-v1", dict(critic_hidden_dim=16, critic_num_blocks=1)),  # 200 quantiles by default
    ],
)
def test_count_matches_the_built_on_policy_and_value_based_networks(algorithm, name, env_id, policy_kwargs):
    model = algorithm("SparseSimBaPolicy", env_id, policy_kwargs=dict(policy_kwargs, critic_sparsity=0.8))
    sizes = {key: value for key, value in policy_kwargs.items() if key != "n_quantiles"}
    observation_dim, action_dim = env_dimensions(env_id)
    counted = parameter_count(
        observation_dim,
        action_dim,
        algorithm=name,
        continuous_actions=env_id == "Pendulum-v1",
        n_quantiles=policy_kwargs.get("n_quantiles"),
        **sizes,
    )
    assert counted.total == all_trained_parameters(model.policy)


def test_width_scales_on_dog_give_the_papers_sizes():
    counts = {k: parameter_count(223, 38, **scaled_architecture(width_scale=k)).total for k in (1, 2, 5)}
    assert counts[1] == 4_507_853
    assert round(counts[2] / 1e6, 1) == 17.7
    assert round(counts[5] / 1e6) == 109
    assert parameter_count_for_env(dmc_env_id("dog-run"), "width2").total == counts[2]
    assert round(parameter_count(67, 21).total / 1e6, 2) == 4.39  # humanoid, from PAPER.md


def test_presets_scale_width_and_depth():
    assert size_preset("base") == dict(actor_hidden_dim=128, actor_num_blocks=1, critic_hidden_dim=512, critic_num_blocks=2)
    assert size_preset("width5") == dict(actor_hidden_dim=640, actor_num_blocks=1, critic_hidden_dim=2560, critic_num_blocks=2)
    assert size_preset("depth3") == dict(actor_hidden_dim=128, actor_num_blocks=3, critic_hidden_dim=512, critic_num_blocks=6)
    assert size_preset("width0.25") == dict(
        actor_hidden_dim=32, actor_num_blocks=1, critic_hidden_dim=128, critic_num_blocks=2
    )
    assert set(SIZE_PRESETS) >= {"base", "width2", "width5", "depth2"}


def test_bad_input_names_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown size preset 'huge'; valid presets: width0\.25, width0\.5, base, width2"):
        size_preset("huge")
    with pytest.raises(ValueError, match="width_scale must be > 0 with 128 \\* width_scale a whole number, got 0"):
        scaled_architecture(width_scale=0)
    with pytest.raises(ValueError, match=r"got 0\.3"):
        scaled_architecture(width_scale=0.3)
    with pytest.raises(
        ValueError,
        match="unknown algorithm 'stream_ac'; valid algorithms: sac, tqc, crossq, reference_sac, td3, ddpg, reference_ddpg",
    ):
        parameter_count(3, 1, algorithm="stream_ac")
    with pytest.raises(ValueError, match="dqn has one value network: n_critics must be 1, got 2"):
        parameter_count(4, 2, algorithm="dqn", n_critics=2)


SIZE_ARGUMENTS = ("actor_hidden_dim", "actor_num_blocks", "critic_hidden_dim", "critic_num_blocks")


def test_scale_sizes_multiplies_the_given_sizes():
    entry = dict(critic_hidden_dim=512, critic_num_blocks=1, critic_sparsity=0.8)
    assert scale_sizes(entry, "width2") == dict(critic_hidden_dim=1024, critic_num_blocks=1)
    assert scale_sizes(entry, "depth3") == dict(critic_hidden_dim=512, critic_num_blocks=3)
    assert scale_sizes(size_preset("base"), "width5") == size_preset("width5")  # the paper's networks from its base
    with pytest.raises(ValueError, match=r"preset width0\.25 scales critic_hidden_dim=6 by 0\.25 to 1\.5: not a whole width"):
        scale_sizes(dict(critic_hidden_dim=6), "width0.25")


def _run_sizes(sweep, run, preset, tmp_path):
    from sb3_sparse.train import resolve_entry

    config = sweep.run_config(replace(run, preset=preset), tmp_path / "run")
    env = gym.make(run.env)
    try:
        policy_kwargs = resolve_entry(config, env)[2]["policy_kwargs"]
    finally:
        env.close()
    return {key: policy_kwargs[key] for key in SIZE_ARGUMENTS if key in policy_kwargs}


@pytest.mark.parametrize("sweep_file", sorted(EXAMPLE_SWEEPS.glob("*.yml")), ids=lambda path: path.stem)
def test_every_example_sweep_builds_the_sizes_its_file_describes(sweep_file, tmp_path):
    """A preset multiplies the entry's sizes (or the -params base): widths by k, blocks by m, nothing replaced."""
    sweep = Sweep.from_yaml(sweep_file)
    run = sweep.runs()[0]
    base = _run_sizes(sweep, run, "base", tmp_path)
    for preset in sweep.presets:
        width_scale, depth_scale = SIZE_PRESETS[preset]
        expected = {key: value * (depth_scale if "blocks" in key else width_scale) for key, value in base.items()}
        assert _run_sizes(sweep, run, preset, tmp_path) == expected, preset
    documented = {  # the headers' own words
        "atari100k": dict(critic_hidden_dim=512, critic_num_blocks=1),  # "base: a head of 512"
        "dqn_gmp": dict(critic_hidden_dim=512, critic_num_blocks=1),
        "pendulum_cpu": dict(actor_hidden_dim=128, actor_num_blocks=1, critic_hidden_dim=512, critic_num_blocks=2),
        "topology_pendulum": dict(actor_hidden_dim=128, actor_num_blocks=1, critic_hidden_dim=512, critic_num_blocks=2),
    }
    if sweep_file.stem in documented:
        assert base == documented[sweep_file.stem]
