"""What every fault scenario must end with (tests/reliability/test_faults.py and tests/deploy/test_cluster.py)."""


def accounted_for(result: dict) -> None:
    """A fault scenario's result (harness.scenario_run) holds every message: none lost, Redis equal to the source."""
    n = result["messages"]
    assert result["load"]["status"] == "done" and result["load"]["published"] == n, result["load"]
    assert result["published"] == n and result["published_twice"] == 0
    # nothing lost
    assert result["lost"] == 0, result["events"]
    assert result["consumed_distinct"] == n
    recon = result["recon"]
    assert recon["published"] == n and recon["pending"] == 0
    assert recon["windows"]["open"] == 0
    for category in ("missing", "altered", "orphan", "count"):
        assert category not in recon["findings"], recon["findings"]
    # every delivery counted, by recon and by the ledger alike; the extra ones are offsets read
    # again (after a kill, a rebalance): redelivery, counted per window, never a duplicate finding
    assert recon["consumed"] == result["deliveries"] == n + result["extra_deliveries"]
    assert result["redelivered"] == result["extra_deliveries"]
    assert "duplicate" not in recon["findings"] and result["duplicate_findings"] == 0
    # Redis equals the source; the cache leg agrees
    assert result["redis"] == {"source_keys": n, "cached_keys": n, "missing": 0, "extra": 0, "differs": 0}
    assert result["cache_check"] == {"checked": n, "all_matched": True, "problems": {}}
    assert result["secrets_in_logs"] == {}, result["secrets_in_logs"]
    assert result["card_numbers_in_logs"] == 0
