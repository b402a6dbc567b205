"""The update epochs on one parameter vector against the same steps on the parameter tree.

    python benchmarks/flat_update.py [--env CartPole-v1] [--repeats 20]

`update_step` ravels the network and its optimizer state into vectors once per update
(`ppo/_flat.py`) and runs every minibatch step on them. This times one update's 160
minibatch steps (10 epochs x 16 minibatches of 64, ARLBench's defaults) both ways, the
ravel and unravel included on the vector side, and prints microseconds per step.
"""

import argparse
import json
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax

from eqxppo import make_env
from eqxppo.configspaces import parse_hpo_config, parse_nas_config
from eqxppo.networks import make_network
from eqxppo.ppo import Batch, make_optimizer, ppo_loss
from eqxppo.ppo._flat import flatten_network, flatten_opt_state
from eqxppo.ppo._update import FlatTrainState, update_minibatch


N_STEPS, MINIBATCH = 160, 64


def _batches(env, key) -> Batch:
    keys = jr.split(key, 4)
    shape = (N_STEPS, MINIBATCH)
    return Batch(
        obs=jr.normal(keys[0], (*shape, *env.observation_shape)),
        action=jr.randint(keys[1], shape, 0, env.action_spec.action_dim)
        if env.action_spec.discrete
        else jr.normal(keys[1], (*shape, env.action_spec.action_dim)),
        log_prob=jnp.full(shape, -0.7),
        value=jr.normal(keys[2], shape),
        advantages=jr.normal(keys[3], shape),
        targets=jnp.zeros(shape),
    )


@eqx.filter_jit
def flat_steps(network, opt_state, batches, hparams):
    vector, unflatten = flatten_network(network)
    flat_opt, unflatten_opt = flatten_opt_state(opt_state, network)
    state = FlatTrainState(vector, flat_opt, jnp.zeros((), jnp.int32))
    state, _ = jax.lax.scan(
        lambda st, mb: update_minibatch(st, unflatten, mb, hparams),
        state,
        batches,
    )
    return unflatten(state.params), unflatten_opt(state.opt_state)


@eqx.filter_jit
def tree_steps(network, opt_state, batches, hparams):
    params, static = eqx.partition(network, eqx.is_inexact_array)
    tx = make_optimizer(hparams)

    def step(carry, mb):
        params, opt_state = carry
        loss = lambda p: ppo_loss(eqx.combine(p, static), mb, hparams)
        grads = jax.grad(lambda p: loss(p)[0])(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), batches)
    return eqx.combine(params, static), opt_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    env = make_env("gymnax", args.env)
    network = make_network(parse_nas_config(None), env.observation_shape, env.action_spec,
                           key=jr.key(0))  # fmt: skip
    _, hparams = parse_hpo_config({})
    opt_state = make_optimizer(hparams).init(eqx.filter(network, eqx.is_inexact_array))
    batches = _batches(env, jr.key(1))
    row = {"env": args.env, "jax": jax.__version__, "backend": jax.default_backend()}
    for name, fn in (("flat", flat_steps), ("tree", tree_steps), ("flat_again", flat_steps)):
        jax.block_until_ready(fn(network, opt_state, batches, hparams))  # compile
        start = time.perf_counter()
        for _ in range(args.repeats):
            jax.block_until_ready(fn(network, opt_state, batches, hparams))
        row[f"{name}_us_per_step"] = round(
            (time.perf_counter() - start) / args.repeats / N_STEPS * 1e6, 1
        )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
