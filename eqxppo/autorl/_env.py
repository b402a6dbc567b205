"""`AutoRLEnv`: ARLBench's AutoRL environment on eqxppo's PPO.

An episode is `n_steps` AutoRL steps; each step takes a hyperparameter configuration
(the action), trains the same agent for `n_total_timesteps` more environment steps with
it, and returns objectives and state features. The interface (config keys and
defaults, `reset`, `step`'s arguments and return values, `info["train_info_df"]`,
checkpoints) is ARLBench's; what differs is what a step costs and does:

- The agent is built once. A step that changes only traced hyperparameters (the
  continuous ones, the normalisation switches) writes them into the state: the next
  training call runs the compiled program again, and the change takes effect
  (ARLBench rebuilds and recompiles the algorithm every step, and keeps the learning
  rate and gradient clip fixed at `init`). A step that changes static ones (`n_steps`,
  `minibatch_size`, `update_epochs`) compiles that structure once and keeps the learned
  state, whose shapes do not depend on it.
- `action` may be a partial mapping: missing names keep their current values.
- A step whose update diverged reports the worst value of every objective and
  `info["diverged"] = True`; the state keeps its last finite network.
- A run with seed `s` starts from `jax.random.fold_in(jax.random.key(0), s)`, as member
  `s` of a population does, so the population environment's members equal this
  environment stepped one member at a time.
- `checkpoint_path` loads an eqxppo checkpoint (`eqxppo.save`) into the agent and
  raises if it cannot (ARLBench prints the error and starts afresh).
"""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium
import jax
import jax.random as jr
import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace

from .._counts import as_count, budget_or_defaults
from .._extras import require
from ..agent import PPO, load, save
from ..ppo import PPOState, PPOTrainingResult
from . import _config
from ._spaces import to_gymnasium


def observation_space(config: Mapping[str, Any]) -> gymnasium.spaces.Dict:
    """`steps` (AutoRL step, environment steps so far) and the configured features."""
    spaces: dict[str, Any] = {
        "steps": gymnasium.spaces.Box(np.array([0.0, 0.0]), np.array([np.inf, np.inf]))
    }
    if "grad_info" in config["state_features"]:
        spaces["grad_info"] = gymnasium.spaces.Box(
            np.array([-np.inf, 0.0]), np.array([np.inf, np.inf])
        )
    return gymnasium.spaces.Dict(spaces)


def grad_info(result: PPOTrainingResult, *, members: bool = False) -> np.ndarray:
    """ARLBench's `grad_info` feature: the gradient's norm and variance, averaged over
    the step's updates; `(2,)`, or `(n_members, 2)` for a population's result."""
    if result.metrics is None:
        raise ValueError("grad_info needs the training metrics (track_metrics).")
    norm, var = (np.asarray(x) for x in result.metrics.grad_info())
    lead = norm.shape[:1] if members else ()
    mean = lambda x: np.nanmean(x.reshape(*lead, -1), axis=-1)
    return np.stack([mean(norm), mean(var)], axis=-1).astype(np.float32)


def train_info_df(result_rewards: np.ndarray, n_total_timesteps: int, n_eval_steps: int) -> Any:
    """ARLBench's `info["train_info_df"]`: budget steps and the mean return per evaluation."""
    pandas = require("pandas", "autorl", what="info['train_info_df']")
    steps = np.arange(1, n_eval_steps + 1) * n_total_timesteps // n_eval_steps
    return pandas.DataFrame({"steps": steps, "returns": result_rewards.mean(axis=-1)})


class AutoRLEnv(gymnasium.Env):
    """ARLBench's `AutoRLEnv` interface: configurations in, objectives out, one agent.

    **Arguments:**

    - `config`: any keys of `DEFAULT_AUTO_RL_CONFIG` (ARLBench's, with `algorithm="ppo"`);
      unknown keys warn and are ignored.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._config = _config.merge_config(config)
        self._seed = self._config["seed"]
        self._done = True
        self._total_training_steps = 0
        self._c_step = 0
        self._c_episode = 0
        self._checkpoints: list[str] = []
        self._config_space = PPO.get_hpo_config_space()
        self._hpo_config: dict[str, Any] = dict(PPO.get_default_hpo_config())
        self._nas_config = {**dict(PPO.get_default_nas_config()), **self._config["nas_config"]}
        self._algorithm = self._make_algorithm()
        self._algorithm_state: PPOState | None = None
        self._train_result: PPOTrainingResult | None = None
        self._observation_space = observation_space(self._config)

    def _make_algorithm(self) -> PPO:
        env, eval_env = _config.make_envs(self._config)
        return PPO(
            self._hpo_config,
            env,
            eval_env=eval_env,
            nas_config=self._nas_config,
            cnn_policy=self._config["cnn_policy"],
            deterministic_eval=self._config["deterministic_eval"],
            track_metrics=_config.tracks_metrics(self._config),
            track_trajectories=_config.tracks_trajectories(self._config),
        )

    # -- the episode ----------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: the next step initialises a fresh agent state."""
        del options
        if seed is not None:
            self._seed = as_count("seed", seed)
        self._done = False
        self._c_step = 0
        self._c_episode += 1
        if self._c_episode > 1 and self._algorithm.env.seeded_when_made:
            # envpool: the first episode's pools continue their streams; every episode
            # starts on pools made anew, as the first did (one compilation more).
            self._algorithm = self._make_algorithm()
        self._algorithm_state = None
        return {}, {}

    def step(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,  # (objectives come back as a dict, as ARLBench's do, not a float reward)
        action: Configuration | Mapping[str, Any],
        checkpoint_path: str | None = None,
        n_total_timesteps: int | float | None = None,
        n_eval_steps: int | None = None,
        n_eval_episodes: int | None = None,
        seed: int | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, float], bool, bool, dict[str, Any]]:
        """Train with configuration `action` for `n_total_timesteps` (default: the
        config's) and return `(obs, objectives, terminated, truncated, info)`.

        `truncated` is true on the episode's `n_steps`-th step; `terminated` is never.
        """
        if self._done:
            raise ValueError("Called step() before reset().")
        self._c_step += 1
        self._done = self._c_step >= self._config["n_steps"]
        self._hpo_config = {**self._hpo_config, **dict(action)}
        self._algorithm.update_hpo_config(self._hpo_config)
        if checkpoint_path:
            self._algorithm_state = self._load(checkpoint_path)
        elif self._algorithm_state is None:
            run_seed = self._seed if seed is None else as_count("seed", seed)
            self._algorithm_state = self._algorithm.init(jr.fold_in(jr.key(0), run_seed))
        budget = budget_or_defaults(
            self._config, n_total_timesteps, n_eval_steps, n_eval_episodes
        )._asdict()

        obs = {"steps": np.array([self._c_step, self._total_training_steps], np.float32)}
        meter = _config.EmissionsMeter("emissions" in self._config["objectives"])
        start = time.perf_counter()
        with meter:
            state, result = self._algorithm.train(*self._algorithm_state, **budget)
            jax.block_until_ready(result.eval_rewards)
        runtime = time.perf_counter() - start
        self._algorithm_state, self._train_result = state, result
        self._total_training_steps += budget["n_total_timesteps"]

        rewards = np.asarray(result.eval_rewards)
        info: dict[str, Any] = {
            "train_info_df": train_info_df(rewards, budget["n_total_timesteps"],
                                           budget["n_eval_steps"]),
            "diverged": bool(state.runner_state.diverged),
        }  # fmt: skip
        if info["diverged"]:
            objectives = _config.worst(self._config)
        else:
            objectives = _config.objectives(self._config, rewards[-1], runtime, meter.kg)
        if "grad_info" in self._config["state_features"]:
            obs["grad_info"] = grad_info(result)
        if self._config["checkpoint"]:
            info["checkpoint"] = self._save()
        return obs, objectives, False, self._done, info

    # -- checkpoints ----------------------------------------------------------------------

    def _save(self) -> str:
        assert self._algorithm_state is not None
        folder = Path(self._config["checkpoint_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{self._config['checkpoint_name']}_c_episode_{self._c_episode}_step_{self._c_step}"
        path = save(folder / f"{name}.eqx", self._algorithm, self._algorithm_state)
        self._checkpoints.append(str(path))
        return str(path)

    def _load(self, path: str) -> PPOState:
        agent, state = load(path)
        mine, theirs = self._algorithm.spec.metadata(), agent.spec.metadata()
        differ = [k for k in ("env", "nas_config", "cnn_policy") if mine[k] != theirs[k]]
        if differ:
            raise ValueError(f"{path!r} was saved for another {', '.join(differ)} than this one's.")
        return state

    # -- ARLBench's properties --------------------------------------------------------------

    @property
    def action_space(self) -> gymnasium.spaces.Space:  # pyright: ignore[reportIncompatibleVariableOverride]
        """The hyperparameter space as a gymnasium space."""
        return to_gymnasium(self._config_space)

    @property
    def observation_space(self) -> gymnasium.spaces.Space:  # pyright: ignore[reportIncompatibleVariableOverride]
        return self._observation_space

    @property
    def config_space(self) -> ConfigurationSpace:
        return self._config_space

    @property
    def hpo_config(self) -> dict[str, Any]:
        """The configuration the last step trained with."""
        return dict(self._hpo_config)

    @property
    def checkpoints(self) -> list[str]:
        return list(self._checkpoints)

    @property
    def objectives(self) -> list[str]:
        return list(self._config["objectives"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def algorithm(self) -> PPO:
        """The agent (its static structure is the last step's)."""
        return self._algorithm

    @property
    def algorithm_state(self) -> PPOState | None:
        return self._algorithm_state

    def eval(self, num_eval_episodes: int) -> np.ndarray:
        """Returns of `num_eval_episodes` episodes of the current policy."""
        if self._algorithm_state is None:
            raise ValueError("Agent not initialized. Call reset() and step() first.")
        return np.asarray(
            self._algorithm.eval(self._algorithm_state.runner_state, num_eval_episodes)
        )
