"""A comparison gives each side its own best-known settings: what the benchmarks build, checked
without timing anything (speed figures live in benchmarks/README.md, never in tests)."""

from pathlib import Path

import pytest
from stable_baselines3.common.vec_env import VecNormalize

from tests.conftest import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    return load_script(BENCHMARKS / f"{name}.py")


def test_her_fetch_reach_gives_plain_sb3_the_zoos_own_entry():
    pytest.importorskip("gymnasium_robotics")
    pytest.importorskip("rl_zoo3")
    benchmark = load_benchmark("her_fetch_reach")
    from sb3_sparse.robotics import register_robotics_envs

    register_robotics_envs()
    baseline, normalization = benchmark.zoo_baseline(seed=0)
    assert isinstance(normalization, VecNormalize) and baseline.get_env() is normalization  # the zoo's normalize: true
    assert normalization.gamma == 0.95 and baseline.learning_rate == 1e-3 and baseline.batch_size == 256
    assert baseline.policy.net_arch == [64, 64]  # the zoo's policy_kwargs
    ours = benchmark.sparse_policy(seed=0)
    assert ours.get_vec_normalize_env() is None and ours.learning_rate == 5e-4  # the package's own entry
    assert ours.policy.architecture.critic_sparsity == 0.8


def test_peers_pins_every_models_process_before_the_libraries_start():
    source = (BENCHMARKS / "peers.py").read_text()
    serve = source[source.index("def serve(") : source.index("def matmul_gflops(")]
    assert serve.index("os.sched_setaffinity(0, {args.core})") < serve.index("import torch")
