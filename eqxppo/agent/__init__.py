"""The agent facade: `PPO`, ARLBench's class API over the algorithm's free functions
and the population machinery, and its checkpoints (`save`, `load`)."""

from ._checkpoint import load as load
from ._checkpoint import save as save
from ._checkpoint_file import CheckpointError as CheckpointError
from ._ppo import PPO as PPO
