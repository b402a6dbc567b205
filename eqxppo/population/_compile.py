"""A population's train programs: keyed, checked against the memory, lowered, compiled
side by side and cached, as free functions of the population's pieces (its spec,
groups and layout) so `Population` only holds them.

Compiling happens ahead of training: `compile_groups` finds each group's program in
`PROGRAMS` (`program_keys`: every static value it was lowered for), checks the memory of
the ones it must compile before minutes of compilation (`check_memory`), lowers them
(Python, serial) and compiles them in a thread pool (`compile_all`; XLA releases the
GIL), and wraps each as a callable that cuts its results to the group's real members.
"""

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import jax

from .. import _xla_cpu
from ..envs import AbstractEnvironment
from ..ppo import AgentSpec, PPORunnerState, PPOTrainingResult
from ._grouped import GroupedMembers, PopulationGroup, PopulationState
from ._memory import check_fits, free_bytes, member_bytes, tree_bytes
from ._programs import PROGRAMS, compile_all, env_key, program_key
from ._vmap import train_population


Program = Callable[[PPORunnerState], tuple[PPORunnerState, PPOTrainingResult]]


def program_keys(
    spec: AgentSpec,
    groups: Sequence[PopulationGroup],
    state: PopulationState,
    options: Mapping[str, Any],
) -> tuple[list[Any], dict[str, Any]]:
    """Each group's key in `PROGRAMS` for these train options, and the compiler's
    options. Everything a program is lowered for, by value (`program_key`): the state
    (structure, the network's activation and kernels, shapes, placement), the group's
    config, the environments (by the arguments that rebuild them, see `env_key`), the
    options (the loss and the optimizer among them) and the compiler's options."""
    plain = {k: v for k, v in options.items() if not isinstance(v, AbstractEnvironment)}
    compiler_options = _xla_cpu.compiler_options(spec.network_config.kernels or "plain")
    env_keys = (env_key(spec.env), env_key(spec.eval_env))
    keys = [
        program_key(
            "train_population", runner_states, static=(env_keys, group.config),
            options=plain, compiler_options=compiler_options,
        )
        for group, runner_states in zip(groups, state.groups)
    ]  # fmt: skip
    return keys, compiler_options


def compile_groups(
    spec: AgentSpec,
    groups: Sequence[PopulationGroup],
    layout: GroupedMembers,
    state: PopulationState,
    options: Mapping[str, Any],
    *,
    workers: int | None,
    device_memory: int | None,
) -> list[Program]:
    """Each group's train program for `options` (`spec.train_options`), compiled
    `workers` at once where `PROGRAMS` lacks it; see `Population.compile`."""
    keys, compiler_options = program_keys(spec, groups, state, options)
    programs = [PROGRAMS.get(key) for key in keys]
    missing = [g for g, program in enumerate(programs) if program is None]
    for g in missing:  # before minutes of compilation, not after them
        check_memory(spec, groups[g], layout, g, state.groups[g], device_memory=device_memory)
    lowerings = [
        functools.partial(
            cast(Any, train_population).lower,  # eqx.filter_jit's AOT entry
            state.groups[g], spec.env, groups[g].config, **options,
        )
        for g in missing
    ]  # fmt: skip
    compiled = compile_all(lowerings, workers, compiler_options=compiler_options)
    for g, program in zip(missing, compiled):
        PROGRAMS.put(keys[g], program, keep_alive=(spec.env, spec.eval_env))
        programs[g] = program

    def run(g: int, program: Any) -> Program:
        def call(runner_states: PPORunnerState) -> tuple[PPORunnerState, PPOTrainingResult]:
            new_states, result = program(runner_states, spec.env, groups[g].config, **options)
            return new_states, layout.real_rows(g, result)

        return call

    return [run(g, program) for g, program in enumerate(programs)]


def check_memory(
    spec: AgentSpec,
    group: PopulationGroup,
    layout: GroupedMembers,
    g: int,
    runner_states: PPORunnerState,
    *,
    device_memory: int | None,
) -> None:
    """`PopulationTooLarge` when group `g`'s program would not fit its devices: within
    `device_memory` bytes, or what the first device reports free."""
    mesh = layout.meshes[g]
    device = mesh.devices.flat[0]
    # CPU devices share the host's memory: their members count together.
    shared = device.platform == "cpu"
    n_devices = 1 if shared else mesh.size
    state_bytes = tree_bytes(runner_states)
    if device_memory is not None:
        budget = device_memory
    else:
        free = free_bytes(device)
        if free is None:  # a backend that reports nothing: nothing to check against
            return
        # The group's states are allocated already and part of the estimate.
        budget = free + state_bytes // n_devices
    check_fits(
        what=f"Group {g} of the population ({len(group.members)} members on "
        f"{mesh.size} {device.platform} device(s))",
        per_member=group_member_bytes(spec, group, runner_states, state_bytes),
        members=group.n_padded // n_devices,
        budget=budget,
        where="in the host's memory" if shared else "per device",
    )


def group_member_bytes(
    spec: AgentSpec, group: PopulationGroup, runner_states: PPORunnerState, state_bytes: int
) -> int:
    """The memory model's bytes per member of `group`, from its stacked state (padding
    rows included) and that state's bytes."""
    # Each environment's hidden state: `(members, n_envs, *hidden_shape)` leaves, if any.
    hidden_size = sum(math.prod(h.shape[2:]) for h in jax.tree.leaves(runner_states.hidden))
    return member_bytes(
        state_bytes=state_bytes // group.n_padded,
        env=spec.env,
        eval_env=spec.eval_env,
        n_steps=group.config.n_steps,
        hidden_size=spec.network_config.hidden_size,
        recurrent_size=hidden_size,
    )
