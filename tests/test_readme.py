"""The README's config reference is the configs' own field docs.

`python tests/test_readme.py` rewrites the tables from the configs after a field changes.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import toymodels as tm

README = Path(__file__).resolve().parents[1] / "README.md"
CONFIGS = (tm.ToyModelConfig, tm.TrainConfig, tm.SAEConfig)
HEADER = "| field | default | swept | meaning |\n|---|---|---|---|\n"


def config_table(cls) -> str:
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        doc = f.metadata["doc"].replace("|", "\\|")
        rows.append(f"| `{f.name}` | {default} | {'yes' if f.metadata['swept'] else ''} | {doc} |")
    return HEADER + "\n".join(rows) + "\n"


def _table_span(text: str, cls) -> tuple[int, int]:
    pattern = re.compile(rf"`{cls.__name__}`[^\n]*\n\n({re.escape(HEADER)}(?:\|.*\|\n)*)")
    match = pattern.search(text)
    if match is None:
        raise AssertionError(f"the README has no config reference table for {cls.__name__}")
    return match.span(1)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_the_readme_config_reference_matches_the_fields(cls):
    text = README.read_text(encoding="utf-8")
    start, end = _table_span(text, cls)
    assert text[start:end] == config_table(cls), (
        f"README's {cls.__name__} table is out of date: run `python tests/test_readme.py`")


if __name__ == "__main__":
    text = README.read_text(encoding="utf-8")
    for cls in CONFIGS:
        start, end = _table_span(text, cls)
        text = text[:start] + config_table(cls) + text[end:]
    README.write_text(text, encoding="utf-8")
