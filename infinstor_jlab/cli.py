"""``infinstor-jlab``: the command line over the same services the server uses.

Errors go to stderr as one sentence with a non-zero exit; with ``--json`` the JSON document
is the only thing on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any

from .errors import BadRequest, BadTimeSpec, InfinstorError
from .timespec import accepted_forms_message, format_human, format_iso, future_note, now_ms

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(InfinstorError):
    pass


def _service(args: argparse.Namespace) -> Any:
    from .index import open_index
    from .services import InfinstorService

    return InfinstorService(open_index(args.index), s3_endpoint_url=args.endpoint_url)


def _index_location(args: argparse.Namespace) -> str:
    from .index import resolve_index_url

    return resolve_index_url(args.index)


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=None) + "\n")


def _human_size(n: int) -> str:
    return f"{n:>12,}"


class _ProgressBar:
    """A tqdm bar on stderr for a sync or an import: versions so far, their rate, and for a
    parallel pass the partitions done and an ETA from them (a listing's total is unknown
    until it ends). Silent when stderr is not a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.bar: Any = None
        self.started = time.monotonic()

    def __call__(self, progress: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            import shutil

            from tqdm import tqdm

            # A terminal that reports no size (some ptys) would get an empty bar.
            size = shutil.get_terminal_size((100, 24))
            self.bar = tqdm(
                desc=self.label,
                unit=" versions",
                unit_scale=True,
                file=sys.stderr,
                ncols=size.columns or 100,
                nrows=size.lines or 24,
            )
        self.bar.update(progress.versions_seen - self.bar.n)
        total, done = progress.partitions_total, progress.partitions_done
        if total:
            post = f"partitions {done}/{total}"
            elapsed = time.monotonic() - self.started
            if 0 < done < total:
                post += f", ETA {elapsed * (total - done) / done:,.0f} s"
            self.bar.set_postfix_str(post, refresh=False)
        if progress.done:
            self.bar.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- commands -------------------------------------------------------------------------------
def cmd_track(args: argparse.Namespace) -> int:
    svc = _service(args)
    status = svc.versioning_status(args.bucket)
    consent = args.yes
    if status != "Enabled" and not consent:
        if not sys.stdin.isatty():
            raise CliError(
                f"Tracking {args.bucket!r} enables S3 versioning on it; re-run with --yes to "
                "confirm (no terminal to ask on)."
            )
        sys.stderr.write(
            f"Bucket {args.bucket!r} has versioning {'suspended' if status else 'off'}. "
            "Tracking enables it: from now on S3 keeps every overwritten and deleted object "
            "(history starts now, and old versions cost storage).\nEnable versioning? [y/N] "
        )
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            sys.stderr.write("Not tracked; nothing was changed.\n")
            return EXIT_ERROR
        consent = True
    before = svc.track(args.bucket, enable_versioning_consent=consent, events=args.events)
    if before != "Enabled":
        print(f"Enabled versioning on {args.bucket} (it was {before.lower()}); history starts now.")
    if args.events:
        queue = svc.index.get_event_source(args.bucket).get("queue_url")
        print(
            f"S3 events of {args.bucket} now go to {queue}; a Jupyter server with the "
            f"extension (or `infinstor-jlab watch {args.bucket}`) applies them."
        )
    if args.inventory:
        return _run_import(svc, args.bucket, args.inventory, parallel=args.parallel)
    if args.no_sync:
        print(f"Tracking {args.bucket}. Run `infinstor-jlab sync {args.bucket}` to index it.")
        return 0
    return _run_sync(svc, args.bucket, full=False, parallel=args.parallel)


def _run_import(svc: Any, bucket: str, location: str, *, parallel: int) -> int:
    """Import an inventory report, then close the gap since it with a parallel listing."""
    bar = _ProgressBar(f"inventory {bucket}")
    started = time.monotonic()
    try:
        result = svc.import_inventory(bucket, location, on_progress=bar)
    except KeyboardInterrupt:
        bar.close()
        sys.stderr.write(
            "\nInterrupted. Nothing imported is lost: run the same command again to finish.\n"
        )
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    ties = f", {result.tied_keys:,} keys ordered by listing them" if result.tied_keys else ""
    print(
        f"Imported {result.versions:,} versions of {bucket} from "
        f"s3://{result.report.bucket}/{result.report.manifest_key} "
        f"({time.monotonic() - started:.1f} s{ties}); exact through "
        f"{format_iso(result.exact_through_ms)}. Closing the gap since with a listing..."
    )
    return _run_sync(svc, bucket, full=False, parallel=parallel)


def _sync_interrupted(bucket: str) -> int:
    sys.stderr.write(
        f"\nInterrupted. Progress is saved: run `infinstor-jlab sync {bucket}` to resume.\n"
    )
    return EXIT_INTERRUPTED


def _parallel_streams(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(
            f"--parallel takes a number of streams from 1 to 256, not {text!r}"
        )
    return n


def _run_sync(svc: Any, bucket: str, *, full: bool, parallel: int = 1) -> int:
    bar = _ProgressBar(f"sync {bucket}")
    started = time.monotonic()
    from .services.coordination import SyncBusy

    try:
        result = svc.sync(bucket, full=full, on_progress=bar, parallel=parallel)
    except KeyboardInterrupt:
        return _sync_interrupted(bucket)
    except SyncBusy as exc:
        # Another server or CLI of the team syncs it now: report that one, start nothing.
        print(exc.message)
        return 0
    finally:
        bar.close()
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    p = result.progress
    resumed = f" (resumed after {p.resumed_after!r})" if p.resumed_after else ""
    print(
        f"Synced {bucket}{resumed}: {p.versions_seen:,} versions listed, "
        f"{p.versions_written:,} index rows written in {time.monotonic() - started:.1f} s."
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    svc = _service(args)
    doc = svc.bucket_status(args.bucket)
    if args.json:
        _emit_json(doc)
        return 0

    def when(ms: Any) -> str:
        return format_iso(int(ms)) if ms else "never"

    print(f"# s3://{args.bucket}")
    print(f"tracked:        {'yes' if doc['tracked'] else 'no'} (versioning {doc['versioning']})")
    print(f"versions:       {doc['version_count']:,}")
    print(f"last sync:      {when(doc['last_sync_ms'])}")
    print(f"exact since:    {when(doc['exact_since_ms'])}")
    print(f"sync running:   {'yes' if doc['sync_in_progress'] else 'no'}")
    print(f"events:         {'on' if doc['events'] else 'off'}")
    return 0


def cmd_untrack(args: argparse.Namespace) -> int:
    svc = _service(args)
    svc.untrack(args.bucket, forget_history=args.forget)
    print(
        f"Stopped tracking {args.bucket}: removed its event queue and our notification "
        "entry"
        + (
            ", and its history from the index."
            if args.forget
            else "; its history stays in the index."
        )
        + " Versioning was left on."
    )
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import logging

    from .services.watcher import BucketWatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    svc = _service(args)
    for bucket in args.buckets:
        # unknown or untracked bucket -> the friendly error, before starting
        if svc.index.get_bucket(bucket).tracked_ms is None:
            raise CliError(
                f"Bucket {bucket!r} is no longer tracked (its history is kept); run "
                f"`infinstor-jlab track {bucket}` to keep it current again."
            )
    watcher = BucketWatcher(
        svc, wait_seconds=args.wait, reconcile_interval=args.reconcile, buckets=args.buckets or None
    )
    svc.watcher = watcher
    watcher.start()
    names = ", ".join(args.buckets) if args.buckets else "every tracked bucket"
    sys.stderr.write(
        f"Watching {names} (events and a reconcile every {args.reconcile:g} s); Ctrl-C to stop.\n"
    )
    try:
        while not watcher.stopped:
            time.sleep(0.5)
    except KeyboardInterrupt:
        sys.stderr.write("Stopping...\n")
    finally:
        watcher.stop()
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    # Ctrl-C while the index opens or the S3 client is made (before any listing) gets the
    # same answer as during the listing: running sync again carries on.
    try:
        return _run_sync(_service(args), args.bucket, full=args.full, parallel=args.parallel)
    except KeyboardInterrupt:
        return _sync_interrupted(args.bucket)


#: How far a view may reach past the bucket's last sync before `ls` says what the index may
#: lack: right after a sync (the demo's, or a script's), the note would only be noise.
STALE_HINT_AFTER_MS = 60_000


def _staleness_hint(svc: Any, bucket: str, spec: Any) -> str | None:
    """For a view well after the bucket's last sync (and no live events): what the index
    does not know yet, and how to bring it."""
    record = svc.index.get_bucket(bucket)
    # A view that ends in the future shows the bucket now: what the index lacks is measured
    # to now, not to a time that has not come.
    end_ms = min(spec.end_ms, now_ms())
    if record.covers(end_ms):
        return None
    if record.last_sync_ms is not None and end_ms - record.last_sync_ms < STALE_HINT_AFTER_MS:
        return None
    if svc.index.get_event_source(bucket).get("queue_url"):
        return None  # kept current by events
    return (
        f"the index has s3://{bucket} up to {record.synced_through()}; "
        f"`infinstor-jlab sync {bucket}` brings later changes"
    )


def cmd_ls(args: argparse.Namespace) -> int:
    from .services import parse_s3_uri

    svc = _service(args)
    bucket, given_prefix = parse_s3_uri(args.uri)
    # s3://b and s3://b/ both mean "no prefix given": a label's prefix then.
    view = svc.views.resolve_view(
        bucket, at=args.at, slice_=args.slice, label=args.label, prefix=given_prefix or None
    )
    spec, prefix, within = view.spec, view.prefix, view.within
    delimiter = None if args.recursive else "/"
    if args.max_keys is not None:
        page = svc.list_objects(
            bucket,
            spec=spec,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=args.max_keys,
            token=args.token,
            within=within,
        )
        objects, prefixes, next_token = page.objects, page.prefixes, page.next_token
    else:
        objects, prefixes = [], []
        token = args.token
        while True:
            page = svc.list_objects(
                bucket,
                spec=spec,
                prefix=prefix,
                delimiter=delimiter,
                max_keys=1000,
                token=token,
                within=within,
            )
            objects.extend(page.objects)
            prefixes.extend(page.prefixes)
            token = page.next_token
            if token is None:
                break
        next_token = None
    if args.json:
        _emit_json(
            {
                "objects": [o.to_json() for o in objects],
                "prefixes": prefixes,
                "next_token": next_token,
            }
        )
        return 0
    note = future_note(spec)
    if note and spec.kind == "snapshot":
        print(f"# s3://{bucket}/{prefix} live (as it is now)")
    else:
        print(f"# s3://{bucket}/{prefix} {spec.display()}")
    if note:
        print(f"# note: {note}")
    from .services.sync import exact_since

    since = exact_since(svc.index, bucket)
    if since is not None and spec.end_ms < since:
        print(f"# the index is exact since {format_iso(since)}; earlier answers may miss versions")
    hint = _staleness_hint(svc, bucket, spec)
    if hint:
        print(f"# {hint}")
    for p in prefixes:
        print(f"{'PRE':>43} {p}")
    for o in objects:
        stamp = format_iso(o.last_modified_ms).replace("T", " ").replace("Z", "")
        print(f"{stamp} {_human_size(o.size)} {o.key}  ({o.version_id})")
    if next_token:
        print(f"# more: --token {next_token}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .services import parse_s3_uri

    svc = _service(args)
    bucket, prefix = parse_s3_uri(args.uri)
    from_spec, to_spec = svc.views.resolve_diff(args.from_spec, args.to_spec)
    result = svc.diff(bucket, prefix=prefix, from_spec=from_spec, to_spec=to_spec)
    if args.json:
        _emit_json(result.to_json())
        return 0
    for o in result.added:
        print(f"+ {o.key}  ({o.version_id})")
    for o in result.deleted:
        print(f"- {o.key}  ({o.version_id})")
    for m in result.modified:
        print(f"M {m.key}  ({m.from_version_id} -> {m.to_version_id})")
    for end, spec in (("from", from_spec), ("to", to_spec)):
        note = future_note(spec)
        if note:
            print(f"# note: {end} {note}")
    print(
        f"# {len(result.added)} added, {len(result.deleted)} deleted, "
        f"{len(result.modified)} modified"
    )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from .services import parse_s3_uri

    svc = _service(args)
    bucket, key = parse_s3_uri(args.uri)
    if not key:
        raise CliError("history needs an object: s3://BUCKET/KEY.")
    versions = svc.history(bucket, key)
    if args.json:
        _emit_json(
            {"bucket": bucket, "key": key, "versions": [v.to_history_json() for v in versions]}
        )
        return 0
    for v in versions:
        stamp = format_iso(v.last_modified_ms).replace("T", " ").replace("Z", "")
        what = "DELETE MARKER" if v.is_delete_marker else _human_size(v.size)
        latest = "  (latest)" if v.is_latest else ""
        print(f"{stamp} {what:>13} {v.version_id}{latest}")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    from .services import parse_s3_uri

    svc = _service(args)
    bucket, prefix = parse_s3_uri(args.uri)
    from_ms, to_ms = svc.views.time_window(args.from_spec, args.to_spec)
    tl = svc.timeline(bucket, prefix=prefix, from_ms=from_ms, to_ms=to_ms, bins=args.bins)
    if args.json:
        _emit_json(tl.to_json())
        return 0
    peak = max([1, *tl.created, *tl.deleted])
    # Whole-second bins are labelled to the second: milliseconds only where they say something.
    whole = tl.start_ms % 1000 == 0 and tl.bin_ms % 1000 == 0
    print(
        f"# s3://{bucket}/{prefix}: versions per {_bin_width(tl.bin_ms)} bin "
        f"from {format_human(tl.start_ms)} to {format_human(tl.end_ms)}"
    )
    print(
        "# columns: bin start (UTC), +versions written, -deletes (delete markers), and a bar "
        f"of #s as long as the bin's changes (40 #s = {peak:,}); empty bins are left out"
    )
    for i, (c, d) in enumerate(zip(tl.created, tl.deleted)):
        if c or d:
            start = format_iso(tl.start_ms + i * tl.bin_ms).replace("T", " ")
            start = start.replace(".000Z", "Z") if whole else start
            print(f"{start} +{c:<6} -{d:<6} {'#' * max(1, 40 * (c + d) // peak)}")
    return 0


def _bin_width(ms: int) -> str:
    """``1 s``, ``15 min``, ``2 h``, ``1.5 d``, ``250 ms``: a bin width for people."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            value = ms / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.3g} {unit}"
    return f"{ms} ms"


def cmd_timespec(args: argparse.Namespace) -> int:
    svc = _service(args)
    spec = svc.views.parse_spec(args.spec, default_now=False)
    if args.json:
        _emit_json(spec.to_dict())
    else:
        print(f"{spec.canonical()}  ({spec.display()})")
        note = future_note(spec)
        if note:
            print(f"note: {note}")
    return 0


def cmd_label_create(args: argparse.Namespace) -> int:
    from .services import parse_s3_uri

    svc = _service(args)
    bucket, prefix = parse_s3_uri(args.uri)
    if not args.at and not args.slice:
        raise CliError("label create needs --at SPEC or --slice SPEC.")
    spec = svc.views.resolve_pin(bucket, prefix, at=args.at, slice_=args.slice).spec

    def say(message: str) -> None:  # a terminal hears why it waits; scripts stay quiet
        if sys.stderr.isatty():
            sys.stderr.write(message + "\n")

    label = svc.create_label(
        args.name,
        bucket,
        prefix,
        spec,
        description=args.description,
        on_catch_up=say,
        on_progress=_ProgressBar(f"sync {bucket}"),
    )
    if args.json:
        _emit_json(label.to_json())
    else:
        print(
            f"Label {label.name}: s3://{label.bucket}/{label.prefix} {label.spec}, "
            f"{label.object_count:,} objects, {label.fingerprint}"
        )
    return 0


def _copy_transforms(src_url: str, dst_url: str) -> tuple[int, int]:
    """Transforms (every revision, in order) and runs, from one index's store to another's;
    a transform the destination already has is left as it is there."""
    from .transforms.store import open_transform_store

    src, dst = open_transform_store(src_url), open_transform_store(dst_url)
    existing = set(dst.names())
    revisions = 0
    for name in src.names():
        if name in existing:
            continue
        for rev in reversed(src.revisions(name)):  # oldest first: numbered as they were
            dst.add_revision(rev)
            revisions += 1
    runs = src.runs()
    for run in runs:
        dst.save_run(run)
    _copy_pipelines(src_url, dst_url)
    return revisions, len(runs)


def _copy_pipelines(src_url: str, dst_url: str) -> None:
    """Pipelines (a name the destination has is left as it is there), their runs and the
    result cache."""
    from .transforms.pipelines import open_pipeline_store

    src, dst = open_pipeline_store(src_url), open_pipeline_store(dst_url)
    existing = {p.name for p in dst.pipelines()}
    for pipeline in src.pipelines():
        if pipeline.name not in existing:
            dst.save(pipeline)
    for run in src.runs():
        dst.save_run(run)
    for key, doc in src.cache_items():
        dst.cache_put(key, doc)


def cmd_index_copy(args: argparse.Namespace) -> int:
    from .index import open_index, resolve_index_url
    from .pg import safe_url
    from .services.indexcopy import CopyProgress, copy_index

    if resolve_index_url(args.src) == resolve_index_url(args.dst):
        raise BadRequest("The source and the destination are the same index; name two.")
    src, dst = open_index(args.src), open_index(args.dst)
    shown_src, shown_dst = safe_url(args.src), safe_url(args.dst)
    tty = sys.stderr.isatty() and not args.json
    last = [0.0]

    def progress(p: CopyProgress) -> None:
        now = time.monotonic()
        if not tty or (not p.done and now - last[0] < 0.2):
            return
        last[0] = now
        total = max(1, p.versions_total)
        width = 30
        filled = int(width * min(1.0, p.versions_done / total))
        line = (
            f"\rcopy [{'#' * filled}{'.' * (width - filled)}] {p.versions_done:,}/"
            f"{p.versions_total:,} versions  {p.bucket}"
        )
        sys.stderr.write(line[:100].ljust(80))
        if p.done:
            sys.stderr.write("\n")
        sys.stderr.flush()

    try:
        report = copy_index(
            src,
            dst,
            source=shown_src,
            destination=shown_dst,
            force=args.force,
            on_progress=progress,
            copy_transforms=lambda: _copy_transforms(args.src, args.dst),
        )
    finally:
        src.close()
        dst.close()
    if args.json:
        _emit_json(report.to_json())
    else:
        for b in report.buckets:
            mark = "ok" if b["match"] else "MISMATCH"
            print(
                f"{mark:>8}  {b['bucket']}: {b['copied_versions']:,} versions, {b['fingerprint']}"
            )
        for x in report.labels:
            mark = "ok" if x["match"] else "MISMATCH"
            print(f"{mark:>8}  label {x['label']}: {x['fingerprint']}")
        print(
            f"Copied {report.versions:,} versions of {len(report.buckets)} bucket(s), "
            f"{len(report.labels)} label(s), {report.transforms} transform revision(s) and "
            f"{report.transform_runs} run(s) (with the pipelines, their runs and the result "
            f"cache) from {shown_src} to {shown_dst}. View credentials "
            "are not copied: issue new ones on the destination."
        )
    if not report.ok:
        sys.stderr.write(
            "infinstor-jlab: The copy does not match its source (see MISMATCH above); do not "
            "use the destination. Run the copy again with --force.\n"
        )
        return EXIT_ERROR
    return 0


def _transform_service(args: argparse.Namespace) -> Any:
    """The transforms of this index, outside a Jupyter server: the executors with their
    default settings, run logs next to the index (as the server keeps them)."""
    from .transforms.emr_serverless import EmrServerlessExecutor
    from .transforms.executors import EmrExecutor, LocalExecutor, SparkExecutor
    from .transforms.service import TransformService
    from .transforms.store import open_transform_store

    location = _index_location(args)
    if location.startswith("sqlite:"):
        from .index import sqlite_path

        here = os.path.dirname(os.path.abspath(sqlite_path(location)))
    else:
        from jupyter_core.paths import jupyter_data_dir

        here = os.path.join(jupyter_data_dir(), "infinstor")
    transforms = TransformService(
        _service(args),
        open_transform_store(location),
        os.path.join(here, "transform-runs"),
        {
            "local": LocalExecutor(),
            "spark": SparkExecutor(),
            "emr": EmrExecutor(),
            "emr-serverless": EmrServerlessExecutor(),
        },
        default_output_uri=os.environ.get("INFINSTOR_TRANSFORM_OUTPUT_URI", ""),
    )
    transforms.recover()
    return transforms


def _schedules(args: argparse.Namespace) -> Any:
    from .transforms.schedules import ScheduleService, ScheduleStore

    transforms = _transform_service(args)
    return ScheduleService(transforms, ScheduleStore(_index_location(args)))


def _window_line(win: Any) -> str:
    from .timespec import format_human as format_ms

    span = (
        f"{format_ms(win.start_ms)} .. {format_ms(win.end_ms)}"
        if win.start_ms != win.end_ms
        else f"as of {format_ms(win.end_ms)}"
    )
    run = f" run {win.run_id}" if win.run_id else ""
    error = f" ({win.error})" if win.error else ""
    return f"#{win.seq} {win.state:<9} {span}  {win.objects:,} object(s){run}{error}"


def cmd_schedules_create(args: argparse.Namespace) -> int:
    doc: dict[str, Any] = {
        "name": args.name,
        "transform": args.transform,
        "revision": args.revision,
        "bucket": args.bucket,
        "prefix": args.prefix or "",
        "mode": args.mode,
        "cron": args.cron,
        "every_minutes": args.every,
        "if_new_data": args.if_new_data,
        "executor": args.executor,
        "output_uri": args.output or "",
        "kwargs": args.kwargs,
        "requirements": args.requirement or [],
        "settle_s": args.settle,
        "start": args.start,
    }
    schedules = _schedules(args)
    try:
        sched = schedules.create(doc, author=os.environ.get("USER", ""))
    finally:
        schedules.transforms.close()
    if args.json:
        _emit_json(schedules.summary(sched))
        return 0
    from .timespec import format_human as format_ms

    print(
        f"Schedule {sched.name!r}: {sched.transform} over s3://{sched.bucket}/{sched.prefix} "
        f"({sched.mode}), {sched.trigger_text()}; first run at {format_ms(sched.next_ms)}."
    )
    print(
        "It fires while a Jupyter server with infinstor_jlab runs, or from cron/systemd with "
        "`infinstor-jlab schedules run-due`."
    )
    return 0


def cmd_schedules_list(args: argparse.Namespace) -> int:
    from .timespec import format_human as format_ms

    schedules = _schedules(args)
    try:
        listed = schedules.list()
    finally:
        schedules.transforms.close()
    if args.json:
        _emit_json({"schedules": listed})
        return 0
    if not listed:
        print("No schedules (infinstor-jlab schedules create --help).")
    for doc in listed:
        last = doc["last_window"]
        print(
            f"{doc['name']:<24} {doc['transform']} over s3://{doc['bucket']}/{doc['prefix']}  "
            f"{doc['trigger']}  next {format_ms(doc['next_ms'])}"
            + ("  PAUSED" if doc["paused"] else "")
            + (f"  last: {last['state']}" if last else "")
        )
    return 0


def cmd_schedules_show(args: argparse.Namespace) -> int:
    from .transforms.schedules import Window

    schedules = _schedules(args)
    try:
        doc = schedules.get(args.name)
    finally:
        schedules.transforms.close()
    if args.json:
        _emit_json(doc)
        return 0
    for key in (
        "name",
        "transform",
        "bucket",
        "prefix",
        "mode",
        "trigger",
        "executor",
        "output_uri",
        "paused",
    ):
        print(f"{key:>11}: {doc[key]}")
    print("    windows:" + ("" if doc["windows"] else " none yet"))
    for w in doc["windows"]:
        print("  " + _window_line(Window.from_json(w)))
    return 0


def cmd_schedules_pause(args: argparse.Namespace) -> int:
    schedules = _schedules(args)
    try:
        schedules.set_paused(args.name, args.schedules_command == "pause")
    finally:
        schedules.transforms.close()
    print(f"Schedule {args.name!r} {'paused' if args.schedules_command == 'pause' else 'resumed'}.")
    return 0


def cmd_schedules_delete(args: argparse.Namespace) -> int:
    schedules = _schedules(args)
    try:
        schedules.delete(args.name)
    finally:
        schedules.transforms.close()
    print(f"Deleted schedule {args.name!r} and its history (its runs stay in MLflow).")
    return 0


def cmd_schedules_run(args: argparse.Namespace) -> int:
    """``run NAME`` (now) and ``run-due`` (what is due): fire, wait, record."""
    schedules = _schedules(args)
    only = getattr(args, "name", None)
    try:
        windows = schedules.run_due(
            only=only, force=only is not None, wait=not args.no_wait, timeout=args.timeout
        )
    finally:
        schedules.transforms.close()
    if args.json:
        _emit_json({"windows": [w.to_json() for w in windows]})
    elif not windows:
        print(
            "Nothing was due (or nothing new arrived)."
            if only is None
            else f"Schedule {only!r} started nothing: nothing new arrived, or its last run is "
            "still going."
        )
    for w in windows:
        if not args.json:
            print(f"{w.schedule}: " + _window_line(w))
    return 1 if any(w.state == "failed" for w in windows) else 0


def cmd_label_list(args: argparse.Namespace) -> int:
    labels = _service(args).list_labels()
    if args.json:
        _emit_json({"labels": [label.to_json() for label in labels]})
        return 0
    for label in labels:
        print(
            f"{label.name:<30} s3://{label.bucket}/{label.prefix}  {label.spec}  "
            f"{label.object_count:,} objects"
            + (f"  by {label.created_by}" if label.created_by else "")
        )
    return 0


def cmd_label_show(args: argparse.Namespace) -> int:
    label = _service(args).get_label(args.name)
    if args.json:
        _emit_json(label.to_json())
        return 0
    for k, v in label.to_json().items():
        print(f"{k:>14}: {v}")
    return 0


def cmd_label_delete(args: argparse.Namespace) -> int:
    _service(args).delete_label(args.name)
    if args.json:
        _emit_json({"deleted": args.name})
    else:
        print(f"Deleted label {args.name}.")
    return 0


def cmd_label_verify(args: argparse.Namespace) -> int:
    report = _service(args).verify_label(args.name, check_s3=not args.no_s3)
    if args.json:
        _emit_json(report.to_json())
    else:
        if report.ok:
            print(
                f"Label {args.name} verified: {report.index_object_count:,} objects, "
                f"fingerprint matches{'' if args.no_s3 else ', every version is in S3'}."
            )
        else:
            if not report.index_matches:
                print(
                    f"DRIFT: the index now resolves {args.name} to "
                    f"{report.index_object_count:,} objects with fingerprint "
                    f"{report.index_fingerprint}, not {report.fingerprint}."
                )
            for m in report.s3_missing:
                print(f"MISSING in S3: {m['key']} ({m['version_id']})")
            for c in report.s3_changed:
                print(f"CHANGED in S3: {c['key']} ({c['version_id']})")
    return 0 if report.ok else EXIT_ERROR


def _ask(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip()


def _print_restore_plan(plan: Any, *, limit: int = 20) -> None:
    where = f"s3://{plan.bucket}/{plan.prefix}"
    print(f"# restore {where} to {plan.spec.canonical()} ({plan.spec.display()})")
    lines = [f"+ {a.key}  ({a.version_id})" for a in plan.copies if a.change == "bring back"]
    lines += [
        f"M {a.key}  ({a.live_version_id} -> {a.version_id})"
        for a in plan.copies
        if a.change == "revert"
    ]
    lines += [f"- {a.key}  (delete marker over {a.live_version_id})" for a in plan.deletes]
    for line in lines[:limit]:
        print(line)
    if len(lines) > limit:
        print(f"# ... and {len(lines) - limit:,} more (--json lists them all)")
    for s in plan.skipped:
        print(f"SKIP {s['key']}: {s['message']}")
    for key in plan.forced:
        print(f"FORCE {key}: changed since the last sync; restored anyway (--force)")
    print(
        f"# {len(plan.copies):,} to bring back ({plan.bytes_to_copy:,} bytes to copy), "
        f"{len(plan.deletes):,} to delete (delete markers), {plan.unchanged:,} unchanged, "
        f"{len(plan.skipped):,} skipped"
    )


class _CountBar:
    """``done/total`` on one terminal line; silent when stderr is not a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int, fetched: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        extra = "" if fetched is None else f" files, {fetched:,} bytes"
        sys.stderr.write(f"\r{self.label}: {done:,}/{total:,}{extra}".ljust(78))
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_restore(args: argparse.Namespace) -> int:
    from .services import parse_s3_uri
    from .services.restore import RestoreService

    svc = _service(args)
    bucket, given_prefix = parse_s3_uri(args.uri)
    view = svc.views.resolve_view(
        bucket, at=args.to, prefix=given_prefix or None, default_now=False
    )
    restorer = RestoreService(svc)

    def say(message: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(message + "\n")

    where = f"s3://{bucket}/{view.prefix}"
    expect = None
    if args.dry_run or not args.yes:
        plan = restorer.plan(bucket, view.prefix, view.spec, force=args.force, on_catch_up=say)
        if args.dry_run:
            if args.json:
                _emit_json(plan.to_json())
            else:
                _print_restore_plan(plan)
                print("# dry run: nothing was changed")
            return 0
        if not plan.actions:
            return _restore_report(
                args,
                restorer.restore(
                    bucket, view.prefix, view.spec, force=args.force, parallel=args.parallel
                ),
            )
        if not args.json:
            _print_restore_plan(plan)
        if not sys.stdin.isatty():
            raise CliError(
                f"Restoring {where} changes {len(plan.actions):,} objects; review the plan "
                "(--dry-run) and re-run with --yes to confirm (no terminal to ask on)."
            )
        name = view.prefix.rstrip("/").rsplit("/", 1)[-1] or bucket
        answer = _ask(
            f"Nothing is deleted for good, and the state before is pinned as a label first. "
            f"Type {name!r} to restore {where}: "
        )
        if answer != name:
            sys.stderr.write("Not restored; nothing was changed.\n")
            return EXIT_ERROR
        expect = plan.fingerprint
    try:
        result = restorer.restore(
            bucket,
            view.prefix,
            view.spec,
            force=args.force,
            parallel=args.parallel,
            expect=expect,
            on_progress=_CountBar(f"restore {where}"),
            on_catch_up=say,
        )
    except KeyboardInterrupt:
        sys.stderr.write(
            "\nInterrupted. Run the same restore again to finish it: it does only what is left.\n"
        )
        return EXIT_INTERRUPTED
    return _restore_report(args, result)


def _restore_report(args: argparse.Namespace, result: Any) -> int:
    if args.json:
        _emit_json(result.to_json())
        return 0 if result.ok else EXIT_ERROR
    plan = result.plan
    where = f"s3://{plan.bucket}/{plan.prefix}"
    for s in plan.skipped:
        print(f"SKIPPED {s['key']}: {s['message']}")
    for f in result.failed:
        print(f"FAILED {f['key']}: {f['error']}")
    if not plan.actions:
        print(f"{where} already is as it was {plan.spec.display()}; nothing to do.")
    else:
        print(
            f"Restored {where} to {plan.spec.canonical()}: {result.copied:,} brought back "
            f"({result.bytes_copied:,} bytes copied), {result.deleted:,} delete markers, "
            f"{plan.unchanged:,} unchanged, in {result.seconds:.1f} s."
        )
        print(
            f"The state before is label {result.label}; to undo: infinstor-jlab restore "
            f"{where} --to label:/{result.label}"
        )
    check = result.check
    if check is not None:
        if check.matches:
            print(f"Checked: the live prefix equals the view ({check.keys_checked:,} keys).")
        else:
            unexpected = check.unexpected
            print(
                f"Checked: the live prefix differs from the view in {len(check.mismatches):,} "
                f"keys ({len(check.mismatches) - len(unexpected):,} of them skipped above)."
            )
            for m in unexpected:
                print(f"DIFFERS {m['key']}: {m['problem']}")
    return 0 if result.ok else EXIT_ERROR


def _view_of(svc: Any, text: str, uri: str | None) -> Any:
    """The view a get/verify names: a label alone (it brings its bucket and prefix), or any
    spec with s3://BUCKET/PREFIX (a label with a URI: that part of the label's view)."""
    from .services import parse_s3_uri
    from .services.views import LABEL_SCHEME, label_name

    is_label = text.startswith(LABEL_SCHEME)
    if uri is None:
        if not is_label:
            raise CliError(
                f"{text!r} is a time, not a label: give the bucket too, as in "
                f"`infinstor-jlab get {text} s3://BUCKET/PREFIX DIR`."
            )
        return svc.views.label_view(label_name(text))
    bucket, prefix = parse_s3_uri(uri)
    if is_label:
        return svc.views.resolve_view(bucket, label=label_name(text), prefix=prefix or None)
    return svc.views.resolve_view(bucket, at=text, prefix=prefix, default_now=False)


def cmd_get(args: argparse.Namespace) -> int:
    from .services.localcopy import LocalCopyService

    if len(args.where) == 1:
        uri, directory = None, args.where[0]
    elif len(args.where) == 2:
        uri, directory = args.where
    else:
        raise CliError("get takes VIEW [s3://BUCKET/PREFIX] DIR.")
    svc = _service(args)
    view = _view_of(svc, args.view, uri)

    def say(message: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(message + "\n")

    try:
        result = LocalCopyService(svc).get(
            view,
            directory,
            parallel=args.parallel,
            on_progress=_CountBar(f"get s3://{view.bucket}/{view.prefix}"),
            on_catch_up=say,
        )
    except KeyboardInterrupt:
        sys.stderr.write(
            "\nInterrupted. Run the same get again: it fetches only what is missing.\n"
        )
        return EXIT_INTERRUPTED
    if args.json:
        _emit_json(result.to_json())
        return 0 if result.ok else EXIT_ERROR
    for r in result.refused:
        print(f"REFUSED {r['key']!r}: {r['reason']}")
    for f in result.failed:
        print(f"FAILED {f['key']!r}: {f['error']}")
    print(
        f"Got s3://{view.bucket}/{view.prefix} {view.spec.display()} into {directory}: "
        f"{result.files:,} files ({result.fetched:,} fetched, {result.bytes_fetched:,} bytes; "
        f"{result.kept:,} already there) in {result.seconds:.1f} s; {result.fingerprint}"
    )
    return 0 if result.ok else EXIT_ERROR


def cmd_verify(args: argparse.Namespace) -> int:
    from .services.localcopy import LocalCopyService, read_manifest, verify_directory

    view = None
    if args.view:
        svc = _service(args)
        uri = args.uri
        manifest = read_manifest(args.directory)
        if uri is None and manifest and not args.view.startswith("label:/"):
            # A time alone: over the bucket and prefix the copy was made of.
            uri = f"s3://{manifest['view']['bucket']}/{manifest['view']['prefix']}"
        view = _view_of(svc, args.view, uri)
        result = LocalCopyService(svc).verify(args.directory, view)
    else:
        result = verify_directory(args.directory)  # the manifest alone: no index, no S3
    if args.json:
        _emit_json(result.to_json())
        return 0 if result.ok else EXIT_ERROR
    for label, items in (
        ("MISSING", result.missing),
        ("EXTRA", result.extra),
        ("CHANGED", result.changed),
        ("NOT IN COPY", result.view_missing),
        ("NOT IN VIEW", result.view_extra),
        ("OTHER VERSION", result.view_changed),
    ):
        for item in items:
            print(f"{label} {item}")
    if not result.complete:
        print("INCOMPLETE: the get that wrote this folder did not finish; run it again.")
    if result.ok:
        against = " and the view" if view is not None else ""
        print(f"{args.directory} matches its manifest{against}: {result.checked:,} files.")
    return 0 if result.ok else EXIT_ERROR


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(
        no_lab=args.no_lab, port=args.port, workdir=args.workdir, lab_port=args.lab_port
    )


# -- parser ---------------------------------------------------------------------------------
def _endpoint_url(args: argparse.Namespace, store: Any) -> str:
    import os

    return (
        args.url
        or os.environ.get("INFINSTOR_ENDPOINT")
        or store.recorded_endpoint()
        or "http://127.0.0.1:9000"
    )


def _profile_name(cred: Any) -> str:
    import re

    view = cred.view
    base = view.label or view.spec.canonical()
    return "infinstor-" + re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-").lower()[:48]


def cmd_endpoint_serve(args: argparse.Namespace) -> int:
    from .endpoint import EndpointServer
    from .services.credentials import CredentialService

    svc = _service(args)
    creds = CredentialService.for_service(svc)
    server = EndpointServer(svc, creds.store, host=args.host, port=args.port)

    def ready(url: str) -> None:
        sys.stderr.write(
            f"S3 endpoint for views on {url} (read-only; Ctrl-C stops it). Issue a credential "
            "with `infinstor-jlab endpoint credentials VIEW`.\n"
        )
        sys.stderr.flush()

    try:
        server.serve_forever(on_ready=ready)
    except OSError as exc:
        raise CliError(
            f"Cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); pick another "
            "--port (0: any free one)."
        ) from exc
    return 0


def cmd_endpoint_credentials(args: argparse.Namespace) -> int:
    from .services.credentials import CredentialService, credential_document

    svc = _service(args)
    creds = CredentialService.for_service(svc)
    if args.revoke:
        cred = creds.revoke(args.revoke)
        if args.json:
            _emit_json(cred.to_json())
        else:
            print(f"Revoked {cred.key_id}; the endpoint refuses it from now on.")
        return 0
    if args.list:
        items = creds.list()
        if args.json:
            _emit_json([c.to_json() for c in items])
            return 0
        if not items:
            print("No view credentials yet; `infinstor-jlab endpoint credentials VIEW` issues one.")
        for c in items:
            where = f"s3://{c.view.bucket}/{c.view.prefix}" if c.view.bucket else "all buckets"
            if not c.view.bucket and c.view.prefix:
                where += f" (prefix {c.view.prefix})"
            expires = format_iso(c.expires_ms) if c.expires_ms else "never"
            print(
                f"{c.key_id}  {c.state():8s} {c.view.spec_text or c.view.spec.canonical():32s} "
                f"{where}  expires {expires}"
            )
        return 0
    if not args.view:
        raise CliError(
            "Name the view to issue a credential for (a time spec, A/B, label:/NAME or "
            "run:/RUN_ID), or give --list or --revoke KEY_ID."
        )
    cred, secret = creds.issue(
        args.view, bucket=args.bucket, prefix=args.prefix, expires=args.expires
    )
    doc = credential_document(cred, secret, _endpoint_url(args, creds.store))
    if args.json:
        _emit_json(doc)
        return 0
    profile = args.profile or _profile_name(cred)
    view = cred.view
    where = f"s3://{view.bucket}/{view.prefix}" if view.bucket else "every indexed bucket"
    print(f"# A read-only credential for {where}, {view.spec.display()}")
    print(
        f"# (expires {doc['expires'] or 'never'}; revoke: infinstor-jlab endpoint credentials "
        f"--revoke {cred.key_id})"
    )
    print(f"export AWS_ENDPOINT_URL={doc['endpoint_url']}")
    print(f"export AWS_ACCESS_KEY_ID={cred.key_id}")
    print(f"export AWS_SECRET_ACCESS_KEY={secret}")
    print("export AWS_DEFAULT_REGION=us-east-1")
    print()
    print(f"# or, as an AWS CLI profile (~/.aws/config), used with --profile {profile}:")
    print(f"[profile {profile}]")
    print(f"aws_access_key_id = {cred.key_id}")
    print(f"aws_secret_access_key = {secret}")
    print("region = us-east-1")
    print(f"endpoint_url = {doc['endpoint_url']}")
    return 0


# -- pipelines -------------------------------------------------------------------------------
def _pipelines(args: argparse.Namespace) -> Any:
    """The pipeline service over this index, with the local and Spark executors (the same
    stores a Jupyter server on this index uses)."""
    import os

    from .index import sqlite_path
    from .pg import is_postgres_url
    from .transforms.executors import LocalExecutor, SparkExecutor
    from .transforms.pipelines import PipelineService, open_pipeline_store
    from .transforms.service import TransformService
    from .transforms.store import open_transform_store

    location = _index_location(args)
    if is_postgres_url(location):
        from jupyter_core.paths import jupyter_data_dir

        here = os.path.join(jupyter_data_dir(), "infinstor")
    else:
        here = os.path.dirname(os.path.abspath(sqlite_path(location)))
    transforms = TransformService(
        _service(args),
        open_transform_store(location),
        os.path.join(here, "transform-runs"),
        {"local": LocalExecutor(), "spark": SparkExecutor()},
        default_output_uri=os.environ.get("INFINSTOR_TRANSFORM_OUTPUT_URI", ""),
    )
    return PipelineService(transforms, open_pipeline_store(location))


def _print_pipeline_run(doc: dict[str, Any]) -> None:
    line = f"Pipeline run {doc['id']} of {doc['pipeline']}: {doc['state']}"
    if doc.get("error"):
        line += f" ({doc['error']})"
    print(line)
    width = max(len(s["step"]) for s in doc["steps"])
    for step in doc["steps"]:
        what = step["state"]
        if step["state"] == "cached":
            what += f"  reused run {step['cached_from']}"
        elif step["run_id"]:
            what += f"  run {step['run_id']}"
            if step["state"] == "running" and step["total"]:
                what += f"  {step['done']}/{step['total']} objects"
        if step["output_label"] and step["state"] in ("succeeded", "cached"):
            what += f"  label:/{step['output_label']}"
        if step["error"]:
            what += f"  ({step['error']})"
        print(f"  {step['step']:<{width}}  {what}")


def cmd_pipeline_save(args: argparse.Namespace) -> int:
    import getpass

    from .transforms.pipelines import load_pipeline_text

    try:
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise CliError(f"Cannot read {args.file}: {exc.strerror or exc}.") from exc
    pipeline, created = _pipelines(args).save(load_pipeline_text(text), author=getpass.getuser())
    if args.json:
        _emit_json(pipeline.to_json())
    else:
        print(
            f"{'Saved' if created else 'Replaced'} pipeline {pipeline.name} "
            f"({len(pipeline.steps)} steps: {', '.join(s.name for s in pipeline.steps)})."
        )
    return 0


def cmd_pipeline_list(args: argparse.Namespace) -> int:
    docs = _pipelines(args).list_pipelines()
    if args.json:
        _emit_json({"pipelines": docs})
        return 0
    if not docs:
        print("No pipelines yet: infinstor-jlab pipeline save FILE.")
    for doc in docs:
        last = doc["last_run"]
        when = f"last run {last['id']} {last['state']}" if last else "never run"
        print(f"{doc['name']}  {len(doc['steps'])} steps  {when}")
    return 0


def cmd_pipeline_show(args: argparse.Namespace) -> int:
    doc = _pipelines(args).get(args.name)
    if args.json:
        _emit_json(doc)
        return 0
    print(f"Pipeline {doc['name']}" + (f": {doc['description']}" if doc["description"] else ""))
    for step in doc["steps"]:
        src = step["input"]
        reads = "steps " + ", ".join(src["steps"]) if src.get("type") == "step" else json.dumps(src)
        rev = f" r{step['revision']}" if step["revision"] else ""
        print(f"  {step['name']}: {step['transform']}{rev} on {step['executor']}, reads {reads}")
    return 0


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    import getpass

    svc = _pipelines(args)
    run = svc.create_run(args.name, cache=not args.no_cache, author=getpass.getuser())
    if not args.wait:
        _spawn_driver(args, run.id, svc.transforms.workdir)
        if args.json:
            _emit_json(svc.get_run_json(run.id))
        else:
            print(
                f"Started pipeline run {run.id} of {args.name}; "
                f"`infinstor-jlab pipeline status {run.id}` follows it."
            )
        return 0
    seen: dict[str, str] = {}

    def changed(now: Any) -> None:
        if args.json:
            return
        for name, step in now.steps.items():
            if seen.get(name) != step.state:
                seen[name] = step.state
                extra = f" (reused run {step.cached_from})" if step.cached_from else ""
                extra += f": {step.error}" if step.error else ""
                print(f"  {name}: {step.state}{extra}", flush=True)

    if not args.json:
        print(f"Pipeline run {run.id} of {args.name}", flush=True)
    try:
        done = svc.drive(run.id, on_change=changed)
    except KeyboardInterrupt:
        svc.store.request_cancel(run.id)
        done = svc.drive(run.id)
    finally:
        svc.transforms.close()
    doc = svc.get_run_json(done.id)
    if args.json:
        _emit_json(doc)
    else:
        _print_pipeline_run(doc)
    return 0 if done.state == "succeeded" else EXIT_ERROR


def _spawn_driver(args: argparse.Namespace, run_id: str, workdir: str) -> None:
    """Drive a pipeline run from a process of its own (detached from this terminal)."""
    import os
    import subprocess

    command = [sys.executable, "-m", "infinstor_jlab.cli", "pipeline", "drive", run_id]
    command += ["--index", _index_location(args)]
    if args.endpoint_url:
        command += ["--endpoint-url", args.endpoint_url]
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, f"pipeline-{run_id}.log"), "ab") as log:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def cmd_pipeline_drive(args: argparse.Namespace) -> int:
    svc = _pipelines(args)
    try:
        done = svc.drive(args.run_id)
    finally:
        svc.transforms.close()
    return 0 if done.state == "succeeded" else EXIT_ERROR


def cmd_pipeline_status(args: argparse.Namespace) -> int:
    doc = _pipelines(args).get_run_json(args.run_id)
    if args.json:
        _emit_json(doc)
    else:
        _print_pipeline_run(doc)
    return 0


def cmd_pipeline_cancel(args: argparse.Namespace) -> int:
    svc = _pipelines(args)
    svc.cancel(args.run_id)
    if args.wait:
        done = svc.wait(args.run_id, timeout=600)
        if args.json:
            _emit_json(svc.get_run_json(done.id))
        else:
            _print_pipeline_run(svc.get_run_json(done.id))
        return 0
    if args.json:
        _emit_json(svc.get_run_json(args.run_id))
    else:
        print(f"Cancelling pipeline run {args.run_id}: its running steps are being stopped.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index",
        default=argparse.SUPPRESS,
        help="index URL (sqlite:///path); default $INFINSTOR_INDEX_URL, else a "
        "file under the Jupyter data directory",
    )
    common.add_argument(
        "--endpoint-url",
        default=argparse.SUPPRESS,
        help="S3 endpoint for S3-compatible stores (default: boto3's, which "
        "honours AWS_ENDPOINT_URL)",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON only")

    parser = argparse.ArgumentParser(
        prog="infinstor-jlab",
        description="Time travel over versioned S3 buckets: snapshots, slices, diffs, labels.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "track", parents=[common], help="enable versioning (after asking) and index a bucket"
    )
    p.add_argument("bucket")
    p.add_argument("--yes", action="store_true", help="do not ask before enabling versioning")
    p.add_argument("--no-sync", action="store_true", help="register only; sync later")
    p.add_argument(
        "--events",
        action="store_true",
        help="also route the bucket's S3 events to an SQS queue for live updates",
    )
    p.add_argument(
        "--parallel",
        type=_parallel_streams,
        default=16,
        metavar="N",
        help="ListObjectVersions streams at once (1-256; 1 = one stream, default 16)",
    )
    p.add_argument(
        "--inventory",
        metavar="S3_URI",
        help="first import an all-versions S3 Inventory report: the configuration's folder "
        "s3://DEST/PREFIX/BUCKET/CONFIG-ID/ (its newest complete report) or a manifest.json",
    )
    p.set_defaults(func=cmd_track)

    p = sub.add_parser(
        "status", parents=[common, as_json], help="a bucket's index: counts, syncs, exact since"
    )
    p.add_argument("bucket")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "untrack",
        parents=[common],
        help="remove the event queue and notification entry track added",
    )
    p.add_argument("bucket")
    p.add_argument("--forget", action="store_true", help="also drop its history from the index")
    p.set_defaults(func=cmd_untrack)

    p = sub.add_parser(
        "watch",
        parents=[common],
        help="keep tracked buckets current without Jupyter (events + reconcile)",
    )
    p.add_argument("buckets", nargs="*", metavar="BUCKET")
    p.add_argument("--wait", type=int, default=10, help="SQS long-poll seconds (1-20)")
    p.add_argument(
        "--reconcile",
        type=float,
        default=300.0,
        help="seconds between ListObjectVersions passes (0: never)",
    )
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "sync", parents=[common], help="bring the index up to date from ListObjectVersions"
    )
    p.add_argument("bucket")
    p.add_argument(
        "--full",
        action="store_true",
        help="start a new pass from the first key instead of resuming",
    )
    p.add_argument(
        "--parallel",
        type=_parallel_streams,
        default=16,
        metavar="N",
        help="ListObjectVersions streams at once (1-256; 1 = one stream, default 16)",
    )
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("ls", parents=[common, as_json], help="list a bucket as of a time")
    p.add_argument("uri", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument("--at", metavar="SPEC", help="snapshot time (default: now)")
    p.add_argument("--slice", metavar="SPEC", help="only what arrived in a window")
    p.add_argument("--label", metavar="NAME", help="the view a label pins")
    p.add_argument("--recursive", action="store_true", help="no folder roll-up")
    p.add_argument("--max-keys", type=int, metavar="N", help="one page of at most N entries")
    p.add_argument("--token", metavar="T", help="continuation token from a previous page")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("diff", parents=[common, as_json], help="what changed between two times")
    p.add_argument("uri", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument("--from", dest="from_spec", required=True, metavar="SPEC")
    p.add_argument("--to", dest="to_spec", required=True, metavar="SPEC")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("history", parents=[common, as_json], help="every version of one key")
    p.add_argument("uri", metavar="s3://BUCKET/KEY")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "timeline",
        parents=[common, as_json],
        help="versions created/deleted over time under a prefix",
    )
    p.add_argument("uri", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument("--from", dest="from_spec", metavar="SPEC")
    p.add_argument("--to", dest="to_spec", metavar="SPEC")
    p.add_argument("--bins", type=int, default=50)
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("timespec", parents=[common, as_json], help="parse and explain a spec")
    p.add_argument("spec")
    p.set_defaults(func=cmd_timespec)

    index = sub.add_parser("index", help="the snapshot index itself")
    isub = index.add_subparsers(dest="index_command", metavar="SUBCOMMAND")
    isub.required = True
    p = isub.add_parser(
        "copy",
        parents=[as_json],
        help="copy an index to another URL (SQLite <-> PostgreSQL) and verify it",
        description=(
            "Copy every bucket's history, the labels, transforms and runs from SRC_URL to "
            "DST_URL (sqlite:///path or postgresql://user@host/db), then check every bucket's "
            "fingerprint and every label's on the copy."
        ),
    )
    p.add_argument("src", metavar="SRC_URL")
    p.add_argument("dst", metavar="DST_URL")
    p.add_argument(
        "--force",
        action="store_true",
        help="copy into a destination that is not empty (the copied buckets' history there "
        "is replaced)",
    )
    p.set_defaults(func=cmd_index_copy)

    label = sub.add_parser("label", help="named, immutable views")
    lsub = label.add_subparsers(dest="label_command", metavar="ACTION")
    lsub.required = True
    p = lsub.add_parser("create", parents=[common, as_json], help="pin a view under a name")
    p.add_argument("name")
    p.add_argument("uri", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument("--at", metavar="SPEC")
    p.add_argument("--slice", metavar="SPEC")
    p.add_argument("--description", default="")
    p.set_defaults(func=cmd_label_create)
    p = lsub.add_parser("list", parents=[common, as_json])
    p.set_defaults(func=cmd_label_list)
    p = lsub.add_parser("show", parents=[common, as_json])
    p.add_argument("name")
    p.set_defaults(func=cmd_label_show)
    p = lsub.add_parser("delete", parents=[common, as_json])
    p.add_argument("name")
    p.set_defaults(func=cmd_label_delete)
    p = lsub.add_parser(
        "verify",
        parents=[common, as_json],
        help="recompute the fingerprint from the index and check S3",
    )
    p.add_argument("name")
    p.add_argument("--no-s3", action="store_true", help="check the index only")
    p.set_defaults(func=cmd_label_verify)

    pipeline = sub.add_parser("pipeline", help="DAGs of saved transforms, with a result cache")
    psub = pipeline.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    psub.required = True
    p = psub.add_parser(
        "save", parents=[common, as_json], help="save (or replace) a pipeline from a YAML/JSON file"
    )
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_pipeline_save)
    p = psub.add_parser("list", parents=[common, as_json], help="the saved pipelines")
    p.set_defaults(func=cmd_pipeline_list)
    p = psub.add_parser("show", parents=[common, as_json], help="one pipeline's steps")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_pipeline_show)
    p = psub.add_parser(
        "run",
        parents=[common, as_json],
        help="run a pipeline (in the background; --wait to follow it here)",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--no-cache", action="store_true", help="run every step, even one whose result is cached"
    )
    p.add_argument("--wait", action="store_true", help="drive the run here and wait for its end")
    p.set_defaults(func=cmd_pipeline_run)
    p = psub.add_parser("drive", parents=[common])  # what `run` starts in the background
    p.add_argument("run_id")
    p.set_defaults(func=cmd_pipeline_drive)
    p = psub.add_parser("status", parents=[common, as_json], help="a pipeline run's steps")
    p.add_argument("run_id", metavar="RUN_ID")
    p.set_defaults(func=cmd_pipeline_status)
    p = psub.add_parser(
        "cancel", parents=[common, as_json], help="stop a pipeline run (all its running steps)"
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--wait", action="store_true", help="wait until its steps have stopped")
    p.set_defaults(func=cmd_pipeline_cancel)

    endpoint = sub.add_parser(
        "endpoint", help="the S3-compatible endpoint any S3 client reads views through"
    )
    esub = endpoint.add_subparsers(dest="endpoint_command", metavar="ACTION")
    esub.required = True
    p = esub.add_parser(
        "serve", parents=[common], help="run the read-only S3 endpoint in the foreground"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="port (default 9000; 0: any free)")
    p.set_defaults(func=cmd_endpoint_serve)
    p = esub.add_parser(
        "credentials",
        parents=[common, as_json],
        help="issue, list or revoke credentials that read exactly one view",
    )
    p.add_argument(
        "view",
        nargs="?",
        metavar="VIEW",
        help="time spec (tm..., ISO, now), slice (A/B), label:/NAME or run:/RUN_ID",
    )
    p.add_argument("--bucket", help="only this bucket (default: every indexed bucket)")
    p.add_argument("--prefix", help="only keys under this prefix")
    p.add_argument("--expires", default="7d", help="lifetime: 90s, 15m, 12h, 7d, 2w (default 7d)")
    p.add_argument("--url", help="the endpoint URL clients use (default: the last one started)")
    p.add_argument("--profile", help="name of the AWS CLI profile printed")
    p.add_argument("--list", action="store_true", help="list the credentials issued")
    p.add_argument("--revoke", metavar="KEY_ID", help="revoke one credential at once")
    p.set_defaults(func=cmd_endpoint_credentials)

    p = sub.add_parser(
        "restore",
        parents=[common, as_json],
        help="put a folder back as it was at a time (copies old versions back; nothing is "
        "deleted for good)",
    )
    p.add_argument("uri", metavar="s3://BUCKET/PREFIX")
    p.add_argument("--to", required=True, metavar="SPEC", help="the time (or label) to go back to")
    p.add_argument("--dry-run", action="store_true", help="show the plan only")
    p.add_argument("--yes", action="store_true", help="do not ask before changing S3")
    p.add_argument("--parallel", type=int, default=8, metavar="N", help="copies at once (1-64)")
    p.add_argument(
        "--force",
        action="store_true",
        help="also restore keys written since the index's last sync",
    )
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "get",
        parents=[common, as_json],
        help="download exactly a view's versions into a folder (resumable), with a manifest",
    )
    p.add_argument("view", metavar="VIEW", help="label:/NAME, a time, a slice, run:/ID")
    p.add_argument("where", nargs="+", metavar="[s3://BUCKET/PREFIX] DIR")
    p.add_argument("--parallel", type=int, default=8, metavar="N", help="downloads at once")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "verify",
        parents=[common, as_json],
        help="check a folder written by get against its manifest (and a view)",
    )
    p.add_argument("directory", metavar="DIR")
    p.add_argument("view", nargs="?", metavar="VIEW")
    p.add_argument("uri", nargs="?", metavar="s3://BUCKET/PREFIX")
    p.set_defaults(func=cmd_verify)

    sched = sub.add_parser(
        "schedules", help="run a transform by cron or every N minutes over new arrivals"
    )
    ssub = sched.add_subparsers(dest="schedules_command", metavar="ACTION")
    ssub.required = True
    p = ssub.add_parser("create", parents=[common, as_json], help="define a schedule")
    p.add_argument("name")
    p.add_argument("--transform", required=True, help="the saved transform it runs")
    p.add_argument("--revision", type=int, help="pin a revision (default: the latest)")
    p.add_argument("--bucket", required=True, help="the tracked bucket it reads")
    p.add_argument("--prefix", help="only keys under this prefix")
    p.add_argument(
        "--mode",
        choices=["incremental", "snapshot"],
        default="incremental",
        help="incremental (default): the slice of arrivals since the previous run; "
        "snapshot: the whole prefix as of each firing",
    )
    when = p.add_mutually_exclusive_group()
    when.add_argument("--cron", help="five-field cron expression in UTC, e.g. '0 2 * * *'")
    when.add_argument("--every", type=int, metavar="MINUTES", help="every N minutes")
    p.add_argument("--if-new-data", action="store_true", help="skip a firing when nothing arrived")
    p.add_argument("--executor", default="local", help="local, spark, emr or emr-serverless")
    p.add_argument("--output", help="S3 URI the runs write under (<uri>/<run id>/)")
    p.add_argument("--kwargs", help="JSON object of the entry point's keyword arguments")
    p.add_argument("--requirement", action="append", help="an extra pip requirement (repeat)")
    p.add_argument(
        "--settle",
        type=int,
        default=60,
        metavar="SECONDS",
        help="a window ends this long before its firing (writes in flight; default 60)",
    )
    p.add_argument("--start", metavar="SPEC", help="where the first window begins (default: now)")
    p.set_defaults(func=cmd_schedules_create)
    p = ssub.add_parser("list", parents=[common, as_json], help="the schedules and their state")
    p.set_defaults(func=cmd_schedules_list)
    p = ssub.add_parser("show", parents=[common, as_json], help="one schedule and its windows")
    p.add_argument("name")
    p.set_defaults(func=cmd_schedules_show)
    for action in ("pause", "resume"):
        p = ssub.add_parser(action, parents=[common], help=f"{action} a schedule")
        p.add_argument("name")
        p.set_defaults(func=cmd_schedules_pause)
    p = ssub.add_parser("delete", parents=[common], help="delete a schedule and its history")
    p.add_argument("name")
    p.set_defaults(func=cmd_schedules_delete)
    for action, text in (
        ("run-due", "fire what is due, wait for the runs, record them (for cron/systemd)"),
        ("run", "fire one schedule now, wait for its run, record it"),
    ):
        p = ssub.add_parser(action, parents=[common, as_json], help=text)
        if action == "run":
            p.add_argument("name")
        p.add_argument("--no-wait", action="store_true", help="start the runs and return")
        p.add_argument(
            "--timeout", type=float, default=3600.0, help="seconds to wait for a run (3600)"
        )
        p.set_defaults(func=cmd_schedules_run)

    p = sub.add_parser(
        "demo", parents=[common], help="local S3 with a versioned sample dataset, then JupyterLab"
    )
    p.add_argument(
        "--no-lab",
        action="store_true",
        help="print CLI commands to try instead of starting JupyterLab",
    )
    p.add_argument(
        "--port", type=int, default=0, help="the local S3 endpoint's port (default: any free one)"
    )
    p.add_argument(
        "--lab-port",
        type=int,
        default=None,
        help="JupyterLab's port (default: JupyterLab's own choice, 8888 or the next free one)",
    )
    p.add_argument("--workdir", help="where the demo keeps its index (default: a temp dir)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # --index and --endpoint-url are accepted before or after the command. Their defaults are
    # filled in here, not with set_defaults: the parsers share these option objects (parents=),
    # so a default set on one would reach the command's parser too and overwrite a value given
    # before the command.
    for name in ("index", "endpoint_url"):
        if not hasattr(args, name):
            setattr(args, name, None)
    if getattr(args, "max_keys", None) is not None and not 1 <= args.max_keys <= 1000:
        parser.error("--max-keys must be between 1 and 1000")
    try:
        # An option given with an empty value (`--at "$T"` with T unset) is a mistake, not
        # "now": the option's absence is how to ask for now.
        for option, dest in (
            ("--at", "at"),
            ("--slice", "slice"),
            ("--from", "from_spec"),
            ("--to", "to_spec"),
            ("--to", "to"),
        ):
            value = getattr(args, dest, None)
            if isinstance(value, str) and not value.strip():
                raise BadTimeSpec(accepted_forms_message(f"{option} was given an empty time spec."))
        return int(args.func(args) or 0)
    except InfinstorError as exc:
        sys.stderr.write(f"infinstor-jlab: {exc.message}\n")
        return EXIT_ERROR
    except sqlite3.DatabaseError as exc:
        # The index opened but a read or write failed (a damaged file, a full disk, a
        # read-only file): say so and what to do; a sync rebuilds a new index from S3.
        sys.stderr.write(
            f"infinstor-jlab: The index at {_index_location(args)} could not be used ({exc}). "
            "Check the disk and the file's permissions, or point --index at a new file and "
            "run `infinstor-jlab sync BUCKET` to rebuild it from S3.\n"
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrupted.\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["BadRequest", "build_parser", "main"]
