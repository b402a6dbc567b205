"""The AutoRL loop on eqxppo: ARLBench's `AutoRLEnv` interface (one agent), the same
environment for populations, ask-and-tell adapters for random search, Optuna and SMAC3,
`tune`, the batch HPO loop that logs and resumes, and `pbt`, Hypersweeper's PBT as one
population. Optuna and SMAC are the `eqxppo[autorl]` extra."""

from ._config import DEFAULT_AUTO_RL_CONFIG as DEFAULT_AUTO_RL_CONFIG
from ._config import OBJECTIVES as OBJECTIVES
from ._config import agent_options as agent_options
from ._config import make_envs as make_envs
from ._config import merge_config as merge_config
from ._env import AutoRLEnv as AutoRLEnv
from ._pbt import pbt as pbt
from ._population_env import AutoRLPopulationEnv as AutoRLPopulationEnv
from ._searches import SEARCHES as SEARCHES
from ._searches import Ask as Ask
from ._searches import OptunaSearch as OptunaSearch
from ._searches import RandomSearch as RandomSearch
from ._searches import SMACSearch as SMACSearch
from ._searches import make_search as make_search
from ._tune import StudyMismatch as StudyMismatch
from ._tune import Trial as Trial
from ._tune import incumbent as incumbent
from ._tune import read_trials as read_trials
from ._tune import tune as tune
