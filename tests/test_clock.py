"""The clock's holdover: trusted for a week offline, not after a reboot without a real-time
clock (injected clock sources: no waiting, no root)."""

from __future__ import annotations

import pytest

from node_runtime.clock import ClockTrust, describe, why_untrusted

HOUR, DAY = 3600.0, 86400.0


class Board:
    """The clock sources of one board: NTP up or not, monotonic and wall time, boot, RTC."""

    def __init__(self):
        self.ntp, self.mono, self.wall, self.boot, self.rtc = True, 100.0, 1.8e9, "boot-1", None

    def trust(self, state_file, **kw):
        return ClockTrust(state_file, kernel_synced=lambda: self.ntp, monotonic=lambda: self.mono,
                          wall=lambda: self.wall, boot=lambda: self.boot, rtc=lambda: self.rtc,
                          **kw)

    def offline_for(self, seconds):
        self.ntp = False
        self.mono += seconds
        self.wall += seconds


@pytest.mark.parametrize(("offline", "state"), [
    (9 * HOUR, "holdover ±1.6 s"),  # where the kernel alone gives up
    (7 * DAY, "holdover ±30.2 s"),  # the week the loudspeakers promise
    (14 * DAY, "untrusted"),
])
def test_offline_the_clock_is_trusted_while_its_drift_is_bounded(tmp_path, offline, state):
    board = Board()
    trust = board.trust(tmp_path / "clock.json")
    assert describe(trust) == "synced"
    board.offline_for(offline)
    assert describe(trust) == state
    assert trust() is (state != "untrusted")
    if state == "untrusted":
        assert "not synchronised for 14.0 days" in why_untrusted(trust)


def test_the_holdover_survives_a_restart_of_the_node_but_not_a_reboot_without_rtc(tmp_path):
    board = Board()
    board.trust(tmp_path / "clock.json")()  # synced, recorded
    board.offline_for(2 * DAY)
    assert describe(board.trust(tmp_path / "clock.json")) == "holdover ±8.6 s"  # same boot
    board.boot, board.mono = "boot-2", 5.0  # a power cut: monotonic starts again
    rebooted = board.trust(tmp_path / "clock.json")
    assert describe(rebooted) == "untrusted"
    assert why_untrusted(rebooted) == ("restarted without a real-time clock and not "
                                       "synchronised (NTP) since")
    board.ntp = True
    assert describe(rebooted) == "synced"


def test_a_real_time_clock_that_kept_time_carries_the_holdover_over_a_reboot(tmp_path):
    board = Board()
    board.trust(tmp_path / "clock.json")()
    board.offline_for(DAY)
    board.boot, board.mono, board.rtc = "boot-2", 5.0, board.wall
    assert describe(board.trust(tmp_path / "clock.json")) == "holdover ±4.3 s"


def test_never_synced_or_a_damaged_record_is_untrusted(tmp_path):
    board = Board()
    board.ntp = False
    (tmp_path / "clock.json").write_text("{not json")
    trust = board.trust(tmp_path / "clock.json")
    assert describe(trust) == "untrusted" and "never been synchronised" in why_untrusted(trust)
