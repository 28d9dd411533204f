"""binas.genotype: derived architectures as data.

`Genotype` (validated, JSON round trip, stable `archid`), `derive` (the DARTS discretization rule),
the zoo of published genotypes, and `parse_genotype` for user input. Cell diagrams live in
`binas.genotype.plot`, which is not imported here so that matplotlib is only loaded on demand.
"""

from binas.genotype.derive import derive as derive
from binas.genotype.derive import derive_cell as derive_cell
from binas.genotype.genotype import CELL_KINDS as CELL_KINDS
from binas.genotype.genotype import PAIRS_PER_NODE as PAIRS_PER_NODE
from binas.genotype.genotype import Genotype as Genotype
from binas.genotype.parse import parse_genotype as parse_genotype
from binas.genotype.zoo import GENOTYPES as GENOTYPES
from binas.genotype.zoo import ZooEntry as ZooEntry
from binas.genotype.zoo import get_entry as get_entry
from binas.genotype.zoo import get_genotype as get_genotype
from binas.genotype.zoo import list_genotypes as list_genotypes
