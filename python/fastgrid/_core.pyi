"""Type stubs and documentation of fastgrid's compiled core (``fastgrid._core``)."""

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Self, final, overload

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = [
    "ColumnsIter",
    "ConfigError",
    "ConfigTemplate",
    "Expression",
    "Grid",
    "GridIter",
    "PatternError",
    "ResultIndex",
    "SpecError",
    "__version__",
    "parse_parameters",
    "trial_key",
]

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
    @overload
    def columns(
        self,
        start: int | None = None,
        stop: int | None = None,
        /,
        *,
        fixed: Literal["column", "scalar"] = "column",
        positions: Literal[False] = False,
    ) -> dict[str, Any]: ...
    @overload
    def columns(
        self,
        start: int | None = None,
        stop: int | None = None,
        /,
        *,
        fixed: Literal["column", "scalar"] = "column",
        positions: Literal[True],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One numpy array per path, built in Rust without per-point dicts: int64, float64 or bool for
        numeric axes, object arrays otherwise (``None`` where a union's tree lacks the path).

        ``start``/``stop`` (``0 <= start <= stop <= size``) take the points ``start..stop`` of this
        grid or view (shuffled and constrained views included) without making a view; a batch
        sweep takes each chunk this way. With ``fixed="scalar"`` a path that has one value for
        every point (a fixed value) is that value (a Python scalar) instead of a repeated column.
        With ``positions=True`` (a grid of one tree) the result is ``(columns, positions)``:
        ``positions`` maps each path that is a column to the position of each value on its axis,
        in the narrowest unsigned dtype that holds the axis's size (a batch sweep stores these).
        A consecutive range of a plain product, or of constraints that link neighbouring
        parameters only, is written run by run at memory speed; other views decode point by point.
        Refuses results beyond 8 GiB; use ranges or ``iter_columns``."""
    def axis_values(self, path: str, /, start: int = 0, stop: int | None = None) -> Any:
        """The values at positions ``start..stop`` of ``path``'s axis (a grid of one tree), as
        ``columns()`` types them: ``columns(positions=True)`` gives each point's position, this the
        values those positions stand for. KeyError for an unknown path."""
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

@disjoint_base
class ResultIndex:
    """An indexed results directory: the newest result file per key in O(1), kept current.

    ``ResultIndex(directory, *, pattern="{symbol}_{timeframe}_{stamp}.json", order_by="stamp",
    watch=True, recursive=False, poll_interval=None)``

    ``pattern`` is literal text with ``{field}`` placeholders; fields match non-empty text
    without ``/``, each as short as possible from the left. Fields other than ``order_by`` form
    the key; fields named ``_`` or ``_name`` are wildcards (matched, not part of the key);
    ``{{``/``}}`` are literal braces. A pattern with ``/`` matches the path relative to
    ``directory`` (needs ``recursive=True``); otherwise it matches file names.

    "Newest" compares the ``order_by`` field's text like Python's ``str`` (as
    ``sorted(glob)[-1]`` does for equal-width stamps), or the modification time with
    ``order_by="mtime"``; ties go to the path that sorts last. Temporary names (dot-files,
    ``*.tmp``, ``*.part``, ``*~``) and non-matching names are ignored, so a writer that renames
    a temp file into place is seen once, when the rename lands.

    With ``watch=True`` a background thread applies filesystem events (native, or polling every
    ``poll_interval`` seconds when given, when ``FASTGRID_FORCE_POLLING`` is set, or when native
    watching fails); an event-queue overflow or watcher error triggers a full rescan. If
    ``directory`` itself is deleted, moved away or replaced, the index empties (``last_error``
    says why) and, once a directory is there again, watches and scans it anew. With
    ``recursive=True`` symlinks are followed except back into a loop (a link to one of its own
    ancestors, as ``find -L``); unreadable subdirectories are skipped and named in
    ``last_error``. Scans release the GIL and stop on Ctrl-C. Only regular files are results
    (not directories, FIFOs or devices with a matching name). Returned paths are absolute
    ``pathlib.Path`` objects, cached per file.

    Raises FileNotFoundError / NotADirectoryError / PermissionError for the directory,
    PatternError for a bad pattern or ``order_by``, ValueError for bad options. After
    ``close()`` every method raises ValueError.
    """

    def __new__(
        cls,
        directory: str | os.PathLike[str],
        *,
        pattern: str = "{symbol}_{timeframe}_{stamp}.json",
        order_by: str = "stamp",
        watch: bool = True,
        recursive: bool = False,
        poll_interval: float | None = None,
    ) -> Self: ...
    def latest(self, **fields: str) -> Path | None:
        """The newest file for the key given by all key fields (e.g. ``symbol="BTCUSD",
        timeframe="1h"``), or None. One hash-map lookup. TypeError names a missing, unknown or
        non-str field."""

    def history(self, **fields: str) -> list[Path]:
        """Every file of the key, newest first."""

    def keys(self) -> list[tuple[str, ...]]:
        """Every key (a tuple of the key fields' values, in ``fields`` order), sorted."""

    def snapshot(self) -> dict[tuple[str, ...], Path]:
        """Key → newest file, sorted by key."""

    def __len__(self) -> int:
        """The number of keys (``file_count`` counts files)."""

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        """Iterates over ``keys()``."""

    def __contains__(self, item: object, /) -> bool:
        """``(values...) in idx`` / ``{field: value} in idx`` test a key; an ``os.PathLike``
        tests whether that file is indexed."""

    def record(self, path: str | os.PathLike[str]) -> bool:
        """Indexes a file the caller just wrote, without waiting for its event (the event is
        then a no-op). Returns whether the index changed. FileNotFoundError if it does not
        exist; ValueError if it is not a result file of this index (a name the pattern does not
        match, a directory, a FIFO)."""

    def rescan(self) -> bool:
        """Re-reads the directory now (GIL released, Ctrl-C stops it); returns whether the index
        changed."""

    def wait_for(
        self,
        *,
        newer_than: str | float | os.PathLike[str] | None = None,
        timeout: float | None,
        stop_event: threading.Event | None = None,
        **fields: str,
    ) -> Path | None:
        """Blocks until the key has a result newer than ``newer_than`` and returns it.

        ``newer_than``: None (any result, so an existing one returns at once), a path (newer
        than that file), a ``str`` compared with the order field, or with ``order_by="mtime"``
        seconds since the epoch. The GIL is released; wakes on change, checks signals (Ctrl-C
        raises KeyboardInterrupt) and ``stop_event`` every 50 ms. Returns None when
        ``stop_event`` is set; raises TimeoutError after ``timeout`` seconds (None: no limit).
        """

    def wait_changed(
        self, since: int, *, timeout: float | None, stop_event: threading.Event | None = None
    ) -> int:
        """Blocks until ``generation`` differs from ``since`` and returns it; returns ``since``
        unchanged after ``timeout`` or when ``stop_event`` is set."""

    def close(self) -> None:
        """Stops watching and frees the index. Idempotent."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...
    @property
    def directory(self) -> Path:
        """The indexed directory, absolute."""

    @property
    def pattern(self) -> str: ...
    @property
    def order_by(self) -> str: ...
    @property
    def fields(self) -> tuple[str, ...]:
        """The key fields, in pattern order."""

    @property
    def recursive(self) -> bool: ...
    @property
    def backend(self) -> str:
        """``"inotify"`` (or the platform's native kind), ``"poll every Ns"`` (with the reason
        when it is a fallback), or ``"none"`` with ``watch=False``."""

    @property
    def generation(self) -> int:
        """Increases on every change of the index; idempotent events leave it alone."""

    @property
    def file_count(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def last_error(self) -> str | None:
        """The last problem the background thread met and kept going past: a watcher or rescan
        error, skipped unreadable subdirectories, the directory gone or replaced. Not cleared
        when the problem ends."""

    def _simulate_overflow(self) -> None:
        """Test hook: deliver inotify's path-less queue-overflow (Rescan) event."""

    def _drop_events(self, drop: bool) -> None:
        """Test hook: while on, path events are discarded as a full kernel queue would."""

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

    The key is XXH3-128 (seed 0) of a documented, versioned, type-tagged encoding (see "Trial
    keys" in the docs' on-disk formats and ``src/keys.rs``), so any language can recompute it.

    Each thread remembers the name strings it has keyed (up to 256, holding a reference to each)
    and the last key's order, so keying trial after trial with the same names is cheaper.

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

    def __new__(cls, tree: Mapping[str, Any], /) -> Self: ...
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

    The language (see "Constraint expressions" in the docs' sweep-file reference): numbers (``12``, ``0.5``,
    ``1e-5``), strings in single or double quotes, ``true``/``false`` (or ``True``/``False``),
    ``null`` (or ``None``), dotted names such as ``exit.stop_loss``, any other name in backticks
    (``` `Return [%]` ```, ``` `# Trades` ```: backtesting.py's statistics), unary ``-``/``+``,
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

    def evaluate_columns(
        self, columns: dict[str, Any], /, *, length: int | None = None
    ) -> npt.NDArray[np.bool_]:
        """Evaluates the expression on every row of ``columns`` (name → 1-D array or sequence, or a
        scalar for every row), in Rust with the GIL released; returns a bool array.

        Numeric arrays of any width are read as int64/float64, bool arrays as bools, other arrays
        (strings, mixed) value by value. Every name must be a key of ``columns`` (flat keys): a
        missing one raises ``SpecError`` suggesting the closest key, never an all-false result.
        Columns of different lengths raise ``ValueError``; an operator that cannot take a column's
        type raises ``SpecError`` before any row is read. NaN compares false, as in ``evaluate``.
        ``length`` gives the row count when every input is a scalar (default 1).
        """

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
