"""Type stubs and documentation of fastgrid's compiled core (``fastgrid._core``)."""

from collections.abc import Mapping
from typing import Any, final

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

def trial_key(params: Mapping[str, Any], /) -> str:
    """The canonical key of a parameter set: 32 lowercase hex digits.

    Equal parameter sets give equal keys in every run and on every machine; any difference of
    value or type gives a different key (``True``, ``1``, ``1.0`` and ``"1"`` all differ). Keys
    are split on dots, so dotted and nested forms are the same set: ``{"a.b": 1}``,
    ``{"a": {"b": 1}}`` and ``{"a": {}, "a.b": 1}``... are keyed alike, except that an empty dict
    is itself a value (``{"a": {}}`` differs from ``{}``). Dict order never matters. Dicts inside
    lists are values: their keys are sorted but not split. Tuples key like lists. Every NaN keys
    alike; ``-0.0`` and ``0.0`` differ.

    The key is SHA-256 over a documented, versioned, type-tagged encoding (see the README's
    "config" section and ``src/keys.rs``), truncated to 16 bytes.

    Raises:
        SpecError: a path given twice (``{"a.b": 1, "a": {"b": 2}}``), a path that is both a value
            and a section (``{"a": 1, "a.b": 2}``), an empty key segment (``"a..b"``), or an int
            outside 64 bits; ``.path`` names it.
        TypeError: a key that is not a string, or a value that is not JSON-like.
    """

@final
class ConfigTemplate:
    """An immutable default config, compiled once, merged into fresh dicts per trial.

    ``ConfigTemplate(tree)`` copies ``tree`` (a dict of JSON-like values; tuples become lists).
    Section keys are addressed by dotted paths, so a key inside a section may not contain a dot
    or be empty (``ConfigError``); dicts inside lists are plain values and may have any keys.
    Thread-safe and picklable.
    """

    def __init__(self, tree: Mapping[str, Any], /) -> None: ...
    def merged(self, params: Mapping[str, Any], /, *, allow_new: bool = False) -> dict[str, Any]:
        """A NEW nested dict: the tree with ``params`` written at their paths.

        ``params`` keys are dotted paths (``"risk.stop_loss"``); a dict value is merged key by key
        below its path (so ``{"risk": {"stop_loss": 0.1}}`` is the same as the dotted form). A leaf
        (scalar or list) is replaced whole by a value of any type. Every dict and list of the
        result is new: mutating it never reaches the template, a snapshot or another result.
        Immutable leaves (``int``, ``float``, ``str``, ``bool``, ``None``) are shared objects.
        Key order follows the template; new keys (``allow_new=True``) come last.

        Raises:
            ConfigError: ``.path`` names the offending path: an unknown key (the message suggests
                the closest existing one; ``allow_new=True`` adds it instead), a path through a
                value that is not a dict, a section replaced by a scalar or list, one path set
                twice, or a path that is both a new value and a new section.
        """

    def to_dict(self) -> dict[str, Any]:
        """A fresh, mutable copy of the whole tree."""

    @property
    def fingerprint(self) -> str:
        """``trial_key`` of the whole tree: equal trees have equal fingerprints."""
