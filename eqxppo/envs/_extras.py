"""Optional environment frameworks: imported on first use, with the extra to install."""

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional framework is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming `pip install 'eqxppo[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"env_framework {extra!r} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'eqxppo[{extra}]'."
        ) from error
