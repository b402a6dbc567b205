"""PPO, the algorithm, as free functions: `init`, `train` (chunks of `update_step`s, an
evaluation after each), `evaluate`, `predict`, and the pieces a variant swaps: the
rollout, GAE, the loss, the optimizer. The population machinery builds on it
(`eqxppo.population`), the `PPO` agent facade on both (`eqxppo.agent`)."""

from ._evaluate import evaluate as evaluate
from ._gae import compute_gae as compute_gae
from ._init import init as init
from ._loss import Batch as Batch
from ._loss import LossFn as LossFn
from ._loss import policy_and_value as policy_and_value
from ._loss import ppo_loss as ppo_loss
from ._optimizer import Elementwise as Elementwise
from ._optimizer import OptimizerFactory as OptimizerFactory
from ._optimizer import make_optimizer as make_optimizer
from ._predict import predict as predict
from ._predict import predict_recurrent as predict_recurrent
from ._rollout import Rollout as Rollout
from ._rollout import collect_rollout as collect_rollout
from ._rollout import rollout_values as rollout_values
from ._spec import AgentSpec as AgentSpec
from ._state import PPOMetrics as PPOMetrics
from ._state import PPORunnerState as PPORunnerState
from ._state import PPOState as PPOState
from ._state import PPOTrainingResult as PPOTrainingResult
from ._state import PPOTrainState as PPOTrainState
from ._state import Transition as Transition
from ._train import train as train
from ._update import update_step as update_step
