"""Turn a questionnaire definition into a WTForms form class."""
from __future__ import annotations

from wtforms import Form

from forms.definition import Definition


def build_form_class(definition: Definition, base: type = Form) -> type:
    """Return a form class with one field per item, named by item code.

    ``base`` lets the web layer pass a CSRF-protected form class (Flask-WTF's ``FlaskForm``).

    >>> from forms.definition import bundled_definitions
    >>> cls = build_form_class(bundled_definitions()[("citizen", 1)])
    >>> form = cls(data={"sex": "F"})
    >>> form.sex.data, [c.value for c in form.sex.choices]
    ('F', ['M', 'F'])
    """
    fields = {item.code: item.field() for item in definition.items}
    return type(f"{definition.code.title()}V{definition.version}Form", (base,), fields)


def collect_answers(definition: Definition, form) -> dict[str, str | None]:
    """Return {item code: submitted value or None} from a validated form."""
    return {item.code: (getattr(form, item.code).data or None) for item in definition.items}
