"""The one view resolver: every adapter (REST, CLI, transforms, kernel-side time travel) turns
"which view?" (at | slice | label, a bucket, a prefix) into a :class:`View` here.

Keeping it in one place keeps the edges the same everywhere: which combinations are refused,
with which words, what prefix a label implies, and when a listing is confined to a label's
prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BadRequest, BadTimeSpec
from ..index.base import SnapshotIndex
from ..index.models import LabelRecord
from ..timespec import (
    TimeSpec,
    accepted_forms_message,
    is_future,
    parse_time_spec,
    window_start_ms,
)

LABEL_SCHEME = "label:/"


class ViewChoiceError(BadRequest, ValueError):
    """A view asked for in a way that names no single view (two of at/slice/label, a single
    time where a window is needed...). A ValueError too, as the kernel-side API raised."""


@dataclass(frozen=True)
class View:
    """A resolved view over one bucket.

    ``prefix`` is the prefix to read (the one given, else the label's); ``within`` is set when
    the view *is* a label (``label=``): then only keys under the label's prefix belong to it.
    A ``label:/`` spec given as ``at``/``slice`` is the label's time over any prefix."""

    bucket: str
    spec: TimeSpec
    prefix: str
    within: str | None = None


def label_spec(label: LabelRecord, *, text: str | None = None) -> TimeSpec:
    """The time spec a label pins (absolute times, with the label's bucket and prefix)."""
    return TimeSpec(
        kind="slice" if label.kind == "slice" else "snapshot",
        start_ms=label.start_ms,
        end_ms=label.end_ms,
        text=label.spec if text is None else text,
        label=label.name,
        label_bucket=label.bucket,
        label_prefix=label.prefix,
    )


def label_name(text: str) -> str:
    """A label given as ``name`` or ``label:/name``."""
    return text.removeprefix(LABEL_SCHEME)


def check_label_bucket(spec: TimeSpec, bucket: str) -> None:
    """A label pins one bucket: using it on another is a mistake, not an empty view."""
    if spec.label_bucket and spec.label_bucket != bucket:
        raise BadRequest(
            f"Label {spec.label!r} is a view of bucket {spec.label_bucket!r}, not {bucket!r}; "
            f"use it with s3://{spec.label_bucket}/{spec.label_prefix or ''}."
        )


def refuse_future(spec: TimeSpec) -> None:
    """What S3 will hold later is not known: a view that ends in the future can be neither
    read nor pinned (and waiting for its last second would hold the caller until then)."""
    if is_future(spec.end_ms):
        raise BadTimeSpec(
            f"{spec.display()} is in the future; a view is read or pinned as S3 was at a "
            "time up to now (`now` for the present)."
        )


def _only_one(*choices: object) -> None:
    if len([x for x in choices if x is not None and x != ""]) > 1:
        raise ViewChoiceError(
            "Give only one of at, slice and label (--at, --slice, --label; at=, slice=, "
            "label= in Python)."
        )


def _require_window(text: str, spec: TimeSpec) -> TimeSpec:
    if not spec.is_slice:
        raise ViewChoiceError(
            f"{text!r} is a single time; a slice needs a window such as "
            "tm20261101000000-tm20261120000000 or A/B."
        )
    return spec


class ViewResolver:
    """Parses time specs (it is the :class:`~infinstor_jlab.timespec.SpecResolver` that
    ``label:/`` and ``run:/`` specs call back) and resolves views."""

    def __init__(
        self,
        index: Callable[[], SnapshotIndex],
        run_resolver: Callable[[str], TimeSpec],
        *,
        access: Callable[[str], None] | None = None,
    ) -> None:
        # A callable: the kernel side opens its index lazily, on the first read.
        self._index = index
        self._run_resolver = run_resolver
        # Raises AccessDenied unless the caller's credentials may read a bucket (see
        # services/access.py): every view of a bucket resolved here is checked first.
        self._access = access

    def require_access(self, bucket: str) -> None:
        if self._access is not None:
            self._access(bucket)

    # SpecResolver protocol
    def resolve_label(self, name: str) -> TimeSpec:
        return label_spec(self._index().get_label(name), text=f"{LABEL_SCHEME}{name}")

    def resolve_run(self, run_id: str) -> TimeSpec:
        return self._run_resolver(run_id)

    # -- specs ------------------------------------------------------------------------------
    def parse_spec(
        self, text: str | int | TimeSpec | None, *, default_now: bool = True
    ) -> TimeSpec:
        """One time spec; absent or blank means now only where ``default_now``."""
        if isinstance(text, TimeSpec):
            return text
        if text is None or (isinstance(text, str) and not text.strip()):
            if default_now:
                return parse_time_spec("now")
            raise BadTimeSpec(accepted_forms_message("A time spec is required."))
        return parse_time_spec(text, resolver=self)

    def resolve_spec(
        self,
        *,
        at: str | int | TimeSpec | None = None,
        slice_: str | TimeSpec | None = None,
        label: str | None = None,
        default_now: bool = True,
    ) -> TimeSpec:
        """The time spec of an (at | slice | label) choice, not bound to a bucket (the
        kernel side: one client reads many buckets)."""
        _only_one(at, slice_, label)
        if label:
            return self.resolve_label(label_name(label))
        if slice_:
            return _require_window(str(slice_), self.parse_spec(slice_))
        return self.parse_spec(at, default_now=default_now)

    def label_view(self, name: str) -> View:
        """The view a label is: its bucket, its prefix, confined to that prefix."""
        label = self._index().get_label(label_name(name))
        self.require_access(label.bucket)
        return View(label.bucket, label_spec(label), label.prefix, within=label.prefix)

    # -- views ------------------------------------------------------------------------------
    def resolve_view(
        self,
        bucket: str,
        *,
        at: str | None = None,
        slice_: str | None = None,
        label: str | None = None,
        prefix: str | None = None,
        default_now: bool = True,
    ) -> View:
        """A listing's or an object's view. ``prefix=None`` means "not given": a label's
        prefix then (as ``label=`` or a ``label:/`` spec), else the whole bucket."""
        self.require_access(bucket)
        spec = self.resolve_spec(at=at, slice_=slice_, label=label, default_now=default_now)
        check_label_bucket(spec, bucket)
        effective = prefix if prefix is not None else (spec.label_prefix or "")
        within = (spec.label_prefix or None) if label else None
        return View(bucket, spec, effective, within)

    def resolve_pin(
        self,
        bucket: str,
        prefix: str,
        *,
        at: str | None = None,
        slice_: str | None = None,
        default_now: bool = True,
    ) -> View:
        """The view a new label (or another pin) names: one time (``at``) or a window
        (``slice``) over exactly ``prefix``."""
        self.require_access(bucket)
        spec = self.resolve_spec(at=at, slice_=slice_, default_now=default_now)
        if not slice_ and spec.is_slice:
            raise ViewChoiceError(
                f"at must be a single time, but {at!r} is a window; give it as the slice "
                'instead (--slice, "slice").'
            )
        check_label_bucket(spec, bucket)
        return View(bucket, spec, prefix)

    def resolve_diff(self, from_text: str | None, to_text: str | None) -> tuple[TimeSpec, TimeSpec]:
        """The two ends of a diff; both are required (no silent "now")."""
        if not from_text or not to_text:
            raise BadTimeSpec(
                accepted_forms_message(
                    "A diff needs both a from and a to time spec (e.g. from tm20261101000000 "
                    "to now)."
                )
            )
        return (
            self.parse_spec(from_text, default_now=False),
            self.parse_spec(to_text, default_now=False),
        )

    def time_window(
        self, from_text: str | None, to_text: str | None
    ) -> tuple[int | None, int | None]:
        """A timeline's bounds in ms: from the start of ``from`` (a slice's start) to the end
        of ``to``; either may be absent (the bucket's first/last version)."""
        from_ms = (
            window_start_ms(self.parse_spec(from_text, default_now=False)) if from_text else None
        )
        to_ms = self.parse_spec(to_text, default_now=False).end_ms if to_text else None
        return from_ms, to_ms
