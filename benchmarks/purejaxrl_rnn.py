"""Time PureJaxRL's recurrent PPO (`purejaxrl/ppo_rnn.py`) on a gymnax environment.

Runs in the peers' rejax venv (flax, distrax, gymnax), with PureJaxRL's files in
`$PUREJAXRL_DIR` (default `~/.cache/ppo-anchors/purejaxrl`); `benchmarks/recurrent.py`
starts it beside eqxppo's rows. Nothing of eqxppo is imported.

PureJaxRL's recurrent agent is fixed: a 128-unit ReLU embedding, a 128-unit GRU, and
128-unit ReLU heads. Settings are its own script's (4 environments x 128 steps, 4
epochs, 4 minibatches of one environment's sequence each, learning rate 2.5e-4,
entropy 0.01), with a constant learning rate so eqxppo can run the same schedule.
Timing: the first call of `jax.jit(make_train(config))` includes compilation; the
second identical call (`block_until_ready`) is the run. One JSON line: `run_s`,
`compile_plus_run_s`, `steps_per_s`, and the mean return of the training episodes that
ended in the last 10 updates (PureJaxRL has no evaluation).
"""

import argparse
import functools
import importlib.util
import json
import os
import platform
import sys
import time
import types
import warnings


def _stub_missing(name: str, attrs: dict[str, list[str]]) -> None:
    """Empty stand-ins for modules `wrappers.py` imports but the recurrent PPO never uses."""
    if importlib.util.find_spec(name) is not None:
        return
    for mod_name, names in attrs.items():
        mod = types.ModuleType(mod_name)
        for n in names:
            setattr(mod, n, None)
        sys.modules[mod_name] = mod
    for mod_name in attrs:
        if "." in mod_name:
            parent, child = mod_name.rsplit(".", 1)
            setattr(sys.modules[parent], child, sys.modules[mod_name])


def _patch_for_new_flax(mod: types.ModuleType) -> bool:
    """PureJaxRL's `ScannedRNN` (commit 31756b1) uses flax's old `GRUCell` API (a cell
    without `features`, a static `initialize_carry(key, batch_dims, size)`); flax >= 0.7
    changed both. Replace it by the same module in the new API: the same scan, the same
    reset, the same 128-unit GRU with flax's default initialisers. Returns whether it
    was needed."""
    import inspect

    import flax.linen as nn
    import jax.numpy as jnp

    if "features" not in inspect.signature(nn.GRUCell).parameters:
        return False

    class ScannedRNN(nn.Module):
        @functools.partial(nn.scan, variable_broadcast="params", in_axes=0, out_axes=0,
                           split_rngs={"params": False})  # fmt: skip
        @nn.compact
        def __call__(self, carry, x):
            ins, resets = x
            carry = jnp.where(resets[:, None], jnp.zeros_like(carry), carry)
            new_carry, y = nn.GRUCell(features=ins.shape[1])(carry, ins)
            return new_carry, y

        @staticmethod
        def initialize_carry(batch_size, hidden_size):
            return jnp.zeros((batch_size, hidden_size))

    mod.ScannedRNN = ScannedRNN
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--timesteps", type=int, default=500_000)
    p.add_argument("--n-envs", type=int, default=4)
    p.add_argument("--n-steps", type=int, default=128)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    warnings.filterwarnings("ignore")
    import jax
    import numpy as np

    path = os.environ.get("PUREJAXRL_DIR", os.path.expanduser("~/.cache/ppo-anchors/purejaxrl"))
    wrappers = {"brax.envs.wrappers": [],
                "brax.envs.wrappers.training": ["EpisodeWrapper", "AutoResetWrapper"]}  # fmt: skip
    _stub_missing("brax", {"brax": [], "brax.envs": ["get_environment"], **wrappers})
    _stub_missing("navix", {"navix": ["make"]})
    sys.path.insert(0, path)
    source = os.path.join(path, "ppo_rnn.py")
    spec = importlib.util.spec_from_file_location("purejaxrl_ppo_rnn", source)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    patched = _patch_for_new_flax(mod)

    config = {
        "LR": 2.5e-4, "NUM_ENVS": args.n_envs, "NUM_STEPS": args.n_steps,
        "TOTAL_TIMESTEPS": args.timesteps, "UPDATE_EPOCHS": args.epochs,
        "NUM_MINIBATCHES": args.minibatches, "GAMMA": 0.99, "GAE_LAMBDA": 0.95,
        "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5,
        "ENV_NAME": args.env, "ANNEAL_LR": False, "DEBUG": False,
    }  # fmt: skip
    train = jax.jit(mod.make_train(config))
    n_updates = int(config["NUM_UPDATES"])
    env_steps = n_updates * args.n_envs * args.n_steps
    key = jax.random.PRNGKey(args.seed)

    t0 = time.perf_counter()
    jax.block_until_ready(train(key))
    compile_plus_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(train(key))
    run_s = time.perf_counter() - t0

    info = jax.tree_util.tree_map(np.asarray, out["metric"])
    returns, ended = info["returned_episode_returns"], info["returned_episode"].astype(bool)
    last = returns[-10:][ended[-10:]]
    print(json.dumps({
        "impl": "PureJaxRL ppo_rnn", "env": args.env, "n_envs": args.n_envs,
        "n_steps": args.n_steps, "epochs": args.epochs, "minibatches": args.minibatches,
        "hidden_size": 128, "env_steps": env_steps, "run_s": round(run_s, 3),
        "compile_plus_run_s": round(compile_plus_run, 3),
        "steps_per_s": round(env_steps / run_s, 1),
        "train_return_last_10_updates": float(last.mean()) if last.size else float("nan"),
        "jax": jax.__version__, "python": platform.python_version(),
        "flax_api_patch": patched,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
