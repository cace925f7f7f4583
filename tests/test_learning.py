"""Learning tests of the on-policy and value-based policies against the RL Baselines3 Zoo's published
results (benchmark.md of rl-baselines3-zoo: PPO CartPole-v1 500.0 +/- 0.0 after 100k steps, DQN
CartPole-v1 500.0 +/- 0.0 after 50k steps, deterministic evaluation), side by side with SB3's
MlpPolicy trained with the same settings in the same test."""

import gymnasium as gym
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.monitor import Monitor

from sb3_sparse.hyperparams import algorithm_kwargs
from sb3_sparse.sparsity import pruned_weights_are_zero

#: The zoo's result on CartPole-v1 for both algorithms: the maximal return, every episode.
ZOO_RETURN = 500.0


def best_evaluation(algorithm, policy, kwargs, budget, eval_freq, seed=0):
    """Train until a 10-episode deterministic evaluation returns the zoo's 500 (or the budget ends);
    the best mean evaluation return and the agent steps it took."""
    if policy == "MlpPolicy":  # SB3's default MLP with the entry's algorithm settings
        kwargs = {**kwargs, "policy_kwargs": dict(net_arch=[256, 256]) if algorithm is DQN else None}
    model = algorithm(policy, "CartPole-v1", seed=seed, **kwargs)
    stop = StopTrainingOnRewardThreshold(reward_threshold=ZOO_RETURN - 1e-6, verbose=0)
    env = Monitor(gym.make("CartPole-v1"))
    evaluation = EvalCallback(env, eval_freq=eval_freq, n_eval_episodes=10, callback_on_new_best=stop, verbose=0)
    model.learn(budget, callback=evaluation)
    if policy != "MlpPolicy":
        assert pruned_weights_are_zero(model.policy)
    return evaluation.best_mean_reward, model.num_timesteps


@pytest.mark.slow
@pytest.mark.parametrize(("algorithm", "eval_freq"), [(PPO, 1024), (DQN, 1000)])
def test_sparse_simba_reaches_the_zoos_cartpole_result_beside_mlp_policy(algorithm, eval_freq):
    """The package's CartPole-v1 entry (SimBa at sparsity 0.8) reaches the zoo's 500 within the zoo's
    budget, as SB3's MlpPolicy does with the same algorithm settings."""
    policy, budget, kwargs = algorithm_kwargs(algorithm.__name__.lower(), "CartPole-v1", action_dim=1)
    assert policy == "SparseSimBaPolicy" and kwargs["policy_kwargs"]["critic_sparsity"] == 0.8
    results = {name: best_evaluation(algorithm, name, kwargs, budget, eval_freq) for name in (policy, "MlpPolicy")}
    print({name: f"best {best:.1f} at {steps:,} steps" for name, (best, steps) in results.items()})
    for name, (best, _) in results.items():
        assert best == pytest.approx(ZOO_RETURN), f"{name}: best mean return {best:.1f} within {budget:,} steps"
