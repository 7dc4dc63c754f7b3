"""The DLQ workbench behind the dashboard: the whole DLQ topic, filtered, browsed a
window at a time, triaged, exported and redriven, on threads of its own.

Memory stays bounded whatever the topic's size: a scan keeps, for each entry its filter
picks, only its place (partition, offset) and time, in arrays (20 bytes an entry: 20 MB
for a million), sorted by time when the scan ends. What the pane shows is a window of
entries fetched by those places when asked for. After a scan the workbench follows the
topic's end, so the newest entries join as they come.

A front end calls the request methods (they only queue) and reads `view`, a snapshot
replaced whole on every change (`view.version` counts them).
"""

from __future__ import annotations

import bisect
import queue
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from orders_tui import json_output
from orders_tui.domain.codec import Decoder, decode
from orders_tui.domain.dlq_filter import MATCH_ALL, Filter, FilterError, parse_filter
from orders_tui.domain.triage import Triage
from orders_tui.errors import UserError
from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.dlq import DlqEntry, ScanProgress, dlq_reader, partitions_of, scan_dlq

SCAN_STEP = 5_000  # entries between two looks at the request queue during a scan
WINDOW_GAP = 200  # offsets: wanted entries closer than this are fetched in one read
FETCH_BYTES = 64 * 1024
PARTITION_CHECK_EVERY = 2.0  # seconds, while following


@dataclass(frozen=True)
class WorkbenchView:
    """What a front end shows; a new one on every change."""

    where: str = ""
    error: str = ""
    scanning: bool = False
    read: int = 0
    total: int = 0
    matched: int = 0
    window_start: int = 0
    window: tuple[DlqEntry, ...] = ()
    triage: Triage | None = None
    job: str = ""  # a redrive or export under way: its progress
    job_done: str = ""  # the last finished one: its summary
    source: tuple[str, DlqEntry | None, str] | None = None  # (entry key, record, error)
    jobs_done: int = 0  # counts finished jobs: a front end waits for it to move
    jump: tuple[int, int] = (0, -1)  # (jumps so far, the row a jump landed on)
    version: int = 0


@dataclass
class _Index:
    """Where the picked entries are, in time order once sorted."""

    partitions: array = field(default_factory=lambda: array("i"))
    offsets: array = field(default_factory=lambda: array("q"))
    stamps: array = field(default_factory=lambda: array("q"))

    def add(self, entry: DlqEntry) -> None:
        self.partitions.append(entry.partition)
        self.offsets.append(entry.offset)
        self.stamps.append(entry.timestamp_ms)

    def __len__(self) -> int:
        return len(self.offsets)

    def sort_by_time(self) -> None:
        order = sorted(range(len(self)), key=self.stamps.__getitem__)  # stable: by offset
        self.partitions = array("i", (self.partitions[i] for i in order))
        self.offsets = array("q", (self.offsets[i] for i in order))
        self.stamps = array("q", (self.stamps[i] for i in order))


class Workbench:
    def __init__(self, settings: KafkaSettings, decoder: Decoder = decode) -> None:
        self.settings = settings
        self.decoder = decoder
        self.view = WorkbenchView()
        self._publishing = threading.Lock()
        self._requests: queue.Queue[tuple[str, object]] = queue.Queue()
        self._stop = threading.Event()
        self._cancel_scan = threading.Event()
        self._cancel_job = threading.Event()
        self._job: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._index = _Index()
        self._filter: Filter = MATCH_ALL
        self._triage = Triage()
        self._tail_from: dict[int, int] | None = None  # set once a scan reached the end
        self._next_partition_check = 0.0

    # ---- requests (any thread) ----

    def start(self, where: str = "") -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="orders-tui-workbench", daemon=True
            )
            self._thread.start()
        self.filter(where)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._cancel_scan.set()
        self._cancel_job.set()
        for thread in (self._thread, self._job):
            if thread is not None:
                thread.join(timeout)

    def filter(self, where: str) -> None:
        self._cancel_scan.set()
        self._requests.put(("filter", where))

    def cancel(self) -> None:
        """Stop the scan (what it found so far stays) and any redrive or export."""
        self._cancel_scan.set()
        self._cancel_job.set()

    def show(self, start: int, count: int) -> None:
        self._requests.put(("show", (start, count)))

    def jump_to_time(self, ms: int, count: int) -> None:
        self._requests.put(("jump", (ms, count)))

    def jump_to_offset(self, partition: int, offset: int, count: int) -> None:
        """To the first entry of `partition` at or after `offset`."""
        self._requests.put(("jump_offset", (partition, offset, count)))

    def open_source(self, entry: DlqEntry) -> None:
        self._requests.put(("source", entry))

    def redrive(
        self,
        keys: set[tuple[int, int]] | None,
        dry_run: bool,
        max_replays: int,
        rate: float | None = None,
    ) -> None:
        """Redrive the entries at `keys` (partition, offset), or all the filter picks."""
        self._start_job(self._redrive_job, keys, dry_run, max_replays, rate)

    def redrives(self, group: str) -> None:
        """Each redrive of this DLQ and what became of it (see kafka/redrive), as the
        finished job's text."""
        self._start_job(self._redrives_job, group)

    def export(self, path: str, keys: set[tuple[int, int]] | None) -> None:
        """Write the entries at `keys`, or all the filter picks, to `path` as JSON Lines
        in `dlq --json`'s shape."""
        self._start_job(self._export_job, path, keys)

    # ---- the worker ----

    def _publish(self, **changes: object) -> None:
        # Called from the scan, the page fetcher and the jobs' threads: without the lock
        # two could read the same view and one's changes be lost.
        with self._publishing:
            self.view = replace(self.view, version=self.view.version + 1, **changes)

    def _run(self) -> None:
        reader = fetcher = None
        try:
            # librdkafka buffers up to 64 MB a consumer by default: 8 MB keeps a scan fast
            # and the dashboard's memory small.
            reader = dlq_reader(
                self.settings, **{"enable.partition.eof": True, "queued.max.messages.kbytes": 8192}
            )
            # A fetch is answered at once (the broker's default waits up to 500 ms for
            # more): paging back fetches a few records from each partition.
            fetcher = dlq_reader(
                self.settings,
                **{
                    "max.partition.fetch.bytes": FETCH_BYTES,
                    "queued.max.messages.kbytes": 1024,
                    "fetch.queue.backoff.ms": 10,
                    "fetch.wait.max.ms": 10,
                    "enable.partition.eof": True,
                },
            )
            fetcher.list_topics(self.settings.dlq_topic, timeout=10)  # connected before asked
            scan: Iterator[None] | None = None
            while not self._stop.is_set():
                try:  # during a scan, only a look: the scan's next step is waiting
                    request, arg = (
                        self._requests.get_nowait() if scan else self._requests.get(timeout=0.2)
                    )
                except queue.Empty:
                    request, arg = "", None
                if request == "filter":
                    scan = self._begin_scan(reader, str(arg))
                elif request == "show":
                    self._show(fetcher, *arg)
                elif request == "jump":
                    ms, count = arg
                    row = min(bisect.bisect_left(self._index.stamps, ms), len(self._index) - 1)
                    self._show(fetcher, max(0, row - count // 2), count)
                    self._publish(jump=(self.view.jump[0] + 1, max(0, row)))
                elif request == "jump_offset":
                    partition, offset, count = arg
                    index = self._index
                    row = next(
                        (
                            i
                            for i in range(len(index))
                            if index.partitions[i] == partition and index.offsets[i] >= offset
                        ),
                        len(index) - 1,
                    )
                    self._show(fetcher, max(0, row - count // 2), count)
                    self._publish(jump=(self.view.jump[0] + 1, max(0, row)))
                elif request == "source":
                    self._open_source(fetcher, arg)
                if scan is not None:
                    if next(scan, "done") == "done":
                        scan = None
                elif self._tail_from is not None:
                    self._follow(reader)
        except (KafkaException, UserError) as exc:
            message = exc.args[0].str() if isinstance(exc, KafkaException) else str(exc)
            self._publish(error=f"DLQ workbench stopped: {message}", scanning=False)
        finally:
            for consumer in (reader, fetcher):
                if consumer is not None:
                    consumer.close()

    def _begin_scan(self, reader: Consumer, where: str) -> Iterator[None] | None:
        try:
            chosen = parse_filter(where)
        except FilterError as exc:
            self._publish(error=str(exc))
            return None
        self._cancel_scan.clear()
        reader.unassign()  # stop following: its fetches would delay the scan's requests
        self._filter, self._index, self._triage = chosen, _Index(), Triage()
        self._tail_from = None
        self._publish(
            where=where,
            error="",
            scanning=True,
            read=0,
            total=0,
            matched=0,
            window_start=0,
            window=(),
            triage=None,
        )
        return self._scan(reader)

    def _scan(self, reader: Consumer) -> Iterator[None]:
        """The scan, a step at a time, so requests are served while it runs."""
        progress = ScanProgress()
        topic = self.settings.dlq_topic
        entries = scan_dlq(
            reader, topic, decoder=self.decoder, progress=progress, cancel=self._cancel_scan
        )
        picks = None if self._filter is MATCH_ALL else self._filter
        for step, entry in enumerate(entries, start=1):
            if picks is None or picks(entry):
                self._index.add(entry)
                self._triage.add(entry.failure, entry.timestamp_ms)
            if step % SCAN_STEP == 0:
                self._publish(read=progress.read, total=progress.total, matched=len(self._index))
                yield
        cancelled = self._cancel_scan.is_set()
        self._index.sort_by_time()
        note = "scan cancelled: showing what it found" if cancelled else ""
        self._publish(
            scanning=False,
            read=progress.read,
            total=progress.total,
            matched=len(self._index),
            triage=self._triage,
            error=note,
        )
        if not cancelled:  # follow the topic from where the scan stopped
            self._tail_from = dict(progress.ends)
            reader.assign([TopicPartition(topic, p, o) for p, o in self._tail_from.items()])

    def _follow(self, reader: Consumer) -> None:
        now = time.monotonic()
        if now >= self._next_partition_check:
            # A DLQ topic created (or given partitions) after the scan: follow those too.
            self._next_partition_check = now + PARTITION_CHECK_EVERY
            topic = self.settings.dlq_topic
            new = [p for p in partitions_of(reader, topic) if p not in self._tail_from]
            if new:
                self._tail_from.update(dict.fromkeys(new, 0))
                reader.incremental_assign([TopicPartition(topic, p, 0) for p in new])
        added = False
        for msg in reader.consume(500, 0.05):
            if msg.error() is not None:
                continue
            entry = DlqEntry.from_message(msg, self.decoder)
            if self._filter(entry):
                self._index.add(entry)
                self._triage.add(entry.failure, entry.timestamp_ms)
                added = True
        if added:
            self._publish(matched=len(self._index), triage=self._triage)

    def _show(self, fetcher: Consumer, start: int, count: int) -> None:
        index = self._index
        start = max(0, min(start, len(index) - count))
        end = min(len(index), start + count)
        wanted = [(index.partitions[i], index.offsets[i]) for i in range(start, end)]
        found = _fetch(fetcher, self.settings.dlq_topic, wanted, self.decoder)
        window = tuple(found[w] for w in wanted if w in found)
        self._publish(window_start=start, window=window, matched=len(index))

    def _open_source(self, fetcher: Consumer, entry: DlqEntry) -> None:
        key = f"{entry.partition}:{entry.offset}"
        topic, partition, offset = entry.original
        if not topic or partition is None or offset is None:
            self._publish(source=(key, None, "the entry names no original record"))
            return
        found = _fetch(fetcher, topic, [(partition, offset)], self.decoder)
        record = found.get((partition, offset))
        why = "" if record else f"{topic}[{partition}]@{offset} is gone (retention?)"
        self._publish(source=(key, record, why))

    # ---- jobs: redrive and export, on a thread of their own ----

    def _start_job(self, target: Callable[..., str], *args: object) -> None:
        if self._job is not None and self._job.is_alive():
            self._publish(job_done="a redrive or export is still running: esc cancels it")
            return
        self._cancel_job.clear()

        def run() -> None:
            try:
                done = target(*args)
            except (KafkaException, UserError, OSError) as exc:
                done = f"failed: {exc.args[0].str() if isinstance(exc, KafkaException) else exc}"
            self._publish(job="", job_done=done, jobs_done=self.view.jobs_done + 1)

        self._job = threading.Thread(target=run, name="orders-tui-workbench-job", daemon=True)
        self._job.start()

    def _picks(self, keys: set[tuple[int, int]] | None) -> Callable[[DlqEntry], bool]:
        chosen = self._filter
        if keys is None:
            return chosen
        return lambda entry: (entry.partition, entry.offset) in keys

    def _redrive_job(
        self, keys: set[tuple[int, int]] | None, dry_run: bool, max_replays: int, rate: float | None
    ) -> str:
        from orders_tui.kafka.redrive import Redrive, redrive_name, replay_targets

        what = self._filter.text if keys is None else f"selection {sorted(keys)}"
        name = redrive_name(self.settings.dlq_topic, what)
        progress = ScanProgress()
        redrive = Redrive(
            self.settings,
            self._picks(keys),
            name,
            max_replays,
            replay_targets(self.settings),
            rate=rate,
            dry_run=dry_run,
            decoder=self.decoder,
            progress=progress,
            cancel=self._cancel_job,
        )
        doing = "planning" if dry_run else "redriving"
        watcher = _Watch(
            lambda: self._publish(
                job=f"{doing}: {progress.read:,} of ~{progress.total:,} read · "
                f"{redrive.summary.sent:,} sent (esc cancels)"
            )
        )
        with watcher:
            summary = redrive.run()
        return summary.describe().replace("\n", " · ")

    def _redrives_job(self, group: str) -> str:
        from orders_tui.kafka.redrive_log import redrive_outcomes

        self._publish(job="reading the redrive log and the DLQ…")
        outcomes = redrive_outcomes(self.settings, group)
        if not outcomes:
            return f"no redrives of {self.settings.dlq_topic} yet"
        return "redrives:\n" + "\n".join(o.describe() for o in outcomes)

    def _export_job(self, path: str, keys: set[tuple[int, int]] | None) -> str:
        picks = self._picks(keys)
        progress = ScanProgress()
        written = 0
        target = Path(path).expanduser()
        watcher = _Watch(
            lambda: self._publish(
                job=f"exporting: {progress.read:,} of ~{progress.total:,} read · "
                f"{written:,} written"
            )
        )
        reader = dlq_reader(self.settings)
        try:
            with target.open("w", encoding="utf-8") as out, watcher:
                for entry in scan_dlq(
                    reader,
                    self.settings.dlq_topic,
                    decoder=self.decoder,
                    progress=progress,
                    cancel=self._cancel_job,
                ):
                    if picks(entry):
                        out.write(json_output.dumps(entry.to_json()) + "\n")
                        written += 1
        finally:
            reader.close()
        stopped = " (cancelled)" if self._cancel_job.is_set() else ""
        return f"exported {written:,} entries to {target}{stopped}"


class _Watch:
    """Calls `report` every 0.25 s while the block runs (a job's progress)."""

    def __init__(self, report: Callable[[], None]) -> None:
        self.report = report
        self._done = threading.Event()

    def __enter__(self) -> _Watch:
        def loop() -> None:
            while not self._done.wait(0.25):
                self.report()

        threading.Thread(target=loop, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()


def _fetch(
    consumer: Consumer,
    topic: str,
    wanted: list[tuple[int, int]],
    decoder: Decoder,
    timeout: float = 10.0,
) -> dict[tuple[int, int], DlqEntry]:
    """The records at `wanted` places: every partition read at once, each in runs of
    nearby offsets (a seek between runs)."""
    runs: dict[int, list[list[int]]] = {}
    for partition, offset in sorted(wanted):
        partition_runs = runs.setdefault(partition, [])
        if partition_runs and offset - partition_runs[-1][1] <= WINDOW_GAP:
            partition_runs[-1][1] = offset
        else:
            partition_runs.append([offset, offset])
    needed = set(wanted)
    found: dict[tuple[int, int], DlqEntry] = {}
    if not runs:
        return found
    consumer.assign([TopicPartition(topic, p, r[0][0]) for p, r in runs.items()])
    deadline = time.monotonic() + timeout
    while runs and time.monotonic() < deadline:
        for msg in consumer.consume(500, 0.02):
            partition = msg.partition()
            if partition not in runs:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # the rest is gone
                    del runs[partition]
                continue
            offset = msg.offset()
            if (partition, offset) in needed:
                found[partition, offset] = DlqEntry.from_message(msg, decoder)
            current = runs[partition]
            if offset >= current[0][1]:
                current.pop(0)
                if current:
                    consumer.seek(TopicPartition(topic, partition, current[0][0]))
                else:
                    del runs[partition]
    return found
