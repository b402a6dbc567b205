"""Equinox actor-critic networks and action distributions."""

from ._actor_critic import AbstractActorCritic as AbstractActorCritic
from ._actor_critic import kernels_of as kernels_of
from ._cnn import CNNActorCritic as CNNActorCritic
from ._cnn import NatureCNNEncoder as NatureCNNEncoder
from ._distributions import AbstractDistribution as AbstractDistribution
from ._distributions import Categorical as Categorical
from ._distributions import DiagGaussian as DiagGaussian
from ._distributions import action_distribution as action_distribution
from ._init import orthogonal as orthogonal
from ._make import make_network as make_network
from ._mlp import MLPActorCritic as MLPActorCritic
from ._recurrent import AbstractRecurrentActorCritic as AbstractRecurrentActorCritic
from ._recurrent import RecurrentActorCritic as RecurrentActorCritic
