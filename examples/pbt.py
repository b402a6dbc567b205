"""Population-based training of PPO on CartPole-v1, one compiled program for all members.

    python examples/pbt.py [--members 8] [--rounds 8] [--steps-per-round 20000]

Every round trains all members for a chunk of steps in one call, scores them by their
last evaluation, and lets the worst quarter copy the weights, optimizer state and
hyperparameters of the best quarter, perturbed by x0.8 or x1.25. The learning rates and
entropy coefficients are traced values, so nothing compiles after the first round.
"""

import argparse

import jax
import jax.random as jr
import numpy as np

from eqxppo import PPO, make_env


_compiles: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: (
        _compiles.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
    )
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps-per-round", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    configs = [
        {"learning_rate": float(10 ** rng.uniform(-5, -2)), "ent_coef": float(rng.uniform(0, 0.05))}
        for _ in range(args.members)
    ]
    env = make_env("gymnax", "CartPole-v1", n_envs=8)
    pop = PPO.population(configs, env, seeds=(args.seed,))
    state = pop.init(jr.key(args.seed))
    key = jr.key(args.seed + 1)
    for round_ in range(args.rounds):
        before = len(_compiles)
        state, result = pop.train(
            state, n_total_timesteps=args.steps_per_round, n_eval_steps=1, n_eval_episodes=8
        )
        scores = np.asarray(result.eval_rewards[:, -1].mean(axis=-1))
        key, pbt_key = jr.split(key)
        state = pop.exploit_and_explore(state, scores, pbt_key, fraction=0.25)
        lrs = pop.get_hparams(state)["learning_rate"]
        print(
            f"round {round_}: steps/member {int(state.groups[0].global_step[0]):>7}  "
            f"best {scores.max():6.1f}  median {np.median(scores):6.1f}  "
            f"lr range [{lrs.min():.1e}, {lrs.max():.1e}]  "
            f"compilations {len(_compiles) - before}",
            flush=True,
        )
    best = int(np.argmax(scores))
    print("best member:", best, pop.member_hpo_config(best, state))


if __name__ == "__main__":
    main()
