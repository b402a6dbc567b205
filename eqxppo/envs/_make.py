"""`make_env`: ARLBench's environment factory, for every framework its PPO benchmark uses."""

from typing import Any

from ._environment import AbstractEnvironment
from ._gymnax import make_gymnax_env


SUPPORTED_FRAMEWORKS = ("gymnax", "xland", "brax", "envpool", "gymnasium")


def make_env(
    env_framework: str,
    env_name: str,
    cnn_policy: bool = False,
    n_envs: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> AbstractEnvironment:
    """Create `n_envs` vectorised copies of an environment, as ARLBench's `make_env` does.

    **Arguments:**

    - `env_framework`: `"gymnax"` (installed with eqxppo), or one of the optional
      frameworks `"xland"`, `"brax"`, `"envpool"`, `"gymnasium"` (extras of the same
      names; a missing one raises `MissingExtraError` naming it).
    - `env_name`: the framework's id, e.g. `"CartPole-v1"`, `"MiniGrid-FourRooms"`,
      `"halfcheetah"`, `"LunarLander-v2"`.
    - `cnn_policy`: keep image observations as `(H, W, C)` for the CNN; otherwise
      observations are flattened, as ARLBench's `FlattenObservationWrapper` does.
    - `n_envs`: parallel environments stepped together.
    - `seed`: the seed of environments whose randomness lives outside JAX (envpool,
      gymnasium). JAX-native environments are pure functions of the keys `init` and
      `train` pass, so it does not change them.
    - `env_kwargs`: what ARLBench passes to the framework's constructor
      (`gymnax.make(name, **kwargs)`, `brax.envs.create(name, **kwargs)`, ...) and,
      for gymnax, overrides of the environment's parameters (`max_steps_in_episode`).
      An unknown key raises and names the valid ones.

    **Returns:**

    The environment (an `AbstractEnvironment`).
    """
    if n_envs < 1:
        raise ValueError(f"`n_envs` must be >= 1, got {n_envs!r}.")
    if env_framework == "gymnax":
        return make_gymnax_env(env_name, n_envs, cnn_policy, env_kwargs)
    if env_framework == "xland":
        from ._xland import make_xland_env

        return make_xland_env(env_name, n_envs, cnn_policy, env_kwargs)
    if env_framework == "brax":
        from ._brax import make_brax_env

        return make_brax_env(env_name, n_envs, cnn_policy, env_kwargs)
    if env_framework == "envpool":
        from ._envpool import make_envpool_env

        return make_envpool_env(env_name, n_envs, cnn_policy, seed, env_kwargs)
    if env_framework == "gymnasium":
        from ._gymnasium import make_gymnasium_env

        return make_gymnasium_env(env_name, n_envs, cnn_policy, env_kwargs)
    raise ValueError(
        f"Unknown env_framework {env_framework!r}; supported: {list(SUPPORTED_FRAMEWORKS)}."
    )
