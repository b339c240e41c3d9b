"""The short form of ``make faults``: 20 faults (brokers, controllers and nodes killed,
partitions, the controller's disk full) while events and receipts flow; nothing lost,
nothing duplicated, every due bulletin has its receipts, the controller healthy."""

from __future__ import annotations

from sim.faults import Campaign


def test_twenty_faults_lose_and_duplicate_nothing(tmp_path):
    campaign = Campaign(tmp_path / "campaign", faults=20, seed=7)
    try:
        campaign.start()
        report = campaign.run()
    finally:
        campaign.close()
    assert sum(report.faults.values()) == 20
    assert report.accepted > 100 and report.lost == 0 and report.duplicated == 0, report
    assert report.receipts_expected > 0 and report.receipts_missing == 0, report
    assert report.healthy and report.controller_restarts_unplanned == 0, report
