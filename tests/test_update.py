"""The update epochs' parameter vector against optax on the network itself."""

import equinox as eqx
import jax
import jax.random as jr
import numpy as np
import optax

from eqxppo import make_env
from eqxppo.configspaces import parse_hpo_config, parse_nas_config
from eqxppo.networks import make_network
from eqxppo.ppo import Batch, make_optimizer, ppo_loss
from eqxppo.ppo._params import params_view
from eqxppo.ppo._state import PPOTrainState
from eqxppo.ppo._update import update_minibatch


def test_vector_steps_match_optax_clip_and_adam_on_the_network(getkey):
    env = make_env("gymnax", "Pendulum-v1")  # continuous: the log-std is a leaf too
    network = make_network(
        parse_nas_config({"hidden_size": 8}), env.observation_shape, env.action_spec, key=getkey()
    )
    _, hp = parse_hpo_config({"learning_rate": 1e-2, "max_grad_norm": 0.1})
    minibatches = [
        Batch(
            obs=jr.normal(getkey(), (16, 3)),
            action=jr.normal(getkey(), (16, 1)),
            log_prob=jr.normal(getkey(), (16,)) - 1.0,
            value=jr.normal(getkey(), (16,)),
            advantages=jr.normal(getkey(), (16,)),
            targets=jr.normal(getkey(), (16,)),
        )
        for _ in range(3)
    ]

    train_state = PPOTrainState.create_with_opt_state(network=network, tx=make_optimizer(hp))
    state, view = params_view(train_state, vector=True)
    flat = state.params
    assert flat.ndim == 1  # PPO's optimizer runs on one vector
    for mb in minibatches:
        state, _ = update_minibatch(state, view.network, mb, hp)

    tx = optax.chain(optax.clip_by_global_norm(0.1), optax.adam(1e-2, eps=1e-5))
    params = eqx.filter(network, eqx.is_inexact_array)
    opt_state = tx.init(params)
    for mb in minibatches:
        grads = eqx.filter_grad(
            lambda n: ppo_loss(n, mb, hp)[0]  # noqa: B023
        )(network)
        with jax.numpy_dtype_promotion("standard"):  # optax's own arithmetic
            updates, opt_state = tx.update(grads, opt_state, params)
        network = eqx.apply_updates(network, updates)
        params = eqx.filter(network, eqx.is_inexact_array)

    got = jax.tree.leaves(view.train_state(state).params)
    want = jax.tree.leaves(params)
    assert int(state.step) == 3 and len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert not np.allclose(state.params, flat)
