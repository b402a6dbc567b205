"""The random orders in which the update epochs visit the batch."""

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Int, PRNGKeyArray

from .. import _xla_cpu


def permutation(key: PRNGKeyArray, n: int, *, kernels: _xla_cpu.Kernels) -> Int[Array, " n"]:
    """A uniformly random permutation of `0, ..., n - 1` (int32).

    `jax.random.permutation`, or with the CPU kernels (`eqxppo._xla_cpu`) the same
    distribution drawn by one-operand sorts: the same key then gives another order.
    """
    if kernels == "cpu":
        return _xla_cpu.permutation(key, n)
    return jr.permutation(key, n).astype(jnp.int32)


def epoch_permutations(
    key: PRNGKeyArray, n_epochs: int, batch_size: int, n_used: int, *, kernels: _xla_cpu.Kernels
) -> Int[Array, "n_epochs n_used"]:
    """One random order of the batch per epoch, cut to the `n_used` samples it trains on.

    Samples beyond `n_used = n_minibatches * minibatch_size` are left out of that epoch (a
    different set each epoch). Epoch `e`'s order comes from `fold_in(key, e)`, so the
    first epochs do not depend on `n_epochs`: a run that takes fewer epochs than its
    program holds (`hparams.update_epochs`) sees the orders it would see alone.
    """
    epochs = jnp.arange(n_epochs, dtype=jnp.uint32)
    return jax.vmap(
        lambda e: permutation(jr.fold_in(key, e), batch_size, kernels=kernels)[:n_used]
    )(epochs)
