"""Experiment tracking: what `train`, a population or an HPO study produced, written to
CSV files, TensorBoard (`eqxppo[tensorboard]`) or Weights & Biases (`eqxppo[wandb]`),
one run per agent, population member or trial, with its hyperparameters. Loggers work on
the host, after a compiled call returns: they cost the program nothing."""

from ._log import final_metrics as final_metrics
from ._log import log_population as log_population
from ._log import log_rows as log_rows
from ._log import log_run as log_run
from ._log import log_training as log_training
from ._log import log_trials as log_trials
from ._log import member_name as member_name
from ._logger import AbstractLogger as AbstractLogger
from ._logger import AbstractRun as AbstractRun
from ._logger import CSVLogger as CSVLogger
from ._make import LOGGERS as LOGGERS
from ._make import make_loggers as make_loggers
from ._make import parse_loggers as parse_loggers
from ._rows import TAGS as TAGS
from ._rows import Row as Row
from ._rows import evaluation_rows as evaluation_rows
from ._rows import evaluation_steps as evaluation_steps
from ._rows import member_result as member_result
from ._tensorboard import TensorBoardLogger as TensorBoardLogger
from ._wandb import WandbLogger as WandbLogger
