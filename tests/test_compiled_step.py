"""Compiled gradient steps of the reference algorithms (``compile_gradient_step=True``): 100 compiled
steps equal 100 eager ones within float32 rounding, the losses compile once (no recompilation
afterwards, no graph breaks), masks stay exact, save/load keeps the setting and the model, and the
runner takes the settings from the zoo's ``-params``."""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

import sb3_sparse  # noqa: F401  (registers the policies)
from sb3_sparse import train
from sb3_sparse.reference import ReferenceDDPG, ReferenceSAC
from sb3_sparse.sparsity import pruned_weights_are_zero
from tests.conftest import TINY_SIMBA
from tests.test_train import tiny_conf

POLICY_KWARGS = dict(TINY_SIMBA, actor_sparsity=0.5, critic_sparsity=0.8, sparse_backend="masked")
ALGORITHMS = [ReferenceSAC, ReferenceDDPG]
NETWORKS = ("actor", "critic", "critic_target")


def make(algorithm, compile_gradient_step, **kwargs):
    """A model whose replay buffer holds 200 random transitions of Pendulum, not yet trained."""
    if algorithm is ReferenceSAC:
        # SB3's temperature (1.0, target -|A|): the reference's 0.01 lets this tiny actor saturate
        # within 100 steps, where float32 rounding differences between the graphs grow past any tolerance.
        kwargs = dict(ent_coef="auto", target_entropy="auto", **kwargs)
    model = algorithm(
        "SparseSimBaPolicy",
        "Pendulum-v1",
        learning_starts=10_000,
        gradient_steps=1,
        batch_size=64,
        learning_rate=1e-3,
        policy_kwargs=POLICY_KWARGS,
        compile_gradient_step=compile_gradient_step,
        seed=5,
        **kwargs,
    )
    model.learn(200)
    return model


def train_seeded(model, gradient_steps):
    """``gradient_steps`` steps on batches and noise drawn from the same seeds for every model."""
    np.random.seed(0)  # the replay buffer's sampling
    torch.manual_seed(0)  # the actor's and the update's noise
    model.train(gradient_steps=gradient_steps, batch_size=model.batch_size)


def compiled_graphs() -> int:
    return counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compiled_steps_equal_eager_steps_and_compile_once(algorithm):
    eager, compiled = make(algorithm, False), make(algorithm, True)
    start = {name: [p.detach().clone() for p in getattr(eager, name).parameters()] for name in NETWORKS}
    for name in NETWORKS:  # the same start
        for mine, theirs in zip(start[name], getattr(compiled, name).parameters(), strict=True):
            assert torch.equal(mine, theirs)

    graphs_before = compiled_graphs()
    train_seeded(eager, 1)
    train_seeded(compiled, 1)
    assert compiled_graphs() - graphs_before == 2, "one graph per loss (actor, critic): no graph breaks"
    assert set(compiled._compiled_losses) == {"actor", "critic"}

    # No recompilation after the first step: dynamo raises if a guard fails from here on.
    with torch._dynamo.config.patch(error_on_recompile=True):
        train_seeded(eager, 99)
        train_seeded(compiled, 99)
    assert compiled_graphs() - graphs_before == 2
    assert compiled._n_updates == eager._n_updates == 100

    for name in NETWORKS:
        for (key, mine), theirs in zip(
            getattr(eager, name).state_dict().items(), getattr(compiled, name).state_dict().values(), strict=True
        ):
            torch.testing.assert_close(theirs, mine, atol=2e-5, rtol=1e-4, msg=f"{name}.{key}")
        trained = getattr(eager, name).parameters()
        moved = max(float((p.detach() - p0).abs().max()) for p, p0 in zip(trained, start[name], strict=True))
        assert moved > 1e-2, f"100 steps moved the {name}"
        assert pruned_weights_are_zero(getattr(compiled, name))

    with torch._dynamo.config.patch(error_on_recompile=True), pytest.raises(Exception, match=r"[Rr]ecompil"):
        compiled.train(gradient_steps=1, batch_size=32)  # the check is live: a new batch size recompiles


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compiled_model_saves_loads_and_trains_on(algorithm, tmp_path):
    # AOTAutograd's eager backend: inductor's code (the test above) would be generated again for
    # these graphs when a cold cache meets the test above running at the same time on another worker.
    compile_kwargs = dict(backend="aot_eager", dynamic=False)
    model = make(algorithm, True, compile_kwargs=compile_kwargs)
    train_seeded(model, 3)
    observations = np.stack([model.observation_space.sample() for _ in range(5)])
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "model.zip")

    loaded = algorithm.load(tmp_path / "model.zip", env=model.get_env())
    assert loaded.compile_gradient_step is True and loaded.compile_kwargs == compile_kwargs
    assert loaded._compiled_losses == {}, "compiled functions are never saved"
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)

    loaded.replay_buffer, loaded.learning_starts = model.replay_buffer, 0
    loaded.learn(5, reset_num_timesteps=False)  # the training loop, compiled again after the load
    assert loaded._n_updates == model._n_updates + 5
    assert set(loaded._compiled_losses) == {"actor", "critic"}
    for name in NETWORKS:
        assert pruned_weights_are_zero(getattr(loaded, name))

    eager = algorithm.load(tmp_path / "model.zip", compile_gradient_step=False)
    assert eager.compile_gradient_step is False


def test_compilation_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"compile_gradient_step must be True or False, got 'yes'"):
        ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", compile_gradient_step="yes")
    with pytest.raises(ValueError, match=r"compile_kwargs has \['modes'\]; torch.compile arguments allowed"):
        ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", compile_kwargs=dict(modes="default"))
    with pytest.raises(ValueError, match=r"mode='fast' is not a torch.compile mode; valid: \['default'"):
        ReferenceDDPG("SparseSimBaPolicy", "Pendulum-v1", compile_kwargs=dict(mode="fast"))
    csr = dict(TINY_SIMBA, critic_sparsity=0.9, sparse_backend="csr")
    with pytest.raises(ValueError, match=r"needs masked layers, but \d+ layers run sparse kernels .*sparse_backend='masked'"):
        ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", compile_gradient_step=True, policy_kwargs=csr)
    ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", compile_gradient_step=False, policy_kwargs=csr)  # eager: fine


def test_runner_trains_with_compiled_steps_from_params(tmp_path):
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
    # Inductor's code is the subject of the tests above; AOTAutograd's eager backend traces the same
    # graphs without generating C++, which took 40 s of a cold cache for this network alone.
    output_dir = train.main(
        [
            "--algo", "reference_sac", "-conf", str(conf), "-n", "150",
            "-params", "compile_gradient_step:True", "compile_kwargs:{backend: aot_eager}",
            "--eval-freq", "150", "--eval-episodes", "1", "--final-eval-episodes", "1", "--diagnostics-freq", "0",
            "--no-progress-bar", "--output-dir", str(tmp_path / "run"),
        ]
    )  # fmt: skip
    model = ReferenceSAC.load(output_dir / "model.zip")
    assert model.compile_gradient_step is True and model.compile_kwargs == dict(backend="aot_eager")
    assert model._n_updates == 51  # the reference's warm-up: the first update after the 100th transition
