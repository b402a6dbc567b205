"""The PPO hyperparameter (HPO) search space, exactly as ARLBench defines it."""

from ConfigSpace import Categorical, Configuration, ConfigurationSpace, Float, Integer


def get_hpo_config_space(seed: int | None = None) -> ConfigurationSpace:
    """Return PPO's hyperparameter space (13 hyperparameters, ARLBench's names and ranges).

    **Arguments:**

    - `seed`: seed of the space's sampler (`space.sample_configuration()`).

    **Returns:**

    A fresh `ConfigurationSpace`; its default configuration is ARLBench's default.
    """
    return ConfigurationSpace(
        name="PPOConfigSpace",
        seed=seed,
        space={
            "minibatch_size": Categorical("minibatch_size", [16, 32, 64, 128, 2048], default=64),
            "learning_rate": Float("learning_rate", (1e-6, 0.1), default=3e-4, log=True),
            "n_steps": Categorical("n_steps", [5, 32, 64, 80, 128, 256, 512], default=128),
            "update_epochs": Integer("update_epochs", (1, 20), default=10),
            "gamma": Float("gamma", (0.8, 1.0), default=0.99),
            "gae_lambda": Float("gae_lambda", (0.8, 0.9999), default=0.95),
            "clip_eps": Float("clip_eps", (0.0, 0.5), default=0.2),
            "vf_clip_eps": Float("vf_clip_eps", (0.0, 0.5), default=0.2),
            "normalize_advantage": Categorical("normalize_advantage", [True, False], default=True),
            "ent_coef": Float("ent_coef", (0.0, 0.5), default=0.0),
            "vf_coef": Float("vf_coef", (0.0, 1.0), default=0.5),
            "max_grad_norm": Float("max_grad_norm", (0.0, 1.0), default=0.5),
            "normalize_observations": Categorical(
                "normalize_observations", [True, False], default=False
            ),
        },
    )


def get_default_hpo_config() -> Configuration:
    """Return ARLBench's default PPO hyperparameter configuration."""
    return get_hpo_config_space().get_default_configuration()


def _arlbench_ppo_space(name: str, minibatch_sizes: list[int], seed: int | None):
    """One of ARLBench's four PPO search spaces: nine hyperparameters, the same for
    every domain but the minibatch sizes, as its YAML files define them (types, bounds,
    order; no default but `vf_coef`'s, so the others take ConfigSpace's: a float's is its
    range's middle, on the log scale for the learning rate, a choice's is its first).
    The other four hyperparameters keep the algorithm's defaults; the only static
    choice is `minibatch_size`, so a batch from one of them compiles at most three
    programs."""
    return ConfigurationSpace(
        name=name,
        seed=seed,
        space={
            "learning_rate": Float("learning_rate", (1e-6, 0.1), log=True),
            "ent_coef": Float("ent_coef", (0.0, 0.5)),
            "minibatch_size": Categorical("minibatch_size", minibatch_sizes),
            "gae_lambda": Float("gae_lambda", (0.8, 0.9999)),
            "clip_eps": Float("clip_eps", (0.0, 0.5)),
            "vf_clip_eps": Float("vf_clip_eps", (0.0, 0.5)),
            "normalize_advantage": Categorical("normalize_advantage", [True, False]),
            "vf_coef": Float("vf_coef", (0.0, 1.0), default=0.5),
            "max_grad_norm": Float("max_grad_norm", (0.0, 1.0)),
        },
    )


def get_ppo_cc_config_space(seed: int | None = None) -> ConfigurationSpace:
    """ARLBench's classic-control PPO search space (`ppo_cc`): minibatches of 128, 256
    or 512."""
    return _arlbench_ppo_space("ppo_cc", [128, 256, 512], seed)


def get_ppo_atari_config_space(seed: int | None = None) -> ConfigurationSpace:
    """ARLBench's Atari PPO search space (`ppo_atari`): as `ppo_cc`."""
    return _arlbench_ppo_space("ppo_atari", [128, 256, 512], seed)


def get_ppo_minigrid_config_space(seed: int | None = None) -> ConfigurationSpace:
    """ARLBench's MiniGrid PPO search space (`ppo_minigrid`): minibatches of 32, 64 or
    128."""
    return _arlbench_ppo_space("ppo_minigrid", [32, 64, 128], seed)


def get_ppo_mujoco_config_space(seed: int | None = None) -> ConfigurationSpace:
    """ARLBench's MuJoCo (Brax) PPO search space (`ppo_mujoco`): as `ppo_minigrid`."""
    return _arlbench_ppo_space("ppo_mujoco", [32, 64, 128], seed)


SEARCH_SPACES = {
    "full": get_hpo_config_space,
    "ppo_cc": get_ppo_cc_config_space,
    "ppo_minigrid": get_ppo_minigrid_config_space,
    "ppo_atari": get_ppo_atari_config_space,
    "ppo_mujoco": get_ppo_mujoco_config_space,
}
