"""What the deployment files may name: `authpi` command lines, checked by the real argparse
parser of `authpi.platform.cli`, and `AUTHPI_*` variables, checked against what the settings
reader and the CLI actually read."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator, Mapping
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path
from unittest import mock

import authpi.config
import authpi.platform
from authpi.config import from_env
from authpi.platform import cli

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"AUTHPI_[A-Z0-9_]+")


class _Parsed(Exception):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = args


def parse_command(argv: list[str]) -> argparse.Namespace:
    """`authpi <argv>` as the real CLI parses it (its parser lives inside `main`, so `main` runs
    up to its parse and stops there). A command line it refuses raises ValueError with argparse's
    own message."""
    parse = argparse.ArgumentParser.parse_args

    def stop_after_parse(self: argparse.ArgumentParser, args=None, namespace=None):  # type: ignore[no-untyped-def]
        raise _Parsed(parse(self, args, namespace))

    err = StringIO()
    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop_after_parse):
        try:
            with redirect_stderr(err):
                cli.main(argv)
        except _Parsed as parsed:
            return parsed.namespace
        except SystemExit:
            raise ValueError(f"authpi {' '.join(argv)}: {err.getvalue().strip()}") from None
    raise AssertionError("authpi's main() returned without parsing its arguments")


class _Recording(Mapping[str, str]):
    """An empty environment that notes every name the settings reader asks for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return False

    def get(self, key: str, default=None):  # type: ignore[no-untyped-def,override]
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _literal_names(path: Path) -> tuple[set[str], set[str]]:
    """AUTHPI_* names a module spells as a whole string literal, and the prefixes of the families
    it reads ("AUTHPI_DB_PASSWORD_" compared by prefix, or completed in an f-string)."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if NAME.fullmatch(node.value):
                # "AUTHPI_DB_PASSWORD_": a family, matched by prefix (`k.startswith(prefix)`)
                (prefixes if node.value.endswith("_") else names).add(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                if re.fullmatch(r"AUTHPI_[A-Z0-9_]*_", head.value):
                    prefixes.add(head.value)
    return names, prefixes


def read_variables() -> tuple[frozenset[str], frozenset[str]]:
    """Every AUTHPI_* variable a process reads, and the prefixes of the families it reads
    (AUTHPI_DB_PASSWORD_<SERVICE>): what `from_env` asks an environment for, the names and
    families the settings module spells, and what the `authpi` command reads itself (its
    package, test helpers aside)."""
    env = _Recording()
    from_env(env)
    names = {name for name in env.asked if name.startswith("AUTHPI_")}
    prefixes: set[str] = set()
    package = Path(next(iter(authpi.platform.__path__)))
    sources = [Path(authpi.config.__file__), *sorted(package.rglob("*.py"))]
    for path in sources:
        if path.is_relative_to(package) and "testing" in path.relative_to(package).parts:
            continue
        found, families = _literal_names(path)
        names |= found
        prefixes |= families
    return frozenset(names), frozenset(prefixes)


def unknown_variables(used: set[str]) -> list[str]:
    names, prefixes = read_variables()
    return sorted(
        v
        for v in used
        if v not in names and not any(v.startswith(p) and len(v) > len(p) for p in prefixes)
    )
