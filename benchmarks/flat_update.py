"""The update epochs on one parameter vector against the same steps on the parameter tree.

    python benchmarks/flat_update.py [--env CartPole-v1] [--repeats 20]

For PPO's own optimizer (`Elementwise`), `update_step` ravels the network and its
optimizer state into vectors once per update (`ppo/_params.py`) and runs every minibatch
step on them; any other optimizer factory runs on the parameter tree. This times one
update's 160 minibatch steps (10 epochs x 16 minibatches of 64, ARLBench's defaults)
both ways with the same transformation, the ravel and unravel included on the vector
side, and prints microseconds per step.
"""

import argparse
import json
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from eqxppo import make_env
from eqxppo.configspaces import parse_hpo_config, parse_nas_config
from eqxppo.networks import make_network
from eqxppo.ppo import Batch, PPOTrainState, make_optimizer
from eqxppo.ppo._optimizer import ppo_transformation
from eqxppo.ppo._params import params_view
from eqxppo.ppo._update import update_minibatch


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
def steps(network, opt_state, batches, hparams, *, vector: bool):
    """160 minibatch steps as `update_step` runs them: PPO's optimizer on the raveled
    vector (`Elementwise`, the default), or the same transformation on the tree (what
    any other optimizer factory gets)."""
    optimizer = make_optimizer if vector else ppo_transformation
    train_state = PPOTrainState(network, opt_state, jnp.zeros((), jnp.int32))
    state, view = params_view(train_state, vector=vector)
    step = lambda st, mb: update_minibatch(st, view.network, mb, hparams, optimizer=optimizer)
    state, _ = jax.lax.scan(step, state, batches)
    return view.train_state(state)


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
    for name, vector in (("vector", True), ("tree", False), ("vector_again", True)):
        jax.block_until_ready(steps(network, opt_state, batches, hparams, vector=vector))
        start = time.perf_counter()
        for _ in range(args.repeats):
            jax.block_until_ready(steps(network, opt_state, batches, hparams, vector=vector))
        row[f"{name}_us_per_step"] = round(
            (time.perf_counter() - start) / args.repeats / N_STEPS * 1e6, 1
        )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
