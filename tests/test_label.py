"""The label on a device's box: its QR code read back with zbarimg from the PNG and from the
PDF as poppler renders it, the page's physical size, long ids and hamlets, bad input."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from provisioning.label import (
    BOLD,
    DPI,
    FONT_DIR,
    HEIGHT,
    REGULAR,
    SIZE_MM,
    WIDTH,
    FontMissingError,
    LabelInfo,
    layout,
    qr_payload,
    render,
    write_label,
)

URL = "https://xa-tan-an.local:8443"
LONG_ID = "loa-thon-tan-phu-dong-hai-muoi-ba-bo-kenh-xang-cut-nga-bay-so-1"
LONG_HAMLET = "Ấp Tân Phú Đông Hai Mươi Ba Bờ Kênh Xáng Cụt Ngã Bảy Vàm Cỏ Đông"


def speaker(**changes: object) -> LabelInfo:
    fields: dict = dict(device_id="loa-an-binh-1", role="speaker", controller_url=URL + "/",
                        hamlet="Ấp An Bình", install_date=dt.date(2025, 3, 5))
    return LabelInfo(**{**fields, **changes})


def zbar(image: Path) -> list[str]:
    """Every QR code zbarimg reads in ``image``, one per line."""
    found = subprocess.run(["zbarimg", "--raw", "-q", str(image)], capture_output=True,
                           text=True, check=True)
    return found.stdout.splitlines()


def pdf_as_png(pdf: Path) -> Path:
    """The PDF's page as a print shop's RIP would see it: poppler at 300 dpi."""
    subprocess.run(["pdftoppm", "-png", "-r", "300", "-singlefile", str(pdf),
                    str(pdf.with_suffix(""))], check=True)
    return pdf.with_suffix(".png")


def test_qr_payload_is_device_console_page():
    assert qr_payload(speaker()) == f"{URL}/devices/loa-an-binh-1"
    assert (qr_payload(speaker(controller_url="http://10.0.0.2/thanthien/"))
            == "http://10.0.0.2/thanthien/devices/loa-an-binh-1")


def test_write_label_names_files_after_device(tmp_path):
    png, pdf = write_label(speaker(), tmp_path / "labels")
    assert (png, pdf) == (tmp_path / "labels/loa-an-binh-1-label.png",
                          tmp_path / "labels/loa-an-binh-1-label.pdf")
    assert png.is_file() and pdf.is_file()


def test_png_qr_decodes_to_payload(tmp_path):
    png, _ = write_label(speaker(), tmp_path)
    assert zbar(png) == [qr_payload(speaker())]
    with Image.open(png) as image:
        assert image.size == (WIDTH, HEIGHT) == (732, 472)
        assert [round(d) for d in image.info["dpi"]] == [DPI, DPI]


def test_pdf_rendered_back_decodes_to_payload(tmp_path):
    _, pdf = write_label(speaker(), tmp_path)
    page = pdf_as_png(pdf)
    assert zbar(page) == [qr_payload(speaker())]
    with Image.open(page) as image:
        assert abs(image.width - WIDTH) <= 1 and abs(image.height - HEIGHT) <= 1


def test_pdf_page_is_label_size(tmp_path):
    _, pdf = write_label(speaker(), tmp_path)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    width_pt, height_pt = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts",
                                               info).groups())
    assert abs(width_pt / 72 * 25.4 - SIZE_MM[0]) < 1
    assert abs(height_pt / 72 * 25.4 - SIZE_MM[1]) < 1
    assert re.search(r"^Pages:\s+1$", info, re.M)


def test_label_shows_id_role_place_date_and_controller():
    plan = layout(speaker(desk="quay-1"))
    assert [line.text for line in plan.lines] == [
        "loa-an-binh-1", "Loa thông minh", "Smart loudspeaker", "Ấp/Thôn: Ấp An Bình",
        "Quầy: quay-1", "Ngày lắp / Installed: 05/03/2025", URL]


@pytest.mark.parametrize("role, vietnamese, english", [
    ("kiosk", "Máy đánh giá", "Rating kiosk"),
    ("speaker", "Loa thông minh", "Smart loudspeaker"),
    ("camera", "Camera quầy", "Desk camera"),
])
def test_label_names_role_vietnamese_first(role, vietnamese, english):
    texts = [line.text for line in layout(speaker(role=role, hamlet=None)).lines]
    assert texts[1:3] == [vietnamese, english]


def test_label_install_date_defaults_to_today():
    texts = [line.text for line in layout(speaker(install_date=None)).lines]
    assert f"Ngày lắp / Installed: {dt.date.today():%d/%m/%Y}" in texts
    texts = [line.text for line in layout(speaker(install_date=None),
                                          today=dt.date(2026, 1, 2)).lines]
    assert "Ngày lắp / Installed: 02/01/2026" in texts


@pytest.mark.parametrize("info", [speaker(), speaker(device_id=LONG_ID, hamlet=LONG_HAMLET,
                                                     desk="quay-tiep-nhan-ho-so-so-1")])
def test_label_device_id_is_largest_text(info):
    plan = layout(info)
    id_lines = [line for line in plan.lines if line.bold and line.text in info.device_id]
    others = [line for line in plan.lines if line not in id_lines]
    assert "".join(line.text for line in id_lines) == info.device_id
    assert min(line.size for line in id_lines) > max(line.size for line in others)


def test_long_id_and_hamlet_shrink_inside_page_and_decode(tmp_path):
    assert len(LONG_ID) == 63
    info = speaker(device_id=LONG_ID, hamlet=LONG_HAMLET, desk="quay-tiep-nhan-ho-so-so-1")
    plan = layout(info)
    qx0, qy0, qx1, qy1 = plan.qr_box
    assert 0 <= qx0 < qx1 <= WIDTH and 0 <= qy0 < qy1 <= HEIGHT
    for line in plan.lines:
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT, line
        assert x1 <= qx0 or x0 >= qx1 or y1 <= qy0 or y0 >= qy1, f"{line} covers the QR code"
    # The boxes hold all the ink: blank them and the QR code, and the label is empty.
    image = render(plan)
    draw = ImageDraw.Draw(image)
    for box in [plan.qr_box, *(line.bbox for line in plan.lines)]:
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=1)
    assert image.convert("L").point(lambda v: 255 - v).getbbox() is None
    png, pdf = write_label(info, tmp_path)
    assert zbar(png) == zbar(pdf_as_png(pdf)) == [f"{URL}/devices/{LONG_ID}"]


def test_label_vietnamese_letters_have_glyphs():
    """DejaVu Sans draws every letter on the label, none as a missing-glyph box."""
    for bold in (False, True):
        font = ImageFont.truetype(str(FONT_DIR / (BOLD if bold else REGULAR)), 40)
        missing = bytes(font.getmask("\U000f0000"))
        letters = {c for line in layout(speaker(desk="quầy-1")).lines for c in line.text}
        assert {"Ấ", "ầ", "ắ", "ô", "à"} <= letters
        assert [c for c in letters if not c.isspace() and bytes(font.getmask(c)) == missing] == []


def test_missing_font_names_file_and_package(tmp_path):
    with pytest.raises(FontMissingError, match="DejaVuSans.*fonts-dejavu-core") as raised:
        write_label(speaker(), tmp_path, font_dir=tmp_path / "no-fonts")
    assert isinstance(raised.value, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("changes, field", [
    ({"device_id": ""}, "device_id"),
    ({"device_id": "Loa An Bình"}, "device_id"),
    ({"device_id": "x" * 64}, "device_id"),
    ({"role": "printer"}, "role"),
    ({"controller_url": "ftp://xa-tan-an.local"}, "controller_url"),
    ({"controller_url": "xa-tan-an.local:8443"}, "controller_url"),
    ({"controller_url": "https://"}, "controller_url"),
    ({"controller_url": "https://xa-tan-an.local/?next=/"}, "controller_url"),
    ({"controller_url": "https://xa tan an.local"}, "controller_url"),
    ({"hamlet": ""}, "hamlet"),
    ({"hamlet": "Ấp\nAn Bình"}, "hamlet"),
    ({"desk": "  "}, "desk"),
])
def test_bad_input_raises_value_error_naming_field(changes, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        speaker(**changes)


def test_label_too_much_to_print_names_field(tmp_path):
    with pytest.raises(ValueError, match="^hamlet"):
        layout(speaker(hamlet="x" * 100))
    with pytest.raises(ValueError, match="^controller_url.*QR"):
        write_label(speaker(controller_url=URL + "/" + "p" * 1000), tmp_path)
