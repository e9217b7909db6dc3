"""The questionnaires shipped with the platform (``forms/definitions/*.xlsx``) and reading a definition file.

Above both definition.py and xlsform.py, which it uses.
"""
from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from forms.common import DefinitionError
from forms.definition import Definition, parse_definition
from forms.xlsform import load_xlsform, read_xlsform

DEFINITIONS = Path(__file__).parent / "definitions"


def load_definition(path: str | Path) -> Definition:
    """Read and validate one definition file: an XLSForm ``.xlsx`` or a JSON dict."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return load_xlsform(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{path.name}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{path.name}: not valid JSON ({exc})") from None
    return parse_definition(raw, path.name)


def bundled_raw() -> dict[tuple[str, int], dict[str, Any]]:
    """Return the definition dict of every XLSForm shipped in ``forms/definitions``, validated.

    Each call returns fresh dicts (callers may change them); the files are read once per process.
    """
    return {key: copy.deepcopy(raw) for key, raw in _bundled().items()}


@functools.cache
def _bundled() -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for path in sorted(DEFINITIONS.glob("*.xlsx")):
        imported = read_xlsform(path)
        out[(imported.definition.code, imported.definition.version)] = imported.raw
    return out


def bundled_definitions() -> dict[tuple[str, int], Definition]:
    """Return every definition shipped in ``forms/definitions`` by (code, version)."""
    return {key: parse_definition(raw, f"{key[0]}-v{key[1]}.xlsx") for key, raw in bundled_raw().items()}
