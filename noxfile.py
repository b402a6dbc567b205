"""nox sessions for eqxppo.

nox -l                      # list sessions
nox -s tests                # the CI split: all on the newest line, a subset elsewhere
nox -s "tests(py3.11-jax0.10.2)" -- -k gae   # one line, pytest args after --
nox -s all_lines            # the full suite on every tested (Python, JAX) line
nox -s slow                 # learning runs (minutes)
nox -s quick                # a newcomer's check: the fast tests on one line
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
# The CI run's split (90 minutes in all; kept under 60 as the suite grows). The whole
# suite is about 95 minutes of test time: on 2 cores, 47 minutes on one line (measured
# on the newest, 2026-12-07), so it runs whole on one line only:
# - the newest line runs everything;
# - the oldest line runs the `compat` tests (vmap of init and train, sharding, compile
#   counts, ahead-of-time compilation, epoch groups: the JAX APIs whose behaviour moves
#   between releases most) with the plain kernels (`EQXPPO_KERNELS=plain`, the code a
#   GPU runs: networks, shuffle, compiler options); with the newest line it brackets
#   the range, and the CPU kernels run the whole suite on the newest;
# - Python 3.11 / JAX 0.10.2, between them, runs the checkpoint tests with the plain
#   kernels and the optional frameworks' tests (their extras install there only);
# - left to `all_lines`: the whole suite on every line, the two Python 3.12 lines,
#   3.11 / 0.8.3 and 3.11 / 0.9.2. With the oldest line's whole non-`e2e` suite and the
#   middle line's `compat` tests as well, CI took 86 minutes (2026-12-06).
#   Each line's tests run in two pytest-xdist processes (`_pytest`).
NEWEST, OLDEST = ("3.13", "0.11.2"), ("3.11", "0.7.2")
# The test modules, longest first (measured on the newest line, two workers), given to
# pytest-xdist in this order with `--no-loadscope-reorder`: each worker takes the next
# whole module as it frees up, so the long ones start at once and the short ones fill
# the end. xdist's own order (most tests first) put the long modules of few tests
# (`test_reproducibility`, `test_gpu_script`, `test_multihost`, `test_cores`) last: one
# worker trained them alone for the suite's last six minutes.
LONGEST_FIRST = ["test_population", "test_recurrent", "test_autorl", "test_reproducibility",
                 "test_reliability", "test_sweeps", "test_experiments", "test_cli",
                 "test_compilation_cache", "test_memory", "test_train", "test_checkpoint",
                 "test_gpu_script", "test_cores", "test_multihost", "test_pbt_study",
                 "test_xla_cpu", "test_tracking"]  # fmt: skip


def _ordered() -> list[str]:
    """Every test module, the longest first, then the rest by name."""
    every = sorted(str(p) for p in Path("tests").glob("test_*.py"))
    first = [f"tests/{name}.py" for name in LONGEST_FIRST]
    rest = [path for path in every if path not in first]
    return [path for path in first + rest if Path(path).exists()]


CI_LINES = [OLDEST, ("3.11", "0.10.2"), NEWEST]
IDS = [f"py{python}-jax{jax}" for python, jax in LINES]
CI_IDS = [f"py{python}-jax{jax}" for python, jax in CI_LINES]


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
# The newest line Python 3.11 has: it installs the environment extras (`eqxppo[envs]`)
# and runs their tests, elsewhere skipped with the missing extra named (xminigrid, brax
# and envpool publish builds for it; envpool's for Python 3.11 stop at 1.2.5); the slow
# learning runs, lint and pyright run on it too.
ENV_LINE = ("3.11", "0.10.2")
ENV_LINES = {ENV_LINE}
ADAPTER_TESTS = "tests/test_env_adapters.py"


def _install(session: nox.Session, jax: str, *groups: str) -> None:
    group_args = [arg for group in groups for arg in ("--group", group)]
    package = ".[envs]" if (session.python, jax) in ENV_LINES else "."
    session.install("-e", package, *group_args, f"jax=={jax}", f"jaxlib=={jax}")


def _pytest(
    session: nox.Session, *args: str, kernels: str = "auto", dist: str | None = "loadfile"
) -> None:
    # The slowest tests in the log: where CI's time goes. Two pytest-xdist workers, by
    # default each test module whole in one of them (its tests share their compiled
    # programs); the adapters' module alone is spread test by test (`dist="load"`:
    # 4.2 minutes against 5.7). Most of a test is tracing and compiling, one core's
    # work, so two workers did the newest line's suite in 32 minutes where one process
    # took 47 (2 cores).
    env = {"JAX_PLATFORMS": "cpu", "EQXPPO_KERNELS": kernels}
    workers = ["-n", "2", "--dist", dist] if dist else []
    session.run("pytest", "--durations=15", *workers, *args, *session.posargs, env=env)


@nox.session
@nox.parametrize("python,jax", CI_LINES, ids=CI_IDS)
def tests(session: nox.Session, jax: str) -> None:
    """The CI split on one line: everything (newest), `compat` (oldest), or checkpoints and
    the extras' adapters (3.11 / 0.10.2)."""
    _install(session, jax, "tests")
    line = (session.python, jax)
    if line == NEWEST:
        _pytest(session, "--no-loadscope-reorder", *_ordered())
    elif line == OLDEST:
        # With the plain kernels: the code a GPU runs, trained, populated and sharded on
        # the oldest JAX on every landing (the CPU kernels run everything on the newest).
        _pytest(session, "-m", "compat and not slow", kernels="plain")
    else:
        _pytest(session, "tests/test_checkpoint.py", kernels="plain")
    if (session.python, jax) in ENV_LINES:
        # The optional frameworks' tests in a process of their own: once, after envpool,
        # brax and gymnasium had run, a later XLA compilation in the same process
        # crashed (a segfault inside backend_compile, jax 0.10.2); apart, both pass.
        _pytest(session, ADAPTER_TESTS, dist="load")


@nox.session
@nox.parametrize("python,jax", LINES, ids=IDS)
def all_lines(session: nox.Session, jax: str) -> None:
    """The whole default suite on every line (longer than CI's budget allows)."""
    _install(session, jax, "tests")
    if (session.python, jax) in ENV_LINES:
        _pytest(session, f"--ignore={ADAPTER_TESTS}")
        _pytest(session, ADAPTER_TESTS, dist="load")
        return
    _pytest(session)


@nox.session(python=ENV_LINE[0])
def slow(session: nox.Session) -> None:
    """The learning runs (`@pytest.mark.slow`) on the newest Python 3.11 line."""
    _install(session, ENV_LINE[1], "tests")
    _pytest(session, "-m", "slow", "-s", dist=None)


# A newcomer's first check: the algorithm and its parts (GAE, loss, networks, optimizer,
# update, shuffling, environments, the agent, grouping), the search spaces and the
# compiled programs' keys, on one line, without the environment extras. Measured on 2
# cores from an empty venv: see the README.
QUICK = ["tests/test_gae.py", "tests/test_loss.py", "tests/test_networks.py",
         "tests/test_optimizer.py", "tests/test_update.py", "tests/test_shuffle.py",
         "tests/test_envs.py", "tests/test_ppo.py", "tests/test_plan.py",
         "tests/test_configspaces.py", "tests/test_programs.py"]  # fmt: skip


@nox.session(python=ENV_LINE[0])
def quick(session: nox.Session) -> None:
    """The fast tests on the newest Python 3.11 line, in a few minutes (CI runs `tests`)."""
    session.install("-e", ".", "--group", "tests", f"jax=={ENV_LINE[1]}", f"jaxlib=={ENV_LINE[1]}")
    _pytest(session, "-m", "not slow and not e2e", *QUICK)


@nox.session(python=ENV_LINE[0])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=ENV_LINE[0])
def typecheck(session: nox.Session) -> None:
    """pyright on the package and on a typed usage file, as a user's IDE sees them."""
    # With the test group: the optional frameworks' imports (SMAC, Optuna, Dask) resolve.
    _install(session, ENV_LINE[1], "lint", "tests")
    session.run("pyright", *session.posargs)
