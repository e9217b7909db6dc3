"""What the XLSForm importer makes of the XLSForm project's 25 example workbooks, and how quickly.

    python -m benchmarks.xlsform_examples [--dir DIR] [--runs 5]

Imports each workbook of DIR (default: tests/forms/data/xlsform_examples, pyxform's own examples)
with ``forms.xlsform.read_xlsform`` ``--runs`` times and prints a Markdown table: the file, what
came of it (imports / refused), the questions imported, the first error message (cut to 80
characters) and the median wall time of an import in milliseconds. What each should do is in
tests/forms/xlsform_examples.py; the test of it is tests/forms/test_xlsform_examples.py.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from forms.xlsform import XLSFormError, read_xlsform

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "forms" / "data" / "xlsform_examples"
MESSAGE_CHARS = 80


def cell(text: str) -> str:
    """Return ``text`` as one Markdown table cell (no line breaks, ``|`` escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def cut(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def measure(path: Path, runs: int) -> tuple[str, int | None, str, float]:
    """Return (result, questions imported, first error, median milliseconds) of importing ``path``."""
    times: list[float] = []
    result, questions, first = "", None, ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            imported = read_xlsform(path)
        except XLSFormError as exc:
            times.append(time.perf_counter() - start)
            result, questions = "refused", None
            first = str(exc.errors[0]) if exc.errors else ""
        else:
            times.append(time.perf_counter() - start)
            result, questions, first = "imports", len(imported.definition.items), ""
    return result, questions, first, statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=EXAMPLES, help="folder of .xlsx workbooks")
    parser.add_argument("--runs", type=int, default=5, help="imports of each file (the median is printed)")
    args = parser.parse_args()
    paths = sorted(args.dir.glob("*.xlsx"))
    if not paths:
        parser.error(f"no .xlsx file in {args.dir}")
    print("| file | result | questions | first refusal message | ms |")
    print("| --- | --- | ---: | --- | ---: |")
    counts = {"imports": 0, "refused": 0}
    for path in paths:
        result, questions, first, ms = measure(path, max(1, args.runs))
        counts[result] += 1
        shown = "" if questions is None else str(questions)
        print(f"| {cell(path.name)} | {result} | {shown} | {cell(cut(first))} | {ms:.1f} |")
    print(f"\n{len(paths)} workbooks: {counts['imports']} import, {counts['refused']} refused "
          f"(median of {max(1, args.runs)} imports each).")


if __name__ == "__main__":
    main()
