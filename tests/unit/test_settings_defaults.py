"""Every setting's default is written once (shared/settings.py); the README and compose copy it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared import sysconfig
from shared.settings import DEFAULTS, ENV, ScanSettings, default_of, load_settings

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\| (`SHOEBOX_[A-Z_]+`(?: / `SHOEBOX_[A-Z_]+`)*) \| ([^|]+) \|", re.M)
_TICKED = re.compile(r"`([^`]*)`")


def _readme_defaults() -> dict[str, str]:
    """SHOEBOX_* variable -> its default as the README's settings table writes it (a literal
    in backticks, or `empty`); rows that describe their default in words are left out."""
    found: dict[str, str] = {}
    for names, default in _ROW.findall((ROOT / "README.md").read_text()):
        variables = _TICKED.findall(names)
        values = _TICKED.findall(default)
        if default.strip() == "empty":
            values = [""]
        if len(values) == len(variables) and not any(v.startswith("$") for v in values):
            found.update(zip(variables, values, strict=True))
    return found


def _compose_defaults() -> dict[str, str]:
    """SHOEBOX_* variable -> the default a compose file gives it (`${VAR:-default}`)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "deploy").glob("compose*.yaml")):
        for name, value in re.findall(r"\$\{(SHOEBOX_[A-Z_]+):-([^}]*)\}", path.read_text()):
            found[name] = value
    return found


def test_every_variable_is_in_the_readme_table() -> None:
    documented = {
        v
        for names, _ in _ROW.findall((ROOT / "README.md").read_text())
        for v in _TICKED.findall(names)
    }
    assert set(ENV) <= documented, sorted(set(ENV) - documented)


@pytest.mark.parametrize("variable", sorted(set(_readme_defaults()) & set(ENV)))
def test_the_readmes_default_is_the_codes(variable: str) -> None:
    parse = ENV[variable][1]
    assert parse(_readme_defaults()[variable]) == default_of(variable)


@pytest.mark.parametrize("variable", sorted(set(_compose_defaults()) & set(ENV)))
def test_a_compose_default_is_the_codes(variable: str) -> None:
    parse = ENV[variable][1]
    assert parse(_compose_defaults()[variable]) == default_of(variable)


def test_the_readme_documents_enough_defaults_to_check() -> None:
    assert len(set(_readme_defaults()) & set(ENV)) >= 18


def test_an_empty_environment_gives_the_structs_defaults() -> None:
    assert load_settings({}) == DEFAULTS


def test_a_set_variable_reaches_its_field() -> None:
    settings = load_settings({"SHOEBOX_LIBRARY_WATCH_INTERVAL": "500", "SHOEBOX_PORT": "1"})
    assert (settings.scan.watch_interval_ms, settings.port) == (500, 1)


def test_the_library_configs_defaults_are_the_environments() -> None:
    assert sysconfig.LibraryConfig() == sysconfig.defaults(ScanSettings())
