"""nox sessions for eqxppo.

nox -l                      # list sessions
nox -s tests                # the CI matrix: full suite on the edges, a subset between
nox -s "tests(py3.11-jax0.10.2)" -- -k gae   # one line, pytest args after --
nox -s all_lines            # the full suite on every tested (Python, JAX) line
nox -s slow                 # learning runs (minutes)
nox -s lint typecheck       # ruff; pyright on eqxppo/ and examples/typed_usage.py
"""

import os
import shutil
import subprocess
from pathlib import Path

import nox


nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint", "typecheck"]

# Every tested (Python, JAX) line: the oldest JAX the dependencies allow (chex 0.1.92
# needs >= 0.7; Equinox excludes 0.7.0 and 0.7.1) to the newest gymnax allows (< 0.12).
# JAX 0.11 needs Python >= 3.12; Python 3.11's newest JAX is 0.10.2.
LINES = [
    ("3.11", "0.7.2"),
    ("3.11", "0.8.3"),
    ("3.11", "0.9.2"),
    ("3.11", "0.10.2"),
    ("3.12", "0.10.2"),
    ("3.12", "0.11.2"),
    ("3.13", "0.11.2"),
]
# The CI run's split (90 minutes in all; kept under 60): the whole suite on the oldest
# and the newest line, which bracket everything; on the lines between, the tests marked
# `compat`, those that touch the JAX APIs whose behaviour moves between releases most
# (`vmap` of the initialisation and of training, sharding, compile counts, AOT
# compilation: tests/test_train.py and tests/test_population.py). The newest Python 3.11
# line adds the optional frameworks' tests (its extras install there only).
FULL_LINES = {("3.11", "0.7.2"), ("3.13", "0.11.2")}
IDS = [f"py{python}-jax{jax}" for python, jax in LINES]


def _findable(python: str) -> bool:
    exe = shutil.which(f"python{python}")
    return (
        exe is not None and subprocess.run([exe, "--version"], capture_output=True).returncode == 0
    )


# pyenv's shims answer `python3.12` only for the versions pyenv has activated; put the
# installed builds the matrix needs on PATH (uv and virtualenv look for them there).
for _python in sorted({python for python, _ in LINES}):
    if not _findable(_python):
        _root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        for _bin in sorted(_root.glob(f"{_python}.*/bin"), reverse=True)[:1]:
            os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ['PATH']}"
LATEST = ("3.11", "0.10.2")
# The line that installs the environment extras (`eqxppo[envs]`) and runs their tests;
# elsewhere those tests skip, naming the missing extra. xminigrid, brax and envpool
# publish builds for this combination (envpool's for Python 3.11 stop at 1.2.5).
ENV_LINES = {LATEST}
ADAPTER_TESTS = "tests/test_env_adapters.py"


def _install(session: nox.Session, jax: str, *groups: str) -> None:
    group_args = [arg for group in groups for arg in ("--group", group)]
    package = ".[envs]" if (session.python, jax) in ENV_LINES else "."
    session.install("-e", package, *group_args, f"jax=={jax}", f"jaxlib=={jax}")


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("pytest", *args, *session.posargs, env={"JAX_PLATFORMS": "cpu"})


@nox.session
@nox.parametrize("python,jax", LINES, ids=IDS)
def tests(session: nox.Session, jax: str) -> None:
    """The default (non-slow) suite on one line: all of it, or the `compat` subset."""
    _install(session, jax, "tests")
    full = (session.python, jax) in FULL_LINES
    _pytest(session, *([] if full else ["-m", "compat and not slow"]))
    if (session.python, jax) in ENV_LINES:
        # The optional frameworks' tests in a process of their own: once, after envpool,
        # brax and gymnasium had run, a later XLA compilation in the same process
        # crashed (a segfault inside backend_compile, jax 0.10.2); apart, both pass.
        _pytest(session, ADAPTER_TESTS)


@nox.session
@nox.parametrize("python,jax", LINES, ids=IDS)
def all_lines(session: nox.Session, jax: str) -> None:
    """The whole default suite on every line (longer than CI's budget allows)."""
    _install(session, jax, "tests")
    if (session.python, jax) in ENV_LINES:
        _pytest(session, f"--ignore={ADAPTER_TESTS}")
        _pytest(session, ADAPTER_TESTS)
        return
    _pytest(session)


@nox.session(python=LATEST[0])
def slow(session: nox.Session) -> None:
    """The learning runs (`@pytest.mark.slow`) on the newest Python 3.11 line."""
    _install(session, LATEST[1], "tests")
    _pytest(session, "-m", "slow", "-s")


@nox.session(python=LATEST[0])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=LATEST[0])
def typecheck(session: nox.Session) -> None:
    """pyright on the package and on a typed usage file, as a user's IDE sees them."""
    _install(session, LATEST[1], "lint")
    session.run("pyright", *session.posargs)
