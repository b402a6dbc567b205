import jax
import jax.numpy as jnp
import numpy as np
import optax

from eqxppo.configspaces import parse_hpo_config
from eqxppo.ppo import make_optimizer
from eqxppo.ppo._optimizer import clip_by_global_norm


def test_clip_scales_to_max_norm_and_zero_means_off():
    g = {"a": jnp.array([3.0, 4.0])}  # norm 5
    clipped, _ = clip_by_global_norm(jnp.float32(1.0)).update(g, optax.EmptyState())
    np.testing.assert_allclose(clipped["a"], [0.6, 0.8], rtol=1e-6)
    same, _ = clip_by_global_norm(jnp.float32(10.0)).update(g, optax.EmptyState())
    np.testing.assert_allclose(same["a"], g["a"])
    off, _ = clip_by_global_norm(jnp.float32(0.0)).update(g, optax.EmptyState())
    np.testing.assert_allclose(off["a"], g["a"])
    zero, _ = clip_by_global_norm(jnp.float32(0.0)).update({"a": jnp.zeros(2)}, None)
    assert np.all(np.isfinite(zero["a"]))


def test_first_adam_step_moves_each_weight_by_the_learning_rate():
    _, hp = parse_hpo_config({"learning_rate": 0.01, "max_grad_norm": 0.0})
    params = {"w": jnp.array([1.0, -1.0])}
    tx = make_optimizer(hp)
    with jax.numpy_dtype_promotion("standard"):  # optax's own arithmetic, as in update_step
        updates, _ = tx.update({"w": jnp.array([0.3, -2.0])}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.01, 0.01], rtol=1e-3)


def test_state_structure_is_independent_of_values():
    _, a = parse_hpo_config({"learning_rate": 0.01})
    _, b = parse_hpo_config({"learning_rate": 1e-5, "max_grad_norm": 0.0})
    params = {"w": jnp.ones(3)}
    sa, sb = make_optimizer(a).init(params), make_optimizer(b).init(params)
    assert jax.tree.structure(sa) == jax.tree.structure(sb)
