"""Storage URLs: which Optuna storage a sweep writes to, the embedded default store, and export.

Accepted forms (see ``ACCEPTED_FORMS``):

- ``None`` → the embedded store ``fastgrid.db`` in the working directory;
- ``fastgrid:///rel/path.db`` / ``fastgrid:////abs/path.db`` or a plain path ending ``.db`` → the
  embedded store at that path (three slashes relative, four absolute, exactly like ``sqlite:///``);
- ``sqlite:///…``, ``postgresql[+driver]://…``, ``mysql[+driver]://…`` → Optuna's ``RDBStorage``;
- a path ending ``.log`` or ``.jsonl`` → Optuna's ``JournalStorage`` over a ``JournalFileBackend``;
- ``fastgrid+postgresql://user:pass@host/db`` → fastgrid's journal store on PostgreSQL (docs/postgres.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import urllib.parse
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, _CachedStorage
from optuna.storages.journal import JournalFileBackend

from fastgrid.storages.embedded import EmbeddedStorage, SQLiteJournalBackend
from fastgrid.storages.postgres import is_journal_url, open_postgres_storage, open_session

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_STORE_NAME",
    "EmbeddedStorage",
    "export_study",
    "is_rdb_url",
    "open_storage",
    "redact_url",
    "release_connections",
]

DEFAULT_STORE_NAME = "fastgrid.db"

ACCEPTED_FORMS = (
    "(none) → the embedded store fastgrid.db in the working directory",
    "fastgrid:///relative/path.db or fastgrid:////absolute/path.db → the embedded store",
    "a plain path ending .db → the embedded store",
    "sqlite:///path.db, postgresql://user:pass@host/db, mysql://user:pass@host/db → Optuna RDBStorage",
    "a path ending .log or .jsonl → Optuna JournalStorage over a journal file",
    "fastgrid+postgresql://user:pass@host/db → fastgrid's journal store on PostgreSQL, for many workers",
)

_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "pass", "secret", "token", "sslpassword"})
_MASK = "***"


def release_connections(storage: BaseStorage) -> None:
    """Close the pooled database connections of an RDB storage (it reconnects if used again).

    A sweep run in a long-lived process (a notebook, a service) must not leave its connections
    open until garbage collection: a PostgreSQL server counts them against ``max_connections``.
    """
    backend = getattr(storage, "_backend", storage)  # _CachedStorage wraps the RDBStorage
    if isinstance(backend, RDBStorage):
        with contextlib.suppress(Exception):
            backend.engine.dispose()


def is_rdb_url(url: str | None) -> bool:
    """True for the URLs that open Optuna's RDBStorage (which has its own heartbeat)."""
    if url is None:
        return False
    match = _SCHEME.match(url.strip())
    return match is not None and match.group(1).lower().split("+", 1)[0] in _RDB_SCHEMES


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or in a query parameter) replaced by ``***``.

    Works on any ``scheme://user:password@host/...`` shape, including ones SQLAlchemy cannot parse, and
    returns plain paths unchanged. Use it wherever a storage URL reaches a log line, error or report.
    """
    match = _SCHEME.match(url)
    if match is None:
        return url
    rest = url[match.end() :]
    # The authority ends at the first '/', '?' or '#' AFTER the last '@' that precedes them: passwords
    # may themselves contain '/', '?' or '#' when the user forgot to percent-encode them.
    at = _last_userinfo_at(rest)
    if at >= 0:
        userinfo, hostpart = rest[:at], rest[at + 1 :]
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            userinfo = f"{user}:{_MASK}"
        rest = f"{userinfo}@{hostpart}"
    head, sep, query = rest.partition("?")
    if sep:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            query = "&".join(
                f"{k}={_MASK}" if k.lower() in _SECRET_QUERY_KEYS else f"{k}={urllib.parse.quote(v, safe='')}"
                for k, v in pairs
            )
        rest = f"{head}?{query}{fragment}"
    return url[: match.end()] + rest


def _last_userinfo_at(rest: str) -> int:
    """Index of the '@' that ends the userinfo of ``rest`` (the URL after ``scheme://``), or -1."""
    if rest.startswith("/"):
        return -1  # no authority at all (sqlite:////abs/path.db)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    standard = authority.rfind("@")
    # A password with an unencoded '/', '#' or '@' ends the standard authority early; so also take the
    # last '@' before the query. Over-redacting an odd path is better than printing half a password.
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    loose = at if at > 0 and ":" in head[:at] else -1
    return max(standard, loose)


def _bad_url(url: str, why: str) -> ValueError:
    forms = "\n  - ".join(ACCEPTED_FORMS)
    return ValueError(f"storage {redact_url(url)!r}: {why}. Accepted forms:\n  - {forms}")


def open_storage(
    url: str | os.PathLike[str] | None,
    *,
    directory: Path | None = None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    readonly: bool = False,
) -> BaseStorage:
    """Open the Optuna storage named by ``url`` (the accepted forms are listed in the docs' "Storage URLs").

    Args:
        url: a storage URL or path; ``None`` means the embedded store ``fastgrid.db``.
        directory: where ``None`` and relative paths point, ``sqlite:///relative.db`` included
            (default: the current directory).
        heartbeat_interval: Optuna's heartbeat option, passed to ``RDBStorage``; the file storages
            have no heartbeat, so giving it there is an error rather than silently ignored.
        grace_period: likewise, the seconds without a heartbeat before ``RDBStorage`` fails a trial.
        readonly: only read (reports): the embedded store is opened read-only, and a missing one
            reads as empty instead of being created.

    Raises:
        ValueError: the URL is of no accepted form, or names a PostgreSQL database that refuses
            the login or does not exist (the message redacts the password).
        StorageConnectionError: a PostgreSQL server that cannot be reached.
    """
    base = Path.cwd() if directory is None else Path(directory)
    if url is None:
        return _embedded(base / DEFAULT_STORE_NAME, url, heartbeat_interval, grace_period, readonly)
    text = os.fspath(url)
    if not text.strip():
        raise _bad_url(text, "empty storage URL")
    match = _SCHEME.match(text)
    if match is None:
        # A plain path: the suffix says which storage.
        path = Path(text).expanduser()
        path = path if path.is_absolute() else base / path
        suffix = path.suffix.lower()
        if suffix == ".db":
            _folder_exists(text, path)
            return _embedded(path, text, heartbeat_interval, grace_period, readonly)
        if suffix in (".log", ".jsonl"):
            _no_heartbeat(text, heartbeat_interval, grace_period)
            _folder_exists(text, path)
            return JournalStorage(JournalFileBackend(str(path)))
        raise _bad_url(text, f"a plain path must end in .db, .log or .jsonl (got {suffix or 'no suffix'!r})")
    scheme = match.group(1).lower()
    if is_journal_url(text):
        return open_postgres_storage(
            text,
            display=redact_url(text),
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            readonly=readonly,
        )
    if scheme == "fastgrid":
        rest = text[match.end() :]
        if not rest.startswith("/") or len(rest) < 2:
            raise _bad_url(
                text, "a fastgrid URL is fastgrid:///relative/path.db or fastgrid:////absolute/path.db"
            )
        path = Path(urllib.parse.unquote(rest[1:])).expanduser()
        path = path if path.is_absolute() else base / path
        _folder_exists(text, path)
        return _embedded(path, text, heartbeat_interval, grace_period, readonly)
    if scheme.split("+", 1)[0] in _RDB_SCHEMES:
        if scheme.split("+", 1)[0] == "sqlite":
            _check_sqlite(text, match.end(), base)
        given = text
        if scheme.split("+", 1)[0] == "postgres":
            # Heroku and libpq spell it postgres://; SQLAlchemy (>= 1.4) only knows postgresql://.
            text = "postgresql" + text[len("postgres") :]
            scheme = "postgresql" + scheme[len("postgres") :]
        text = _with_installed_postgres_driver(text, scheme)
        text = _anchor_sqlite_path(text, match.end(), scheme, base)
        try:
            rdb = RDBStorage(text, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        except ImportError as exc:
            raise _bad_url(text, _missing_driver(scheme, exc)) from None
        except Exception as exc:
            if scheme.startswith("postgresql"):
                # SQLAlchemy hides libpq's reason: connect as fastgrid's own PostgreSQL stores do,
                # which says it in one line (wrong password, missing database, unreachable server).
                _diagnose_postgres(given)
            # SQLAlchemy's own message can echo the URL; ours redacts it.
            raise ValueError(f"storage {redact_url(given)!r}: cannot open ({type(exc).__name__})") from None
        # What optuna.create_study does with a URL string: the cache saves a query per finished trial.
        return _CachedStorage(rdb)
    raise _bad_url(text, f"unknown scheme {scheme!r}")


def _diagnose_postgres(url: str) -> None:
    """Connect to the PostgreSQL database of ``url`` once and close: raises the one line of
    :func:`fastgrid.storages.postgres.open_session` (ValueError, or StorageConnectionError for an
    unreachable server) when that fails, and returns when it works."""
    session = open_session(url, display=redact_url(url))
    try:
        session.transact(lambda conn: None)
    finally:
        session.close()


def _folder_exists(url: str, path: Path) -> None:
    """A store in a folder that does not exist is a typo more often than a wish: say so rather than
    create it (issue 11)."""
    if not path.parent.is_dir():
        raise ValueError(
            f"storage {redact_url(url)!r}: the folder {str(path.parent)!r} does not exist; "
            "create it first, or fix the path"
        )


def _check_sqlite(url: str, rest_at: int, base: Path) -> None:
    """``sqlite://study.db`` (two slashes) names a host, not a file: SQLAlchemy's error would not say
    so. A relative or absolute file path must be in a folder that exists (SQLite creates the file
    only)."""
    rest = url[rest_at:]
    if not rest.startswith("/"):
        name = rest.split("?", 1)[0] or "study.db"
        raise ValueError(
            f"storage {redact_url(url)!r}: a SQLite URL has three slashes before a relative path "
            f"(sqlite:///{name}) and four before an absolute one (sqlite:////abs/path/{name})"
        )
    target = rest[1:].split("?", 1)[0]
    if not target or target.startswith(":memory:"):
        return
    path = Path(target) if Path(target).is_absolute() else base / target
    _folder_exists(url, path)


def _missing_driver(scheme: str, exc: ImportError) -> str:
    dialect = scheme.split("+", 1)[0]
    if dialect in ("postgresql", "postgres"):
        return (
            f"the PostgreSQL driver is not installed ({exc}); "
            "install it with pip install 'fastgrid[postgres]' (psycopg 3 and SQLAlchemy)"
        )
    if dialect in ("mysql", "mariadb"):
        return f"the MySQL driver is not installed ({exc}); install one, e.g. pip install pymysql, and use mysql+pymysql://"
    return f"the database driver is not installed ({exc}); pip install sqlalchemy"


def _anchor_sqlite_path(url: str, rest_at: int, scheme: str, base: Path) -> str:
    """``sqlite:///rel.db`` → an absolute path under ``base``, like every other relative path here.

    SQLAlchemy would resolve it against the process's working directory, which for a sweep started from
    elsewhere is not where its sweep file and embedded store live.
    """
    if scheme.split("+", 1)[0] != "sqlite":
        return url
    rest = url[rest_at:]
    if not rest.startswith("/") or rest.startswith("//") or rest[1:].startswith(":memory:") or len(rest) < 2:
        return url
    path, sep, query = rest[1:].partition("?")
    return f"{url[:rest_at]}/{base / path}{sep}{query}"


def _with_installed_postgres_driver(url: str, scheme: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 when only it is installed.

    fastgrid's ``postgres`` extra installs psycopg 3, so a plain URL would otherwise fail for want of a
    driver the user never chose.
    """
    if scheme not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg2") is not None or importlib.util.find_spec("psycopg") is None:
        return url
    return "postgresql+psycopg" + url[len(scheme) :]


def _no_heartbeat(url: str, heartbeat_interval: int | None, grace_period: int | None) -> None:
    if heartbeat_interval is not None or grace_period is not None:
        raise _bad_url(
            url, "heartbeat_interval/grace_period need an RDB storage (sqlite://, postgresql://, mysql://)"
        )


def _embedded(
    path: Path,
    url: str | None,
    heartbeat_interval: int | None,
    grace_period: int | None,
    readonly: bool = False,
) -> EmbeddedStorage:
    _no_heartbeat(url or str(path), heartbeat_interval, grace_period)
    if path.is_dir():
        raise _bad_url(url or str(path), f"{path} is a directory")
    return EmbeddedStorage(SQLiteJournalBackend(path, readonly=readonly))


def export_study(src_storage: BaseStorage | str, *, study_name: str, to_url: str) -> None:
    """Copy the study ``study_name`` to any Optuna storage URL (e.g. ``sqlite:///export.db``).

    The copy keeps every trial with its state, params, values, user and system attributes and
    intermediate values, so ``optuna-dashboard sqlite:///export.db`` and other Optuna tools can open it.
    ``to_url`` is parsed like ``open_storage``'s argument (so it may also be another embedded store).

    Raises:
        ValueError: bad ``to_url``, or the destination already holds a study of that name.
        KeyError: no study ``study_name`` in the source.
    """
    source = open_storage(src_storage) if isinstance(src_storage, str) else src_storage
    target = open_storage(to_url)
    try:
        if study_name in {s.study_name for s in target.get_all_studies()}:
            raise ValueError(
                f"{redact_url(to_url)}: already holds a study named {study_name!r}; export elsewhere"
            )
        try:
            source.get_study_id_from_name(study_name)
        except KeyError:
            names = sorted(s.study_name for s in source.get_all_studies())
            raise KeyError(
                f"no study named {study_name!r} in the source storage (studies: {names})"
            ) from None
        optuna.copy_study(from_study_name=study_name, from_storage=source, to_storage=target)
        if isinstance(target, EmbeddedStorage):
            target.checkpoint()
    finally:
        # The pooled connections of a database opened here close now, not when the GC finds them.
        release_connections(target)
