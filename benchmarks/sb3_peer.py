"""The Stable-Baselines3 side of ``ppo_vs_sb3.py``: SB3 PPO on our navigation world, one seed per process.

Runs in its own virtual environment (``benchmarks/setup_sb3_env.sh``: Python 3.11, torch 2.13.0 CPU,
stable-baselines3 2.9.2), never in the package's. Our package is not installed there: ``src/`` is put on
``sys.path`` and the Gymnasium adapter :class:`internalize.worlds.gym.NavigationEnv` is imported from it, so SB3
drives exactly our world (3 random blocks, reward R_e + R_s, 20-step truncated episodes, (9, 9, 4) uint8
observations, 3 actions).

The agent is the paper's (docs/paper-vs-reference.md, 'Policy and PPO'):
``PPO("CnnPolicy", env, learning_rate=1e-4,
policy_kwargs=dict(features_extractor_class=MinigridFeaturesExtractor, features_extractor_kwargs=dict(
features_dim=128)))``, one env (SB3 wraps it in a ``DummyVecEnv`` and, the observation being a channel-last
uint8 image, in a ``VecTransposeImage``), everything else SB3's default: n_steps 2048, batch 64, 10 epochs,
gamma 0.99, GAE 0.95, clip 0.2, heads [64, 64] tanh. ``--policy mlp`` is ``PPO("MlpPolicy", ...)`` with the same
hyper-parameters; SB3 still treats the uint8 Box(9, 9, 4) as an image there (transposed, divided by 255, then
flattened), which the output reports as ``obs_scaled_by_255``.

One thread per process: ``torch.set_num_threads(1)`` and XLA's CPU backend single-threaded for the world.

Usage (prints one JSON line on stdout; progress on stderr)::

    .venv-sb3/bin/python benchmarks/sb3_peer.py --policy cnn --rollouts 4            # throughput
    .venv-sb3/bin/python benchmarks/sb3_peer.py --policy mlp --rollouts 40 --seed 1  # a learning run

Output keys: ``policy``, ``seed``, ``n_steps``, ``rollouts``, ``steps`` (env steps learnt), ``setup_s`` (model
construction and the world's first jitted call, excluded from the rate), ``learn_s``, ``steps_per_s``,
``env_only_steps_per_s`` (the adapter alone, random actions through the same ``DummyVecEnv`` stack: how much of
SB3's time is the world), ``goals_per_episode`` (per rollout: mean goals over the episodes that finished in it,
as our PPO's metric of that name), ``return_per_episode`` (per rollout: mean undiscounted return R_e + R_s of
those episodes, our ``utility_return``), ``policy_params``, ``obs_scaled_by_255``, ``versions``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# The world runs single-threaded too: set before JAX is imported.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402 - after the process set-up above (XLA threads, sys.path)
import torch  # noqa: E402 - after the process set-up above
from torch import nn  # noqa: E402 - after the process set-up above


def _log(msg: str) -> None:
    print(f"[sb3_peer] {msg}", file=sys.stderr, flush=True)


def make_extractor_class():
    """The reference's ``MinigridFeaturesExtractor``, built after SB3 is imported."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinigridFeaturesExtractor(BaseFeaturesExtractor):
        """Conv2d(C,16,2) ReLU, Conv2d(16,32,2) ReLU, Conv2d(32,64,2) ReLU, Flatten, Linear(n,128) ReLU."""

        def __init__(self, observation_space, features_dim: int = 128) -> None:
            super().__init__(observation_space, features_dim)
            n_input_channels = observation_space.shape[0]
            self.cnn = nn.Sequential(
                nn.Conv2d(n_input_channels, 16, (2, 2)), nn.ReLU(),
                nn.Conv2d(16, 32, (2, 2)), nn.ReLU(),
                nn.Conv2d(32, 64, (2, 2)), nn.ReLU(),
                nn.Flatten(),
            )
            with torch.no_grad():
                n_flatten = self.cnn(torch.as_tensor(observation_space.sample()[None]).float()).shape[1]
            self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.linear(self.cnn(observations))

    return MinigridFeaturesExtractor


def make_goal_callback():
    """A callback recording, per rollout, the mean goals per episode over the episodes that finished in it."""
    from stable_baselines3.common.callbacks import BaseCallback

    class GoalsPerEpisode(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.current = None  # goals of each env's running episode
            self.current_return = None
            self.finished: list[float] = []
            self.finished_returns: list[float] = []
            self.per_rollout: list[float] = []
            self.returns_per_rollout: list[float] = []

        def _on_step(self) -> bool:
            infos, dones, rewards = self.locals["infos"], self.locals["dones"], self.locals["rewards"]
            if self.current is None:
                self.current, self.current_return = np.zeros(len(infos)), np.zeros(len(infos))
            for i, info in enumerate(infos):
                self.current[i] += float(info.get("goal_reached", False))
                self.current_return[i] += float(rewards[i])  # the env's reward, before SB3's bootstrap
                if dones[i]:
                    self.finished.append(self.current[i])
                    self.finished_returns.append(self.current_return[i])
                    self.current[i] = self.current_return[i] = 0.0
            return True

        def _on_rollout_end(self) -> None:
            mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731 - a local one-liner
            self.per_rollout.append(mean(self.finished))
            self.returns_per_rollout.append(mean(self.finished_returns))
            self.finished, self.finished_returns = [], []

    return GoalsPerEpisode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=("cnn", "mlp"), default="cnn")
    parser.add_argument("--rollouts", type=int, default=4, help="rollouts of n_steps env steps to learn")
    parser.add_argument("--n-steps", type=int, default=2048, help="SB3 n_steps (default: SB3's 2048)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    parser.add_argument("--blocks", type=int, default=3, help="random blocks per layout")
    parser.add_argument("--env-probe-steps", type=int, default=2048,
                        help="random-action steps to time the world alone (0: skip)")
    parser.add_argument("--pin-core", type=int, default=None, help="pin this process to one core")
    args = parser.parse_args(argv)
    if args.pin_core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.pin_core})
    torch.set_num_threads(1)

    import gymnasium
    import jax
    import stable_baselines3
    from stable_baselines3 import PPO
    from stable_baselines3.common.preprocessing import is_image_space
    from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

    from internalize.worlds.gym import NavigationEnv

    start = time.perf_counter()
    # The adapter's jitted reset/step are shared by all instances: compile them here, outside the timed part.
    warm = NavigationEnv(n_blocks=args.blocks)
    warm.reset(seed=args.seed)
    warm.step(2)

    env_only = None
    if args.env_probe_steps > 0:
        venv = VecTransposeImage(DummyVecEnv([lambda: NavigationEnv(n_blocks=args.blocks)]))
        venv.seed(args.seed)
        venv.reset()
        rng = np.random.default_rng(args.seed)
        actions = rng.integers(0, 3, size=(args.env_probe_steps, 1))
        t0 = time.perf_counter()
        for a in actions:
            venv.step(a)
        env_only = args.env_probe_steps / (time.perf_counter() - t0)

    env = NavigationEnv(n_blocks=args.blocks)
    kwargs = dict(learning_rate=args.learning_rate, n_steps=args.n_steps, seed=args.seed, device="cpu", verbose=0)
    if args.policy == "cnn":
        model = PPO("CnnPolicy", env, policy_kwargs=dict(
            features_extractor_class=make_extractor_class(), features_extractor_kwargs=dict(features_dim=128)),
            **kwargs)
    else:
        model = PPO("MlpPolicy", env, **kwargs)
    obs_space = model.observation_space
    scaled = bool(model.policy.normalize_images and is_image_space(obs_space))
    with torch.no_grad():  # check it on data: the features of an all-255 observation are <= 1
        probe = torch.full((1,) + obs_space.shape, 255, dtype=torch.uint8)
        from stable_baselines3.common.preprocessing import preprocess_obs
        scaled = scaled and float(preprocess_obs(probe, obs_space, model.policy.normalize_images).max()) <= 1.0
    callback = make_goal_callback()
    setup_s = time.perf_counter() - start
    steps = args.rollouts * args.n_steps
    _log(f"{args.policy}: seed {args.seed}, learning {steps} steps ({args.rollouts} rollouts) ...")
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    learn_s = time.perf_counter() - start
    _log(f"{args.policy}: seed {args.seed}: {steps / learn_s:.0f} steps/s ({learn_s:.1f} s)")
    print(json.dumps({
        "policy": args.policy,
        "seed": args.seed,
        "n_steps": args.n_steps,
        "rollouts": args.rollouts,
        "steps": int(model.num_timesteps),
        "setup_s": round(setup_s, 3),
        "learn_s": round(learn_s, 3),
        "steps_per_s": round(model.num_timesteps / learn_s, 1),
        "env_only_steps_per_s": None if env_only is None else round(env_only, 1),
        "goals_per_episode": callback.per_rollout,
        "return_per_episode": callback.returns_per_rollout,
        "policy_params": int(sum(p.numel() for p in model.policy.parameters())),
        "observation_space": str(obs_space),
        "obs_scaled_by_255": scaled,
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__, "gymnasium": gymnasium.__version__,
            "jax_for_world": jax.__version__, "torch_threads": torch.get_num_threads(),
        },
    }))


if __name__ == "__main__":
    main()
