"""The command line's subcommands; `eqxppo.__main__` builds the parser."""

from ._arlbench import arlbench_command as arlbench_command
from ._common import UserError as UserError
from ._evaluate import evaluate_command as evaluate_command
from ._sweep import sweep_command as sweep_command
from ._train import train_command as train_command
from ._tune import tune_command as tune_command
