"""The report's tables, once, for both files: the DOCX shows them in its sections and the
XLSX gives each its own sheet (with a native chart where one helps).

A table keeps raw values (counts as int, shares as a 0..1 float) and says of
each column what it holds, so each file formats them its own way (the DOCX
"85,3%", the XLSX a number formatted as a percentage).
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: Column kinds (``ROW``: each row says, see :attr:`Table.row_kinds`).
TEXT, COUNT, SHARE, ROW = "text", "count", "share", "row"

ROLE_NAMES = {"kiosk": "Thiết bị đánh giá sự hài lòng", "speaker": "Loa truyền thanh thông minh",
              "camera": "Camera giám sát"}
ALERT_NAMES = {"negative": "Nhiều ý kiến không hài lòng tại một quầy",
               "pace": "Đánh giá dồn dập bất thường (đã loại khỏi thống kê)",
               "camera_key": "Camera báo khóa ký khác khóa đã đăng ký",
               "footage_chain": "Chuỗi ghi hình của camera bị đứt hoặc bị ghi lại"}
#: Alerts about cameras: in the table only where cameras are installed.
CAMERA_ALERTS = ("camera_key", "footage_chain")
CASE_NAMES = {"open": "Chưa liên hệ", "contacted": "Đã liên hệ người dân",
              "closed": "Đã xử lý xong"}
STATUS_NAMES = {"active": "Đang hiệu lực", "cancelled": "Đã hủy"}
NOT_APPLICABLE = "—"


@dataclasses.dataclass(frozen=True)
class Chart:
    """A bar chart of one column against the first text column."""

    column: int
    title: str
    axis: str


@dataclasses.dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[tuple[str, str]]  # (name, kind)
    rows: list[list[Any]]
    chart: Chart | None = None
    widths_mm: tuple[float, ...] | None = None
    #: Per row, the kind of its cells in ``row`` columns (the summary mixes kinds).
    row_kinds: tuple[str, ...] | None = None

    def kind(self, row: int, column: int) -> str:
        kind = self.columns[column][1]
        return self.row_kinds[row] if kind == ROW and self.row_kinds else kind


def report_tables(data: dict[str, Any]) -> dict[str, Table]:
    """Every table of the report, by key, in the order the report shows them."""
    tables = [summary(data), levels(data), officers(data), desks(data), reasons(data),
              months(data), alerts(data), cases(data), broadcasts(data), emergencies(data),
              devices(data)]
    if data["cameras"]["applicable"]:
        tables.append(cameras(data))
    return {t.key: t for t in tables}


def _held(figures: dict[str, Any]) -> list[Any]:
    """The summary's camera row: "—" where no camera is installed."""
    if not figures["applicable"]:
        return ["Đoạn ghi hình camera được khóa", NOT_APPLICABLE, TEXT]
    return ["Đoạn ghi hình camera được khóa", figures["holds"], COUNT]


def summary(data: dict[str, Any]) -> Table:
    r = data["ratings"]
    rows: list[list[Any]] = [
        ["Lượt đánh giá", r["count"], COUNT],
        ["Lượt hài lòng, rất hài lòng", r["satisfied"], COUNT],
        ["Lượt không hài lòng", r["dissatisfied"], COUNT],
        ["Chỉ số hài lòng", r["satisfaction_index"], SHARE],
        ["Cảnh báo", data["alerts"]["total"], COUNT],
        ["Trường hợp không hài lòng được theo dõi", data["cases"]["total"], COUNT],
        ["Trong đó đã xử lý xong", data["cases"]["by_status"]["closed"], COUNT],
        ["Thư xin lỗi đã gửi", data["letters"]["sent"], COUNT],
        ["Lượt phát bản tin trọn vẹn (các ấp)", data["broadcasts"]["total"]["played"], COUNT],
        ["Bản tin khẩn cấp", data["emergencies"]["count"], COUNT],
        ["Thiết bị", data["devices"]["devices"], COUNT],
        ["Thiết bị đang kết nối (khi lập báo cáo)", data["devices"]["online"], COUNT],
        ["Thời gian thiết bị hoạt động trong kỳ", data["devices"]["availability"], SHARE],
        _held(data["cameras"]),
    ]
    return Table("summary", "Tổng hợp", [("Chỉ tiêu", TEXT), ("Giá trị", ROW)],
                 [row[:2] for row in rows], widths_mm=(120, 45),
                 row_kinds=tuple(row[2] for row in rows))


def levels(data: dict[str, Any]) -> Table:
    rows = [[f"{r['label']} (thang {r['scale']} mức)", r["count"], r["share"]]
            for r in data["levels"]]
    return Table("levels", "Mức đánh giá", [("Mức đánh giá", TEXT), ("Số lượt", COUNT),
                                           ("Tỷ lệ", SHARE)], rows,
                 Chart(1, "Số lượt theo mức đánh giá", "Số lượt"), (85, 40, 40))


def _figures(r: dict[str, Any]) -> list[Any]:
    return [r["count"], r["satisfied"], r["dissatisfied"], r["satisfaction_index"]]


FIGURE_COLUMNS = [("Số lượt", COUNT), ("Hài lòng", COUNT), ("Không hài lòng", COUNT),
                  ("Chỉ số hài lòng", SHARE)]


def officers(data: dict[str, Any]) -> Table:
    rows = [[o["name"] if o["id"] else "Chưa xác định cán bộ", o["title"], *_figures(o)]
            for o in data["officers"]]
    return Table("officers", "Cán bộ, công chức",
                 [("Họ và tên", TEXT), ("Chức danh", TEXT), *FIGURE_COLUMNS], rows,
                 Chart(5, "Chỉ số hài lòng theo cán bộ, công chức", "Chỉ số hài lòng"),
                 (38, 37, 20, 20, 25, 25))


def desks(data: dict[str, Any]) -> Table:
    rows = [[d["name"] if d["id"] else "Chưa gắn quầy", *_figures(d)] for d in data["desks"]]
    return Table("desks", "Quầy", [("Quầy", TEXT), *FIGURE_COLUMNS], rows,
                 Chart(4, "Chỉ số hài lòng theo quầy", "Chỉ số hài lòng"),
                 (65, 25, 25, 25, 25))


def reasons(data: dict[str, Any]) -> Table:
    rows = [[r["label"], r["count"], r["dissatisfied"]] for r in data["reasons"]]
    return Table("reasons", "Lý do chưa hài lòng",
                 [("Lý do", TEXT), ("Số lượt nêu", COUNT), ("Trong đó không hài lòng", COUNT)],
                 rows, Chart(1, "Lý do người dân chưa hài lòng", "Số lượt"), (95, 35, 35))


def months(data: dict[str, Any]) -> Table:
    rows = [[f"{m['month'][5:7]}/{m['month'][:4]}", *_figures(m)] for m in data["months"]]
    return Table("months", "Theo tháng", [("Tháng", TEXT), *FIGURE_COLUMNS], rows,
                 Chart(1, "Số lượt đánh giá theo tháng", "Số lượt"), (45, 30, 30, 30, 30))


def alerts(data: dict[str, Any]) -> Table:
    cameras = data["cameras"]["applicable"]
    rows = [[ALERT_NAMES[k], n] for k, n in data["alerts"]["by_kind"].items()
            if cameras or k not in CAMERA_ALERTS]
    return Table("alerts", "Cảnh báo", [("Loại cảnh báo", TEXT), ("Số lần", COUNT)], rows,
                 widths_mm=(130, 35))


def cases(data: dict[str, Any]) -> Table:
    rows: list[list[Any]] = [[CASE_NAMES[k], n] for k, n in data["cases"]["by_status"].items()]
    rows.append(["Thư xin lỗi đã gửi", data["letters"]["sent"]])
    return Table("cases", "Theo dõi, xử lý", [("Tình trạng", TEXT), ("Số trường hợp", COUNT)],
                 rows, widths_mm=(130, 35))


def broadcasts(data: dict[str, Any]) -> Table:
    rows = [[h["hamlet"] or "Chưa gắn ấp", h["played"], h["cut_short"], h["skipped"],
             h["receipts"]] for h in data["broadcasts"]["hamlets"]]
    return Table("broadcasts", "Truyền thanh theo ấp",
                 [("Ấp", TEXT), ("Phát trọn vẹn", COUNT), ("Phát không trọn", COUNT),
                  ("Không phát", COUNT), ("Tổng số lượt", COUNT)], rows,
                 Chart(1, "Lượt phát bản tin trọn vẹn theo ấp", "Số lượt"),
                 (55, 28, 28, 27, 27))


def emergencies(data: dict[str, Any]) -> Table:
    rows = [[e["title"], e["start_local"], STATUS_NAMES.get(e["status"], e["status"])]
            for e in data["emergencies"]["items"]]
    return Table("emergencies", "Bản tin khẩn cấp",
                 [("Bản tin", TEXT), ("Phát lúc", TEXT), ("Trạng thái", TEXT)], rows,
                 widths_mm=(85, 45, 35))


def cameras(data: dict[str, Any]) -> Table:
    c = data["cameras"]
    rows: list[list[Any]] = [
        ["Camera giám sát đang hoạt động", c["cameras"]],
        ["Đoạn ghi hình được khóa tự động sau đánh giá không hài lòng", c["automatic"]],
        ["Đoạn ghi hình được khóa theo yêu cầu của lãnh đạo", c["manual"]],
        ["Đoạn ghi hình đã tải về và xác thực toàn vẹn", c["clips_verified"]],
    ]
    return Table("cameras", "Camera giám sát", [("Chỉ tiêu", TEXT), ("Số lượng", COUNT)],
                 rows, widths_mm=(130, 35))


def devices(data: dict[str, Any]) -> Table:
    rows: list[list[Any]] = [
        [ROLE_NAMES.get(r["role"], r["role"]), r["devices"], r["online"],
         r["availability"]]  # None (not watched in the period) is written "—"
        for r in data["devices"]["roles"]]
    if "camera" not in {r["role"] for r in data["devices"]["roles"]}:
        rows.append([ROLE_NAMES["camera"], NOT_APPLICABLE, NOT_APPLICABLE, None])
    return Table("devices", "Thiết bị",
                 [("Loại thiết bị", TEXT), ("Số thiết bị", COUNT),
                  ("Đang kết nối", COUNT), ("Thời gian hoạt động trong kỳ", SHARE)], rows,
                 widths_mm=(75, 28, 28, 34))
