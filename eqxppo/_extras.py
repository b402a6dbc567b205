"""Optional frameworks (environments, the distributed engine): imported on first use,
with the extra to install."""

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional framework is not installed; the message names the extra to install."""


def require(module: str, extra: str, *, what: str | None = None) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming `pip install 'eqxppo[extra]'`.

    `what` names the feature in the message (default: `env_framework '<extra>'`).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        what = f"env_framework {extra!r}" if what is None else what
        raise MissingExtraError(
            f"{what} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'eqxppo[{extra}]'."
        ) from error
