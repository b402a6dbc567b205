"""ConfigSpace search spaces for PPO (HPO and NAS) and their conversion to typed config."""

from ._config import CONTINUOUS_KEYS as CONTINUOUS_KEYS
from ._config import DEFAULT_DIVERGENCE_LIMIT as DEFAULT_DIVERGENCE_LIMIT
from ._config import GUARD_KEYS as GUARD_KEYS
from ._config import HPO_KEYS as HPO_KEYS
from ._config import NAS_KEYS as NAS_KEYS
from ._config import Activation as Activation
from ._config import NetworkConfig as NetworkConfig
from ._config import PPOConfig as PPOConfig
from ._config import PPOHyperparams as PPOHyperparams
from ._config import Recurrent as Recurrent
from ._config import check_continuous as check_continuous
from ._config import hpo_config_to_dict as hpo_config_to_dict
from ._config import parse_hpo_config as parse_hpo_config
from ._config import parse_nas_config as parse_nas_config
from ._files import get_search_space as get_search_space
from ._files import parse_search_space as parse_search_space
from ._files import read_search_space as read_search_space
from ._files import search_space_to_dict as search_space_to_dict
from ._files import search_space_to_yaml as search_space_to_yaml
from ._hpo import SEARCH_SPACES as SEARCH_SPACES
from ._hpo import get_default_hpo_config as get_default_hpo_config
from ._hpo import get_hpo_config_space as get_hpo_config_space
from ._nas import get_default_nas_config as get_default_nas_config
from ._nas import get_nas_config_space as get_nas_config_space
