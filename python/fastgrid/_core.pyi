"""Type stubs and documentation of fastgrid's compiled core (``fastgrid._core``)."""

__version__: str

class SpecError(ValueError):
    """A parameters tree or constraint that cannot be used.

    ``path`` names the parameter (dotted) or, for a constraint, the expression text.
    """

    path: str

class PatternError(ValueError):
    """A results-file pattern that cannot be used; ``pattern`` holds it."""

    pattern: str

class ConfigError(ValueError):
    """A config merge that cannot be done; ``path`` names the dotted config path."""

    path: str

# --- grid engine -------------------------------------------------------------------------------

# --- results index -----------------------------------------------------------------------------

# --- helpers: trial keys, merge ----------------------------------------------------------------
