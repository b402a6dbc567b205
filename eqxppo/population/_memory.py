"""How much device memory a population's train program needs, known before it compiles.

A population too large for its devices must not spend minutes compiling and then die
in an out-of-memory error. Its programs' needs are estimated from shapes alone, before
anything is lowered, and compared with what the devices have free.

The model, per member (each member's share of its group's program):

    bytes = STATE_COPIES * state + n_steps * n_envs * per_step + EVAL_COPIES * eval_obs
    per_step = OBS_COPIES * obs + HIDDEN_COPIES * hidden + 4 * TRANSITION_SCALARS
               + RECURRENT_COPIES * recurrent

- `state`: one member's runner state (network, optimizer moments, observation
  statistics, environment states, observations, keys): its arrays' bytes, exact. The
  program takes one copy and returns another, and the update holds the parameters
  and moments as flat vectors beside them.
- `per_step`: what one update holds per environment step: the transition (two
  observations, the step's and the one it reached for the truncation bootstrap, and
  ten 4-byte values), the shuffled copy an epoch trains on, and the activations of the
  critic's pass over the whole rollout and of the loss (`hidden`: one layer's 4-byte
  activations; the CNN's feature maps scale with the image, so with `obs`).
- `recurrent`: a recurrent agent's hidden state of one environment (4-byte values):
  the rollout stores it per step, and the sequence re-run holds the core's gates and
  their gradients per step.
- `eval_obs`: the evaluation's environments, one observation each.

The constants are fitted to XLA's own accounting of compiled programs on the CPU
(`compiled.memory_analysis()`: arguments + outputs + temporaries). Measured per member
and environment step (jax 0.10.2): CartPole (16-byte observations, 64 units) 1,352 to
1,395 bytes, Breakout-MinAtar with the CNN (1,600-byte observations) 25,600 to 26,000
bytes; the model gives 1,832 and 31,784 to 37,928. Recurrent agents: model over
measured 1.18 (CartPole, GRU of 128), 1.06 (CartPole, LSTM of 256) and 1.51 (MinAtar
CNN, GRU of 256). `tests/test_memory.py` checks that
the estimate bounds XLA's figure from above and stays within 4x of it. Tracked
trajectories or metrics (`track_trajectories`, `track_metrics`) grow with the budget
and are outside the model.
"""

import math
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ..envs import AbstractEnvironment


STATE_COPIES = 4
OBS_COPIES = 16
HIDDEN_COPIES = 6
EVAL_COPIES = 4
TRANSITION_SCALARS = 10
RECURRENT_COPIES = 8
MiB = 2**20


class PopulationTooLarge(MemoryError):
    """A population's programs would need more memory than its devices have free."""


def tree_bytes(tree: Any) -> int:
    """Bytes of the array leaves of `tree` (typed PRNG keys by their key data)."""
    total = 0
    for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array)):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        total += math.prod(x.shape) * x.dtype.itemsize
    return total


def step_bytes(env: AbstractEnvironment, hidden_size: int, recurrent_size: int = 0) -> int:
    """What one update holds per environment step (`per_step` above); `recurrent_size`
    is the number of values in one environment's hidden state (0: feed-forward)."""
    obs = math.prod(env.observation_shape) * 4
    recurrent = RECURRENT_COPIES * 4 * recurrent_size
    return OBS_COPIES * obs + HIDDEN_COPIES * 4 * hidden_size + 4 * TRANSITION_SCALARS + recurrent


def member_bytes(
    *,
    state_bytes: int,
    env: AbstractEnvironment,
    eval_env: AbstractEnvironment,
    n_steps: int,
    hidden_size: int,
    recurrent_size: int = 0,
) -> int:
    """The model's bytes for one member (see the module's docstring)."""
    update = n_steps * env.n_envs * step_bytes(env, hidden_size, recurrent_size)
    eval_obs = eval_env.n_envs * math.prod(eval_env.observation_shape) * 4
    return STATE_COPIES * state_bytes + update + EVAL_COPIES * eval_obs


def free_bytes(device: Any) -> int | None:
    """Memory `device` has free: its allocator's limit less what is in use, or for a CPU
    device the host's available memory; `None` where neither is known."""
    try:
        stats = device.memory_stats()
    except Exception:  # not every backend implements it
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    if device.platform == "cpu":
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def check_fits(*, what: str, per_member: int, members: int, budget: int, where: str) -> None:
    """Raise `PopulationTooLarge` when `members` members of `per_member` bytes each
    exceed `budget` bytes; the message gives the estimate and the most members that
    fit (`where`: "per device", say)."""
    need = per_member * members
    if need <= budget:
        return
    fits = budget // max(per_member, 1)
    raise PopulationTooLarge(
        f"{what}: {members} members {where} need about {need / MiB:,.0f} MiB "
        f"({per_member / MiB:,.2f} MiB each, by eqxppo's memory model) and "
        f"{budget / MiB:,.0f} MiB is available {where}: at most {fits} members fit. "
        "Train the configurations as several smaller populations, or on more devices."
    )
