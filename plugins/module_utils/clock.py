# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's wall clock.

Every "what time is it" of the engine goes through `now()`, so that tests set the date in one
place (tests/unit/conftest.py freezes it) and never depend on the day they run. Durations may
still be measured with time.monotonic() or time.time() differences.
"""

import datetime
import time


def now():
    """Seconds since the epoch, as time.time()."""
    return time.time()


def utc_now_text():
    """The current time as ISO 8601 UTC with a Z, e.g. 2026-11-21T09:11:40Z."""
    return datetime.datetime.fromtimestamp(now(), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
