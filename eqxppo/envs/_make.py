"""`make_env`: ARLBench's environment factory, for the frameworks eqxppo supports."""

from typing import Any

from ._gymnax import GymnaxEnv, make_gymnax_env


SUPPORTED_FRAMEWORKS = ("gymnax",)
_NOT_YET = ("brax", "envpool", "gymnasium", "xland")


def make_env(
    env_framework: str,
    env_name: str,
    cnn_policy: bool = False,
    n_envs: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> GymnaxEnv:
    """Create `n_envs` vectorised copies of an environment, as ARLBench's `make_env` does.

    **Arguments:**

    - `env_framework`: `"gymnax"` (every registered gymnax environment). ARLBench's other
      frameworks (brax, envpool, gymnasium, xland) raise `ValueError`: not supported yet.
    - `env_name`: the framework's id, e.g. `"CartPole-v1"`, `"Breakout-MinAtar"`.
    - `cnn_policy`: keep image observations as `(H, W, C)` for the CNN; otherwise
      observations are flattened, as ARLBench's `FlattenObservationWrapper` does.
    - `n_envs`: parallel environments stepped together.
    - `seed`: accepted for ARLBench compatibility. gymnax environments are pure functions
      of the keys `init` and `train` pass, so this seed does not change them.
    - `env_kwargs`: overrides of the environment's default parameters, e.g.
      `{"max_steps_in_episode": 200}`; an unknown key raises and names the valid ones.

    **Returns:**

    The environment (an `AbstractEnvironment`).
    """
    del seed
    if env_framework in _NOT_YET:
        raise ValueError(
            f"env_framework {env_framework!r} is not supported yet; "
            f"supported: {list(SUPPORTED_FRAMEWORKS)}."
        )
    if env_framework != "gymnax":
        raise ValueError(
            f"Unknown env_framework {env_framework!r}; supported: {list(SUPPORTED_FRAMEWORKS)}."
        )
    return make_gymnax_env(env_name, n_envs, cnn_policy, env_kwargs)
