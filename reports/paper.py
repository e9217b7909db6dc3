"""Printed paper questionnaires: numbered questions, boxed numbered choices, a serial per copy.

Numbers and labels in, PDF out: the caller numbers the questions and choices (the paper-entry
page's numbering) and hands over the serials; nothing here knows about the database.

Every copy of a run has the same questions, so one copy is laid out by WeasyPrint and its pages
are reused for every copy: each copy's pages share the laid-out page contents and add a small
stream of their own with the serial (text in the header and footer of every page) and, on the
first page, the serial's QR code drawn as vector rectangles in the space kept for it. Laying
out 500 copies one by one would take minutes; this takes about as long as one copy.
"""
from __future__ import annotations

from dataclasses import dataclass

import pydyf
import segno

from reports.pdf import _environment, ensure_cjk_font

TEXT_LINES = 4  # ruled lines under a question answered in words
MM = 72 / 25.4  # PDF points per millimetre
PAGE_HEIGHT = 297.0
# Where the serial goes, in millimetres from the page's top-left corner; the template keeps
# these places free (its label "问卷编号" ends where the header serial starts).
LAYOUT = {
    "margin_top": 22.0, "margin_side": 16.0, "margin_bottom": 16.0,
    "header_label_x": 142.0, "header_serial_x": 160.0, "header_baseline": 13.0,
    "footer_serial_x": 16.0, "footer_baseline": 289.0,
    "qr_x": 171.0, "qr_y": 22.0, "qr_size": 23.0, "qr_caption_baseline": 48.0,
}


# How each item type's answer is printed (ItemType.paper): the template's macro of that name.
LAYOUTS = ("choices", "multi", "lines", "number", "date", "time", "datetime", "check", "location", "photo")
Numbered = tuple[tuple[int, str], ...]  # (choice number, label) pairs


@dataclass(frozen=True)
class PaperQuestion:
    """A question as printed: its number, its wording and its numbered choices (none: write-in).

    ``when`` says when a follow-up question is answered (e.g. "第3题选“是”"), else "".
    ``layout`` is how the answer is written (:data:`LAYOUTS`): boxed choices, ticks of several
    choices, ruled lines (``lines`` of them), digit boxes (``digits`` before and ``decimals`` after
    a decimal point), date / time boxes, a box to tick, latitude and longitude, or nothing (a photo).
    ``scale`` lists every value of a short range (a box each); ``groups`` prints a choice list cut
    by an earlier answer (a cascade) as (that answer, its numbered choices), numbers running on;
    ``rule`` is the constraint said near the box ("年龄16–100岁"); ``other`` is the numbered
    "其他（请注明）" box printed right after the question.
    """

    number: int
    label: str
    choices: Numbered = ()
    lines: int = 0
    when: str = ""
    layout: str = "choices"
    hint: str = ""
    digits: int = 0
    decimals: int = 0
    scale: tuple[str, ...] = ()
    groups: tuple[tuple[str, Numbered], ...] = ()
    rule: str = ""
    other: PaperQuestion | None = None


@dataclass(frozen=True)
class PaperNote:
    """Text printed between questions (a ``note`` item)."""

    text: str


@dataclass(frozen=True)
class PaperSection:
    """A section as printed: its heading ("" for none) and its questions and notes in order.

    ``columns`` set: the section is a table (rows = the questions, which all take these choices;
    a box in every cell), as a ``table-list`` group.
    """

    title: str
    parts: tuple[PaperQuestion | PaperNote, ...]
    columns: Numbered = ()


@dataclass(frozen=True)
class PaperForm:
    """What every copy of one print run shares.

    ``questions`` are all numbered questions in order; ``sections`` (when given) how they are laid
    out, with headings and notes; without sections the questions are printed one after another.
    """

    city_name: str
    title: str
    community_name: str
    street_name: str
    wave_name: str
    questions: tuple[PaperQuestion, ...]
    intro: str = ""
    privacy: str = ""
    sections: tuple[PaperSection, ...] = ()

    @property
    def layouts(self) -> frozenset[str]:
        """Return the layouts the copy uses (the instructions mention only those)."""
        return frozenset(q.layout for q in self.questions)


def paper_questionnaires_pdf(form: PaperForm, serials: list[str]) -> bytes:
    """Return A4 pages: each copy starts on a new page, shows its serial on every page and counts
    its own pages ("第x页/共y页"); no question is split across pages.

    Serials are printed in Helvetica (letters, digits and hyphens only, like paper entry takes).
    """
    if not serials:
        raise ValueError("no serials to print")
    bad = [s for s in serials if not s.isascii() or not all(c.isalnum() or c == "-" for c in s)]
    if bad:
        raise ValueError(f"serials must be letters, digits and hyphens: {bad[0]!r}")
    ensure_cjk_font()
    from weasyprint import HTML

    html = _environment().get_template("paper.html").render(f=form, m=LAYOUT)
    copy = HTML(string=html).render()
    return copy.write_pdf(finisher=lambda _document, pdf: _stamp_copies(pdf, serials))


def _stamp_copies(pdf: pydyf.PDF, serials: list[str]) -> None:
    """Turn the laid-out pages of one copy into every copy, each with its serial."""
    base = [o for o in pdf.objects if isinstance(o, pydyf.Dictionary) and o.get("Type") == "/Page"]
    resources = pdf.objects[_number(base[0]["Resources"])]
    fonts = pdf.objects[_number(resources["Font"])]
    for name, face in (("SerialBold", "Helvetica-Bold"), ("Serial", "Helvetica")):
        font = pydyf.Dictionary({"Type": "/Font", "Subtype": "/Type1", "BaseFont": f"/{face}",
                                 "Encoding": "/WinAnsiEncoding"})
        pdf.add_object(font)
        fonts[name] = font.reference
    save = pydyf.Stream([b"q"])  # the page's own drawing runs inside q ... Q, so ours starts clean
    pdf.add_object(save)
    drawn = [page["Contents"] for page in base]
    for copy_index, serial in enumerate(serials):
        for page_index, page in enumerate(base):
            stamp = pydyf.Stream([_stamp(serial, first_page=page_index == 0)], compress=True)
            pdf.add_object(stamp)
            contents = pydyf.Array([save.reference, drawn[page_index], stamp.reference])
            if copy_index == 0:
                page["Contents"] = contents
            else:
                pdf.add_page(pydyf.Dictionary({**page, "Contents": contents}))


def _number(reference) -> int:
    return int(bytes(reference).split()[0])


def _text(text: str, x_mm: float, baseline_mm: float, size: float, font: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /{font} {size} Tf 1 0 0 1 {x_mm * MM:.2f} {(PAGE_HEIGHT - baseline_mm) * MM:.2f} Tm ({escaped}) Tj ET"


def _qr(serial: str, x_mm: float, top_mm: float, size_mm: float) -> str:
    """Return PDF operators filling the dark modules of the serial's QR code (rows as runs)."""
    code = segno.make_qr(serial, error="m")  # a full QR code: scanners often miss Micro QR
    rows = code.matrix
    border = 2
    module = size_mm * MM / (len(rows) + 2 * border)
    left, top = x_mm * MM + border * module, (PAGE_HEIGHT - top_mm) * MM - border * module
    ops = ["1 1 1 rg", f"{x_mm * MM:.2f} {(PAGE_HEIGHT - top_mm - size_mm) * MM:.2f} {size_mm * MM:.2f} {size_mm * MM:.2f} re f",
           "0 0 0 rg"]
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                ops.append(f"{left + start * module:.3f} {top - (r + 1) * module:.3f} {(c - start) * module:.3f} {module:.3f} re")
            else:
                c += 1
    ops.append("f")
    return "\n".join(ops)


def _stamp(serial: str, first_page: bool) -> bytes:
    m = LAYOUT
    ops = ["Q", "0 0 0 rg",
           _text(serial, m["header_serial_x"], m["header_baseline"], 11, "SerialBold"),
           _text(serial, m["footer_serial_x"], m["footer_baseline"], 8, "Serial")]
    if first_page:
        ops.append(_qr(serial, m["qr_x"], m["qr_y"], m["qr_size"]))
        ops.append(_text(serial, m["qr_x"] + 1.5, m["qr_caption_baseline"], 7.5, "Serial"))
    return "\n".join(ops).encode("ascii")
