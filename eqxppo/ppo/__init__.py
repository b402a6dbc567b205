"""PPO as free functions (`init`, `train`, `predict`, `evaluate`, `update_step` and the
pieces a variant swaps: the rollout, GAE, the loss, the optimizer) and the facades
(`PPO`, `Population`)."""

from ._checkpoint import load as load
from ._checkpoint import save as save
from ._checkpoint_file import CheckpointError as CheckpointError
from ._evaluate import evaluate as evaluate
from ._gae import compute_gae as compute_gae
from ._init import init as init
from ._loss import Batch as Batch
from ._loss import LossFn as LossFn
from ._loss import policy_and_value as policy_and_value
from ._loss import ppo_loss as ppo_loss
from ._memory import PopulationTooLarge as PopulationTooLarge
from ._optimizer import OptimizerFactory as OptimizerFactory
from ._optimizer import clip_by_global_norm as clip_by_global_norm
from ._optimizer import make_optimizer as make_optimizer
from ._pbt import exploit_and_explore as exploit_and_explore
from ._plan import GroupingCost as GroupingCost
from ._plan import PlannedGroup as PlannedGroup
from ._plan import plan_groups as plan_groups
from ._population import init_population as init_population
from ._population import train_population as train_population
from ._population_facade import Population as Population
from ._population_facade import PopulationGroup as PopulationGroup
from ._population_facade import PopulationState as PopulationState
from ._ppo import PPO as PPO
from ._predict import predict as predict
from ._predict import predict_recurrent as predict_recurrent
from ._rollout import Rollout as Rollout
from ._rollout import collect_rollout as collect_rollout
from ._rollout import episode_starts as episode_starts
from ._rollout import rollout_values as rollout_values
from ._sharding import to_host as to_host
from ._spec import AgentSpec as AgentSpec
from ._state import LEARNED_FIELDS as LEARNED_FIELDS
from ._state import OWN_FIELDS as OWN_FIELDS
from ._state import PPOMetrics as PPOMetrics
from ._state import PPORunnerState as PPORunnerState
from ._state import PPOState as PPOState
from ._state import PPOTrainingResult as PPOTrainingResult
from ._state import PPOTrainState as PPOTrainState
from ._state import Transition as Transition
from ._train import train as train
from ._update import update_step as update_step
from ._update import updates_per_chunk as updates_per_chunk
