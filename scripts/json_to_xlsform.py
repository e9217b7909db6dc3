"""Write a first-format JSON questionnaire definition as an XLSForm workbook.

Usage: python scripts/json_to_xlsform.py IN.json [IN.json ...]  (writes IN.xlsx next to each)

Used once to turn the bundled citizen and minors questionnaires into XLSForm files; it checks
that the workbook reads back as the same definition before writing it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from forms.definition import parse_definition
from forms.xlsform import definition_to_xlsx, load_xlsform


def main(paths: list[str]) -> None:
    """Convert each JSON file to an .xlsx beside it."""
    for name in paths:
        path = Path(name)
        definition = parse_definition(json.loads(path.read_text(encoding="utf-8")), path.name)
        data = definition_to_xlsx(definition)
        if load_xlsform(data) != definition:
            raise SystemExit(f"{path}: the workbook does not read back as the same definition")
        path.with_suffix(".xlsx").write_bytes(data)
        print(f"{path} -> {path.with_suffix('.xlsx')}")


if __name__ == "__main__":
    main(sys.argv[1:])
