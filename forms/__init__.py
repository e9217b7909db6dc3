"""Questionnaire definitions (versioned XLSForm files) and the item types that check, store and score answers."""
from __future__ import annotations

from forms.bundled import bundled_definitions, load_definition
from forms.common import DefinitionError
from forms.definition import Definition, parse_definition
from forms.xlsform import XLSFormError, definition_to_xlsx, load_xlsform, read_xlsform

__all__ = [
    "Definition",
    "DefinitionError",
    "XLSFormError",
    "bundled_definitions",
    "definition_to_xlsx",
    "load_definition",
    "load_xlsform",
    "parse_definition",
    "read_xlsform",
]
