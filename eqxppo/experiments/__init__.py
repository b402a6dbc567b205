"""ARLBench's experiment trees on eqxppo: a Hydra config folder in ARLBench's layout
(`base.yaml`, `smac.yaml`, `random_search.yaml`, `algorithm/`, `environment/`,
`search_space/`, `incumbent/`) composed with Hydra's override syntax and run as a single
job, a multirun, or an HPO study (Hypersweeper's `HyperRS` / `HyperSMAC` mapped onto
`eqxppo.autorl.tune`, `HyperPBT` onto `eqxppo.autorl.pbt`), in this process or through
the tree's Hydra launcher (`tree_launcher`). Needs `eqxppo[hydra]`."""

from ._compose import SWEEPERS as SWEEPERS
from ._compose import compose_tree as compose_tree
from ._compose import expand_sweeps as expand_sweeps
from ._launch import TreeLauncher as TreeLauncher
from ._launch import tree_launcher as tree_launcher
from ._plan import Job as Job
from ._plan import Study as Study
from ._plan import plan as plan
from ._run import JobMismatch as JobMismatch
from ._run import run_jobs as run_jobs
from ._run import run_study as run_study
