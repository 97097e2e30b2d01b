# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stanza's WAL archive as preflight reads it: segments fetched with `archive-get` into a
private temporary directory, decoded with `pg_waldump`, timeline history files, and the
repository listing that proves the WAL a recovery needs has no gap.

Reading only: nothing here writes to the repository or to a data directory.
"""

import json

from .pgbackrest import error_from_result
from .pgserver import pg_binary
from .pitr import Segments, parse_history, parse_waldump
from .process import EngineError

# pg_waldump ends with one of these when it simply ran out of WAL in the files it was given.
_END_OF_WAL = ('could not find file', 'invalid record length', 'could not find a valid record',
               'invalid magic number', 'unexpected pageaddr', 'missing contrecord', 'record with incorrect prev-link',
               'invalid resource manager ID', 'record length', 'contrecord')


class WalArchive(object):
    """Read access to one stanza's WAL archive (use as a context manager: the temporary
    directory is removed on exit)."""

    def __init__(self, pgbr, version, segment_size, archive_id=None, repo=None, pg_path=None):
        self.pgbr = pgbr
        # archive-get reads pg_control of pg1-path (to match the stanza's system identifier); when the
        # cluster's data directory has none (an unfinished restore), another copy of this cluster's.
        self.pg_path = pg_path
        self.runner = pgbr.runner
        self.version = version
        self.segments = Segments(segment_size)
        self.archive_id = archive_id
        self.repo = repo
        self.tmp = None
        self.fetched = []
        self._listings = {}
        self.times = {}  # segment name -> when the repository stored it (epoch), from the listings
        # Decoded segments of this read, by pg_waldump arguments: an archived segment never changes, so
        # a second question about it is answered without a second archive-get and pg_waldump.
        self._decoded = {}
        self.fetched_once = set()  # every file archive-get delivered during this read, dropped or not

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _dir(self):
        if self.tmp is None:
            self.tmp = self.runner.run(['mktemp', '-d', '/tmp/pgops-pitr.XXXXXX'], what='mktemp').stdout.strip()
        return self.tmp

    def cleanup(self):
        if self.tmp:
            self.runner.run(['rm', '-rf', '--one-file-system', '--', self.tmp], check=False)
            self.tmp = None

    def fetch(self, name):
        """archive-get one file (segment or history) into the temporary directory; its path, or
        None when the archive does not have it."""
        dest = '%s/%s' % (self._dir(), name)
        options = ['--no-archive-async', '--log-level-console=warn']
        if self.pg_path:
            options.append('--pg1-path=%s' % self.pg_path)
        argv = self.pgbr.argv('archive-get', *options) + [name, dest]
        result = self.runner.run(argv, check=False)
        if result.rc == 0:
            self.fetched.append(name)
            self.fetched_once.add(name)
            return dest
        if result.rc == 1 and 'ERROR' not in (result.stdout + result.stderr):
            return None
        raise error_from_result(result, 'pgbackrest archive-get %s' % name)

    def drop(self, name):
        self.runner.run(['rm', '-f', '--', '%s/%s' % (self._dir(), name)], check=False)

    def read(self, name):
        path = self.fetch(name)
        if path is None:
            return None
        return self.runner.run(['cat', '--', path], what='cat').stdout

    def waldump(self, name, rmgr=None, xid=None, start=None, limit=None):
        """Records of one fetched segment (fetching it when needed); None when it is not archived."""
        key = (name, rmgr, xid, start, limit)
        if key in self._decoded:
            return [dict(record) for record in self._decoded[key]]
        if name not in self.fetched and self.fetch(name) is None:
            return None
        argv = [pg_binary(self.runner, self.version, 'pg_waldump'), '--path=%s' % self._dir()]
        if rmgr:
            argv.append('--rmgr=%s' % rmgr)
        if xid is not None:
            argv.append('--xid=%d' % xid)
        if start:
            argv.append('--start=%s' % start)
        if limit:
            argv.append('--limit=%d' % limit)
        argv.append(name)
        result = self.runner.run(argv, check=False, env={'TZ': 'UTC'})
        records = parse_waldump(result.stdout)
        if result.rc != 0 and not records and not any(m in result.stderr for m in _END_OF_WAL):
            raise EngineError('pg_waldump could not read WAL segment %s' % name, argv=result.argv, rc=result.rc,
                              stdout=result.stdout, stderr=result.stderr)
        self._decoded[key] = [dict(record) for record in records]
        return records

    # --- timelines -------------------------------------------------------------------------------

    def newest_timeline(self, tli):
        """The timeline PostgreSQL's recovery_target_timeline=latest would pick: the highest
        whose history file is archived, starting from `tli`."""
        for _attempt in range(1000):
            if self.fetch('%08X.history' % (tli + 1)) is None:
                return tli
            tli += 1
        return tli

    def history(self, tli):
        """[(parent_tli, switchpoint_lsn)] of a timeline, oldest first ([] for timeline 1)."""
        if tli <= 1:
            return []
        text = self.read('%08X.history' % tli)
        if text is None:
            raise EngineError('timeline %d has no history file in the archive' % tli,
                              hint='choose a timeline that exists (see 0000000N.history files in the repository)')
        return parse_history(text)

    @staticmethod
    def covering(segno, path, segments):
        """Timelines (newest first) whose WAL can hold segment `segno` on the history `path`
        ({tli: switchpoint or None}); PostgreSQL tries them in this order. The segment holding a
        switchpoint exists on both the old and the new timeline."""
        out = []
        begin = 0
        for tli in sorted(path):
            switch = path[tli]
            if segments.of_lsn(begin) <= segno and (switch is None or segno <= segments.of_lsn(switch)):
                out.append(tli)
            if switch is not None:
                begin = switch
        return sorted(out, reverse=True)

    def fetch_segment(self, segno, path):
        """Fetch segment `segno` from the first timeline of `path` that has it: (name, path) or (None, None)."""
        for tli in self.covering(segno, path, self.segments):
            name = self.segments.name(tli, segno)
            dest = self.fetch(name)
            if dest:
                return name, dest
        return None, None

    def prove_fetchable(self, segno, path):
        """The name of segment `segno` on the first timeline of `path` that has it, proven to come back
        with archive-get: fetched now, or already delivered earlier in this read. None when no timeline
        has it. The file itself may be gone (dropped): only the proof is returned."""
        for tli in self.covering(segno, path, self.segments):
            name = self.segments.name(tli, segno)
            if name in self.fetched_once or self.fetch(name):
                return name
        return None

    # --- repository listing --------------------------------------------------------------------

    def listing(self, directory):
        """Names (24 characters) of the complete segments archived in one repository directory."""
        if directory in self._listings:
            return self._listings[directory]
        options = ['--output=json', '--log-level-console=warn']
        if self.repo:
            options.append('--repo=%d' % int(self.repo))
        argv = self.pgbr.argv('repo-ls', *options) + ['archive/%s/%s/%s' % (self.pgbr.stanza, self.archive_id, directory)]
        result = self.runner.run(argv, check=False)
        if result.rc != 0:
            raise error_from_result(result, 'pgbackrest repo-ls')
        try:
            entries = json.loads(result.stdout or '{}')
        except ValueError:
            raise EngineError('pgbackrest repo-ls did not return JSON', argv=result.argv, stdout=result.stdout)
        names = set()
        for entry, meta in entries.items():
            if (meta or {}).get('type') == 'file' and len(entry) > 24 and entry[24] == '-':
                names.add(entry[:24])
                if isinstance(meta.get('time'), int):
                    self.times[entry[:24]] = meta['time']
        self._listings[directory] = names
        return names

    def newest_on(self, tli, upto_segno, floor_segno=0):
        """The highest segment number archived on timeline `tli` not above `upto_segno`, or None."""
        log_id = upto_segno // self.segments.per_id
        while log_id * self.segments.per_id + self.segments.per_id - 1 >= floor_segno and log_id >= 0:
            directory = '%08X%08X' % (tli, log_id)
            found = [self.segments.parse(n)[1] for n in self.listing(directory)]
            found = [segno for segno in found if floor_segno <= segno <= upto_segno]
            if found:
                return max(found)
            log_id -= 1
        return None

    def missing(self, first_segno, last_segno, path, limit=20):
        """Segments PostgreSQL will ask for between two segment numbers that are not archived on
        any timeline of `path` that can hold them."""
        missing = []
        switch_segments = set(self.segments.of_lsn(s) for s in path.values() if s is not None)
        for segno in range(first_segno, last_segno + 1):
            names = [self.segments.name(tli, segno) for tli in self.covering(segno, path, self.segments)]
            if segno in switch_segments:
                # The new timeline's copy is required: with only the old one, PostgreSQL would go on
                # replaying the old timeline past its switch point.
                names = names[:1]
            if not any(n in self.listing(self.segments.directory(n)) for n in names):
                missing.append(names[0] if names else self.segments.name(max(path), segno))
                if len(missing) >= limit:
                    break
        return missing

    # --- scanning ------------------------------------------------------------------------------

    def scan(self, newest_segno, floor_segno, path, limit, rmgr=None, xid=None, want=None, stop_at_first=True):
        """Walk archived segments from the newest down to `floor_segno` (at most `limit`), decoding
        records with pg_waldump. Returns {'matches': [(record, segment)], 'scanned': n,
        'reached_floor': bool, 'newest_commit': (time_us, segment) or None}."""
        matches = []
        newest_commit = None
        scanned = 0
        segno = newest_segno
        while segno >= floor_segno and scanned < limit:
            name, _dest = self.fetch_segment(segno, path)
            records = self.waldump(name, rmgr=rmgr, xid=xid) if name else None
            if name:
                self.drop(name)
                self.fetched = [f for f in self.fetched if f != name]
            scanned += 1
            matches.extend((r, name) for r in records or [] if want is not None and want(r))
            commits = [r for r in records or [] if r['kind'] in ('commit', 'abort')]
            if commits and newest_commit is None:
                newest_commit = (max(r['time_us'] for r in commits), name)
            if matches and stop_at_first:
                break
            if want is None and newest_commit is not None:
                break
            segno -= 1
        return {'matches': matches, 'scanned': scanned, 'reached_floor': segno < floor_segno,
                'newest_commit': newest_commit}
