"""Environments: the contract, one adapter per framework, observation normalisation,
`make_env`."""

from .._extras import MissingExtraError as MissingExtraError
from ._environment import AbstractEnvironment as AbstractEnvironment
from ._environment import ActionSpec as ActionSpec
from ._environment import EnvStep as EnvStep
from ._environment import where_done as where_done
from ._gymnax import GymnaxEnv as GymnaxEnv
from ._make import SUPPORTED_FRAMEWORKS as SUPPORTED_FRAMEWORKS
from ._make import make_env as make_env
from ._normalize import NormalizerState as NormalizerState
from ._normalize import init_normalizer as init_normalizer
from ._normalize import normalize as normalize
from ._normalize import update_normalizer as update_normalizer
