"""Time helpers shared by the S3-backed tests."""

from __future__ import annotations

import math
import time


def next_second() -> int:
    """Sleep into the next whole second; return the last millisecond before it. Everything
    written before the call has a time <= the result, everything after a greater one, whether
    the store reports whole seconds or milliseconds, and however long the writes before it
    took (a slow machine can carry a batch of writes into the next second)."""
    now = time.time()
    boundary = math.floor(now) + 1
    time.sleep(boundary - now + 0.02)
    return boundary * 1000 - 1
