"""Questionnaire definitions (versioned data files) and the item types that check, store and score answers."""
from __future__ import annotations

from forms.definition import Definition, DefinitionError, bundled_definitions, load_definition, parse_definition

__all__ = [
    "Definition",
    "DefinitionError",
    "bundled_definitions",
    "load_definition",
    "parse_definition",
]
