"""The XLSForm project's 25 example workbooks: each imports or is refused naming what it uses, quickly.

The expectations (tests/forms/xlsform_examples.py) are those of the importer's target, explained
in tests/forms/XLSFORM_EXAMPLES.md.
"""
from __future__ import annotations

import time

import pytest

from forms.xlsform import XLSFormError, read_xlsform
from tests.forms.xlsform_examples import EXAMPLES, EXAMPLES_DIR, found

CPU_SECONDS = 2.0  # per workbook; the real figure is milliseconds


def test_the_table_lists_every_example_and_only_them():
    assert sorted(p.name for p in EXAMPLES_DIR.glob("*.xlsx")) == sorted(EXAMPLES)
    assert len(EXAMPLES) == 25


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_imports_or_is_refused_naming_its_features(name):
    expected = EXAMPLES[name]
    start = time.process_time()
    try:
        imported, errors = read_xlsform(EXAMPLES_DIR / name), None
    except XLSFormError as exc:
        imported, errors = None, [str(e) for e in exc.errors]
    seconds = time.process_time() - start
    if errors is not None:
        assert expected.outcome == "refused", f"{name} should import ({expected.reason}), but:\n" + "\n".join(errors)
        missing = [w for w in expected.words if not found(w, errors)]
        assert not missing, f"{name}: no error names {missing} ({expected.reason}); errors:\n" + "\n".join(errors)
    else:
        assert imported is not None
        assert expected.outcome == "imports", f"{name} should be refused ({expected.reason}), but it imports"
        assert imported.definition.items, f"{name} imports without a question"
        warnings = [str(w) for w in imported.warnings]
        missing = [w for w in expected.warns if not found(w, warnings)]
        assert not missing, f"{name}: no warning names {missing}; warnings:\n" + "\n".join(warnings)
    assert seconds < CPU_SECONDS, f"{name} took {seconds:.2f} s of CPU"
