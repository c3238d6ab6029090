"""The provisioned PostgreSQL has TimescaleDB, and a hypertable takes a binary COPY."""

from datetime import datetime, timedelta, timezone

import psycopg


def test_timescaledb_extension_is_loaded(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    assert "timescaledb" in preload
    assert version is not None and version[0].split(".")[0] == "2"


def test_hypertable_accepts_binary_copy(pg_dsn: str) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    rows = [(t0 + timedelta(seconds=i), "strap-1", 60 + i % 120) for i in range(20_000)]
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute(
            "CREATE TABLE hr_copy_probe (time timestamptz NOT NULL, device_id text NOT NULL, bpm smallint NOT NULL)"
        )
        conn.execute("SELECT create_hypertable('hr_copy_probe', by_range('time', INTERVAL '1 hour'))")
        with conn.cursor() as cur:
            with cur.copy("COPY hr_copy_probe (time, device_id, bpm) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["timestamptz", "text", "int2"])
                for row in rows:
                    copy.write_row(row)
        n, chunks, total = conn.execute(
            "SELECT count(*), (SELECT count(*) FROM show_chunks('hr_copy_probe')), sum(bpm) FROM hr_copy_probe"
        ).fetchone()
        bucketed = conn.execute(
            "SELECT count(*) FROM (SELECT time_bucket('1 hour', time) FROM hr_copy_probe GROUP BY 1) b"
        ).fetchone()[0]
        conn.execute("DROP TABLE hr_copy_probe")
    assert n == len(rows)
    assert total == sum(r[2] for r in rows)
    # 20,000 s of data spans 6 one-hour chunks: the table really is partitioned by time
    assert chunks == bucketed == 6
