"""Questionnaire definitions (versioned data files) and the WTForms builder."""
from __future__ import annotations

from forms.builder import build_form_class, collect_answers
from forms.definition import Definition, DefinitionError, bundled_definitions, load_definition, parse_definition

__all__ = [
    "Definition",
    "DefinitionError",
    "build_form_class",
    "bundled_definitions",
    "collect_answers",
    "load_definition",
    "parse_definition",
]
