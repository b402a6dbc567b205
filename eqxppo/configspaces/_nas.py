"""The PPO architecture (NAS) search space, exactly as ARLBench defines it."""

from ConfigSpace import Categorical, Configuration, ConfigurationSpace, Integer


def get_nas_config_space(seed: int | None = None) -> ConfigurationSpace:
    """Return PPO's architecture space: `activation` in {tanh, relu}, `hidden_size` in [1, 2048].

    **Arguments:**

    - `seed`: seed of the space's sampler.

    **Returns:**

    A fresh `ConfigurationSpace`; its default is tanh with 64 hidden units.
    """
    return ConfigurationSpace(
        name="PPONASConfigSpace",
        seed=seed,
        space={
            "activation": Categorical("activation", ["tanh", "relu"], default="tanh"),
            "hidden_size": Integer("hidden_size", (1, 2048), default=64),
        },
    )


def get_default_nas_config() -> Configuration:
    """Return ARLBench's default architecture configuration (tanh, 64 hidden units)."""
    return get_nas_config_space().get_default_configuration()
