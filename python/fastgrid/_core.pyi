"""Type stubs and documentation of fastgrid's compiled core (``fastgrid._core``)."""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, final

import numpy as np
import numpy.typing as npt

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

@final
class Grid:
    """A lazy, exact, indexable cartesian grid over a parameters tree (implemented in Rust).

    ``spec`` is a parameters tree (a dict) or a list of trees (the union of their grids, in order).
    Points are nested dicts mirroring the tree's namespaces (dotted keys expanded), keys in
    declaration order, the last parameter varying fastest (``itertools.product`` order); with
    ``flat=True`` they are flat dicts keyed by dotted paths. Fixed values appear in every point.

    ``constraints`` are expressions over parameter paths (``"fast < slow"``); a constrained grid holds
    only admissible points, with exact ``len()`` and indexing. A constraint applies to every tree of
    a union that defines all the paths it names.

    The grid is immutable and thread-safe; slices, shards and shuffles are lazy views that share it.
    Bad specs raise :class:`SpecError` naming the parameter path.
    """

    def __new__(
        cls,
        spec: dict[str, Any] | list[dict[str, Any]],
        /,
        *,
        constraints: str | Iterable[str] | None = None,
        flat: bool = False,
    ) -> Grid: ...
    @property
    def size(self) -> int:
        """Number of points as a Python int (also beyond ``sys.maxsize``, where ``len()`` raises)."""
    @property
    def flat(self) -> bool:
        """Whether points are flat dicts with dotted keys."""
    @property
    def paths(self) -> tuple[str, ...]:
        """Dotted path of every parameter, in point order, fixed values included (see ``axes``)."""
    @property
    def axes(self) -> tuple[dict[str, Any], ...]:
        """One dict per parameter: ``path``, ``kind`` (``grid``/``fixed``/``int``/``float``), ``size``,
        ``tree`` (index in a union) and the leaf's fields: ``values`` (grid), ``value`` (fixed),
        ``low``/``high``/``step``/``log`` (int), ``low``/``high`` and ``step`` or ``num``, ``log`` (float)."""
    @property
    def constraints(self) -> tuple[str, ...]:
        """The constraint texts."""
    def __len__(self) -> int:
        """Exact number of points; OverflowError beyond ``sys.maxsize`` (use ``size``)."""
    def __getitem__(self, index: int | slice, /) -> Any:
        """``grid[i]`` (negative too) decodes point ``i`` in O(parameters) for unconstrained grids and
        O(parameters · log) for constrained ones; ``grid[a:b:c]`` is a lazy view (a ``Grid``)."""
    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Points in order, built in Rust (a ``chain`` over small lists from ``GridIter``)."""
    def __reversed__(self) -> Iterator[dict[str, Any]]: ...
    def __contains__(self, point: object, /) -> bool:
        """Whether ``point`` is in the grid, in O(parameters); type-strict (``True`` is not ``1``)."""
    def index(self, point: object) -> int:
        """Position of ``point`` in this grid or view; ValueError when it is not in it."""
    def count(self, point: object) -> int:
        """How many times ``point`` occurs (more than once only in a union of overlapping trees)."""
    def shard(self, k: int, n: int) -> Grid:
        """The ``k``-th of ``n`` contiguous, disjoint views whose union is the grid (sizes differ by ≤ 1)."""
    def shuffled(self, seed: int, /) -> Grid:
        """A lazy view in a pseudo-random order (a keyed Feistel permutation with cycle walking): nothing
        is materialized and the same seed gives the same order on every machine. ``seed`` in [0, 2**64)."""
    def sample(self, n: int, /, *, seed: int) -> list[dict[str, Any]]:
        """The first ``n`` points of ``shuffled(seed)``: distinct points, reproducible."""
    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """One numpy array per path, built in Rust without per-point dicts: int64, float64 or bool for
        numeric axes, object arrays otherwise (``None`` where a union's tree lacks the path). Refuses grids
        beyond 2**32 points; use ``iter_columns``."""
    def iter_columns(self, *, chunk: int = 1_000_000) -> ColumnsIter:
        """``columns()`` of consecutive chunks of at most ``chunk`` points."""

@final
class GridIter:
    """Produces a grid's points in small lists; ``iter(grid)`` chains them."""

    def __iter__(self) -> GridIter: ...
    def __next__(self) -> list[dict[str, Any]]: ...

@final
class ColumnsIter:
    """Iterator returned by ``Grid.iter_columns``."""

    def __iter__(self) -> ColumnsIter: ...
    def __next__(self) -> dict[str, np.ndarray[Any, Any]]: ...

def parse_parameters(tree: dict[str, Any], /) -> list[dict[str, Any]]:
    """Validates one parameters tree without building a grid and describes its parameters (the same
    dicts as ``Grid.axes`` without ``tree``). Continuous float ranges (no ``step`` or ``num``) are
    allowed here, for search mode; ``size`` is ``None`` for them."""

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

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
