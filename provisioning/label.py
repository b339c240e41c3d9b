"""The label a technician sticks on a device's box: QR code, id, role, place and date.

The QR code holds the device's page in the controller's console, so a phone that
scans the box opens the technician's check of that device. The label is a 62 mm ×
40 mm landscape die-cut label (Brother QL and other 300 dpi thermal printers),
written as a 1-bit PNG at 300 dpi and as a PDF page of the same physical size.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import io
import math
import pathlib
import re
import urllib.parse

import segno
from PIL import Image, ImageDraw, ImageFont

from wire.errors import ThanthienError, TopicError
from wire.topics import check_device_id

DPI = 300
SIZE_MM = (62.0, 40.0)
WIDTH, HEIGHT = (round(mm / 25.4 * DPI) for mm in SIZE_MM)  # 732 × 472 px
FONT_DIR = pathlib.Path("/usr/share/fonts/truetype/dejavu")
REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
ROLE_NAMES = {"kiosk": ("Máy đánh giá", "Rating kiosk"), "camera": ("Camera quầy", "Desk camera"),
              "speaker": ("Loa thông minh", "Smart loudspeaker")}  # Vietnamese first
QUIET_ZONE = 4  # modules of white around the QR code, as ISO/IEC 18004 asks
_MARGIN = 18  # px (1.5 mm): die-cut labels print nothing nearer their edge
_ID_BAND = 100  # px of height for the device id across the top
_GAP = 8  # px between the column's blocks of text
_ABOVE, _LINE = 0.15, 1.32  # em: Vietnamese stacked marks (Ấ, Ỗ) rise above the ascent
_MIN_MODULE = 4  # px (0.34 mm): a finer QR module smudges on thermal paper
_MIN_SIZE = 9  # px: the smallest text worth printing (about 2 pt)
_BREAK = re.compile(r"(?<=[\s-])")  # lines break after a space or a hyphen, never in a date


class LabelError(ThanthienError, ValueError):
    """A label that cannot be made: the message names the field and what was expected."""


class FontMissingError(ThanthienError, FileNotFoundError):
    """DejaVu Sans is not installed; the message names the file and the Debian package."""


@dataclasses.dataclass(frozen=True)
class LabelInfo:
    """What goes on the label; checked when made, so a bad field fails before printing."""

    device_id: str
    role: str
    controller_url: str
    hamlet: str | None = None
    desk: str | None = None
    install_date: datetime.date | None = None  # None: today

    def __post_init__(self) -> None:
        try:
            check_device_id(self.device_id)
        except TopicError as exc:
            raise LabelError(f"device_id: {exc}") from None
        if self.role not in ROLE_NAMES:
            raise LabelError(f"role {self.role!r}: expected one of {', '.join(ROLE_NAMES)}")
        if not _is_base_url(self.controller_url):
            raise LabelError(f"controller_url {self.controller_url!r}: expected http:// or "
                             "https://, a host and no query or fragment")
        for name in ("hamlet", "desk"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.strip()
                                          and value.isprintable()):
                raise LabelError(f"{name} {value!r}: expected a line of text, or None")


def _is_base_url(url: object) -> bool:
    if not isinstance(url, str) or not url.isprintable() or any(c.isspace() for c in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and not parts.query and not parts.fragment)


@dataclasses.dataclass(frozen=True)
class TextLine:
    """One line of print: where it is drawn and the ink it covers, in label pixels."""

    text: str
    size: int
    bold: bool
    xy: tuple[int, int]
    bbox: tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where everything goes on the label, computed before anything is drawn."""

    qr: segno.QRCode
    qr_scale: int
    qr_box: tuple[int, int, int, int]  # including the quiet zone
    lines: tuple[TextLine, ...]


def qr_payload(info: LabelInfo) -> str:
    """The device's page in the controller's console: the technician's check of it."""
    return f"{info.controller_url.rstrip('/')}/devices/{info.device_id}"


@functools.lru_cache(maxsize=256)
def _font(font_dir: pathlib.Path, name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_dir / name
    if not path.is_file():
        raise FontMissingError(f"font {path} not found: install Debian's fonts-dejavu-core "
                               "(apt-get install fonts-dejavu-core)")
    return ImageFont.truetype(str(path), size)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int, most: int) -> list[str] | None:
    """``text`` on one line, or split evenly over two, that fits ``width``; else None."""
    pieces = _BREAK.split(text)
    splits = [[text]] if most == 1 or len(pieces) == 1 else [
        ["".join(pieces[:k]).rstrip(), "".join(pieces[k:])] for k in range(1, len(pieces))]
    best = min(splits, key=lambda lines: max(font.getbbox(line)[2] for line in lines))
    return best if max(font.getbbox(line)[2] for line in best) <= width else None


def _fit(text: str, bold: bool, box: tuple[int, int], max_size: int, max_lines: int,
         font_dir: pathlib.Path, field: str) -> tuple[int, list[str]]:
    """The largest size (and its lines, at most two) at which ``text`` fits ``box``."""
    for most in range(1, max_lines + 1):  # one line first, if the print stays large
        floor = _MIN_SIZE if most == max_lines else max(_MIN_SIZE, round(max_size * 0.75))
        for size in range(max_size, floor - 1, -1):
            lines = _wrap(text, _font(font_dir, BOLD if bold else REGULAR, size), box[0], most)
            if lines and len(lines) * math.ceil(_LINE * size) <= box[1]:
                return size, lines
    raise LabelError(f"{field} {text!r}: too long to print on a {SIZE_MM[0]:g} × "
                     f"{SIZE_MM[1]:g} mm label")


def _place(lines: list[str], size: int, bold: bool, x: int, y: int,
           font_dir: pathlib.Path) -> list[TextLine]:
    """The lines from ``y`` down, each with the ink it covers, stacked marks included."""
    font, step = _font(font_dir, BOLD if bold else REGULAR, size), math.ceil(_LINE * size)
    placed = []
    for i, line in enumerate(lines):
        top = y + i * step + math.ceil(_ABOVE * size)
        left, up, right, down = (int(v) for v in font.getbbox(line, anchor="la"))
        placed.append(TextLine(line, size, bold, (x, top), (x + left, top + up, x + right,
                                                             top + down)))
    return placed


def _column(info: LabelInfo, today: datetime.date) -> list[tuple[str, bool, int, int, str]]:
    """The column's blocks: (text, bold, largest size, most lines, field it comes from)."""
    vi, en = ROLE_NAMES[info.role]
    date = (info.install_date or today).strftime("%d/%m/%Y")
    blocks = [(vi, True, 32, 1, "role"), (en, False, 26, 1, "role")]
    if info.hamlet:
        blocks.append((f"Ấp/Thôn: {info.hamlet}", False, 28, 2, "hamlet"))
    if info.desk:
        blocks.append((f"Quầy: {info.desk}", False, 28, 2, "desk"))
    blocks.append((f"Ngày lắp / Installed: {date}", False, 24, 2, "install_date"))
    return blocks + [(info.controller_url.rstrip("/"), False, 18, 2, "controller_url")]


def layout(info: LabelInfo, *, font_dir: pathlib.Path = FONT_DIR,
           today: datetime.date | None = None) -> Layout:
    """Lay the label out: the id across the top, the QR code below it, the rest beside it."""
    qr = segno.make(qr_payload(info), error="m", micro=False)
    body_top = _MARGIN + _ID_BAND
    scale = (HEIGHT - body_top) // int(qr.symbol_size(scale=1, border=QUIET_ZONE)[0])
    if scale < _MIN_MODULE:
        raise LabelError(f"controller_url {info.controller_url!r}: too long, the QR code "
                         "would be too fine to scan")
    side = int(qr.symbol_size(scale=scale, border=QUIET_ZONE)[0])
    qr_x, qr_y = max(0, _MARGIN - QUIET_ZONE * scale), body_top + (HEIGHT - body_top - side) // 2
    id_size, id_lines = _fit(info.device_id, True, (WIDTH - 2 * _MARGIN, _ID_BAND), 72, 2,
                             font_dir, "device_id")
    id_top = _MARGIN + (_ID_BAND - len(id_lines) * math.ceil(_LINE * id_size)) // 2
    lines = _place(id_lines, id_size, True, _MARGIN, id_top, font_dir)
    col_x, col_h = qr_x + side + 4, HEIGHT - _MARGIN - body_top
    lines += _lay_column(_column(info, today or datetime.date.today()), col_x, body_top,
                         (WIDTH - _MARGIN - col_x, col_h), id_size - 2, font_dir)
    return Layout(qr, scale, (qr_x, qr_y, qr_x + side, qr_y + side), tuple(lines))


def _lay_column(blocks: list[tuple[str, bool, int, int, str]], x: int, y: int,
                box: tuple[int, int], cap: int, font_dir: pathlib.Path) -> list[TextLine]:
    """Stack the blocks down the column, all shrunk alike until they fit its height."""
    for factor in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
        fitted = [(_fit(text, bold, box, max(_MIN_SIZE, min(cap, int(size * factor))), most,
                        font_dir, field), bold) for text, bold, size, most, field in blocks]
        heights = [len(lines) * math.ceil(_LINE * size) for (size, lines), _ in fitted]
        if sum(heights) + _GAP * (len(fitted) - 1) <= box[1]:
            break
    else:
        raise LabelError("hamlet, desk and controller_url: too long together for the label")
    placed: list[TextLine] = []
    top = y
    for ((size, lines), bold), height in zip(fitted[:-1], heights[:-1], strict=True):
        placed += _place(lines, size, bold, x, y, font_dir)
        y += height + _GAP
    (size, lines), bold = fitted[-1]  # the controller's address sits at the bottom
    return placed + _place(lines, size, bold, x, top + box[1] - heights[-1], font_dir)


def render(plan: Layout, *, font_dir: pathlib.Path = FONT_DIR) -> Image.Image:
    """Draw the label, 1-bit as a thermal printer prints it."""
    image = Image.new("1", (WIDTH, HEIGHT), 1)
    png = io.BytesIO()
    plan.qr.save(png, kind="png", scale=plan.qr_scale, border=QUIET_ZONE)
    image.paste(Image.open(png).convert("1"), plan.qr_box[:2])
    draw = ImageDraw.Draw(image)
    for line in plan.lines:
        font = _font(font_dir, BOLD if line.bold else REGULAR, line.size)
        draw.text(line.xy, line.text, font=font, fill=0, anchor="la")
    return image


def write_label(info: LabelInfo, out_dir: pathlib.Path, *,
                font_dir: pathlib.Path = FONT_DIR) -> tuple[pathlib.Path, pathlib.Path]:
    """Write f"{device_id}-label.png" and f"{device_id}-label.pdf" in out_dir; return both."""
    image = render(layout(info, font_dir=font_dir), font_dir=font_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = (out_dir / f"{info.device_id}-label.{ext}" for ext in ("png", "pdf"))
    image.save(png, dpi=(DPI, DPI))
    image.save(pdf, "PDF", resolution=DPI, title=f"{info.device_id} label")
    return png, pdf
