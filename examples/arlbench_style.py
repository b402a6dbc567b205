"""An ARLBench AutoRL script on eqxppo: only the import differs.

    python examples/arlbench_style.py

With ARLBench this script starts `from arlbench import AutoRLEnv`; here the same calls
(config keys, `reset`, `step` with a configuration, objectives, `train_info_df`) run on
eqxppo's PPO. The loop is a learning-rate schedule, as ARLBench's heuristic schedule
example runs: each AutoRL step trains 20k more steps with a smaller rate, and since the
rate is a traced value the whole schedule runs with one compilation (ARLBench rebuilds
and recompiles the algorithm at every step, and keeps the rate fixed at `init`).
"""

from eqxppo.autorl import AutoRLEnv  # ARLBench: from arlbench import AutoRLEnv


def main() -> None:
    env = AutoRLEnv({
        "algorithm": "ppo", "env_framework": "gymnax", "env_name": "CartPole-v1", "n_envs": 8,
        "n_steps": 5, "n_total_timesteps": 20_000, "n_eval_steps": 2,
        "objectives": ["reward_mean", "runtime"], "state_features": ["grad_info"],
    })  # fmt: skip
    obs, info = env.reset()
    config = dict(env.config_space.get_default_configuration())
    done, step = False, 0
    while not done:
        config["learning_rate"] = 1e-3 * 0.5**step  # the schedule
        obs, objectives, terminated, truncated, info = env.step(config)
        done = terminated or truncated
        print(f"step {step}: lr {config['learning_rate']:.1e}  "
              f"reward {objectives['reward_mean']:6.1f}  runtime {-objectives['runtime']:5.2f} s  "
              f"grad norm {obs['grad_info'][0]:.3f}")  # fmt: skip
        step += 1
    print(info["train_info_df"])


if __name__ == "__main__":
    main()
