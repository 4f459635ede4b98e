"""The optional extras a test module needs, imported so that a missing one cannot pass silently.

`make test` installs every extra (`.[dev,lm,interop]`), so in CI a missing package is a broken
setup, not a reason to skip: under CI (the CI environment variable set, as .ci/run and every
hosted CI set it) `require` fails the module's collection with the install command. Elsewhere (a
developer's venv without the extra) the module is skipped with that command as the reason.
"""

import importlib
import os

import pytest

#: extra → the pip command that installs it (torch pinned: an unpinned torch pulls GBs of CUDA).
INSTALL = {
    "lm": "pip install -e '.[dev,lm]'",
    "interop": "pip install -e '.[dev,lm,interop]'",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require(module: str, extra: str):
    """`import module`, which the `extra` extra installs; an error under CI, else a skip."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        why = f"{module} is not installed (the {extra!r} extra: {INSTALL[extra]})"
        if in_ci():
            raise ImportError(f"{why}; CI must run these tests, not skip them") from e
        pytest.skip(why, allow_module_level=True)
