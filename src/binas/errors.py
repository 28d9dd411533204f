"""One exception family. The CLI prints any `BinasError` as a single line and exits with status 2.

Anything that is not a `BinasError` is a bug and keeps its traceback.
"""


class BinasError(Exception):
    """Base class for errors caused by user input or the environment, not by a bug."""


class ConfigError(BinasError):
    """A config file or a `--set` override is malformed, has an unknown key or a wrong type."""


class RegistryError(BinasError):
    """An unknown name (op, quantizer, strategy, data set, genotype) or a duplicate registration."""


class GenotypeError(BinasError):
    """A genotype file or string is malformed or describes an invalid cell."""


class DataError(BinasError):
    """A data set is missing, malformed, or cannot be read."""


class CheckpointError(BinasError):
    """A checkpoint is missing, truncated, corrupt or written by something other than binas."""


class StorageError(BinasError):
    """A file could not be written (a full disk, no permission); the previous version of it is kept."""


class RunLockedError(BinasError):
    """Another binas process is writing the same run directory."""


class ShapeError(BinasError):
    """An input tensor has a shape the model cannot take."""


class NonFiniteLossError(BinasError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""
