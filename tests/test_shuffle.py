import collections
import itertools

import jax
import jax.random as jr
import numpy as np
import pytest
from scipy import stats

from eqxppo._xla_cpu import permutation  # the CPU form; the plain one is jax.random.permutation
from eqxppo.ppo._shuffle import epoch_permutations


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 800, 1024, 5000])
def test_permutation_holds_every_index_once(n):
    order = np.asarray(permutation(jr.key(n), n))
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_permutation_is_uniform_over_all_orders():
    # 48,000 draws of a permutation of 4: each of the 24 orders about 2,000 times.
    draws = np.asarray(jax.vmap(lambda k: permutation(k, 4))(jr.split(jr.key(0), 48_000)))
    counts = collections.Counter(map(tuple, draws.tolist()))
    assert set(counts) == set(itertools.permutations(range(4)))
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_permutation_puts_each_sample_anywhere_uniformly():
    # Where sample 0 lands in a permutation of 1,024 (the default batch), over 20,480 draws.
    draws = np.asarray(jax.vmap(lambda k: permutation(k, 1024))(jr.split(jr.key(1), 20_480)))
    position = np.argmax(draws == 0, axis=1)
    per_bucket = np.bincount(position // 64, minlength=16)  # 16 minibatches of 64
    assert stats.chisquare(per_bucket).pvalue > 1e-3


def test_permutation_differs_between_keys_and_repeats_for_a_key():
    a, b = permutation(jr.key(0), 1024), permutation(jr.key(1), 1024)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, permutation(jr.key(0), 1024))


@pytest.mark.parametrize("kernels", ["cpu", "plain"])
def test_epoch_permutations_one_distinct_order_per_epoch_cut_to_n_used(kernels):
    orders = np.asarray(epoch_permutations(jr.key(0), 3, 100, 96, kernels=kernels))
    assert orders.shape == (3, 96)
    for row in orders:
        assert len(set(row.tolist())) == 96 and row.max() < 100
    assert not np.array_equal(orders[0], orders[1])
