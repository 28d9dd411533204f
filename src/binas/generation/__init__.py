"""binas.generation: networks from a DDPNAS distribution under budgets, without retraining (spec ddpnas §2).

`solve_knapsack` (mobile space, FLOPs / OPs / params / latency budgets), `constrained_genotype`
(DARTS space, cell height and non-parametric op count), `LatencyTable` (measured on this device), and
`generate_mobile` / `generate_darts` behind `binas generate`.
"""

from binas.generation.budgets import Budget as Budget
from binas.generation.budgets import GenerationError as GenerationError
from binas.generation.budgets import parse_amount as parse_amount
from binas.generation.darts_constraints import constrained_genotype as constrained_genotype
from binas.generation.darts_constraints import enumerate_cells as enumerate_cells
from binas.generation.knapsack import solve_knapsack as solve_knapsack
from binas.generation.latency import LatencyTable as LatencyTable
from binas.generation.latency import measure_latency as measure_latency
