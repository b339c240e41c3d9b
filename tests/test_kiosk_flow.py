"""The kiosk's logic without a window: flow, misuse, office hours, settings, events."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from kiosk.errors import KioskConfigError
from kiosk.flow import RatingFlow, Screen
from kiosk.i18n import nfc, pick, text
from kiosk.misuse import MisuseDetector, MisuseRules
from kiosk.office_hours import parse_office_hours
from kiosk.settings import KioskSettings, parse_settings
from kiosk.terminal import Terminal
from wire.rating import EVENT_RATING, EVENT_RATING_DETAIL, levels


class Clock:
    """A hand-moved monotonic and wall clock."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.wall = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # Monday 09:00 in Hanoi

    def monotonic(self) -> float:
        return self.t

    def now(self) -> dt.datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.wall += dt.timedelta(seconds=seconds)


class Recorder:
    """A stand-in outbox that keeps what was emitted, in order, with ids."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def emit(self, type_: str, data: dict) -> dict:
        self.events.append((type_, data))
        return {"id": f"ev-{len(self.events)}", "type": type_, "data": data}


def make_terminal(**config) -> tuple[Terminal, Recorder, Clock]:
    clock, rec = Clock(), Recorder()
    term = Terminal(rec.emit, "kiosk-t", parse_settings(config), monotonic=clock.monotonic,
                    wall=clock.now)
    return term, rec, clock


def test_flow_satisfied_tap_goes_straight_to_thanks_then_idle():
    flow = RatingFlow(KioskSettings())
    outcome = flow.press(1, now=0)
    assert outcome.rating.level == 1 and flow.screen is Screen.THANKS
    flow.tick(2.9)
    assert flow.screen is Screen.THANKS
    flow.tick(3.0)
    assert flow.screen is Screen.IDLE


def test_flow_lowest_level_asks_why_and_keeps_reasons_on_timeout():
    flow = RatingFlow(KioskSettings())
    flow.press(4, now=0)
    assert flow.screen is Screen.FOLLOW_UP
    flow.toggle_reason("waited", now=1)
    outcome = flow.tick(21)
    assert flow.screen is Screen.IDLE
    assert outcome.timed_out and outcome.detail.reasons == ["waited"]


def test_flow_skip_records_no_reasons():
    flow = RatingFlow(KioskSettings())
    flow.press(4, now=0)
    flow.toggle_reason("attitude", now=1)
    outcome = flow.reasons_done(now=2, skip=True)
    assert outcome.detail is None and flow.screen is Screen.THANKS


def test_flow_dossier_keypad_collects_code():
    flow = RatingFlow(parse_settings({"ask_dossier": True}))
    flow.press(2, now=0)
    assert flow.screen is Screen.DOSSIER
    for key in "H12x":
        flow.type_key(key, now=1)
    flow.type_key("back", now=1)
    outcome = flow.type_key("enter", now=2)
    assert outcome.detail.dossier == "H12" and flow.screen is Screen.THANKS


def test_flow_closed_ignores_presses():
    flow = RatingFlow(KioskSettings())
    flow.set_open(False, now=0)
    assert flow.press(1, now=1).rating is None and flow.screen is Screen.CLOSED


def test_misuse_flags_repeat_within_window_and_bursts():
    detector = MisuseDetector(MisuseRules(window_s=5, burst_count=3, burst_window_s=60))
    assert detector.check(0) is None
    assert detector.check(4.9) == "repeat"
    assert detector.check(20) == "burst"  # third press within 60 s
    assert detector.check(200) is None


def test_office_hours_open_on_weekday_mornings_only():
    hours = parse_office_hours([{"days": "mon-fri", "open": "07:30", "close": "11:30"}])
    monday = dt.datetime(2026, 3, 2, 8, 0)
    assert hours.is_open(monday)
    assert not hours.is_open(monday.replace(hour=12))
    assert not hours.is_open(monday + dt.timedelta(days=5))  # Saturday


def test_office_hours_refuses_backwards_days():
    with pytest.raises(KioskConfigError, match="backwards"):
        parse_office_hours([{"days": "fri-mon", "open": "07:00", "close": "08:00"}])


def test_settings_refuse_bad_scale_with_a_clear_message():
    with pytest.raises(ValueError, match="expected one of"):
        parse_settings({"scale": 7})


def test_settings_text_is_nfc_normalised():
    decomposed = unicodedata.normalize("NFD", "Bộ phận một cửa")
    settings = parse_settings({"desk": decomposed})
    assert settings.desk == nfc(decomposed) != decomposed


def test_levels_default_scale_has_four_vietnamese_words():
    assert [lv.vi for lv in levels(4)] == ["Rất hài lòng", "Hài lòng", "Bình thường",
                                           "Không hài lòng"]
    assert text("thanks", "en") == "Thank you!"


def test_terminal_records_rating_before_thanks_with_officer_and_times():
    term, rec, clock = make_terminal(officer={"id": "o1", "name": "Nguyễn Văn A"},
                                     desk="Một cửa 1")
    seen: list[tuple[Screen, int]] = []
    term.listeners.append(lambda: seen.append((term.screen, len(rec.events))))
    term.press(2)
    assert seen[0] == (Screen.THANKS, 1)  # the event existed when the screen changed
    type_, data = rec.events[0]
    assert type_ == EVENT_RATING
    assert data["level"] == 2 and data["scale"] == 4 and data["officer"]["id"] == "o1"
    assert data["ts_utc"] == "2026-03-02T02:00:00.000Z"
    assert data["ts_local"].startswith("2026-03-02T09:00:00.000+07:00")
    assert data["misuse"] is False and data["kiosk"] == "kiosk-t"


def test_terminal_flags_second_press_as_misuse_but_keeps_it():
    term, rec, clock = make_terminal()
    term.press(1)
    clock.advance(2)
    term.press(1, source="button")
    assert [d["misuse"] for _, d in rec.events] == [False, True]
    assert rec.events[1][1]["misuse_reason"] == "repeat"


def test_terminal_detail_points_at_rating():
    term, rec, clock = make_terminal()
    term.press(4)
    term.toggle_reason("papers")
    term.reasons_done()
    assert rec.events[1] == (EVENT_RATING_DETAIL, {"rating_id": "ev-1", "reasons": ["papers"],
                                                   "dossier_code": None, "timed_out": False})


def test_terminal_closes_outside_office_hours_and_refuses_ratings():
    term, rec, clock = make_terminal(
        office_hours=[{"days": "mon-fri", "open": "07:00", "close": "09:30"}])
    opened: list[bool] = []
    term.on_open_change.append(opened.append)
    term.tick()
    assert term.screen is Screen.IDLE
    clock.advance(3600)  # 10:00 local
    term.tick()
    assert term.screen is Screen.CLOSED and opened == [False]
    assert term.press(1) is None and rec.events == []


def test_terminal_config_applies_without_restart_and_refuses_bad_config():
    term, rec, clock = make_terminal()
    term.configure({"scale": 3, "misuse_window_s": 1})
    term.press(3)
    assert term.screen is Screen.FOLLOW_UP  # lowest of three
    with pytest.raises(KioskConfigError):
        term.configure({"idle_timeout_s": "soon"})
    assert term.settings.scale == 3


def test_terminal_language_chosen_by_a_citizen_resets_for_the_next():
    term, rec, clock = make_terminal(thank_you_s=1)
    term.toggle_language()
    term.press(1)
    assert rec.events[0][1]["language"] == "en"
    clock.advance(2)
    term.tick()
    assert term.screen is Screen.IDLE and term.language == "vi"


def test_office_hours_described_for_the_closed_screen():
    hours = parse_office_hours([{"days": "mon-fri", "open": "07:00", "close": "11:30"},
                                {"days": "sat,sun", "open": "08:00", "close": "10:00"},
                                {"days": "mon,wed", "open": "13:00", "close": "14:00"}])
    assert hours.describe("vi") == ["T2–T6 07:00–11:30", "T7–CN 08:00–10:00",
                                    "T2, T4 13:00–14:00"]
    assert hours.describe("en")[0] == "Mon–Fri 07:00–11:30"


def test_layout_touch_targets_are_at_least_15_mm_on_the_7_inch_screen():
    from kiosk import layout
    mm_w, mm_h = layout.SCREEN_MM

    def size_mm(left, right, top, bottom):
        return (right - left) * mm_w, (bottom - top) * mm_h

    targets = {f"key {k}": layout.key_rect(k) for row in layout.KEYPAD_ROWS for k in row}
    for n in (3, 4, 5):
        targets[f"face of {n}"] = (0, 1 / n, *layout.FACES)
    targets["reason of 6"] = (0, 0.5, layout.REASONS[0],
                              layout.REASONS[0] + (layout.REASONS[1] - layout.REASONS[0]) / 3)
    targets["skip/send"] = (0.02, 0.48, *layout.ACTIONS)
    targets["language"] = layout.LANGUAGE_BUTTON
    small = {name: size_mm(*rect) for name, rect in targets.items()
             if min(size_mm(*rect)) < 15}
    assert small == {}


def test_flow_follow_up_levels_configurable_to_include_neutral():
    flow = RatingFlow(parse_settings({"follow_up_levels": [3, 4]}))
    flow.press(3, now=0)
    assert flow.screen is Screen.FOLLOW_UP
    default = RatingFlow(KioskSettings())
    default.press(3, now=0)
    assert default.screen is Screen.THANKS


def test_settings_info_panel_takes_plain_or_bilingual_items():
    settings = parse_settings({"info": ["Đường dây nóng: 0251 3xxx xxx",
                                        {"vi": "Giờ làm việc", "en": "Office hours"}]})
    assert [pick(i, "en") for i in settings.info] == ["Đường dây nóng: 0251 3xxx xxx",
                                                      "Office hours"]
    with pytest.raises(KioskConfigError):
        parse_settings({"info": "not a list"})


def test_terminal_ignores_a_button_beyond_the_configured_scale():
    term, rec, clock = make_terminal(scale=3)
    assert term.press(4, source="button") is None and rec.events == []
    assert term.press(3, source="button")["data"]["misuse"] is False


def test_terminal_redraws_when_the_shift_changes_while_idle():
    term, rec, clock = make_terminal(duty=[
        {"start": "2026-03-02T01:00:00Z", "end": "2026-03-02T02:30:00Z",
         "officer": {"id": "a", "name": "A"}},
        {"start": "2026-03-02T02:30:00Z", "end": "2026-03-02T05:00:00Z",
         "officer": {"id": "b", "name": "B"}}])
    redraws: list[str | None] = []
    term.listeners.append(lambda: redraws.append(term.officer().id))
    term.tick()
    clock.advance(60)
    term.tick()  # same shift: nothing to redraw
    clock.advance(3600)
    term.tick()
    assert redraws == ["a", "b"]


def test_systemd_unit_restarts_always_with_watchdog_and_runs_the_console_script():
    import configparser
    import pathlib
    import tomllib
    root = pathlib.Path(__file__).resolve().parent.parent
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(root / "kiosk" / "systemd" / "thanthien-kiosk.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    script = service["ExecStart"].split()[0].rsplit("/", 1)[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[script] == "kiosk.cli:main"
