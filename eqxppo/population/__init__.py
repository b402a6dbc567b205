"""Populations: configurations x seeds of PPO trained as few compiled programs as
possible, each group under one `vmap`, its member axis sharded over the devices.

`Population` holds the members' layout and hyperparameters; the machinery beside it
plans the groups (`plan_groups`), places them (`_grouped`, `_sharding`), checks their
memory (`_memory`), compiles and caches their programs (`_programs`, `_compile`) and
runs PBT's exploit-and-explore (`exploit_and_explore`)."""

from ._memory import PopulationTooLarge as PopulationTooLarge
from ._pbt import exploit_and_explore as exploit_and_explore
from ._plan import GroupingCost as GroupingCost
from ._plan import plan_groups as plan_groups
from ._population import Population as Population
from ._population import PopulationState as PopulationState
from ._sharding import to_host as to_host
from ._vmap import init_population as init_population
from ._vmap import train_population as train_population
