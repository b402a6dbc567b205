"""The `Population` facade: configurations x seeds trained as few compiled programs as possible.

Members are listed configuration-major (configuration `i`, seed `j` is member
`i * n_seeds + j`). Members whose static structure (`PPOConfig`) is equal form a group,
and with a planned budget groups that differ only in `update_epochs` merge when the
masked epochs cost less than a compilation (`plan_groups`); a group is one stacked
runner state, initialised and trained under one `vmap` in one
compilation, its member axis sharded over the devices (padded with copies of its last
member when the device count does not divide it). Results come back in member order.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax.random as jr
import numpy as np
from ConfigSpace import Configuration
from jax.typing import ArrayLike
from jaxtyping import PRNGKeyArray

from .._cores import warn_one_cpu_device
from .._counts import Count, as_count
from ..configspaces import (
    CONTINUOUS_KEYS,
    PPOConfig,
    PPOHyperparams,
    check_continuous,
    hpo_config_to_dict,
    parse_hpo_config,
)
from ..envs import AbstractEnvironment
from ..ppo import AgentSpec, PPORunnerState, PPOState, PPOTrainingResult
from ._compile import Program, compile_groups, group_member_bytes
from ._grouped import GroupedMembers, PopulationGroup, PopulationState
from ._memory import tree_bytes
from ._pbt import exploit_and_explore
from ._plan import GroupingCost, plan_groups
from ._sharding import member_mesh
from ._vmap import init_population


_HPARAM_NAMES = CONTINUOUS_KEYS


class Population:
    """Configurations x seeds of PPO, trained together (see `PPO.population`).

    **Arguments:**

    - `hpo_configs`: one `Configuration` or mapping per configuration.
    - `env` and `spec_options` (`eval_env`, `cnn_policy`, `nas_config`,
      `deterministic_eval`, `track_metrics`, `track_trajectories`, `loss`, `optimizer`):
      as for `PPO`, shared by all members; they make one `AgentSpec` (`self.spec`).
    - `seeds`: the seeds every configuration runs with; member `(i, j)` starts from
      `jax.random.fold_in(key, seeds[j])`, so it matches a single `PPO` run started from
      that key, and members with the same seed share initial weights and environments.
    - `devices`: devices the member axis is sharded over; default `jax.devices()` (when
      that is one CPU device of a machine with more cores, a `OneCPUDeviceWarning`
      says once per process that `eqxppo.use_cpu_cores()` would use them).
    - `compile_workers`: threads that compile the groups' programs side by side before
      the first `train` with a budget (`compile`); default: half the usable CPU cores
      (one XLA:CPU compilation keeps about two busy).
    - `planned_timesteps`: the budget the members will train for; with it, groups that
      differ only in `update_epochs` merge where `grouping_cost` says the masked epochs
      are cheaper than a compilation (`eqxppo.population.plan_groups`). `None`: one group per
      distinct static structure.
    - `device_memory`: bytes a device may give one group's program (for CPU devices,
      all of them together: they share the host's memory); default what it has free
      when the program is about to compile. A group whose estimate
      (`memory_estimate`) exceeds it raises `PopulationTooLarge` before compiling.
    - `bucket_rows`: pad each group to a bucket size (2, 3, 4, 6, 8, 12, 16, 24, ...
      rows: at most half again its members) rather than to its own size, so that
      populations built one after another with groups of changing sizes (PBT's
      iterations) reuse the programs compiled for earlier ones. Padding rows train
      copies of a member; the members' results are the same either way.
    """

    def __init__(
        self,
        hpo_configs: Sequence[Configuration | Mapping[str, Any]],
        env: AbstractEnvironment,
        seeds: Iterable[int] = (0,),
        *,
        devices: Sequence[Any] | None = None,
        planned_timesteps: Count | None = None,
        grouping_cost: GroupingCost = GroupingCost(),
        compile_workers: int | None = None,
        device_memory: int | None = None,
        bucket_rows: bool = False,
        **spec_options: Any,
    ) -> None:
        if isinstance(hpo_configs, Mapping):
            raise TypeError("hpo_configs must be a sequence of configurations, got one mapping.")
        self.seeds = tuple(int(s) for s in seeds)
        if not self.seeds or not len(hpo_configs):
            raise ValueError("A population needs at least one configuration and one seed.")
        for what, e in (("env", env), ("eval_env", spec_options.get("eval_env"))):
            if e is not None and not e.vmappable:
                raise ValueError(
                    f"A population trains its members under `vmap`, which {what} "
                    f"({type(e).__name__}: its state lives outside JAX) cannot run; train "
                    "its configurations one by one with `PPO`, or use a JAX-native "
                    "framework (gymnax, xland, brax)."
                )
        self.spec = AgentSpec.create(env, **spec_options)
        self.mesh = member_mesh(devices)

        parsed = [parse_hpo_config(c) for c in hpo_configs]
        n_seeds = len(self.seeds)
        self.member_configs: tuple[PPOConfig, ...] = tuple(
            config for config, _ in parsed for _ in self.seeds
        )
        self._hparams: list[PPOHyperparams] = [h for _, h in parsed for _ in self.seeds]
        self.member_seeds = tuple(self.seeds[m % n_seeds] for m in range(self.n_members))
        if devices is None:
            warn_one_cpu_device(list(self.mesh.devices.flat), self.n_members)
        budget = None
        if planned_timesteps is not None:
            budget = as_count("planned_timesteps", planned_timesteps)
        planned = plan_groups(self.member_configs, n_timesteps=budget, cost=grouping_cost)
        self.layout = GroupedMembers([g.members for g in planned], self.mesh, bucketed=bucket_rows)
        self.groups = tuple(
            PopulationGroup(g.config, g.members, n_padded)
            for g, n_padded in zip(planned, self.layout.n_padded)
        )
        self.compile_workers = compile_workers
        self.device_memory = (
            None if device_memory is None else as_count("device_memory", device_memory, low=1)
        )

    @property
    def n_members(self) -> int:
        """Configurations x seeds."""
        return len(self.member_configs)

    def member_hpo_config(self, member: int, state: PopulationState) -> dict:
        """Member `member`'s hyperparameters as a mapping for `PPO`: its static values and
        the continuous values its state holds now."""
        hparams = self.member(state, member).runner_state.hparams
        return hpo_config_to_dict(self.member_configs[member], hparams)

    # -- the algorithm ------------------------------------------------------------------

    def init(self, key: PRNGKeyArray) -> PopulationState:
        """Fresh states for every member; member `(i, j)` from `fold_in(key, seeds[j])`."""
        groups = []
        for g, group in enumerate(self.groups):
            keys = self.layout.stack(
                g, [jr.fold_in(key, self.member_seeds[m]) for m in group.members]
            )
            hparams = self.layout.stack(g, [self._hparams[m] for m in group.members])
            state = init_population(
                keys, self.spec.env, self.spec.network_config, hparams,
                optimizer=self.spec.optimizer,
            )  # fmt: skip
            groups.append(state.runner_state)
        return PopulationState(tuple(groups))

    def train(
        self,
        state: PopulationState,
        n_total_timesteps: Count = 1_000_000,
        n_eval_steps: Count = 10,
        n_eval_episodes: Count = 10,
    ) -> tuple[PopulationState, PPOTrainingResult]:
        """Train every member for `n_total_timesteps` of its own steps; one call per group.

        **Returns:**

        `(state, result)`; every array of `result` has a leading member axis in member
        order, e.g. `eval_rewards` of shape `(n_members, n_eval_steps, n_eval_episodes)`.
        """
        self._check_state(state)
        programs = self.compile(state, n_total_timesteps, n_eval_steps, n_eval_episodes)
        new_groups, results = [], []
        for program, runner_states in zip(programs, state.groups):
            runner_states, result = program(runner_states)
            new_groups.append(runner_states)
            results.append(result)
        return PopulationState(tuple(new_groups)), self.layout.gather(results)

    def compile(
        self,
        state: PopulationState,
        n_total_timesteps: Count = 1_000_000,
        n_eval_steps: Count = 10,
        n_eval_episodes: Count = 10,
    ) -> list[Program]:
        """Compile every group's train program for this budget, `compile_workers` at once.

        `train` calls this first, so explicit use is only needed to compile ahead (and
        to time compilation apart from training). Programs already compiled for the
        same budget are reused; the others compile side by side in a thread pool (XLA
        releases the GIL while compiling). With a persistent compilation cache
        (`eqxppo.enable_compilation_cache`) a program compiled before, in any process,
        is loaded instead.

        **Returns:**

        One callable per group, `runner_states -> (runner_states, result)`, with results
        cut to the group's real members. Programs are shared by every population of the
        process: one built again with the same structure (the next step of an AutoRL
        loop) compiles nothing, as long as it is among the 32 most recently used
        (`ProgramCache`).
        """
        self._check_state(state)
        options = self.spec.train_options(n_total_timesteps, n_eval_steps, n_eval_episodes)
        return compile_groups(
            self.spec, self.groups, self.layout, state, options,
            workers=self.compile_workers, device_memory=self.device_memory,
        )  # fmt: skip

    def memory_estimate(self, state: PopulationState) -> list[int]:
        """Bytes per member of each group's train program, by eqxppo's memory model
        (`eqxppo.population._memory`: the member's state, what one update holds per
        environment step, and the evaluation's observations)."""
        self._check_state(state)
        return [
            group_member_bytes(self.spec, group, rs, tree_bytes(rs))
            for group, rs in zip(self.groups, state.groups)
        ]

    def state_from_members(self, runner_states: Sequence[PPORunnerState]) -> PopulationState:
        """A state in which member `m` continues from `runner_states[m]` (one agent's
        runner state each: network, optimizer, statistics, environments, key, steps)
        with this population's hyperparameters.

        What an AutoRL loop needs when a step changes the members' static structure:
        the groups change, the learned states carry over (their shapes do not depend on
        the static structure).
        """
        if len(runner_states) != self.n_members:
            raise ValueError(f"Expected {self.n_members} member states, got {len(runner_states)}.")
        return PopulationState(tuple(
            self.layout.stack(g, [runner_states[m]._replace(hparams=self._hparams[m])
                                  for m in group.members])
            for g, group in enumerate(self.groups)
        ))  # fmt: skip

    def _check_state(self, state: PopulationState) -> None:
        if not isinstance(state, PopulationState) or len(state.groups) != len(self.groups):
            raise ValueError(
                f"Expected a PopulationState with {len(self.groups)} group(s) from this "
                "population's init."
            )
        for group, runner_states in zip(self.groups, state.groups):
            if runner_states.global_step.shape != (group.n_padded,):
                raise ValueError(
                    f"A group of {group.n_padded} (padded) members got a state with "
                    f"{runner_states.global_step.shape[:1]} members; was it made by another "
                    "population?"
                )

    # -- members and their hyperparameters -------------------------------------------------

    def member(self, state: PopulationState, member: int) -> PPOState:
        """One member's state, for `PPO.from_population(pop, member)` (predict, save...)."""
        return PPOState(runner_state=self.layout.row(state.groups, member), buffer_state=None)

    def diverged(self, state: PopulationState) -> np.ndarray:
        """Which members diverged (a non-finite loss or parameter), `(n_members,)` bools.

        A diverged member keeps its last finite network and stops learning; the other
        members are unaffected.
        """
        return self.layout.gather_to_host([rs.diverged for rs in state.groups])

    def get_hparams(self, state: PopulationState) -> dict[str, np.ndarray]:
        """Each continuous hyperparameter as a `(n_members,)` array, in member order."""
        return {
            name: self.layout.gather_to_host([getattr(rs.hparams, name) for rs in state.groups])
            for name in _HPARAM_NAMES
        }

    def update_hparams(self, state: PopulationState, **values: ArrayLike) -> PopulationState:
        """New continuous hyperparameters, per member (`(n_members,)`) or for all (scalar).

        Takes effect at the next `train` and never recompiles. Unknown names and invalid
        values raise `ValueError`, naming them.
        """
        unknown = sorted(set(values) - set(_HPARAM_NAMES))
        if unknown:
            raise ValueError(
                f"Unknown continuous hyperparameter(s) {unknown}; valid names are "
                f"{list(_HPARAM_NAMES)} (static ones need a new population)."
            )
        current = self.get_hparams(state)
        for name, value in values.items():
            value = np.asarray(value, np.float32)
            if value.shape not in ((), (self.n_members,)):
                raise ValueError(
                    f"`{name}` must be a scalar or have shape ({self.n_members},), "
                    f"got shape {value.shape}."
                )
            current[name] = np.broadcast_to(value, (self.n_members,)).copy()
        for name in _HPARAM_NAMES:
            check_continuous(name, current[name])
        # Padded and placed as `init` did: a change of placement would recompile.
        scattered = {name: self.layout.scatter(current[name]) for name in _HPARAM_NAMES}
        new_groups = []
        for g, runner_states in enumerate(state.groups):
            hparams = eqx.tree_at(
                lambda h: [getattr(h, name) for name in _HPARAM_NAMES],
                runner_states.hparams,
                [scattered[name][g] for name in _HPARAM_NAMES],
            )
            new_groups.append(runner_states._replace(hparams=hparams))
        return PopulationState(tuple(new_groups))

    def exploit_and_explore(
        self,
        state: PopulationState,
        scores: ArrayLike,
        key: PRNGKeyArray,
        fraction: float = 0.25,
        factors: tuple[float, float] = (0.8, 1.25),
    ) -> PopulationState:
        """One PBT step in each group (see `eqxppo.population.exploit_and_explore`).

        In each group the worst `fraction` of the members copy a member of the best
        `fraction` and perturb their continuous hyperparameters by `factors`. Weights
        only move between members of the same static structure. The fraction rounds up,
        at most half the group (as Ray Tune's PBT counts its quantile): a group of two
        or more always replaces one member.
        """
        scores = np.asarray(scores, np.float32)
        if scores.shape != (self.n_members,):
            raise ValueError(f"scores must have shape ({self.n_members},), got {scores.shape}.")
        # Padding rows score -inf: they are always overwritten, never copied.
        group_scores = self.layout.scatter(scores, fill=-np.inf)
        new_groups = []
        for g, (group, runner_states) in enumerate(zip(self.groups, state.groups)):
            n = len(group.members)
            k = min(math.ceil(fraction * n), n // 2)
            if k == 0:
                new_groups.append(runner_states)
                continue
            new_groups.append(
                exploit_and_explore(
                    runner_states,
                    group_scores[g],
                    jr.fold_in(key, g),
                    n_worst=k + group.n_padded - n,
                    n_best=k,
                    factors=factors,
                )
            )
        return PopulationState(tuple(new_groups))
