"""FIT folder watch: new files imported through protocols.fit into the real outbox, once each."""

from __future__ import annotations

import shutil
from pathlib import Path

from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from edge_agent.watch import FitFolderWatch
from protocols.fit import read as fit_read
from protocols.wire import decode_batches

DATA = Path(__file__).resolve().parents[1] / "data" / "fit"
RUN = DATA / "activity-small-fenix2-run.fit"
TRUNCATED = DATA / "activity-unexpected-eof.fit"


def _outbox_samples(ob: Outbox) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for e in ob.lease(max_batches=100_000, max_bytes=1 << 30):
        for b in decode_batches(e.body):
            out[(b.device_id, b.stream)] = out.get((b.device_id, b.stream), 0) + len(b)
    return out


def test_each_new_file_is_imported_once_by_content(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    m = EdgeMetrics()
    ob = Outbox(tmp_path / "outbox.sqlite", metrics=m, synchronous="NORMAL")
    w = FitFolderWatch(inbox, tmp_path / "watch.sqlite", ob, m, settle_s=1.0)
    shutil.copy(RUN, inbox / "run.fit")
    (inbox / "notes.txt").write_text("not a FIT file")
    assert w.scan_once(now_s=0.0) == []          # seen, not settled yet
    (r,) = w.scan_once(now_s=1.5)
    assert r.outcome == "ok" and r.samples > 0 and r.device_id
    expected = fit_read(RUN)
    want: dict[tuple[str, str], int] = {}
    for b in expected.batches:
        want[(b.device_id, b.stream)] = want.get((b.device_id, b.stream), 0) + len(b)
    # same content under another name, a truncated file, and garbage named .fit
    shutil.copy(RUN, inbox / "copy-of-run.FIT")
    shutil.copy(TRUNCATED, inbox / "cut.fit")
    (inbox / "garbage.fit").write_bytes(b"\x00" * 7)
    w.scan_once(now_s=2.0)
    res = {x.path.name: x for x in w.scan_once(now_s=3.5)}
    assert res["copy-of-run.FIT"].outcome == "duplicate"
    assert res["cut.fit"].outcome in ("partial", "ok") and res["cut.fit"].samples > 0
    assert res["garbage.fit"].outcome in ("error", "partial", "ok")
    assert w.scan_once(now_s=10) == []           # nothing new
    w.close()
    # a restart does not import anything again
    w2 = FitFolderWatch(inbox, tmp_path / "watch.sqlite", ob, m, settle_s=0)
    assert all(x.outcome == "duplicate" for x in w2.scan_once(now_s=0))
    got = _outbox_samples(ob)
    for k, n in want.items():
        assert got[k] == n, k                    # exactly the file's samples, not twice
    assert m.fit_files_imported_total.labels("duplicate")._value.get() >= 2
    w2.close()
    ob.close()


def test_reimport_after_a_crash_skips_batches_already_in_the_outbox(tmp_path: Path) -> None:
    m = EdgeMetrics()
    ob = Outbox(tmp_path / "outbox.sqlite", metrics=m, synchronous="NORMAL")
    imp = fit_read(RUN)
    ob.append(imp.batches, assign_seq=False)     # appended, but the crash came before the state record
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(RUN, inbox / "run.fit")
    w = FitFolderWatch(inbox, tmp_path / "watch.sqlite", ob, m, settle_s=0)
    (r,) = w.scan_once(now_s=0)
    assert r.skipped_batches == len([b for b in imp.batches if len(b)]) and r.batches == 0
    assert sum(ob.stats().by_priority[p][0] for p in ob.stats().by_priority) == len(imp.batches)
    w.close()
    ob.close()


def test_an_older_file_of_the_same_device_is_imported_after_a_newer_one(tmp_path: Path) -> None:
    """Seqs are first-sample times; a watch that gets last week's file after today's keeps both."""
    from protocols.wire import SampleBatch

    m = EdgeMetrics()
    ob = Outbox(tmp_path / "outbox.sqlite", metrics=m, synchronous="NORMAL")
    imp = fit_read(RUN)
    batches = [b for b in imp.batches if len(b)]
    # today's file of the same device: the same streams, one day later (seqs move with the times)
    day_us = 86_400_000_000
    later = [SampleBatch(b.device_id, b.stream, b.seq + day_us // 1000, b.t_us + day_us, b.values, b.scale, b.unit)
             for b in batches]
    assert len(ob.append(later, assign_seq=False)) == len(later)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(RUN, inbox / "older.fit")
    w = FitFolderWatch(inbox, tmp_path / "watch.sqlite", ob, m, settle_s=0)
    (r,) = w.scan_once(now_s=0)
    assert r.skipped_batches == 0 and r.batches == len(batches)
    assert len(ob.keys()) == 2 * len(batches)
    w.close()
    ob.close()
