"""nox sessions for eqxppo.

nox -l                      # list sessions
nox -s tests                # default suite on every supported JAX (CPU)
nox -s "tests(jax='0.10.2')" -- -k gae   # one JAX, pytest arguments after --
nox -s slow                 # learning runs (minutes)
nox -s lint typecheck       # ruff; pyright on eqxppo/ and examples/typed_usage.py
"""

import nox


nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHON = "3.11"
# One release line each from the oldest JAX the dependencies allow (chex 0.1.92 needs
# >= 0.7; Equinox excludes 0.7.0 and 0.7.1) to the newest gymnax allows (< 0.12).
JAX_VERSIONS = ["0.7.2", "0.8.3", "0.9.2", "0.10.2"]
LATEST_JAX = JAX_VERSIONS[-1]


def _install(session: nox.Session, jax: str, *groups: str) -> None:
    group_args = [arg for group in groups for arg in ("--group", group)]
    session.install("-e", ".", *group_args, f"jax=={jax}", f"jaxlib=={jax}")


@nox.session(python=PYTHON)
@nox.parametrize("jax", JAX_VERSIONS, ids=[f"jax-{v}" for v in JAX_VERSIONS])
def tests(session: nox.Session, jax: str) -> None:
    """The default (non-slow) test suite on one JAX release, CPU only."""
    _install(session, jax, "tests")
    session.run("pytest", *session.posargs, env={"JAX_PLATFORMS": "cpu"}, success_codes=[0, 5])


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """The learning runs (`@pytest.mark.slow`) on the newest supported JAX."""
    _install(session, LATEST_JAX, "tests")
    session.run("pytest", "-m", "slow", "-s", *session.posargs, env={"JAX_PLATFORMS": "cpu"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """pyright on the package and on a typed usage file, as a user's IDE sees them."""
    _install(session, LATEST_JAX, "lint")
    session.run("pyright", *session.posargs)
