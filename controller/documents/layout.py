"""The administrative-document layout of Decree 30/2020/NĐ-CP, for python-docx.

A4; Times New Roman (Unicode) throughout, 14 pt for the body; margins top and
bottom 20 mm, left 30 mm, right 15 mm (the Decree allows 20-25, 30-35, 15-20).
The header is a borderless two-column table: the issuing body top left
("ỦY BAN NHÂN DÂN / XÃ TÂN AN", bold, a short line under it, then "Số: …/…"),
the national motto top right ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and
"Độc lập - Tự do - Hạnh phúc", both bold, a line under the second) with the
place and date in italics under it. Then the title, bold and centred; the body
justified with a first-line indent; "Nơi nhận:" bottom left and the signature
block bottom right.

Every run names its font for all four scripts (``w:ascii``, ``w:hAnsi``,
``w:eastAsia``, ``w:cs``): Word picks the East Asian or complex-script font
for some Vietnamese letters, which otherwise fall back to another typeface.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from typing import Any

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, Twips

FONT = "Times New Roman"
BODY_PT = 14
TABLE_PT = 12
PAGE_MM = (210, 297)  # A4
#: (top, bottom, left, right) in millimetres, inside the Decree's ranges.
MARGINS_MM = (20, 20, 30, 15)
TEXT_WIDTH_MM = PAGE_MM[0] - MARGINS_MM[2] - MARGINS_MM[3]
HEADER_COLUMNS_MM = (68, TEXT_WIDTH_MM - 68)
FIRST_LINE_INDENT_MM = 10
MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
SLOGAN = "Độc lập - Tự do - Hạnh phúc"


def vietnamese_date(day: dt.date) -> str:
    """"ngày 05 tháng 02 năm 2026": a zero before days under 10 and months 1 and 2
    (Decree 30, Appendix I)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def short_date(day: dt.date) -> str:
    """dd/mm/yyyy, as dates are written in running text."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def count_text(value: int | None) -> str:
    """An integer with Vietnamese thousands separators: 12.345."""
    return "—" if value is None else f"{value:,}".replace(",", ".")


def percent_text(share: float | None, digits: int = 1) -> str:
    """A share (0..1) as a Vietnamese percentage: 0.8534 -> "85,3%"; None -> "—"."""
    if share is None:
        return "—"
    return f"{share * 100:.{digits}f}%".replace(".", ",")


def set_font(run: Any, size: float = BODY_PT, *, bold: bool = False,
             italic: bool = False) -> Any:
    """Times New Roman at ``size`` for every script of ``run``."""
    run.font.name = FONT
    run.font.size = Pt(size)
    run.bold = bold
    run.italic = italic
    _all_scripts(run._element.get_or_add_rPr().get_or_add_rFonts())
    return run


def _all_scripts(fonts: Any) -> None:
    for script in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(script), FONT)


def _at_least(mm: float) -> Twips:
    """``mm`` rounded up to whole twips, as Word stores margins: rounded to the nearest,
    15 mm would be 14.99 and fall outside the Decree's range."""
    return Twips(math.ceil(mm / 25.4 * 1440))


def _widths(table: Any, widths_mm: Sequence[float]) -> None:
    """Fixed column widths: the grid (LibreOffice reads it) and every cell (Word does)."""
    table.autofit = False
    for column, width in zip(table.columns, widths_mm, strict=True):
        column.width = Mm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm, strict=True):
            cell.width = Mm(width)


def _rule(paragraph: Any) -> None:
    """A line above ``paragraph`` as wide as its text area (narrowed by its indents).

    The border goes in before any other paragraph property: python-docx inserts the
    others in schema order after it, and Word refuses a ``w:pBdr`` out of order."""
    border = OxmlElement("w:pBdr")
    top = OxmlElement("w:top")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"),
                       ("w:color", "auto")):
        top.set(qn(key), value)
    border.append(top)
    paragraph._p.get_or_add_pPr().append(border)


class OfficialDocument:
    """A DOCX laid out per Decree 30, built top to bottom, then :meth:`to_bytes`."""

    def __init__(self) -> None:
        self.doc = Document()
        section = self.doc.sections[0]
        section.page_width, section.page_height = Mm(PAGE_MM[0]), Mm(PAGE_MM[1])
        top, bottom, left, right = (_at_least(mm) for mm in MARGINS_MM)
        section.top_margin, section.bottom_margin = top, bottom
        section.left_margin, section.right_margin = left, right
        normal = self.doc.styles["Normal"]
        normal.font.name, normal.font.size = FONT, Pt(BODY_PT)
        _all_scripts(normal.element.get_or_add_rPr().get_or_add_rFonts())
        normal.paragraph_format.space_after = Pt(0)
        normal.paragraph_format.space_before = Pt(0)
        normal.paragraph_format.line_spacing = 1.0
        self.doc.core_properties.language = "vi-VN"

    # -- the header -----------------------------------------------------------------

    def header(self, body_lines: Sequence[str], number: str, place: str,
               day: dt.date | None) -> None:
        """Issuing body and number (left), motto and place and date (right).

        ``number`` is the whole "12/BC-UBND" (a blank before the slash when the clerk
        numbers it at registration); ``day`` None leaves the date for the signer."""
        table = self._borderless(2, HEADER_COLUMNS_MM)
        left, right = table.rows[0].cells
        for i, line in enumerate(body_lines):
            self._line(left, line.upper(), 13, bold=True, first=i == 0)
        self._short_rule(left, HEADER_COLUMNS_MM[0], 25)
        self._line(left, f"Số: {number}", 13)
        self._line(right, MOTTO, 12, bold=True, first=True)
        self._line(right, SLOGAN, 13, bold=True)
        self._short_rule(right, HEADER_COLUMNS_MM[1], 62)
        date = vietnamese_date(day) if day else "ngày      tháng      năm"
        self._line(right, f"{place}, {date}", 14, italic=True).paragraph_format.space_before = (
            Pt(6))
        self.doc.add_paragraph()

    def _line(self, cell: Any, text: str, size: float, *, bold: bool = False,
              italic: bool = False, first: bool = False) -> Any:
        paragraph = cell.paragraphs[0] if first else cell.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        set_font(paragraph.add_run(text), size, bold=bold, italic=italic)
        return paragraph

    def _short_rule(self, cell: Any, cell_mm: float, line_mm: float) -> None:
        paragraph = cell.add_paragraph()
        _rule(paragraph)
        inset = Mm(max(0.0, (cell_mm - line_mm) / 2))
        paragraph.paragraph_format.left_indent = inset
        paragraph.paragraph_format.right_indent = inset
        set_font(paragraph.add_run(""), 6)

    # -- the text -------------------------------------------------------------------

    def title(self, text: str, subtitle: str | None = None) -> None:
        """The document's name in bold capitals, centred; a bold subtitle and a short
        line under it when given (a report's "Kết quả ..." line)."""
        paragraph = self.doc.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.paragraph_format.space_before = Pt(6)
        set_font(paragraph.add_run(text.upper()), BODY_PT, bold=True)
        if subtitle:
            below = self.doc.add_paragraph()
            below.alignment = WD_ALIGN_PARAGRAPH.CENTER
            set_font(below.add_run(subtitle), BODY_PT, bold=True)
        line = self.doc.add_paragraph()
        _rule(line)
        inset = Mm((TEXT_WIDTH_MM - 40) / 2)
        line.paragraph_format.left_indent = line.paragraph_format.right_indent = inset
        line.paragraph_format.space_after = Pt(6)

    def addressee(self, text: str) -> None:
        """"Kính gửi: …", centred."""
        paragraph = self.doc.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.paragraph_format.space_after = Pt(6)
        set_font(paragraph.add_run("Kính gửi: "), BODY_PT)
        set_font(paragraph.add_run(text), BODY_PT)

    def paragraph(self, text: str, *, bold: bool = False, italic: bool = False,
                  indent: bool = True) -> Any:
        """A body paragraph: justified, first line indented, 14 pt."""
        paragraph = self.doc.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        fmt = paragraph.paragraph_format
        fmt.first_line_indent = Mm(FIRST_LINE_INDENT_MM) if indent else None
        fmt.space_after = Pt(6)
        fmt.line_spacing = 1.15
        set_font(paragraph.add_run(text), BODY_PT, bold=bold, italic=italic)
        return paragraph

    def heading(self, text: str) -> Any:
        """A section heading ("I. KẾT QUẢ …"): bold, in the body's size."""
        return self.paragraph(text, bold=True)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]],
              widths_mm: Sequence[float] | None = None, numeric: Sequence[int] = ()) -> Any:
        """A data table with grid lines: a bold header row, 12 pt cells, the ``numeric``
        columns right-aligned. Cells are text, formatted by the caller."""
        table = self.doc.add_table(rows=1, cols=len(columns))
        table.style = self.doc.styles["Table Grid"]
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        for cell, name in zip(table.rows[0].cells, columns, strict=True):
            self._cell(cell, name, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
        for row in rows:
            for i, (cell, value) in enumerate(zip(table.add_row().cells, row, strict=True)):
                self._cell(cell, value, align=WD_ALIGN_PARAGRAPH.RIGHT if i in numeric else None)
        if widths_mm:
            _widths(table, widths_mm)
        self.doc.add_paragraph().paragraph_format.space_after = Pt(3)
        return table

    def _cell(self, cell: Any, text: str, *, bold: bool = False, align: Any = None) -> None:
        paragraph = cell.paragraphs[0]
        if align is not None:
            paragraph.alignment = align
        set_font(paragraph.add_run(text), TABLE_PT, bold=bold)

    # -- the end --------------------------------------------------------------------

    def closing(self, recipients: Sequence[str], signing_for: str, position: str,
                signer: str) -> None:
        """"Nơi nhận:" bottom left (bold italic 12 pt, items 11 pt), the signer's authority,
        position and name bottom right (bold, space left for the signature and seal)."""
        table = self._borderless(2, (TEXT_WIDTH_MM / 2 - 5, TEXT_WIDTH_MM / 2 + 5))
        left, right = table.rows[0].cells
        heading = left.paragraphs[0]
        set_font(heading.add_run("Nơi nhận:"), 12, bold=True, italic=True)
        items = [*(r.rstrip(";.") for r in recipients), "Lưu: VT"]
        for i, item in enumerate(items):
            end = "." if i == len(items) - 1 else ";"
            set_font(left.add_paragraph().add_run(f"- {item}{end}"), 11)
        first = True
        for line in (signing_for, position):
            if line:
                self._line(right, line.upper(), BODY_PT, bold=True, first=first)
                first = False
        for _ in range(4):
            right.add_paragraph()
        self._line(right, signer, BODY_PT, bold=True)

    def _borderless(self, cols: int, widths_mm: Sequence[float]) -> Any:
        table = self.doc.add_table(rows=1, cols=cols)
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        _widths(table, widths_mm)
        return table

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        self.doc.save(out)
        return out.getvalue()
