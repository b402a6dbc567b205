"""PPO as free functions (`init`, `train`, `predict`, `evaluate` and their pieces) and the
thin `PPO` facade."""

from ._checkpoint import load as load
from ._checkpoint import save as save
from ._checkpoint_file import CheckpointError as CheckpointError
from ._evaluate import evaluate as evaluate
from ._flat import flatten_network as flatten_network
from ._gae import compute_gae as compute_gae
from ._init import init as init
from ._loss import ppo_loss as ppo_loss
from ._optimizer import clip_by_global_norm as clip_by_global_norm
from ._optimizer import global_norm as global_norm
from ._optimizer import make_optimizer as make_optimizer
from ._pbt import exploit_and_explore as exploit_and_explore
from ._population import init_population as init_population
from ._population import train_population as train_population
from ._population_facade import Population as Population
from ._population_facade import PopulationGroup as PopulationGroup
from ._population_facade import PopulationState as PopulationState
from ._ppo import PPO as PPO
from ._predict import predict as predict
from ._rollout import Rollout as Rollout
from ._rollout import collect_rollout as collect_rollout
from ._state import PPOMetrics as PPOMetrics
from ._state import PPORunnerState as PPORunnerState
from ._state import PPOState as PPOState
from ._state import PPOTrainingResult as PPOTrainingResult
from ._state import PPOTrainState as PPOTrainState
from ._state import Transition as Transition
from ._train import train as train
from ._update import Batch as Batch
from ._update import FlatTrainState as FlatTrainState
from ._update import update_epoch as update_epoch
from ._update import update_minibatch as update_minibatch
from ._update import update_step as update_step
from ._update import updates_per_chunk as updates_per_chunk
