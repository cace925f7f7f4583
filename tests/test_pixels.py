"""Visual RL: DrQ's random shift, the frame-storing replay buffer (exact stacks, episode ends,
wrap-around, n-step returns), and short SAC/TD3 runs with SparseSimBaCnnPolicy on a DMC pixel task."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import CrossQ
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.logger import configure

import sb3_sparse  # noqa: F401  (registers the policies and the pixel ids)
from sb3_sparse import PlasticityCallback, pruned_weights_are_zero
from sb3_sparse.buffers import DrQReplayBuffer, random_shift
from sb3_sparse.envs import stack_frames

PIXEL_ENV = "sb3_sparse/dmc-pixels-cheetah-run-v0"
TINY = dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, feature_dim=16)


def test_random_shift_moves_each_image_by_at_most_pad_pixels():
    images = torch.randint(0, 256, (64, 9, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    shifted = random_shift(images, pad=4, generator=torch.Generator().manual_seed(1))
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    padded = torch.nn.functional.pad(images.float(), (4, 4, 4, 4), mode="replicate").to(torch.uint8)
    offsets = []
    for image, result in zip(padded, shifted, strict=True):
        found = [(dy, dx) for dy in range(9) for dx in range(9) if torch.equal(image[:, dy : dy + 84, dx : dx + 84], result)]
        assert len(found) == 1  # a crop of the padded image: a shift of at most 4 pixels each way
        offsets.append(found[0])
    assert len(set(offsets)) > 10  # independent shifts per image
    assert torch.equal(random_shift(images, pad=0), images)


class FrameEnv(gym.Env):
    """Random 3 x 6 x 6 frames, episodes of 3 to 7 steps that end by termination or truncation."""

    observation_space = gym.spaces.Box(0, 255, (3, 6, 6), np.uint8)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.steps, self.length = 0, int(self.np_random.integers(3, 8))
        return self._frame(), {}

    def step(self, action):
        self.steps += 1
        end = self.steps >= self.length
        terminated = end and self.length % 2 == 0
        return self._frame(), float(self.np_random.normal()), terminated, end and not terminated, {}

    def _frame(self):
        return self.np_random.integers(0, 256, (3, 6, 6), dtype=np.uint8)


def fill(buffer, steps, seed=0):
    """Play the stacked frame env for ``steps`` steps into the buffer; return the true transitions by action."""
    env = stack_frames(FrameEnv(), 3)
    obs, _ = env.reset(seed=seed)
    rng, truth = np.random.default_rng(seed), {}
    for _ in range(steps):
        action = rng.uniform(-1, 1, (1,)).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        truth[float(action[0])] = (obs, next_obs, reward, terminated, truncated)
        buffer.add(
            obs[None], next_obs[None], action[None], np.array([reward]), np.array([done]), [{"TimeLimit.truncated": truncated}]
        )
        obs = env.reset()[0] if done else next_obs
    return truth


@pytest.mark.parametrize("buffer_size", [500, 40])  # 40: wrapped around several times
def test_buffer_rebuilds_every_sampled_stack_exactly(buffer_size):
    space = gym.spaces.Box(0, 255, (9, 6, 6), np.uint8)
    buffer = DrQReplayBuffer(buffer_size, space, FrameEnv.action_space, device="cpu", pad=0)
    truth = fill(buffer, 200)
    assert buffer.frames.nbytes == buffer_size * 3 * 6 * 6  # one frame per transition
    batch = buffer.sample(256)
    for obs, action, next_obs, done, reward in zip(*(t.numpy() for t in batch[:5]), strict=True):
        true_obs, true_next, true_reward, terminated, _ = truth[float(action[0])]
        np.testing.assert_array_equal(obs, true_obs)
        np.testing.assert_array_equal(next_obs, true_next)
        assert reward[0] == pytest.approx(true_reward) and done[0] == float(terminated)


def test_n_step_returns_stop_at_episode_ends():
    space = gym.spaces.Box(0, 255, (9, 6, 6), np.uint8)
    buffer = DrQReplayBuffer(500, space, FrameEnv.action_space, device="cpu", pad=0, n_steps=3, gamma=0.5)
    fill(buffer, 100)
    batch = buffer.sample(128)
    index_of = {float(a): i for i, a in enumerate(buffer.actions[:100, 0, 0])}
    for action, reward, discount, done in zip(batch.actions, batch.rewards, batch.discounts, batch.dones, strict=True):
        i = index_of[float(action[0])]
        total, k = 0.0, 0
        while True:  # up to 3 rewards, stopping after the first episode end
            total += 0.5**k * buffer.rewards[i + k, 0]
            k += 1
            if k == 3 or buffer.dones[i + k - 1, 0]:
                break
        assert float(reward) == pytest.approx(total, abs=1e-6)
        assert float(discount) == pytest.approx(0.5**k)
        last = i + k - 1
        assert float(done) == buffer.dones[last, 0] * (1 - buffer.timeouts[last, 0])


def test_buffer_refuses_what_it_cannot_store():
    with pytest.raises(ValueError, match=r"uint8 observations of shape \(3 \* frame_stack, height, width\) = \(9, h, w\)"):
        DrQReplayBuffer(10, gym.spaces.Box(-1, 1, (17,)), FrameEnv.action_space)
    with pytest.raises(ValueError, match="pad must be an integer >= 0, got -1"):
        DrQReplayBuffer(10, gym.spaces.Box(0, 255, (9, 6, 6), np.uint8), FrameEnv.action_space, pad=-1)


@pytest.mark.parametrize("algorithm", [SAC, TD3])
def test_short_run_on_a_pixel_task_keeps_masks_through_training_and_save_load(tmp_path, algorithm):
    env = gym.make(PIXEL_ENV)
    model = algorithm(
        "SparseSimBaCnnPolicy", env, buffer_size=1000, learning_starts=24, batch_size=8, seed=0,
        replay_buffer_class=DrQReplayBuffer,
        policy_kwargs=dict(TINY, actor_sparsity=0.8, critic_sparsity=0.8, encoder_sparsity=0.5),
    )  # fmt: skip
    policy = model.policy
    encoder = policy.critic.features_extractor.encoder
    assert policy.actor.features_extractor.conv_encoder is encoder  # shared, owned by the critic
    assert not any(p is q for p in policy.actor.parameters() for q in encoder.parameters())  # the actor does not train it
    encoder_before = [p.detach().clone() for p in encoder.parameters()]
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    callback = PlasticityCallback(freq=40, batch_size=16, interference_samples=4)
    model.learn(40, callback=callback)
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, encoder.parameters(), strict=True))  # critic trains it
    networks = [policy.actor, policy.critic, policy.critic_target] + ([policy.actor_target] if algorithm is TD3 else [])
    assert all(pruned_weights_are_zero(network) for network in networks)
    assert pruned_weights_are_zero(encoder) and 0.45 < float((encoder.convolutions[2].weight == 0).float().mean()) < 0.55

    model.save(tmp_path / "model")
    loaded = algorithm.load(tmp_path / "model", env=env)
    for (name, saved), restored in zip(policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert torch.equal(saved, restored), name
    assert loaded.policy.actor.features_extractor.conv_encoder is loaded.policy.critic.features_extractor.encoder
    loaded.learn(8, reset_num_timesteps=False)
    assert all(pruned_weights_are_zero(getattr(loaded.policy, name)) for name in ("actor", "critic", "critic_target"))
    if algorithm is SAC:  # diagnostics of the SimBa heads and of the encoder's output
        with open(tmp_path / "log" / "progress.csv") as file:
            header = file.readline().strip().split(",")
        for key in ("plasticity/actor/srank", "plasticity/critic/dormant_ratio_0.1", "plasticity/encoder/srank"):
            assert key in header, key


def test_cnn_policy_refuses_flat_observations_and_unsupported_algorithms():
    with pytest.raises(ValueError, match=r"SparseSimBaCnnPolicy needs uint8 images in \[0, 255\]"):
        SAC("SparseSimBaCnnPolicy", "Pendulum-v1")
    with pytest.raises(ValueError, match=r"does not support CrossQ: .* is for SAC, TD3, DDPG, PPO, A2C, DQN, TQC"):
        CrossQ("SparseSimBaCnnPolicy", gym.make(PIXEL_ENV), buffer_size=10)
    with pytest.raises(ValueError, match="normalize_observations must be False"):
        SAC("SparseSimBaCnnPolicy", gym.make(PIXEL_ENV), buffer_size=10, policy_kwargs=dict(normalize_observations=True))


def test_sac_yml_has_the_drq_v2_setting_and_the_runner_trains_a_pixel_task(tmp_path):
    from sb3_sparse import train
    from sb3_sparse.hyperparams import algorithm_kwargs

    for task, budget in (
        ("quadruped-run", 1_500_000),
        ("hopper-hop", 1_500_000),
        ("cheetah-run", 500_000),
        ("walker-walk", 500_000),
    ):
        policy, n_timesteps, kwargs = algorithm_kwargs("sac", f"sb3_sparse/dmc-pixels-{task}-v0", action_dim=6)
        assert policy == "SparseSimBaCnnPolicy" and n_timesteps == budget
        assert (
            kwargs["learning_rate"] == 1e-4
            and kwargs["batch_size"] == 256
            and kwargs["replay_buffer_class"] is DrQReplayBuffer
        )
        assert kwargs["replay_buffer_kwargs"] == dict(frame_stack=3, pad=4, n_steps=3, gamma=0.99)
        assert kwargs["policy_kwargs"]["feature_dim"] == 50
    conf = tmp_path / "pixels.yml"
    conf.write_text(
        "sb3_sparse/dmc-pixels-cheetah-run-v0:\n  policy: SparseSimBaCnnPolicy\n  n_timesteps: 40\n  buffer_size: 500\n"
        "  batch_size: 8\n  learning_starts: 20\n"
        "  replay_buffer_class: \"__import__('sb3_sparse.buffers').buffers.DrQReplayBuffer\"\n"
        '  policy_kwargs: "dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, feature_dim=16, '
        'actor_sparsity=0.8, critic_sparsity=0.8)"\n'
    )
    output = train.main(
        ["--env", PIXEL_ENV, "--conf", str(conf), "--eval-freq", "1000", "--eval-episodes", "1", "--final-eval-episodes", "1",
         "--diagnostics-freq", "40", "--no-progress-bar", "--output-dir", str(tmp_path / "run")]
    )  # fmt: skip
    assert (output / "model.zip").is_file() and "encoder (convolutions" in (output / "density.txt").read_text()
