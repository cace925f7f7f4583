"""The reference code's SAC and DDPG updates: one gradient step equals a plain-torch transcription of
the reference's formulas, the DDPG target never reads a target actor, the tanh log-density is exact,
the warm-up count is the reference's, masks stay exact, and parameter counts are dense counts."""

import json
import math

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from torch.distributions import Normal

import sb3_sparse  # noqa: F401  (registers the policies)
from sb3_sparse import train
from sb3_sparse.distributions import ExactSquashedDiagGaussianDistribution
from sb3_sparse.presets import parameter_count
from sb3_sparse.reference import ReferenceDDPG, ReferenceSAC
from sb3_sparse.sparse_execution import SparseLinear
from sb3_sparse.sparsity import pruned_weights_are_zero
from tests.conftest import TINY_SIMBA
from tests.test_train import tiny_conf

SPARSE = dict(TINY_SIMBA, actor_sparsity=0.5, critic_sparsity=0.6)


def make(algorithm, n_critics=1, optimizer_class=torch.optim.AdamW, **kwargs):
    """A model whose replay buffer holds 120 random transitions of Pendulum, not yet trained."""
    policy_kwargs = dict(SPARSE, n_critics=n_critics, optimizer_class=optimizer_class)
    model = algorithm(
        "SparseSimBaPolicy",
        "Pendulum-v1",
        learning_starts=10_000,
        batch_size=32,
        policy_kwargs=policy_kwargs,
        seed=3,
        **kwargs,
    )
    model.learn(120)
    return model


def fixed_batch(model):
    np.random.seed(0)
    batch = model.replay_buffer.sample(32)
    model.replay_buffer.sample = lambda *args, **kwargs: batch
    return batch


def assert_same_parameters(model, other):
    for name in ("actor", "critic", "critic_target"):
        for (key, mine), theirs in zip(
            getattr(model, name).state_dict().items(), getattr(other, name).state_dict().values(), strict=True
        ):
            torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=0, msg=f"{name}.{key}")


@torch.no_grad()
def polyak(critic, target, tau):
    for p, p_target in zip(critic.parameters(), target.parameters(), strict=True):
        p_target.mul_(1 - tau).add_(tau * p)


def exact_tanh_gaussian(actor, observations):
    """Sample ``a = tanh(u)``, ``u ~ N(mean, std)``, with log pi(a) = log N(u) - sum 2 (log 2 - u - softplus(-2u))."""
    mean, log_std, _ = actor.get_action_dist_params(observations)
    gaussian = Normal(mean, log_std.exp())
    u = gaussian.rsample()
    log_prob = gaussian.log_prob(u).sum(-1) - (2 * (math.log(2) - u - torch.nn.functional.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), log_prob


def reference_sac_step(model, batch):
    """One gradient step of the reference's SAC, written out with the model's networks and optimizers."""
    actor, critic, target, log_alpha = model.actor, model.critic, model.critic_target, model.log_ent_coef
    obs, next_obs = batch.observations, batch.next_observations
    # (1) actor, against the current critic, with alpha before this step
    alpha = log_alpha.exp().detach()
    actions, log_prob = exact_tanh_gaussian(actor, obs)
    q = torch.cat(critic(obs, actions), dim=1).min(dim=1).values
    actor_loss = (alpha * log_prob - q).mean()
    actor.optimizer.zero_grad()
    actor_loss.backward(inputs=list(actor.parameters()))
    actor.optimizer.step()
    # (2) temperature: alpha (H - H_target), H from the actor's batch
    entropy = -log_prob.detach().mean()
    temperature_loss = (log_alpha.exp() * (entropy - model.target_entropy)).sum()
    model.ent_coef_optimizer.zero_grad()
    temperature_loss.backward()
    model.ent_coef_optimizer.step()
    # (3) critic, targets from the new actor and the new temperature
    with torch.no_grad():
        next_actions, next_log_prob = exact_tanh_gaussian(actor, next_obs)
        next_q = torch.cat(target(next_obs, next_actions), dim=1).min(dim=1).values
        y = batch.rewards.reshape(-1) + model.gamma * (1 - batch.dones.reshape(-1)) * (
            next_q - log_alpha.exp() * next_log_prob
        )
    critic_loss = sum(((q_i.reshape(-1) - y) ** 2).mean() for q_i in critic(obs, batch.actions))
    critic.optimizer.zero_grad()
    critic_loss.backward()
    critic.optimizer.step()
    # (4) Polyak
    polyak(critic, target, model.tau)


# SGD: Adam's steps do not change when a loss is scaled, SGD's do (a 0.5 in the critic loss shows).
SGD = dict(optimizer_class=torch.optim.SGD, learning_rate=0.01, ent_coef="auto_0.1")


@pytest.mark.parametrize("n_critics", [1, 2])
def test_reference_sac_update_equals_the_reference_formulas(n_critics):
    model, other = make(ReferenceSAC, n_critics, **SGD), make(ReferenceSAC, n_critics, **SGD)
    assert isinstance(model.actor.action_dist, ExactSquashedDiagGaussianDistribution)
    batch = fixed_batch(model)
    torch.manual_seed(11)
    model.train(gradient_steps=3, batch_size=32)
    torch.manual_seed(11)
    for _ in range(3):  # several steps: the temperature's Adam shows the alpha factor from its second step on
        reference_sac_step(other, batch)
    assert_same_parameters(model, other)
    torch.testing.assert_close(model.log_ent_coef, other.log_ent_coef, atol=1e-6, rtol=0)
    assert all(pruned_weights_are_zero(getattr(model.policy, name)) for name in ("actor", "critic", "critic_target"))


def test_the_transcription_check_can_fail():
    """SB3's SAC on the same batch and noise is a different update: the comparison above notices."""
    model, other = make(SAC, **SGD), make(ReferenceSAC, **SGD)
    fixed_batch(model), fixed_batch(other)
    torch.manual_seed(11)
    model.train(gradient_steps=1, batch_size=32)
    torch.manual_seed(11)
    other.train(gradient_steps=1, batch_size=32)
    with pytest.raises(AssertionError):
        assert_same_parameters(model, other)


def test_reference_ddpg_update_equals_the_reference_formulas():
    sgd = dict(optimizer_class=torch.optim.SGD, learning_rate=0.05)
    model, other = make(ReferenceDDPG, **sgd), make(ReferenceDDPG, **sgd)
    batch = fixed_batch(model)
    torch.manual_seed(5)
    model.train(gradient_steps=1, batch_size=32)

    torch.manual_seed(5)
    actor, critic, target, sigma = other.actor, other.critic, other.critic_target, other.update_noise_std
    obs, next_obs = batch.observations, batch.next_observations
    # (1) actor: -Q(s, clip(pi(s) + N(0, sigma^2), -1, 1)) against the current critic
    policy_actions = actor(obs)
    noisy = (policy_actions + sigma * torch.randn_like(policy_actions)).clamp(-1, 1)
    actor_loss = -critic(obs, noisy)[0].mean()
    actor.optimizer.zero_grad()
    actor_loss.backward(inputs=list(actor.parameters()))
    actor.optimizer.step()
    # (2) critic: target with the updated ONLINE actor's noisy action (no target actor)
    with torch.no_grad():
        next_policy = actor(next_obs)
        next_actions = (next_policy + sigma * torch.randn_like(next_policy)).clamp(-1, 1)
        y = batch.rewards.reshape(-1) + other.gamma * (1 - batch.dones.reshape(-1)) * target(next_obs, next_actions)[
            0
        ].reshape(-1)
    critic_loss = ((critic(obs, batch.actions)[0].reshape(-1) - y) ** 2).mean()
    critic.optimizer.zero_grad()
    critic_loss.backward()
    critic.optimizer.step()
    # (3) Polyak of the target critic
    polyak(critic, target, other.tau)

    assert_same_parameters(model, other)
    assert all(pruned_weights_are_zero(getattr(model.policy, name)) for name in ("actor", "critic", "critic_target"))


def test_reference_ddpg_never_reads_the_target_actor():
    model = make(ReferenceDDPG, learning_rate=1e-3)
    with torch.no_grad():
        for parameter in model.actor_target.parameters():
            parameter.fill_(float("nan"))

    def refuse(*args, **kwargs):
        raise AssertionError("the target actor was read")

    model.actor_target.forward = refuse
    model.learning_starts = 0
    model.learn(60, reset_num_timesteps=False)
    assert model._n_updates >= 60
    assert all(torch.isfinite(p).all() for p in model.critic_target.parameters())
    assert model.action_noise is not None and np.allclose(model.action_noise._sigma, 0.1)


def test_tanh_log_density_is_exact_at_the_saturation():
    u = torch.tensor([[10.0, -10.0, 0.3]])
    mean, log_std = torch.zeros_like(u), torch.zeros_like(u)
    exact, sb3 = ExactSquashedDiagGaussianDistribution(3), SquashedDiagGaussianDistribution(3)
    exact.proba_distribution(mean, log_std)
    sb3.proba_distribution(mean, log_std)
    gaussian = Normal(mean, torch.ones_like(u)).log_prob(u).double()
    # log(1 - tanh(u)^2) = -2 log cosh(u), in float64: -18.61 at |u| = 10
    truth = (gaussian - (-2 * torch.log(torch.cosh(u.double())))).sum()
    assert exact.log_prob(torch.tanh(u), u).item() == pytest.approx(truth.item(), abs=1e-4)
    # SB3's 1e-6 caps the correction at -log(1e-6) = 13.8 per saturated dimension.
    assert sb3.log_prob(torch.tanh(u), u).item() < truth.item() - 9.0


def test_exact_log_prob_policy_kwarg_works_from_sb3_sac():
    model = SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(SPARSE, exact_log_prob=True), learning_starts=50)
    assert isinstance(model.actor.action_dist, ExactSquashedDiagGaussianDistribution)
    model.learn(80)
    with pytest.raises(ValueError, match="exact_log_prob=True needs a squashed Gaussian actor"):
        ReferenceDDPG("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(SPARSE, exact_log_prob=True))


@pytest.mark.parametrize("algorithm", [ReferenceSAC, SAC])
def test_warm_up_count(algorithm):
    """The reference's first update follows its 50th random transition; SB3's follows one more."""
    model = algorithm("SparseSimBaPolicy", "Pendulum-v1", learning_starts=50, gradient_steps=1, policy_kwargs=SPARSE)
    model.learn(50)
    assert model._n_updates == (1 if algorithm is ReferenceSAC else 0)
    model.learn(1, reset_num_timesteps=False)
    assert model._n_updates == (2 if algorithm is ReferenceSAC else 1)


def test_reference_models_save_and_load_with_their_masks(tmp_path):
    for algorithm in (ReferenceSAC, ReferenceDDPG):
        model = algorithm("SparseSimBaPolicy", "Pendulum-v1", learning_starts=30, policy_kwargs=SPARSE, seed=0)
        model.learn(60)
        model.save(tmp_path / "model.zip")
        loaded = algorithm.load(tmp_path / "model.zip", env=model.get_env())
        assert type(loaded) is algorithm and pruned_weights_are_zero(loaded.policy)
        obs = np.zeros((1, 3), dtype=np.float32)
        assert np.allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
        if algorithm is ReferenceSAC:
            assert isinstance(loaded.actor.action_dist, ExactSquashedDiagGaussianDistribution)
        loaded.learn(10, reset_num_timesteps=False)


def test_runner_reports_dense_parameter_counts_of_sparse_layers(tmp_path):
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
    conf.write_text(
        conf.read_text()
        .replace("critic_hidden_dim=32", "critic_hidden_dim=512")
        .replace("critic_sparsity=0.8", "critic_sparsity=0.9, sparse_backend='csr'")
    )
    output_dir = train.main(
        ["--conf", str(conf), "--timesteps", "110", "--eval-episodes", "1", "--final-eval-episodes", "1",
         "--diagnostics-freq", "0", "--output-dir", str(tmp_path / "run"), "--no-progress-bar"]
    )  # fmt: skip
    model = ReferenceSAC.load(output_dir / "model.zip")
    assert any(isinstance(layer, SparseLinear) for layer in model.critic.modules())
    expected = parameter_count(3, 1, actor_hidden_dim=16, critic_hidden_dim=512, critic_num_blocks=1, n_critics=1).total
    assert json.loads((output_dir / "result.json").read_text())["parameters"] == expected
    assert json.loads((output_dir / "config.json").read_text())["parameters"] == expected
    stored = sum(p.numel() for net in (model.actor, model.critic) for p in net.parameters())
    assert stored < expected / 2  # what the sparse layers store is not what is reported
