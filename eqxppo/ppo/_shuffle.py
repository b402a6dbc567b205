"""The random orders in which the update epochs visit the batch.

`jax.random.permutation` sorts (random key, index) pairs; XLA:CPU runs a sort of two
operands through a comparator call per comparison, 130 us for 1,024 samples, ten times per
CartPole update (10% of it). A sort of one integer operand takes its fast path (34 us), so
each round here sorts random words whose low bits carry the index.
"""

import math

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Int, PRNGKeyArray


# jax.random.permutation's criterion: enough rounds of random keys that a collision of
# keys (which leaves two samples in their previous order) is unlikely.
_ROUNDS_EXPONENT = 3
# Above this many index bits too few random bits remain; use jax.random.permutation.
_MAX_INDEX_BITS = 24


def permutation(key: PRNGKeyArray, n: int) -> Int[Array, " n"]:
    """A uniformly random permutation of `0, ..., n - 1` (int32).

    Each round sorts `n` random 32-bit words with the low `ceil(log2 n)` bits replaced by
    the position, and reads the positions back in sorted order; a later round reorders the
    previous round's result, so keys that collide keep a random order rather than the
    index order. The number of rounds follows `jax.random.permutation`'s rule for the
    random bits left.
    """
    index_bits = max(1, math.ceil(math.log2(max(n, 2))))
    if index_bits > _MAX_INDEX_BITS:
        return jr.permutation(key, n).astype(jnp.int32)
    random_bits = 32 - index_bits
    n_rounds = math.ceil(_ROUNDS_EXPONENT * math.log2(max(n, 2)) / random_bits)
    low = jnp.uint32((1 << index_bits) - 1)
    positions = jnp.arange(n, dtype=jnp.uint32)
    order = None
    for round_key in jr.split(key, n_rounds):
        words = (jr.bits(round_key, (n,), jnp.uint32) & ~low) | positions
        step = (jnp.sort(words) & low).astype(jnp.int32)
        order = step if order is None else order[step]
    assert order is not None
    return order


def epoch_permutations(
    key: PRNGKeyArray, n_epochs: int, batch_size: int, n_used: int
) -> Int[Array, "n_epochs n_used"]:
    """One random order of the batch per epoch, cut to the `n_used` samples it trains on.

    Samples beyond `n_used = n_minibatches * minibatch_size` are left out of that epoch (a
    different set each epoch).
    """
    keys = jr.split(key, n_epochs)
    return jax.vmap(lambda k: permutation(k, batch_size)[:n_used])(keys)
