"""Type stubs and documentation of fastgrid's compiled core (``fastgrid._core``)."""

from collections.abc import Mapping
from typing import Any, final

__version__: str

class SpecError(ValueError):
    """A parameters tree or constraint that cannot be used.

    ``path`` names the parameter (dotted) or, for a constraint, the expression text.
    Constraint errors also carry ``expr`` (the expression text) and ``column`` (1-based).
    """

    path: str
    expr: str
    column: int

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
    ``{"a": {"b": 1}}`` and ``{"a": {"b": 1}, "c": 2}`` vs ``{"a.b": 1, "c": 2}`` key alike; an
    empty dict is itself a value (``{"a": {}}`` differs from ``{}``). Dict order never matters. Dicts inside
    lists are values: their keys are sorted but not split. Tuples key like lists. Every NaN keys
    alike; ``-0.0`` and ``0.0`` differ.

    The key is XXH3-128 (seed 0) of a documented, versioned, type-tagged encoding (see the
    README's "config" section and ``src/keys.rs``), so any language can recompute it.

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

# --- expressions -------------------------------------------------------------------------------

@final
class Expression:
    """A constraint expression, parsed once and evaluated in Rust (never with Python's ``eval``).

    The language (see the README section "Constraint expressions"): numbers (``12``, ``0.5``,
    ``1e-5``), strings in single or double quotes, ``true``/``false`` (or ``True``/``False``),
    ``null`` (or ``None``), dotted names such as ``exit.stop_loss``, unary ``-``/``+``,
    ``+ - * / %``, comparisons ``< <= > >= == !=`` (chainable: ``a < b < c``), ``and``/``or``/``not``
    (also ``&&``, ``||``, ``!``) and parentheses.

    Semantics: int arithmetic is exact (overflow falls back to float), ``/`` is true division,
    division by zero gives inf/NaN instead of raising, comparisons with NaN are false (``!=`` is
    true), ``1 == 1.0`` but ``True == 1`` is false (bools are not numbers), ordering needs two
    numbers or two strings, and ``and``/``or``/``not`` need bools.

    Raises ``SpecError`` (with ``.expr`` and ``.column``) on a syntax error, e.g.
    ``constraint "fast <", column 7: expected a value after '<'``.
    """

    def __new__(cls, source: str, /) -> Expression: ...
    @property
    def source(self) -> str:
        """The expression text as given."""

    @property
    def names(self) -> tuple[str, ...]:
        """The distinct dotted names, in order of first appearance."""

    def evaluate(self, values: Mapping[str, Any], /) -> bool:
        """Evaluates with the values of the names.

        A name ``a.b`` is looked up as the flat key ``"a.b"`` first, then as the nested path
        ``values["a"]["b"]``. Values may be None, bool, int, float, str, lists and dicts (numpy
        scalars are unwrapped with ``.item()``). Raises ``SpecError`` naming the name when one is
        missing (suggesting the closest key) or when a value has a type its operator cannot take
        (e.g. a string compared with ``<`` to a number).
        """

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
