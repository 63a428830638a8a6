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
