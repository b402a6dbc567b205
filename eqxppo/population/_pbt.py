"""Population-based training's exploit-and-explore step on a stacked runner state."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from beartype import beartype
from jaxtyping import Array, Float, PRNGKeyArray, jaxtyped

from ..configspaces import CONTINUOUS_KEYS, PPOHyperparams
from ..ppo import PPORunnerState


_NAMES = CONTINUOUS_KEYS
# Hyperparameters in [0, 1] whose distance to 1 is perturbed (an effective horizon).
_DISCOUNTS = ("gamma", "gae_lambda")


def _perturb(
    hparams: PPOHyperparams, factors: Float[Array, "n_members n_hparams"]
) -> PPOHyperparams:
    fields = {}  # the epochs and switches are copied, not perturbed
    for i, name in enumerate(_NAMES):
        value, factor = getattr(hparams, name), factors[:, i]
        if name in _DISCOUNTS:
            fields[name] = jnp.clip(1.0 - (1.0 - value) * factor, 0.0, 1.0)
        else:
            fields[name] = value * factor
    return eqx.tree_at(
        lambda h: [getattr(h, n) for n in _NAMES], hparams, [fields[n] for n in _NAMES]
    )


@eqx.filter_jit
@jaxtyped(typechecker=beartype)
def exploit_and_explore(
    runner_states: PPORunnerState,
    scores: Float[Array, " n_members"],
    key: PRNGKeyArray,
    n_worst: int,
    n_best: int | None = None,
    factors: tuple[float, float] = (0.8, 1.25),
) -> PPORunnerState:
    """Replace the `n_worst` lowest-scoring members by perturbed copies of good ones.

    Each replaced member copies what a member drawn uniformly from the `n_best`
    highest-scoring ones (default `n_worst`) has learned (`PPORunnerState.LEARNED_FIELDS`: network,
    optimizer state, observation statistics, hyperparameters and the `diverged` flag, so
    a diverged member revived by a finite copy trains again) and multiplies each
    continuous hyperparameter by a factor drawn from `factors` (`gamma` and
    `gae_lambda`: their distance to 1, clipped to [0, 1]). It keeps its own
    (`PPORunnerState.OWN_FIELDS`): key, environments (with a recurrent agent's hidden
    states, the memory of those environments' episodes) and step count, so copies do not
    retrace their source.
    Indices and factors are traced: repeated calls never recompile.

    **Arguments:**

    - `runner_states`: a population of one static structure (leading member axis).
    - `scores`: higher is better, e.g. the mean of the last evaluation.
    - `key`: randomness for the choice of sources and factors.
    - `n_worst`, `n_best`: how many members are replaced, and among how many the sources
      are drawn; `n_worst + n_best <= n_members`.
    """
    n = scores.shape[0]
    n_best = n_worst if n_best is None else n_best
    if not (0 <= n_worst and 1 <= n_best and n_worst + n_best <= n):
        raise ValueError(
            f"exploit_and_explore needs 0 <= n_worst, 1 <= n_best and n_worst + n_best <= "
            f"n_members; got n_worst={n_worst}, n_best={n_best}, n_members={n}."
        )
    source_key, factor_key = jr.split(key)
    order = jnp.argsort(scores)  # ascending: worst first
    worst, best = order[:n_worst], order[n - n_best :]
    sources = best[jr.randint(source_key, (n_worst,), 0, n_best)]
    src = jnp.arange(n).at[worst].set(sources)
    replaced = jnp.zeros(n, bool).at[worst].set(True)

    def take(tree):
        arrays, static = eqx.partition(tree, eqx.is_array)
        return eqx.combine(jax.tree.map(lambda x: x[src], arrays), static)

    learned = {name: take(getattr(runner_states, name)) for name in PPORunnerState.LEARNED_FIELDS}
    draws = jr.choice(factor_key, jnp.asarray(factors, jnp.float32), (n, len(_NAMES)))
    learned["hparams"] = _perturb(learned["hparams"], jnp.where(replaced[:, None], draws, 1.0))
    return runner_states._replace(**learned)
