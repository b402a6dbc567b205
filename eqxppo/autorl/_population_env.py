"""`AutoRLPopulationEnv`: the AutoRL environment stepping many configurations at once.

A step takes a list of configurations (and the seeds each runs with) and trains them as
one `Population`: one compiled program per static group, compiled side by side, each
program compiled once per process (a later step, or a later population, with the same
structure reuses it). Returns objectives per member. Between steps the members keep
their learned states: new traced values are written into them, and a change of static
structure regroups the members without losing what they learned. This is what batch
optimisers (ask a batch, tell a batch) and PBT need, and what ARLBench's one-agent
environment cannot do.

Member `m = i * n_seeds + j` is configuration `i` with seed `seeds[j]` and equals
`AutoRLEnv` with that seed stepped with configuration `i`'s sequence of actions.

The members are sharded over `jax.devices()`. On a CPU-only machine, call
`eqxppo.use_cpu_cores()` before the first JAX computation so that every core trains
its share of them (one device per core; about twice the steps/s on 2 cores).
"""

import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.random as jr
import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace

from .._counts import as_count, budget_or_defaults
from ..agent import PPO
from ..population import Population, PopulationState
from . import _config
from ._env import grad_info, observation_space, train_info_df


class AutoRLPopulationEnv:
    """The AutoRL environment for populations: a list of configurations per step.

    **Arguments:**

    - `config`: the keys of `DEFAULT_AUTO_RL_CONFIG`, as for `AutoRLEnv` (environments,
      architecture, objectives, budgets, `n_steps` AutoRL steps per episode); `seed` is
      the default seed of every member.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._config = _config.merge_config(config)
        if self._config["checkpoint"]:
            raise ValueError(
                "The population environment does not write checkpoints per step; save "
                "members with `eqxppo.save(PPO.from_population(pop, m, state), ...)`."
            )
        self._env, self._eval_env = _config.make_envs(self._config)
        self._config_space = PPO.get_hpo_config_space()
        self._nas_config = {**dict(PPO.get_default_nas_config()), **self._config["nas_config"]}
        self._done = True
        self._c_step = 0
        self._total_training_steps = 0
        self._population: Population | None = None
        self._state: PopulationState | None = None
        self._member_configs: list[dict[str, Any]] = []
        self.observation_space = observation_space(self._config)

    def reset(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: the next step initialises fresh members."""
        self._done = False
        self._c_step = 0
        self._total_training_steps = 0
        self._population, self._state = None, None
        return {}, {}

    def step(
        self,
        actions: Sequence[Configuration | Mapping[str, Any]],
        seeds: Sequence[int] | None = None,
        n_total_timesteps: int | float | None = None,
        n_eval_steps: int | None = None,
        n_eval_episodes: int | None = None,
    ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, float]], bool, bool, dict[str, Any]]:
        """Train every configuration x seed for `n_total_timesteps` more steps.

        The number of configurations and seeds stays fixed within an episode (members
        continue from their states); a partial mapping keeps the member's other values.

        **Returns:**

        `(obs, objectives, terminated, truncated, info)` with one `obs` and one
        `objectives` dict per member (configuration-major), `info["train_info_df"]` a
        list of DataFrames, `info["diverged"]` a bool per member, `info["programs"]` the
        compiled groups and `info["compile_seconds"]` the time spent compiling (zero
        when every structure was compiled before). `runtime` is the step's wall time,
        the same for all members (they train together).
        """
        if self._done:
            raise ValueError("Called step() before reset().")
        if isinstance(actions, Mapping) or not len(actions):
            raise TypeError("actions must be a non-empty sequence of configurations.")
        seeds = (
            (self._config["seed"],) if seeds is None else tuple(as_count("seed", s) for s in seeds)
        )
        n_members = len(actions) * len(seeds)
        if self._state is not None and n_members != len(self._member_configs):
            raise ValueError(
                f"This episode has {len(self._member_configs)} members; a step cannot "
                f"change it to {n_members} (reset() first)."
            )
        previous = self._member_configs or [dict(PPO.get_default_hpo_config())] * n_members
        configs = [
            {**previous[i * len(seeds) + j], **dict(action)}
            for i, action in enumerate(actions)
            for j in range(len(seeds))
        ]
        self._c_step += 1
        self._done = self._c_step >= self._config["n_steps"]
        budget = budget_or_defaults(
            self._config, n_total_timesteps, n_eval_steps, n_eval_episodes
        )._asdict()

        start = time.perf_counter()
        options = dict(
            eval_env=self._eval_env, nas_config=self._nas_config,
            cnn_policy=self._config["cnn_policy"],
            deterministic_eval=self._config["deterministic_eval"],
            track_metrics=_config.tracks_metrics(self._config),
            planned_timesteps=budget["n_total_timesteps"],
        )  # fmt: skip
        if self._state is None or self._population is None:
            # Configurations x seeds, member (i, j) from fold_in(key(0), seeds[j]).
            per_config = [configs[i * len(seeds)] for i in range(len(actions))]
            population = Population(per_config, self._env, seeds, **options)
            state = population.init(jr.key(0))
        else:
            # One configuration per member (after PBT the seeds of one configuration
            # may hold different values); each continues from its own state.
            population = Population(configs, self._env, (0,), **options)
            old, old_state = self._population, self._state
            members = [old.member(old_state, m).runner_state for m in range(n_members)]
            state = population.state_from_members(members)
        compile_start = time.perf_counter()
        population.compile(state, **budget)
        compile_seconds = time.perf_counter() - compile_start
        state, result = population.train(state, **budget)
        rewards = np.asarray(jax.block_until_ready(result.eval_rewards))
        runtime = time.perf_counter() - start

        self._population, self._state, self._member_configs = population, state, configs
        steps = np.array([self._c_step, self._total_training_steps], np.float32)
        self._total_training_steps += budget["n_total_timesteps"]
        diverged = population.diverged(state)
        objectives = [
            _config.worst(self._config) if diverged[m]
            else _config.objectives(self._config, rewards[m, -1], runtime)
            for m in range(n_members)
        ]  # fmt: skip
        obs: list[dict[str, np.ndarray]] = [{"steps": steps.copy()} for _ in range(n_members)]
        if "grad_info" in self._config["state_features"]:
            for m, row in enumerate(grad_info(result, members=True)):
                obs[m]["grad_info"] = row
        info = {
            "train_info_df": [
                train_info_df(rewards[m], budget["n_total_timesteps"], budget["n_eval_steps"])
                for m in range(n_members)
            ],
            "diverged": diverged,
            "programs": len(population.groups),
            "compile_seconds": compile_seconds,
        }
        return obs, objectives, False, self._done, info

    # -- what the loops read ----------------------------------------------------------------

    @property
    def population(self) -> Population | None:
        return self._population

    @property
    def state(self) -> PopulationState | None:
        return self._state

    @property
    def member_configs(self) -> list[dict[str, Any]]:
        """Each member's configuration as of the last step."""
        return [dict(c) for c in self._member_configs]

    @property
    def config_space(self) -> ConfigurationSpace:
        return self._config_space

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def set_state(self, population: Population, state: PopulationState) -> None:
        """Replace the members' states (after a PBT step on `population`)."""
        if population is not self._population:
            raise ValueError("The state must belong to this environment's population.")
        self._state = state
        self._member_configs = [
            population.member_hpo_config(m, state) for m in range(population.n_members)
        ]
