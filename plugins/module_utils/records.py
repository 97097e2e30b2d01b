# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Machine-readable records of every job: what ran, how long it took, how it ended.

The last record of each job is a JSON file written atomically; monitoring reads these files.
"""

import json
import os
import tempfile
import time

from . import clock

DEFAULT_RECORD_DIR = '/var/lib/pgops-backup/records'
# In the record directory: the PITR audit trail (one file a recovery), beside the last record of each job.
PITR_AUDIT_SUBDIR = 'pitr-audit'
# Records of pg_dump jobs: pg-dump-JOB.json (pg_dump- of older releases).
DUMP_RECORD_PREFIXES = ('pg-dump-', 'pg_dump-')


def utc_now():
    return clock.utc_now_text()


def write_json_atomic(path, data, mode=0o640):
    """Write JSON next to path and rename it into place: readers never see a partial file."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class JobRecord(object):
    """Collects one job's facts; `finish` stamps the outcome and writes `<dir>/<job>.json`."""

    def __init__(self, job, record_dir=DEFAULT_RECORD_DIR, **fields):
        self.job = job
        self.record_dir = record_dir
        self._started = time.time()
        self.data = {'job': job, 'started_at': utc_now(), 'status': 'running'}
        self.data.update(fields)

    def finish(self, status, **fields):
        self.data.update(fields)
        self.data['status'] = status
        self.data['finished_at'] = utc_now()
        self.data['finished_epoch'] = int(clock.now())
        self.data['duration_seconds'] = round(time.time() - self._started, 3)
        if self.record_dir:
            if not os.path.isdir(self.record_dir):
                os.makedirs(self.record_dir, 0o750)
            write_json_atomic(os.path.join(self.record_dir, '%s.json' % self.job), self.data)
        return self.data
