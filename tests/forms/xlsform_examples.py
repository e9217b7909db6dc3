"""What the XLSForm importer should do with each of the XLSForm project's 25 example workbooks.

The workbooks (tests/forms/data/xlsform_examples/, taken unchanged from pyxform's test suite) were
written for ODK, not for us: the table says, per file, whether it ``imports`` or is ``refused``,
and for a refused one the words its error messages must contain, i.e. the features that are
refused. Each word is looked for, ignoring case, in the text a user is shown for each error
(``str(Located)``: sheet, row, column and message); ``"a|b"`` is satisfied by either and
``"a+b"`` by one error naming both. For a file that imports, ``warns`` lists words that must
appear in its warnings in the same way.

Written against the importer's target (see tests/forms/XLSFORM_EXAMPLES.md for the reasoning and
for pyxform's own verdict on each file), not against today's importer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

EXAMPLES_DIR = Path(__file__).parent / "data" / "xlsform_examples"


@dataclass(frozen=True)
class Expected:
    outcome: Literal["imports", "refused"]
    reason: str  # one line: why this outcome
    words: tuple[str, ...] = ()  # refused: each in some error ("a|b": either, "a+b": both in one)
    warns: tuple[str, ...] = ()  # imports: each in some warning
    features: tuple[str, ...] = ()  # what the workbook uses (for the report)
    pyxform: str = ""  # pyxform 4.5.0's verdict, with ODK Validate


SPEC_TEST_FEATURES = (
    "select_one", "select_multiple", "text", "integer", "decimal", "note", "acknowledge", "date", "time",
    "datetime", "geopoint", "barcode", "image", "audio", "video", "calculate", "begin repeat", "nested groups",
    "field-list/table-list", "metadata rows (start, end, today, deviceid, uri:deviceid, phonenumber)",
    "piped ${q} in labels and constraint messages", "regex() / not(selected())", "requiredMsg, rows, autoplay, "
    "buttonText, noAppErrorString, image/audio/video media columns", "ex: appearance (external app)",
    "settings public_key, submission_url, instance_name", "form_id with a space",
)

EXAMPLES: dict[str, Expected] = {
    "tests_bug_example_xls_ODKValidateWarnings.xlsx": Expected(
        "refused", "'phone number' (pyxform's old alias of a digits-only text) is not a supported type",
        words=("phone number",),
        features=("label:English (old spelling)", "text", "phone number", "integer",
                  "cells under no header", "unused choice list whose choice has no label"),
        pyxform="converts; warns that the choice has no label"),
    "tests_bug_example_xls_UCL_Biomass_Plot_Form.xlsx": Expected(
        "refused", "select_one_from_file, nested repeats with repeat_count, sqrt()/cos()/atan() in calculations",
        words=("from_file", "repeat", "sqrt|cos|atan"),
        features=("label::Swahili (sw)/English (en)", "select_one_from_file + choice_filter", "begin repeat (nested)",
                  "repeat_count", "calculate with round/sqrt/cos/atan/div/if", "image with parameters max-pixels",
                  "geopoint", "regex() constraint", "typographic quotes ‘other’ in relevant",
                  "metadata start/end/deviceid", "version = NOW() (a date)", "sheets of 1,048,576 formatted rows"),
        pyxform="converts and passes ODK Validate (the CSV files are not checked)"),
    "tests_bug_example_xls_bad_calc.xlsx": Expected(
        "refused", "the calculation is English prose, not an expression",
        words=("because|pyxform",),
        features=("calculate", "calculation that is not an expression"),
        pyxform="pyxform copies it through; ODK Validate rejects it (couldn't understand the expression)"),
    "tests_bug_example_xls_duplicate_columns.xlsx": Expected(
        "refused", "two 'label' columns (which one is meant?); also a repeat and barcode/audio/video questions",
        words=("label", "repeat", "barcode", "audio", "video"),
        features=("duplicate 'label' header", *SPEC_TEST_FEATURES),
        pyxform="rejects: Duplicate column header: label"),
    "tests_bug_example_xls_xl_date_ambiguous.xlsx": Expected(
        "refused", "choice_filter names label::English, which is neither a filter column nor an answer",
        words=("choice_filter+label::english",),
        features=("labels and settings are formulas (=B2; cached values read)", "choice labels that are only ${q}",
                  "relevant = 0", "choice_filter label::English != ''", "settings xml_root, instance_name",
                  "changelog sheet with a date cell"),
        pyxform="converts; ODK Validate rejects the choice_filter (unsupported nodeset expression)"),
    "tests_bug_example_xls_xl_date_ambiguous_v1.xlsx": Expected(
        "imports", "texts, a select whose choice labels pipe earlier answers, a date with a date-cell default",
        warns=("xml_root", "instance_name"),
        features=("labels and settings are formulas (cached values read)", "choice labels that are only ${q}",
                  "date with default = a date cell (1900-01-01)", "settings xml_root, instance_name",
                  "changelog sheet", "header row declaring ~1000 empty columns"),
        pyxform="converts; ODK Validate warns that the choices have no label text (they are all ${q})"),
    "tests_example_xls_attribute_columns_test.xlsx": Expected(
        "refused", "the spec test form plus bind::/instance::/body:: columns: repeat, barcode, audio, video",
        words=("repeat", "barcode", "audio", "video"),
        features=(*SPEC_TEST_FEATURES, "bind::, instance::, body:: attribute columns"),
        pyxform="converts"),
    "tests_example_xls_bad_calc.xlsx": Expected(
        "refused", "the calculation is English prose, not an expression (same file as bug_example_xls)",
        words=("because|pyxform",),
        features=("calculate", "calculation that is not an expression"),
        pyxform="pyxform copies it through; ODK Validate rejects it (couldn't understand the expression)"),
    "tests_example_xls_case_insensitivity.xlsx": Expected(
        "refused", "select_one_external (external_choices sheet), osm, and an entities sheet",
        words=("external", "osm", "entities"),
        features=("upper-case sheet and column names", "label::EN", "select_one_external + choice_filter",
                  "osm", "EXTERNAL_CHOICES, ENTITIES, OSM sheets"),
        pyxform="converts (entity declaration, osm upload)"),
    "tests_example_xls_choice_filter_test.xlsx": Expected(
        "refused", "choice 'king' twice in list counties: answers from Texas and Washington would be one code",
        words=("king",),
        features=("cascading select_one with choice_filter ${state}=cf", "choices filter column cf",
                  "duplicate choice name (allow_choice_duplicates = yes in settings)"),
        pyxform="converts only because of allow_choice_duplicates; without it: choice names must be unique"),
    "tests_example_xls_extra_columns.xlsx": Expected(
        "imports", "one text question; the sheet declares 6,587 columns of which 3 have a header",
        features=("text", "sheet dimension A1:ISI513 with empty columns", "no settings sheet (code = file name)"),
        pyxform="converts"),
    "tests_example_xls_extra_sheet_names.xlsx": Expected(
        "imports", "one text question; the sheets my_sheet and stettings (sic) are ignored with a warning",
        warns=("stettings",),
        features=("text", "unknown sheets my_sheet, stettings (misspelt settings)", "empty choices sheet"),
        pyxform="converts; warns that 'stettings' looks like 'settings'"),
    "tests_example_xls_field-list.xlsx": Expected(
        "imports", "one select_one in a group closed by end_group; label::english, choices also in chinese",
        features=("begin group (no label, no appearance)", "end_group spelling", "select_one", "label::english",
                  "plain hint", "choices label + label::chinese + image column"),
        pyxform="converts"),
    "tests_example_xls_flat_xlsform_test.xlsx": Expected(
        "refused", "the spec test form without its repeat: still barcode, audio and video questions",
        words=("barcode", "audio", "video"),
        features=(*(f for f in SPEC_TEST_FEATURES if f != "begin repeat"), "relevant naming a later question",
                  "settings flat"),
        pyxform="converts"),
    "tests_example_xls_group.xlsx": Expected(
        "refused", "'phone number' is not a supported type",
        words=("phone number",),
        features=("label:English (en) (old spelling)", "text", "begin group", "phone number", "integer"),
        pyxform="converts"),
    "tests_example_xls_include.xlsx": Expected(
        "refused", "type include (pyxform's old inclusion of another form) is not supported",
        words=("include",),
        features=("label:English", "text", "include", "list name (old spelling), empty choices"),
        pyxform="rejects: This section has not been included."),
    "tests_example_xls_include_json.xlsx": Expected(
        "refused", "type include (of a JSON form) is not supported",
        words=("include",),
        features=("include",),
        pyxform="rejects: This section has not been included."),
    "tests_example_xls_loop.xlsx": Expected(
        "refused", "'begin loop over' is not supported (the old 'select all that apply from' spelling is read)",
        words=("begin loop",),
        features=("select all that apply from L or specify other", "begin loop over L / end loop",
                  "%(label)s in a label", "label:english"),
        pyxform="converts (the loop becomes one group per choice)"),
    "tests_example_xls_or_other.xlsx": Expected(
        "refused", "choice_filter pastel=yes names a column yes that does not exist (the text 'yes' was meant)",
        words=("choice_filter+yes",),
        features=("select_one L or_other", "choice_filter on a filter column", "unquoted value in choice_filter",
                  "list name (old spelling)"),
        pyxform="converts and passes ODK Validate, but 'yes' is a path there: no pastel is ever offered"),
    "tests_example_xls_pull_data.xlsx": Expected(
        "refused", "pulldata() reads a CSV attached to the form",
        words=("pulldata",),
        features=("calculate with pulldata()", "note piping the calculation"),
        pyxform="converts"),
    "tests_example_xls_specify_other.xlsx": Expected(
        "imports", "pyxform's old 'select one from L or specify other' spelling is read as select_one L or_other",
        features=("select one from L or specify other", "label:English"),
        pyxform="converts (as select_one or_other)"),
    "tests_example_xls_survey_no_name.xlsx": Expected(
        "refused", "no sheet named survey (the only sheet is Sheet1)",
        words=("survey",),
        features=("text", "the only sheet is named Sheet1"),
        pyxform="converts: pyxform reads a workbook's only sheet as the survey, whatever its name"),
    "tests_example_xls_text_and_integer.xlsx": Expected(
        "imports", "a text and an integer question, labels in the old label:english spelling",
        features=("label:english", "text", "integer", "list name, empty choices"),
        pyxform="converts"),
    "tests_example_xls_xlsform_spec_test.xlsx": Expected(
        "refused", "the XLSForm spec test form: repeat, barcode, audio, video",
        words=("repeat", "barcode", "audio", "video"),
        features=SPEC_TEST_FEATURES,
        pyxform="converts"),
    "tests_example_xls_yes_or_no_question.xlsx": Expected(
        "imports", "pyxform's old 'select one from L' spelling is read as select_one L",
        features=("select one from L", "label:english", "list name"),
        pyxform="converts"),
}


def found(word: str, texts: list[str]) -> bool:
    """Return whether one of ``texts`` holds ``word``, ignoring case: ``a|b`` either, ``a+b`` both."""
    folded = [text.casefold() for text in texts]
    return any(all(part in text for part in alternative.split("+"))
               for alternative in word.casefold().split("|") for text in folded)
