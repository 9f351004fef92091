"""An ingest's peak memory stays flat with the size of the file.

The real ``bandit-pipeline ingest`` runs in a process of its own on files of N and of 4N
events, in small batches, against the test PostgreSQL; its peak resident set size comes
from ``scripts/peak_rss.py`` (the peak of a process forked from the test runner would be
the runner's). The full size, 1M and 2M events in batches of the default size, is
``benchmarks/ingest_memory.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bandit_pipeline.simulate import generate_events, write_jsonl
from bandit_pipeline_tests.helpers import scalar

PEAK_RSS = Path(__file__).resolve().parents[1] / "scripts" / "peak_rss.py"
SMALL = 40_000  # events, about
BATCH = 2_000  # 20 batches of the small file, 80 of the large one
# Allocator noise is well under 1 MiB between the two runs; a file-sized buffer of the
# 120,000 more events would add tens of MiB, and keeping 70 bytes an event would show.
MARGIN_KIB = 8 * 1024


def ingest_peak(path: Path, url: str, batch: int, tmp_path: Path) -> tuple[int, dict[str, int]]:
    """The peak RSS (KiB) of one ``bandit-pipeline ingest`` of ``path``, and its counts."""
    report = tmp_path / "peak_rss"
    ingest = [str(Path(sys.executable).parent / "bandit-pipeline"), "ingest", str(path)]
    command = [sys.executable, str(PEAK_RSS), str(report), *ingest]
    env = {**os.environ, "BANDIT_WAREHOUSE_URL": url, "BANDIT_INGEST_BATCH_SIZE": str(batch)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = re.findall(r"\b(read|inserted|duplicate|rejected|batches)=(\d+)", done.stdout)
    return int(report.read_text()), {name: int(value) for name, value in counts}


def write_events(path: Path, impressions: int, prefix: str) -> int:
    end = datetime.now(UTC)
    items = [f"item-{i}" for i in range(1_000)]
    events = generate_events(items, impressions, start=end - timedelta(hours=6), end=end,
                             id_prefix=prefix)  # fmt: skip
    return write_jsonl(path, events)


@pytest.mark.postgres
def test_peak_memory_of_an_ingest_stays_flat_with_the_file_size(
    pg_engine: Engine, postgres_url: str, tmp_path: Path
) -> None:
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    sizes = {small: write_events(small, int(SMALL / 1.07), "s"),
             large: write_events(large, int(4 * SMALL / 1.07), "l")}  # fmt: skip
    assert sizes[large] > 3.9 * sizes[small]

    peaks = {}
    for path, events in sizes.items():
        with pg_engine.begin() as connection:
            connection.execute(text("TRUNCATE bandit_rewards, bandit_rewards_rejected"))
        peaks[path], counts = ingest_peak(path, postgres_url, BATCH, tmp_path)
        assert counts["inserted"] == events, counts
        assert counts["batches"] == -(-events // BATCH), counts
        assert scalar(pg_engine, "SELECT COUNT(*) FROM bandit_rewards") == events
    # The figure is the ingest's own: Python with the product imported, not the runner.
    assert 30 * 1024 < peaks[small] < 400 * 1024, peaks
    assert peaks[large] - peaks[small] < MARGIN_KIB, (
        f"peak RSS grew from {peaks[small] // 1024} MiB ({sizes[small]:,} events) to "
        f"{peaks[large] // 1024} MiB ({sizes[large]:,} events)"
    )

    # The measure does see a buffer that grows with the input: the small file in a
    # single batch holds every row at once.
    with pg_engine.begin() as connection:
        connection.execute(text("TRUNCATE bandit_rewards, bandit_rewards_rejected"))
    whole, counts = ingest_peak(small, postgres_url, sizes[small], tmp_path)
    assert counts["batches"] == 1, counts
    assert whole - peaks[small] > MARGIN_KIB, (whole, peaks[small])
