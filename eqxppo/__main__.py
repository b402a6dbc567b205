"""The command line: `python -m eqxppo {train,evaluate,sweep,tune,arlbench} ...` (or
`eqxppo ...`).

User errors (unknown hyperparameter, value out of range, unknown environment, missing
directory, unreadable checkpoint or file, flags that conflict with a resumed run, a folder
another process is writing, a folder the OS refuses, a missing extra) exit with status
2 and one line on stderr. Anything else is a bug: it shows its traceback and exits 1.

Divergence is never silent. `train` exits with status 3 when its run diverged (after
writing its outputs, with the chunk named on stderr and in `metrics.csv` and
`status.json`); `sweep` ranks configurations with a diverged seed last, counts them in
`results.csv` (`diverged_seeds`) and names them on stderr; `tune` tells a diverged trial
as failed; `evaluate` warns that the checkpoint's run diverged. The last three exit 0:
a diverged run is then one of their results, not a failure of the command.
"""

import argparse
import platform
import sys
from typing import Any, NoReturn

from ._cli import (
    UserError,
    arlbench_command,
    evaluate_command,
    sweep_command,
    train_command,
    tune_command,
)
from ._cli._common import parse_value
from ._compilation_cache import compilation_cache, default_dir
from ._cores import backends_started, use_cpu_cores
from ._counts import count_arg
from ._extras import MissingExtraError
from ._lock import FolderInUse
from .autorl import SEARCHES
from .configspaces import (
    DEFAULT_DIVERGENCE_LIMIT,
    SEARCH_SPACES,
    get_hpo_config_space,
    get_nas_config_space,
)
from .envs import SUPPORTED_FRAMEWORKS


# What `--framework` offers: every framework `make_env` knows. Populations vmap the
# JAX-native ones; envpool and gymnasium (state outside JAX) train members one by one.
FRAMEWORK_HELP = (
    "gymnax (the default), xland, brax, envpool or gymnasium; all but gymnax need their "
    "extra (eqxppo[xland], [brax], [envpool], [gymnasium])"
)
POPULATION_FRAMEWORK_HELP = (
    f"{FRAMEWORK_HELP}; gymnax, xland and brax train a batch's trials side by side in one "
    "program, envpool and gymnasium one after another"
)
# A sweep is one population: its environments must run under `vmap`.
VMAPPABLE_FRAMEWORKS = ("gymnax", "xland", "brax")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's default in its help (unless the help already says it, or there is
    none to show), and the epilogs' tables as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _set_keys() -> str:
    """The keys `--set` and `--config` take, with their defaults and ranges, for `--help`."""

    def describe(hp: Any) -> str:
        if hasattr(hp, "choices"):
            values = "|".join(str(c) for c in hp.choices)
            return f"{{{values}}}"
        scale = ", log" if getattr(hp, "log", False) else ""
        return f"[{hp.lower:g}, {hp.upper:g}{scale}]"

    lines = ["--set / --config keys (ARLBench's search range; any value the algorithm "
             "accepts may be set):"]  # fmt: skip
    for title, space in (("hyperparameters", get_hpo_config_space()),
                         ("architecture", get_nas_config_space())):  # fmt: skip
        lines.append(f"  {title}:")
        for hp in space.values():
            lines.append(f"    {hp.name:<24} default {hp.default_value!s:<8} {describe(hp)}")
    lines.append("  guard:")
    lines.append(f"    {'divergence_limit':<24} default {DEFAULT_DIVERGENCE_LIMIT:g}  a loss or "
                 "gradient norm past it is a divergence")  # fmt: skip
    return "\n".join(lines)


def _version() -> str:
    import jax

    from . import __version__

    return (f"eqxppo {__version__} (JAX {jax.__version__}, Python "
            f"{platform.python_version()})")  # fmt: skip


def _add_hyperparameter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="hyperparameters from a .json/.yaml file (flat, or a run's "
                             "config.json)")  # fmt: skip
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                        help="hyperparameter override, e.g. --set learning_rate=1e-3 "
                             "(repeatable; after --config)")  # fmt: skip


def _env_kwarg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, parse_value(value)


def _add_cache_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--compilation-cache", default=None, metavar="DIR",
                       help="keep compiled programs here and load them in later runs "
                            f"(default {default_dir()}, or $EQXPPO_COMPILATION_CACHE)")  # fmt: skip
    group.add_argument("--no-compilation-cache", action="store_true",
                       help="compile every program afresh")  # fmt: skip


def _add_logger_flag(parser: argparse.ArgumentParser, runs: str) -> None:
    parser.add_argument("--logger", default="csv", metavar="NAMES",
                        help=f"comma-separated: csv (the default; the command's CSV files "
                             f"are always written), tensorboard (OUT/tensorboard/, needs "
                             f"eqxppo[tensorboard]), wandb (needs eqxppo[wandb]; "
                             f"WANDB_MODE=offline works): {runs}")  # fmt: skip


def _cpu_devices(text: str) -> int | None:
    if text == "auto":
        return None
    return count_arg(1)(text)


def _add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu-devices",
        type=_cpu_devices,
        default=None,
        metavar="N|auto",
        help="XLA:CPU devices the members are sharded over (default auto: one per core; "
        "1: one device whose kernels use all cores)",
    )


def _use_cpu_devices(n: int | None) -> None:
    """One CPU device per core (or `n`) for this process's populations. A process whose
    JAX has already started (a caller running `main` in its own process) keeps its
    devices under `auto`; an explicit count that cannot be had is the user's error."""
    if n is None and backends_started():
        return
    try:
        use_cpu_cores(n)
    except RuntimeError as error:
        raise UserError(f"--cpu-devices: {error}") from None


class _Parser(argparse.ArgumentParser):
    """argparse's errors (a count of `1.5`, an unknown flag) as the one-line, status-2
    `UserError` every other mistake in what the user typed is."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="eqxppo", description="PPO on Equinox.", formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=_version(),
                        help="eqxppo's version, with JAX's and Python's")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=_Formatter, **kwargs)

    train = add_parser("train", help="train PPO on one environment (or resume a run)",
                       epilog=_set_keys())  # fmt: skip
    train.add_argument("--env", default=None, help="the framework's id (default CartPole-v1)")
    train.add_argument("--framework", default=None, choices=SUPPORTED_FRAMEWORKS,
                       help=FRAMEWORK_HELP)  # fmt: skip
    train.add_argument("--timesteps", type=count_arg(1), default=None, help="default 200000")
    train.add_argument("--seed", type=count_arg(0), default=None, help="default 0")
    train.add_argument("--n-envs", type=count_arg(1), default=None, help="default 8")
    train.add_argument("--cnn-policy", action="store_true", default=None,
                       help="NatureCNN on image observations (default: MLP)")  # fmt: skip
    train.add_argument("--env-kwarg", dest="env_kwargs", action="append", type=_env_kwarg,
                       default=None, metavar="KEY=VALUE",
                       help="an argument of the environment's constructor, e.g. "
                            "--env-kwarg episodic_life=true (repeatable)")  # fmt: skip
    train.add_argument("--chunks", type=count_arg(1), default=None,
                       help="evaluations, checkpoints, progress updates (default 10)")  # fmt: skip
    train.add_argument("--eval-episodes", type=count_arg(1), default=None, help="default 10")
    _add_hyperparameter_flags(train)
    train.add_argument("--out", default=None, metavar="DIR",
                       help="write config.json, metrics.csv, learning_curve.png and "
                            "checkpoint.eqx here")  # fmt: skip
    train.add_argument("--resume", default=None, metavar="DIR",
                       help="continue the run in DIR (from `train --out DIR`)")  # fmt: skip
    _add_logger_flag(train, "one run, each chunk's evaluation and losses")
    _add_cache_flags(train)
    train.set_defaults(func=train_command)

    evaluate = add_parser("evaluate", help="evaluate a run's checkpoint")
    evaluate.add_argument("dir", metavar="DIR", help="run directory or checkpoint file")
    evaluate.add_argument("--episodes", type=count_arg(1), default=100,
                          help="evaluation episodes")  # fmt: skip
    evaluate.add_argument("--stochastic", action="store_true",
                          help="sample actions instead of the policy's mode")  # fmt: skip
    evaluate.add_argument("--seed", type=count_arg(0), default=0,
                          help="seed of the evaluation environments and sampling")  # fmt: skip
    _add_cache_flags(evaluate)
    evaluate.set_defaults(func=evaluate_command)

    sweep = add_parser("sweep", help="sample configurations and train them as a population",
                       epilog=_set_keys())  # fmt: skip
    sweep.add_argument("--env", default="CartPole-v1", help="the framework's id")
    sweep.add_argument("--framework", default="gymnax", choices=VMAPPABLE_FRAMEWORKS,
                       help="a framework whose environments JAX can vmap: gymnax, xland "
                            "or brax (the last two need their extra)")  # fmt: skip
    sweep.add_argument("--n-configs", type=count_arg(1), required=True,
                       help="configurations sampled from ARLBench's search space")  # fmt: skip
    sweep.add_argument("--seeds", type=count_arg(1), default=1, help="seeds per configuration")
    sweep.add_argument("--timesteps", type=count_arg(1), default=100_000, help="per member")
    sweep.add_argument("--n-envs", type=count_arg(1), default=8, help="environments per member")
    sweep.add_argument("--chunks", type=count_arg(1), default=10,
                       help="evaluations per member (one compiled call each)")  # fmt: skip
    sweep.add_argument("--eval-episodes", type=count_arg(1), default=10,
                       help="episodes per evaluation")  # fmt: skip
    sweep.add_argument(
        "--seed", type=count_arg(0), default=0, help="sampling seed and first run seed"
    )
    _add_hyperparameter_flags(sweep)
    sweep.add_argument("--out", required=True, metavar="DIR",
                       help="sweep.json, results.csv, members.csv, the curves' plot")  # fmt: skip
    sweep.add_argument("--workers", type=count_arg(1), default=None, metavar="N",
                       help="train the compiled groups as tasks on a local Dask cluster of "
                            "N worker processes (needs eqxppo[dask])")  # fmt: skip
    sweep.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="train the groups as tasks on the Dask cluster whose scheduler "
                            "is at this address (needs eqxppo[dask])")  # fmt: skip
    sweep.add_argument("--retries", type=count_arg(0), default=2,
                       help="retries of a failed task on the cluster")  # fmt: skip
    _add_logger_flag(sweep, "one run per member, grouped by the sweep")
    _add_device_flag(sweep)
    _add_cache_flags(sweep)
    sweep.set_defaults(func=sweep_command)

    tune = add_parser("tune", help="an HPO loop (random, Optuna, SMAC) over populations")
    tune.add_argument("--optimizer", default="random", choices=SEARCHES,
                      help="optuna and smac need eqxppo[autorl]")  # fmt: skip
    tune.add_argument("--env", default="CartPole-v1", help="the framework's id")
    tune.add_argument("--framework", default="gymnax", choices=SUPPORTED_FRAMEWORKS,
                      help=POPULATION_FRAMEWORK_HELP)  # fmt: skip
    names = ", ".join(sorted(SEARCH_SPACES))
    tune.add_argument("--space", default="ppo_cc", metavar="NAME|FILE.yaml",
                      help=f"{names} (ARLBench's four PPO spaces and all 13 hyperparameters; "
                      "default ppo_cc, classic control), or a search space file in "
                      "ARLBench's YAML form")  # fmt: skip
    tune.add_argument("--trials", type=count_arg(1), required=True,
                      help="trials in all (a rerun may raise it to extend the study)")  # fmt: skip
    tune.add_argument(
        "--batch", type=count_arg(1), default=8, help="trials trained as one population"
    )
    tune.add_argument(
        "--timesteps", type=count_arg(1), default=100_000, help="a trial's full budget"
    )
    tune.add_argument("--seeds", type=count_arg(1), default=1, help="seeds per trial")
    tune.add_argument("--n-envs", type=count_arg(1), default=8, help="environments per member")
    tune.add_argument("--eval-episodes", type=count_arg(1), default=10,
                      help="episodes per evaluation")  # fmt: skip
    tune.add_argument("--reports", type=count_arg(1), default=1,
                      help="evaluations per trial (Optuna prunes on them)")  # fmt: skip
    tune.add_argument(
        "--seed", type=count_arg(0), default=0, help="optimizer seed and first run seed"
    )
    tune.add_argument("--out", required=True, metavar="DIR",
                      help="the study's folder (rerun the command on it to resume)")  # fmt: skip
    _add_logger_flag(tune, "one run per trial, grouped by the study")
    _add_device_flag(tune)
    _add_cache_flags(tune)
    tune.set_defaults(func=tune_command)

    arlbench = add_parser(
        "arlbench", help="run an ARLBench experiment tree (Hydra configs): a job, a "
        "multirun or an HPO study; needs eqxppo[hydra]")  # fmt: skip
    arlbench.add_argument("config_dir", metavar="CONFIG_DIR",
                          help="a folder laid out like ARLBench's examples/configs")  # fmt: skip
    # The overrides (KEY=VALUE ..., anywhere after CONFIG_DIR, between the flags too, as
    # Hydra takes them) are what `_parse` leaves over.
    arlbench.usage = "eqxppo arlbench CONFIG_DIR [OVERRIDE ...] [options]"
    arlbench.epilog = ("OVERRIDE: Hydra's syntax, e.g. environment=box2d_lunar_lander "
                       "search_space=ppo_cc hp_config.gamma=0.9 seed=0,1,2")  # fmt: skip
    arlbench.add_argument("--config-name", default="base",
                          help="the tree's top file without .yaml (default base; smac, "
                               "random_search: a study with -m)")  # fmt: skip
    arlbench.add_argument("-m", "--multirun", action="store_true",
                          help="one job per combination of the sweep overrides, or the "
                               "tree's HPO study")  # fmt: skip
    arlbench.add_argument("--out", default=None, metavar="DIR",
                          help="instead of the tree's hydra.run.dir / hydra.sweep.dir")  # fmt: skip
    arlbench.add_argument("--batch", type=count_arg(1), default=8,
                          help="a study's trials per population")  # fmt: skip
    _add_logger_flag(arlbench, "one run per job or trial")
    _add_device_flag(arlbench)
    _add_cache_flags(arlbench)
    arlbench.set_defaults(func=arlbench_command)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The subcommand's flags; `arlbench` keeps the rest as its Hydra overrides."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    unknown = rest if args.command != "arlbench" else [r for r in rest if r.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = rest
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m eqxppo` and the `eqxppo` script."""
    try:
        args = _parse(argv)
        if "cpu_devices" in args:  # before any JAX computation
            _use_cpu_devices(args.cpu_devices)
    except UserError as error:
        print(f"eqxppo: error: {error}", file=sys.stderr)
        return 2
    # Every program, even a small one: a sweep's trials and a resumed run then start
    # from what the earlier processes compiled. Restored afterwards, for callers that
    # run `main` inside their own process.
    folder = None if args.no_compilation_cache else args.compilation_cache or default_dir()
    with compilation_cache(folder, min_compile_seconds=0.0):
        try:
            return args.func(args)
        except (UserError, FolderInUse, MissingExtraError) as error:  # one line, no traceback
            print(f"eqxppo: error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # an output folder under a file, read-only, full, ...
            where = f": {error.filename!r}" if error.filename else ""
            print(f"eqxppo: error: {error.strerror or error}{where}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
