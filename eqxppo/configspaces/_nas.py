"""The PPO architecture (NAS) search space: ARLBench's two keys and the recurrent core."""

from ConfigSpace import Categorical, Configuration, ConfigurationSpace, Integer


def get_nas_config_space(seed: int | None = None) -> ConfigurationSpace:
    """Return PPO's architecture space: ARLBench's `activation` in {tanh, relu} and
    `hidden_size` in [1, 2048], and eqxppo's `recurrent` in {none, gru, lstm}.

    **Arguments:**

    - `seed`: seed of the space's sampler.

    **Returns:**

    A fresh `ConfigurationSpace`; its default is ARLBench's (tanh, 64 hidden units) and
    feed-forward (`recurrent="none"`).
    """
    return ConfigurationSpace(
        name="PPONASConfigSpace",
        seed=seed,
        space={
            "activation": Categorical("activation", ["tanh", "relu"], default="tanh"),
            "hidden_size": Integer("hidden_size", (1, 2048), default=64),
            "recurrent": Categorical("recurrent", ["none", "gru", "lstm"], default="none"),
        },
    )


def get_default_nas_config() -> Configuration:
    """Return the default architecture configuration: ARLBench's (tanh, 64 hidden units),
    feed-forward."""
    return get_nas_config_space().get_default_configuration()
