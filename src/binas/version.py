"""The package version (its own module, so low layers can record it without importing `binas`)."""

__version__ = "0.1.0"
