"""binas.metrics: model complexity (params, FLOPs, BOPs, OPs, memory)."""

from binas.metrics.complexity import LayerProfile as LayerProfile
from binas.metrics.complexity import Profile as Profile
from binas.metrics.complexity import profile_genotype as profile_genotype
from binas.metrics.complexity import profile_model as profile_model
