"""The default config of a sweep, loaded once per process and merged into every trial.

``ConfigCache`` owns the policy (files, formats, validation, change detection, pickling); the
merge itself is ``fastgrid.ConfigTemplate`` (Rust), which writes the overrides into a fresh copy of
the tree without sharing anything mutable with the cache or with other trials.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fastgrid._core import ConfigError, ConfigTemplate
from fastgrid.exceptions import ConfigChangedWarning, DocumentError
from fastgrid.files import read_document
from fastgrid.plain import plain
from fastgrid.refs import import_object

__all__ = ["ConfigCache", "ConfigChangedWarning", "load_config_file"]

_MAX_REPORTED_ERRORS = 10


def _config_error(message: str, *, path: str = "") -> ConfigError:
    err = ConfigError(message)
    err.path = path
    return err


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a JSON, TOML or YAML config file (by suffix) into a plain dict.

    Syntax errors become ``ConfigError`` naming the file, line and column; a missing file is
    ``FileNotFoundError``.
    """
    file = Path(path)
    try:
        data = read_document(file)
    except DocumentError as exc:
        raise _config_error(str(exc)) from None
    if not isinstance(data, dict):
        raise _config_error(f"{file}: a config must be a mapping at the top level, got {type(data).__name__}")
    return data


def _resolve_model(model: Any) -> type | None:
    """A pydantic v2 model class, given as the class itself or as ``"module:Class"``."""
    if model is None:
        return None
    from pydantic import BaseModel

    cls = model
    if isinstance(model, str):
        cls = import_object(model, what="model", form="module:Class")
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise TypeError(f"model must be a pydantic BaseModel subclass or 'module:Class', got {model!r}")
    return cls


def _loc_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_with(model: type, data: dict[str, Any], *, what: str) -> None:
    """Validates ``data`` with a pydantic model; errors name each path and the offending value."""
    from pydantic import ValidationError

    try:
        model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        lines = []
        for err in errors[:_MAX_REPORTED_ERRORS]:
            path = _loc_path(tuple(err["loc"])) or "<root>"
            got = "" if err["type"] == "missing" else f" (got {_short_repr(err.get('input'))})"
            lines.append(f"{path}: {err['msg']}{got}")
        if len(errors) > _MAX_REPORTED_ERRORS:
            lines.append(f"... and {len(errors) - _MAX_REPORTED_ERRORS} more")
        count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        message = f"{what} does not match {model.__name__} ({count}):\n  " + "\n  ".join(lines)
        first = _loc_path(tuple(errors[0]["loc"])) if errors else ""
        raise _config_error(message, path=first) from None


def _freeze(value: Any) -> Any:
    """A deep read-only view: dicts become mapping proxies over private copies, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class _Loaded:
    template: ConfigTemplate
    snapshot: Mapping[str, Any]
    signature: tuple[int, int]  # (mtime_ns, size) of the file that was read


def _signature(file: Path) -> tuple[int, int] | None:
    try:
        st = file.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ConfigCache:
    """The default config of a sweep, loaded and validated once per process.

    Args:
        path: a ``.json``, ``.toml``, ``.yaml`` or ``.yml`` file whose top level is a mapping.
        model: optional pydantic v2 model class (or ``"module:Class"``) that validates the default
            config and every merged config.
        allow_new: let ``merged()`` add keys that the default config does not have.
        reload: when the file changes on disk, reload it (otherwise keep the snapshot and warn once).
        check_interval: seconds between two looks at the file's mtime and size (0: every access).

    The file is read lazily, on first use, by exactly one thread; every later access shares the
    same immutable snapshot. A loaded cache pickles with its snapshot, so a worker process merges
    into exactly the config its parent loaded; an unloaded one pickles as its path and options.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        model: type | str | None = None,
        allow_new: bool = False,
        reload: bool = False,
        check_interval: float = 1.0,
    ) -> None:
        self._path = Path(path)
        self._model_spec = model
        self._model = _resolve_model(model)
        self._allow_new = allow_new
        self._reload = reload
        self._check_interval = check_interval
        self._lock = threading.Lock()
        self._state: _Loaded | None = None
        self._next_check = 0.0
        self._warned = False
        self._data: dict[str, Any] | None = None

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, model: type | str | None = None, allow_new: bool = False
    ) -> ConfigCache:
        """A cache over a config given in memory (``Sweep(config={...})``) instead of a file.

        The mapping is copied now (later changes to it are not seen) and checked like a file's
        content; the cache pickles as that copy, so worker processes get the same config.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"config: expected a mapping, got {type(data).__name__}")
        cache = cls("<mapping>", model=model, allow_new=allow_new)
        cache._data = plain(data)
        return cache

    # --- pickling: a loaded cache travels with its snapshot, an unloaded one as its path ------

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "path": self._path,
            "model": self._model_spec,
            "allow_new": self._allow_new,
            "reload": self._reload,
            "check_interval": self._check_interval,
            "mapping": self._data,
        }
        loaded = self._state
        if loaded is not None:
            # A worker process must merge into the config its parent loaded (and fingerprinted),
            # not re-read a file that may have been edited since (issue 12, item 5).
            state["loaded"] = loaded.template.to_dict()
            state["signature"] = loaded.signature
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        path = state.pop("path")
        mapping = state.pop("mapping", None)
        loaded = state.pop("loaded", None)
        signature = state.pop("signature", None)
        self.__init__(path, **state)  # type: ignore[misc]
        self._data = mapping
        if loaded is not None:
            template = ConfigTemplate(loaded)  # validated by the model where it was loaded
            self._state = _Loaded(
                template=template,
                snapshot=_freeze(loaded),
                signature=tuple(signature) if signature is not None else (0, 0),
            )
            self._next_check = time.monotonic() + self._check_interval

    def __repr__(self) -> str:
        status = "loaded" if self._state is not None else "not loaded"
        where = "<mapping>" if self._data is not None else repr(str(self._path))
        return f"ConfigCache({where}, {status})"

    # --- public surface --------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def model(self) -> type | None:
        return self._model

    @property
    def allow_new(self) -> bool:
        return self._allow_new

    @property
    def template(self) -> ConfigTemplate:
        """The compiled default config (``fastgrid.ConfigTemplate``)."""
        return self._current().template

    @property
    def snapshot(self) -> Mapping[str, Any]:
        """The default config as a deep read-only view (mapping proxies and tuples)."""
        return self._current().snapshot

    @property
    def fingerprint(self) -> str:
        """The trial key of the whole default config: changes whenever any value changes."""
        return self._current().template.fingerprint

    def to_dict(self) -> dict[str, Any]:
        """A fresh, mutable copy of the default config."""
        return self._current().template.to_dict()

    def merged(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A new nested dict: the default config with ``params`` written at their paths.

        ``params`` keys are dotted paths (``"risk.stop_loss"``) or nested dicts; nothing of the
        result is shared with the cache or with other results. With a model, the result is
        validated and ``ConfigError`` names each bad path and value.
        """
        merged = self._current().template.merged(params, allow_new=self._allow_new)
        if self._model is not None:
            shown = ", ".join(f"{k}={_short_repr(v, 30)}" for k, v in params.items())
            validate_with(self._model, merged, what=f"merged config ({shown})")
        return merged

    def changed(self) -> bool:
        """Whether the file on disk differs (mtime or size) from the loaded snapshot."""
        if self._data is not None:
            return False
        state = self._current(check=False)
        return _signature(self._path) != state.signature

    def reload(self) -> None:
        """Reads the file again now (whatever ``reload=`` says)."""
        with self._lock:
            self._state = self._load()
            self._warned = False

    # --- internals ---------------------------------------------------------------------------

    def _current(self, *, check: bool = True) -> _Loaded:
        state = self._state
        if state is None:
            with self._lock:
                # Double-checked: of many threads arriving together, one loads.
                if self._state is None:
                    self._state = self._load()
                    self._next_check = time.monotonic() + self._check_interval
                state = self._state
        elif check and self._data is None and time.monotonic() >= self._next_check:
            state = self._check_changed(state)
        return state

    def _check_changed(self, state: _Loaded) -> _Loaded:
        self._next_check = time.monotonic() + self._check_interval
        if _signature(self._path) == state.signature:
            return state
        if self._reload:
            with self._lock:
                current = self._state
                if current is state or current is None:
                    current = self._state = self._load()
                return current
        with self._lock:
            if self._warned:
                return state
            self._warned = True
        warnings.warn(
            f"{self._path} changed on disk since it was loaded; this process keeps the snapshot it "
            f"loaded (fingerprint {state.template.fingerprint}). Pass reload=True to pick up changes.",
            ConfigChangedWarning,
            stacklevel=4,
        )
        return state

    def _load(self) -> _Loaded:
        # The signature is taken before reading: a write racing with the read shows up as a
        # change at the next check instead of being missed.
        if self._data is not None:
            signature: tuple[int, int] | None = (0, 0)
            data = self._data
        else:
            signature = _signature(self._path)
            data = _read_file(self._path)
        if self._model is not None:
            validate_with(self._model, data, what=f"{self._path}")
        try:
            template = ConfigTemplate(data)
        except (ValueError, TypeError) as exc:
            raise _config_error(f"{self._path}: {exc}", path=getattr(exc, "path", "")) from None
        return _Loaded(
            template=template,
            snapshot=_freeze(template.to_dict()),
            signature=signature or (0, 0),
        )


def _read_file(path: Path) -> dict[str, Any]:
    # A seam for the tests that count loads.
    return load_config_file(path)
