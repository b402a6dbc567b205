"""Build the actor-critic an architecture config asks for."""

from jaxtyping import PRNGKeyArray

from ..configspaces import NetworkConfig
from ..envs import ActionSpec
from ._actor_critic import ACTIVATION_FNS, AbstractActorCritic
from ._cnn import CNNActorCritic
from ._mlp import MLPActorCritic
from ._recurrent import RecurrentActorCritic


def make_network(
    network_config: NetworkConfig,
    obs_shape: tuple[int, ...],
    action_spec: ActionSpec,
    *,
    key: PRNGKeyArray,
) -> AbstractActorCritic:
    """A freshly initialised actor-critic: NatureCNN if `cnn_policy`, else the MLP; with
    `network_config.recurrent` a `RecurrentActorCritic` (the same encoder, then the core).

    **Arguments:**

    - `network_config`: activation, hidden size, `cnn_policy` and the recurrent core.
    - `obs_shape`: one observation's shape: `(obs_dim,)` for the MLP, `(H, W, C)` for the CNN.
    - `action_spec`: discrete or continuous, and the action dimension.
    - `key`: initialisation key.

    The network holds `network_config.kernels` as a static field; an unresolved config
    (`kernels=None`) is resolved here (`NetworkConfig.resolved`), which reads
    `EQXPPO_KERNELS` and the backend: call it on a resolved config inside traced code.
    The parameters do not depend on the kernels.
    """
    kernels = network_config.resolved().kernels
    assert kernels is not None  # resolved
    activation = ACTIVATION_FNS[network_config.activation]
    if network_config.cnn_policy and len(obs_shape) != 3:
        raise ValueError(f"cnn_policy needs observations of shape (H, W, C), got {obs_shape}.")
    if not network_config.cnn_policy and len(obs_shape) != 1:
        raise ValueError(
            f"The MLP policy needs flat observations (obs_dim,), got {obs_shape}; "
            "use make_env(..., cnn_policy=False) to flatten them, or cnn_policy=True."
        )
    if network_config.recurrent != "none":
        return RecurrentActorCritic(
            obs_shape,
            action_spec.action_dim,
            action_spec.discrete,
            network_config.hidden_size,
            activation,
            network_config.recurrent,
            key=key,
            kernels=kernels,
        )
    if network_config.cnn_policy:
        height, width, channels = tuple(obs_shape)  # three axes, checked above
        return CNNActorCritic(
            (height, width, channels),
            action_spec.action_dim,
            action_spec.discrete,
            network_config.hidden_size,
            activation,
            key=key,
            kernels=kernels,
        )
    return MLPActorCritic(
        obs_shape[0],
        action_spec.action_dim,
        action_spec.discrete,
        network_config.hidden_size,
        activation,
        key=key,
        kernels=kernels,
    )
