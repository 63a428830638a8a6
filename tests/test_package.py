"""The package surface: the compiled core imports and its exceptions have the documented bases."""

import subprocess
import sys

import fastgrid


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert fastgrid.__version__ == version("fastgrid")


def test_error_types_are_value_errors() -> None:
    for exc in (fastgrid.SpecError, fastgrid.PatternError, fastgrid.ConfigError):
        assert issubclass(exc, ValueError)


def test_every_public_name_exists() -> None:
    for name in fastgrid.__all__:
        assert hasattr(fastgrid, name), name


def test_cli_help_runs_through_the_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fastgrid", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage:" in out.stdout
