"""The report's files: the DOCX officials edit and sign (Decree 30 layout, sections with
tables) and the XLSX with one sheet per table and native charts.

Both take the figures :func:`controller.documents.reports.report_data` made, and
nothing else: what the files say is what the API says for the same period.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from controller.documents import commune
from controller.documents.layout import OfficialDocument, count_text, percent_text, short_date
from controller.documents.report_tables import COUNT, SHARE, TEXT, Table, report_tables

MODEL = "“Chính quyền thân thiện, vì nhân dân phục vụ”"


def cell_text(table: Table, row: int, column: int) -> str:
    """A cell as the DOCX writes it: 12.345, 85,3%, or the text."""
    value = table.rows[row][column]
    kind = table.kind(row, column)
    if kind == SHARE:
        return percent_text(value)
    if kind == COUNT and isinstance(value, int):
        return count_text(value)
    return str(value)


# -- DOCX ---------------------------------------------------------------------------------

def report_docx(data: dict[str, Any], profile: dict[str, Any],
                today: dt.date | None = None) -> bytes:
    """The report as the commune sends it to the district, dated ``today`` (None: the
    date left blank for the signer)."""
    tables = report_tables(data)
    period = data["period"]
    label = period["label"]
    body = f"{commune.BODY} {commune.in_text(profile['name'])}"
    doc = OfficialDocument()
    doc.header(commune.body_lines(profile), f"      /{profile['report_symbol']}",
               profile["place"], today)
    doc.title("Báo cáo", f"Kết quả thực hiện mô hình {MODEL} {label}")
    first = short_date(dt.date.fromisoformat(period["first_day"]))
    last = short_date(dt.date.fromisoformat(period["last_day"]))
    doc.paragraph(f"Thực hiện Kế hoạch triển khai xây dựng, thực hiện mô hình {MODEL} trên "
                  f"địa bàn {commune.in_text(profile['name'])}, {body} báo cáo kết quả thực "
                  f"hiện từ ngày {first} đến ngày {last} như sau:")
    _ratings_section(doc, data, tables)
    _follow_up_section(doc, data, tables)
    _broadcast_section(doc, data, tables)
    _device_section(doc, data, tables)
    doc.heading("V. ĐÁNH GIÁ CHUNG, ĐỀ XUẤT, KIẾN NGHỊ")
    doc.paragraph("(Ủy ban nhân dân xã bổ sung nhận xét chung, tồn tại, hạn chế, nguyên nhân "
                  "và đề xuất, kiến nghị trước khi ký ban hành.)", italic=True)
    doc.paragraph(f"Trên đây là báo cáo kết quả thực hiện mô hình {MODEL} {label} của "
                  f"{body}./.")
    doc.closing(profile["report_recipients"], profile["signing_for"],
                profile["leader_position"], profile["leader_name"])
    return doc.to_bytes()


def _table(doc: OfficialDocument, table: Table, empty: str) -> None:
    if not table.rows:
        doc.paragraph(empty, italic=True)
        return
    numeric = [i for i, (_, kind) in enumerate(table.columns) if kind in (COUNT, SHARE)]
    rows = [[cell_text(table, r, c) for c in range(len(table.columns))]
            for r in range(len(table.rows))]
    doc.table([name for name, _ in table.columns], rows, table.widths_mm, numeric)


def _ratings_section(doc: OfficialDocument, data: dict[str, Any],
                     tables: dict[str, Table]) -> None:
    r = data["ratings"]
    doc.heading("I. KẾT QUẢ LẤY Ý KIẾN SỰ HÀI LÒNG CỦA NGƯỜI DÂN")
    doc.heading("1. Kết quả chung")
    doc.paragraph(
        f"Thiết bị đánh giá tại bộ phận một cửa ghi nhận {count_text(r['count'])} lượt đánh "
        f"giá của người dân; trong đó {count_text(r['satisfied'])} lượt hài lòng và rất hài "
        f"lòng, {count_text(r['dissatisfied'])} lượt không hài lòng. Chỉ số hài lòng (tỷ lệ "
        f"lượt hài lòng và rất hài lòng trên tổng số lượt) đạt "
        f"{percent_text(r['satisfaction_index'])}. Các lượt bấm hệ thống đánh dấu là bất "
        "thường (bấm liên tục, dồn dập) không được tính.")
    _table(doc, tables["levels"], "Chưa có lượt đánh giá nào trong kỳ.")
    doc.heading("2. Theo cán bộ, công chức")
    _table(doc, tables["officers"], "Chưa có lượt đánh giá nào trong kỳ.")
    doc.heading("3. Theo quầy tiếp nhận")
    _table(doc, tables["desks"], "Chưa có lượt đánh giá nào trong kỳ.")
    doc.heading("4. Lý do người dân chưa hài lòng")
    _table(doc, tables["reasons"], "Không có ý kiến nêu lý do chưa hài lòng.")
    doc.heading("5. Theo tháng")
    _table(doc, tables["months"], "Chưa có lượt đánh giá nào trong kỳ.")


def _follow_up_section(doc: OfficialDocument, data: dict[str, Any],
                       tables: dict[str, Table]) -> None:
    cases = data["cases"]
    doc.heading("II. CẢNH BÁO, THEO DÕI VÀ XỬ LÝ Ý KIẾN CHƯA HÀI LÒNG")
    doc.paragraph(
        f"Hệ thống phát {count_text(data['alerts']['total'])} cảnh báo. "
        f"{count_text(cases['total'])} trường hợp người dân không hài lòng được lập hồ sơ "
        f"theo dõi, trong đó {count_text(cases['by_status']['closed'])} trường hợp đã xử lý "
        f"xong; Ủy ban nhân dân xã đã gửi {count_text(data['letters']['sent'])} thư xin lỗi "
        "người dân.")
    _table(doc, tables["alerts"], "")
    _table(doc, tables["cases"], "")


def _broadcast_section(doc: OfficialDocument, data: dict[str, Any],
                       tables: dict[str, Table]) -> None:
    total = data["broadcasts"]["total"]
    doc.heading("III. HỆ THỐNG TRUYỀN THANH THÔNG MINH")
    doc.paragraph(
        f"Các loa truyền thanh thông minh báo về {count_text(total['played'])} lượt phát bản "
        f"tin trọn vẹn, {count_text(total['cut_short'])} lượt phát không trọn và "
        f"{count_text(total['skipped'])} lượt không phát được; phát "
        f"{count_text(data['emergencies']['count'])} bản tin khẩn cấp.")
    _table(doc, tables["broadcasts"], "Chưa có lượt phát nào được báo về trong kỳ.")
    if tables["emergencies"].rows:
        _table(doc, tables["emergencies"], "")


def _device_section(doc: OfficialDocument, data: dict[str, Any],
                    tables: dict[str, Table]) -> None:
    devices = data["devices"]
    doc.heading("IV. THIẾT BỊ VÀ CAMERA GIÁM SÁT")
    doc.paragraph(f"Tại thời điểm lập báo cáo, hệ thống có {count_text(devices['devices'])} "
                  f"thiết bị, trong đó {count_text(devices['online'])} thiết bị đang kết nối. "
                  "Trong kỳ báo cáo, các thiết bị hoạt động (kết nối với hệ thống) "
                  f"{percent_text(devices['availability'])} thời gian.")
    _table(doc, tables["devices"], "")
    cameras = data["cameras"]
    if not cameras["applicable"]:
        doc.paragraph("Camera giám sát tại bộ phận một cửa, tiếp công dân: chưa lắp đặt; số "
                      "đoạn ghi hình được khóa để giải quyết phản ánh, khiếu nại: —.")
        return
    doc.paragraph(
        f"Camera giám sát tại bộ phận một cửa, tiếp công dân: "
        f"{count_text(cameras['cameras'])} camera. Trong kỳ có "
        f"{count_text(cameras['holds'])} đoạn ghi hình được khóa để giải quyết phản ánh, "
        f"khiếu nại ({count_text(cameras['automatic'])} đoạn tự động sau đánh giá không hài "
        f"lòng, {count_text(cameras['manual'])} đoạn theo yêu cầu của lãnh đạo); "
        f"{count_text(cameras['clips_verified'])} đoạn đã được tải về và xác thực toàn vẹn. "
        "Chỉ lãnh đạo được xem và mọi lần xem đều được ghi nhật ký.")
    _table(doc, tables["cameras"], "")


# -- XLSX ---------------------------------------------------------------------------------

def report_xlsx(data: dict[str, Any]) -> bytes:
    """One sheet per table (header in row 1), the period on the first; bar charts of
    ratings per level, satisfaction index per officer and per desk, reasons, months and
    bulletins per hamlet."""
    book = Workbook()
    book.remove(book.active)
    period = data["period"]
    for table in report_tables(data).values():
        sheet = book.create_sheet(table.title)
        _sheet(sheet, table)
        if table.key == "summary":
            below = len(table.rows) + 3
            for i, (name, value) in enumerate((("Kỳ báo cáo", period["label"]),
                                               ("Từ ngày", period["first_day"]),
                                               ("Đến ngày", period["last_day"]),
                                               ("Lập lúc (UTC)", data["generated"]))):
                sheet.cell(below + i, 1, name)
                sheet.cell(below + i, 2, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet(sheet: Any, table: Table) -> None:
    for c, (name, _) in enumerate(table.columns, start=1):
        cell = sheet.cell(1, c, name)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r, row in enumerate(table.rows):
        for c, value in enumerate(row):
            cell = sheet.cell(r + 2, c + 1, value)
            kind = table.kind(r, c)
            if kind == SHARE:
                cell.number_format = "0.0%"
            elif kind == COUNT and isinstance(value, int):
                cell.number_format = "#,##0"
    for c, width in enumerate(table.widths_mm or (), start=1):
        sheet.column_dimensions[get_column_letter(c)].width = max(10.0, width / 2)
    sheet.freeze_panes = "A2"
    if table.chart and table.rows:
        sheet.add_chart(_chart(sheet, table), f"{get_column_letter(len(table.columns) + 2)}2")


def _chart(sheet: Any, table: Table) -> BarChart:
    assert table.chart is not None
    chart = BarChart()
    chart.type = "col"
    chart.title = table.chart.title
    chart.y_axis.title = table.chart.axis
    chart.legend = None
    last = len(table.rows) + 1
    values = Reference(sheet, min_col=table.chart.column + 1, min_row=1, max_row=last)
    chart.add_data(values, titles_from_data=True)
    label = next(i for i, (_, kind) in enumerate(table.columns) if kind == TEXT)
    chart.set_categories(Reference(sheet, min_col=label + 1, min_row=2, max_row=last))
    if table.columns[table.chart.column][1] == SHARE:
        chart.y_axis.number_format = "0%"
        chart.y_axis.scaling.min, chart.y_axis.scaling.max = 0, 1
    # openpyxl 3.1 marks axes deleted unless told: Excel then draws bars with no scale.
    chart.x_axis.delete = chart.y_axis.delete = False
    chart.width, chart.height = 18, 9
    return chart
