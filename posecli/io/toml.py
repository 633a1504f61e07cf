"""TOML reading on every supported Python: the standard library's ``tomllib`` from 3.11, the
``tomli`` package it came from on 3.10 (a dependency there only)."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["tomllib"]
