"""eqxppo: a typed, functional PPO on Equinox (ARLBench's PPO, compiled once, vmappable)."""

from . import configspaces as configspaces
from . import envs as envs
from . import networks as networks
from . import ppo as ppo
from ._compilation_cache import cache_stats as cache_stats
from ._compilation_cache import disable_compilation_cache as disable_compilation_cache
from ._compilation_cache import enable_compilation_cache as enable_compilation_cache
from ._cores import OneCPUDeviceWarning as OneCPUDeviceWarning
from ._cores import cpu_cores as cpu_cores
from ._cores import use_cpu_cores as use_cpu_cores
from .agent import PPO as PPO
from .agent import CheckpointError as CheckpointError
from .agent import load as load
from .agent import save as save
from .configspaces import NetworkConfig as NetworkConfig
from .configspaces import PPOConfig as PPOConfig
from .configspaces import PPOHyperparams as PPOHyperparams
from .envs import make_env as make_env
from .population import Population as Population
from .population import PopulationState as PopulationState
from .population import PopulationTooLarge as PopulationTooLarge
from .ppo import PPOMetrics as PPOMetrics
from .ppo import PPORunnerState as PPORunnerState
from .ppo import PPOState as PPOState
from .ppo import PPOTrainingResult as PPOTrainingResult
from .ppo import PPOTrainState as PPOTrainState
from .ppo import Transition as Transition


def _installed_version() -> str:
    """The installed distribution's version (pyproject.toml's, one place to change)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eqxppo")
    except PackageNotFoundError:  # the source tree on sys.path, not installed
        return "0+unknown"


__version__ = _installed_version()
