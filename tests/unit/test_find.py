"""The admin's request detail on a day of 200,000 records (issue 32, item 7): the request id
carries when the request arrived, so the lookup reads a few blocks near it, not the day."""
import json
import time

from ccgate.usage.find import find_in_file, id_second
from ccgate.usage.meter import new_request_id
from ccgate.usage.record import iso_utc

DAY_START = 1_796_000_000  # a day's worth of seconds from here


def day_file(path, count=200_000):
    """``count`` records, one every 0.4 s, each lasting 2 s, in the order they ended."""
    lines = []
    for i in range(count):
        start = DAY_START + i * 0.4
        rid = f"{int(start):08x}{i:08x}"
        lines.append(json.dumps({"requestId": rid, "tenantId": "t", "timestamp": iso_utc(start),
                                 "model": "m", "totalCost": 0.001, "duration": 2000,
                                 "userAgent": "claude-cli/2.1.197 (external, cli)"},
                                separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return [json.loads(line)["requestId"] for line in (lines[10], lines[123_456], lines[-1])]


def test_a_request_is_found_reading_a_few_blocks_of_a_big_day(tmp_path):
    path = tmp_path / "day.json"
    ids = day_file(path)
    for rid in ids:
        pauses = []
        started = time.perf_counter()
        found = find_in_file(path, rid, id_second(rid), lambda: pauses.append(1))
        assert found["requestId"] == rid
        assert len(pauses) <= 2, "read more than the blocks around the request"
        assert time.perf_counter() - started < 0.5  # generous: the whole day takes seconds
    # an id without its second (the old random ids) is still found, by reading the day
    pauses = []
    assert find_in_file(path, ids[1], None, lambda: pauses.append(1))["requestId"] == ids[1]
    assert len(pauses) > 20
    assert find_in_file(path, "0" * 16, 0, lambda: None) is None
    assert find_in_file(tmp_path / "none.json", ids[0], None, lambda: None) is None


def test_the_latest_record_of_a_request_wins_over_its_provisional_one(tmp_path):
    rid = new_request_id()
    assert abs(id_second(rid) - time.time()) < 2
    lines = [{"requestId": rid, "timestamp": iso_utc(time.time()), "duration": 0, "provisional": 1},
             {"requestId": "other", "timestamp": iso_utc(time.time()), "duration": 0},
             {"requestId": rid, "timestamp": iso_utc(time.time()), "duration": 0, "totalCost": 2}]
    path = tmp_path / "d.json"
    path.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))
    assert find_in_file(path, rid, id_second(rid), lambda: None)["totalCost"] == 2
