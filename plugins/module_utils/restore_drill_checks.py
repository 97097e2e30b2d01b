# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a restore drill checks on its scratch instance, and the heartbeat it measures RPO with.

Every check returns one dict: {name, database, status (pass|fail|skip), detail, seconds}.
A check never raises for what it finds: a corrupt page, a wrong count or a failing query is a
`fail` with the evidence in `detail`. Every command goes to the scratch instance (its socket
directory and port, or its stopped data directory); the only thing read from production is, when
asked, whether the heartbeat table exists there (a catalog lookup).

The heartbeat: `pgops-backup heartbeat` (a timer on the primary) upserts one row of
public.pgops_heartbeat every minute. A restored copy holds the last heartbeat before its recovery
point, so `recovery point - heartbeat` says whether the copy holds what it should and
`drill start - heartbeat` is the data a restore of this backup would lose (measured RPO).
"""

import json
import re
import time

from .dump_manifest import compare_counts
from .dump_session import KIND_NAMES, LARGE_OBJECTS_SQL, TABLES_SQL, qualified
from .pg_dump import conninfo_dbname, quote_literal
from .pgserver import iso, pg_binary
from .process import EngineError

PASS, FAIL, SKIP = 'pass', 'fail', 'skip'
HEARTBEAT_TABLE = 'public.pgops_heartbeat'
HEARTBEAT_MODES = ('auto', 'required', 'off')
COUNT_BATCH = 400
SECOND = 1000000

HEARTBEAT_WRITE_SQL = (
    "SET client_min_messages = warning; "
    "CREATE TABLE IF NOT EXISTS public.pgops_heartbeat ("
    " id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),"
    " beat_at timestamptz NOT NULL,"
    " host text NOT NULL,"
    " writer text NOT NULL DEFAULT 'pgops-backup heartbeat',"
    " since timestamptz NOT NULL DEFAULT now()); "
    # tables created by earlier releases gain the column; their `since` is this upgrade, a later
    # moment than the real one, so a drill may skip a backup it could have judged, never the reverse
    "ALTER TABLE public.pgops_heartbeat ADD COLUMN IF NOT EXISTS since timestamptz NOT NULL DEFAULT now(); "
    "INSERT INTO public.pgops_heartbeat (id, beat_at, host) VALUES (1, now(), %s) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, host = excluded.host "
    "RETURNING extract(epoch FROM beat_at)::float8")
HEARTBEAT_EXISTS_SQL = "SELECT to_regclass('public.pgops_heartbeat') IS NOT NULL"
HEARTBEAT_SINCE_SQL = "SELECT extract(epoch FROM min(since))::float8 FROM public.pgops_heartbeat"
HEARTBEAT_READ_SQL = ("SELECT extract(epoch FROM beat_at)::float8, host FROM public.pgops_heartbeat "
                      "ORDER BY beat_at DESC LIMIT 1")
ISOLATION_SQL = ("SELECT current_setting('archive_mode'), current_setting('port'), "
                 "current_setting('data_directory'), current_setting('listen_addresses'), pg_is_in_recovery(), "
                 "current_setting('data_checksums'), current_setting('server_version_num')")
DATABASES_SQL = "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
# Every table, catalogs included, read in full (TOAST is read through the values it holds).
FULL_READ_SQL = r"""SET client_min_messages = warning;
DO $pgops$
DECLARE r record; n int := 0; bad int := 0; bytes bigint := 0;
BEGIN
  FOR r IN SELECT c.oid, format('%I.%I', s.nspname, c.relname) AS rel
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') AND c.relispopulated AND c.relpersistence <> 't'
            ORDER BY 2 LOOP
    BEGIN
      EXECUTE format('COPY (SELECT * FROM ONLY %s) TO %L', r.rel, '/dev/null');
      n := n + 1;
      bytes := bytes + pg_catalog.pg_table_size(r.oid);
    EXCEPTION WHEN OTHERS THEN
      bad := bad + 1;
      RAISE WARNING 'pgops-read-failed %', json_build_object('table', r.rel, 'sqlstate', SQLSTATE, 'error', SQLERRM);
    END;
  END LOOP;
  RAISE WARNING 'pgops-read-done %', json_build_object('tables', n, 'failed', bad, 'bytes', bytes);
END
$pgops$;"""
_READ_RE = re.compile(r'pgops-read-(failed|done) (\{.*\})\s*$')
_AMCHECK_PROGRESS_RE = re.compile(r'(\d+)/(\d+) relations \(\d+%\),\s*(\d+)/(\d+) pages')
_CHECKSUMS_RE = re.compile(r'^(Files scanned|Blocks scanned|Bad checksums):\s*(\d+)', re.MULTILINE)


_ERROR_LINE_RE = re.compile(r'\b(?:ERROR|FATAL|PANIC|error|fatal):\s*(.*\S)')


def brief(exc, lines=3):
    """An EngineError in one readable sentence: its message, the error lines of the program's output
    that the message does not already say, and the next step. (The full text goes to `output`.)"""
    text = exc.msg
    extra = []
    for line in ((exc.stderr or '') + '\n' + (exc.stdout or '')).splitlines():
        match = _ERROR_LINE_RE.search(line)
        if match and match.group(1) not in text and match.group(1) not in extra:
            extra.append(match.group(1))
    if extra:
        text += ': ' + ' | '.join(extra[:lines])
    if exc.hint:
        text += ' (next step: %s)' % exc.hint
    return text


def failure(name, exc, seconds=None, database=None, **extra):
    """A failed check from an EngineError: brief detail, full text in `output`."""
    return result(name, FAIL, brief(exc), seconds, database=database, output=exc.full_message()[-4000:], **extra)


def result(name, status, detail, seconds=None, database=None, **extra):
    out = {'name': name, 'database': database, 'status': status, 'detail': detail,
           'seconds': round(seconds, 3) if seconds is not None else None}
    out.update(extra)
    return out


def label(check):
    """How a check is named to people: `amcheck appdb`, `sql:orders`."""
    return '%s %s' % (check['name'], check['database']) if check.get('database') else check['name']


def format_seconds(seconds):
    if seconds is None:
        return '-'
    seconds = float(seconds)
    if abs(seconds) < 120:
        return '%.1f s' % seconds
    seconds = int(round(seconds))
    if abs(seconds) < 7200:
        return '%dm %02ds' % (seconds // 60, seconds % 60)
    if abs(seconds) < 172800:
        return '%dh %02dm' % (seconds // 3600, seconds % 3600 // 60)
    return '%dd %02dh' % (seconds // 86400, seconds % 86400 // 3600)


def _short(text, lines=8, width=2000):
    kept = [line for line in (text or '').splitlines() if line.strip()][:lines]
    return ' | '.join(kept)[:width]


# --- the heartbeat on production --------------------------------------------------------------------

def write_heartbeat(psql, host):
    """Create the heartbeat table when missing and upsert its one row; returns the beat (epoch)."""
    value = psql.value(HEARTBEAT_WRITE_SQL % quote_literal(host))
    return float(value)


# --- user SQL checks -----------------------------------------------------------------------------------

def normalize_expected(value):
    """The expected result as psql prints it unaligned: fields joined by |, rows by newlines.
    true/false are t/f, null is empty, a list is one row per item (a list item: its fields)."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 't' if value else 'f'
    if isinstance(value, (list, tuple)):
        return '\n'.join('|'.join(normalize_expected(f) for f in item) if isinstance(item, (list, tuple))
                         else normalize_expected(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def validate_sql_checks(checks):
    """[{name, query, expected, database}] with defaults; raises on a malformed entry."""
    out = []
    names = set()
    for index, spec in enumerate(checks or []):
        if not isinstance(spec, dict):
            raise EngineError('sql_checks[%d] must be a dict with name, query and expected' % index)
        unknown = sorted(set(spec) - set(('name', 'query', 'expected', 'database')))
        if unknown:
            raise EngineError('sql_checks[%d] has unknown keys: %s' % (index, ', '.join(unknown)),
                              hint='each check has name, query, expected and optionally database')
        name = str(spec.get('name') or '').strip()
        query = str(spec.get('query') or '').strip()
        if not name or not query:
            raise EngineError('sql_checks[%d] needs a name and a query' % index)
        if 'expected' not in spec:
            raise EngineError('sql check %r needs an expected result' % name)
        if name in names:
            raise EngineError('sql check names must be unique: %r is used twice' % name)
        names.add(name)
        out.append({'name': name, 'query': query, 'expected': spec['expected'],
                    'database': str(spec.get('database') or 'postgres')})
    return out


class Checks(object):
    """The checks of one scratch instance (a scratch.ScratchInstance that runs, or was stopped)."""

    def __init__(self, runner, inst, clock=time.time, say=None):
        self.runner = runner
        self.inst = inst
        self.clock = clock
        self.say = say or (lambda text: None)
        self._facts = None

    def psql(self, dbname='postgres'):
        return self.inst.psql(dbname)

    def facts(self):
        if self._facts is None:
            row = self.psql().rows(ISOLATION_SQL)[0]
            self._facts = {'archive_mode': row[0], 'port': int(row[1]), 'data_directory': row[2],
                           'listen_addresses': row[3], 'in_recovery': row[4] == 't', 'data_checksums': row[5] == 'on',
                           'server_version_num': int(row[6])}
        return self._facts

    def databases(self):
        return [r[0] for r in self.psql().rows(DATABASES_SQL)]

    def _timed(self, func, *args):
        started = self.clock()
        check = func(*args)
        check['seconds'] = round(self.clock() - started, 3)
        return check

    # --- isolation -------------------------------------------------------------------------------
    def isolation(self, production_port=None):
        return self._timed(self._isolation, production_port)

    def _isolation(self, production_port):
        try:
            facts = self.facts()
        except EngineError as exc:
            exc.msg = 'cannot read the scratch instance settings: %s' % exc.msg
            return failure('isolation', exc)
        problems = []
        if facts['archive_mode'] != 'off':
            problems.append('archive_mode is %s' % facts['archive_mode'])
        if facts['port'] != self.inst.port or (production_port and facts['port'] == int(production_port)):
            problems.append('it listens on port %s' % facts['port'])
        if facts['data_directory'].rstrip('/') != self.inst.data_directory.rstrip('/'):
            problems.append('its data directory is %s' % facts['data_directory'])
        if facts['in_recovery']:
            problems.append('it is still in recovery')
        if facts['listen_addresses']:
            problems.append('it listens on TCP (%s)' % facts['listen_addresses'])
        where = 'port %d (%s), data directory %s, archive_mode=%s' % (
            facts['port'], 'Unix socket only' if not facts['listen_addresses'] else 'listening on %s'
            % facts['listen_addresses'], facts['data_directory'], facts['archive_mode'])
        if problems:
            return result('isolation', FAIL, 'the scratch instance is not isolated: %s (%s)' % ('; '.join(problems), where))
        return result('isolation', PASS, '%s; writable, out of recovery' % where)

    # --- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self, mode, database, max_age, reference, reference_what, drill_started, production=None,
                  in_set=True):
        """reference: the epoch the restored copy should be current to (end of the backup, target,
        dump snapshot); production: a Psql on the production cluster (only to see whether the table
        exists there), or None."""
        return self._timed(self._heartbeat, mode, database, max_age, reference, reference_what, drill_started,
                           production, in_set)

    def _heartbeat(self, mode, database, max_age, reference, reference_what, drill_started, production, in_set):
        if mode == 'off':
            return result('heartbeat', SKIP, 'switched off (heartbeat=off)')
        if not in_set:
            return result('heartbeat', SKIP, 'database %s (where the heartbeat is written) is not in the dump set'
                          % database)
        present, problem = None, None
        try:
            present = self.psql(database).value(HEARTBEAT_EXISTS_SQL) == 't'
        except EngineError as exc:
            problem = 'database %s cannot be read in the restored copy: %s' % (database, _short(exc.stderr or exc.msg, 2))
        if not present:
            on_production, since = self._production_heartbeat(production, database)
            # a copy from before the writer existed cannot hold a beat, whatever the mode
            if on_production and since is not None and reference is not None and reference < since:
                why = ('the restored copy ends at %s (%s), before the heartbeat writer was installed on production '
                       '(%s): RPO is measured from the next backup on'
                       % (iso(int(reference * SECOND)), reference_what, iso(int(since * SECOND))))
                return result('heartbeat', SKIP, why)
            if mode == 'auto' and not on_production:
                return result('heartbeat', SKIP, '%s: no %s table%s, so RPO is not measured; the restore_test role '
                                                 'installs the heartbeat writer' % (
                                                     problem or 'the restored copy has no heartbeat', HEARTBEAT_TABLE,
                                                     ' on production either' if on_production is False else ''))
            return result('heartbeat', FAIL, '%s%s' % (
                problem or 'the heartbeat table %s is missing from database %s of the restored copy' % (
                    HEARTBEAT_TABLE, database),
                ' although production has it: the backup does not hold what production wrote'
                if on_production else ' (is the heartbeat timer running on the primary, and was this backup taken '
                                      'after it was installed?)'))
        try:
            rows = self.psql(database).rows(HEARTBEAT_READ_SQL)
        except EngineError as exc:
            return result('heartbeat', FAIL, 'reading %s failed: %s' % (HEARTBEAT_TABLE, _short(exc.stderr or exc.msg, 3)))
        if not rows or not rows[0][0]:
            return result('heartbeat', FAIL, '%s in database %s of the restored copy is empty' % (HEARTBEAT_TABLE,
                                                                                                  database))
        beat = float(rows[0][0])
        lag = max(0.0, reference - beat) if reference is not None else None
        rpo = max(0.0, drill_started - beat)
        detail = 'last heartbeat %s (from %s)' % (iso(int(beat * SECOND)), rows[0][1] or '?')
        if lag is not None:
            detail += ', %s before %s' % (format_seconds(lag), reference_what)
        detail += '; RPO %s (data a restore of this copy at the start of the drill would lose)' % format_seconds(rpo)
        extra = {'heartbeat_epoch': beat, 'rpo_seconds': round(rpo, 3),
                 'lag_seconds': round(lag, 3) if lag is not None else None}
        if lag is not None and max_age and lag > max_age:
            return result('heartbeat', FAIL, 'the restored copy is stale: %s, more than the allowed %s'
                          % (detail, format_seconds(max_age)), **extra)
        return result('heartbeat', PASS, detail, **extra)

    @staticmethod
    def _production_heartbeat(production, database):
        """(whether production has the heartbeat table, since when it has been written (epoch) or None);
        both None when production cannot be asked."""
        if production is None:
            return None, None
        try:
            if production.value(HEARTBEAT_EXISTS_SQL, database) != 't':
                return False, None
        except EngineError:
            return None, None
        try:
            since = production.value(HEARTBEAT_SINCE_SQL, database)
        except EngineError:  # a table from before `since` existed and not yet upgraded by a beat
            return True, None
        return True, float(since) if since else None

    # --- row counts (pg_dump source) -----------------------------------------------------------------
    def counts(self, database):
        """Exact rows of every table of a restored database, in the shape of SnapshotWork.count()."""
        psql = self.psql(database)
        tables = []
        countable = []
        for oid, schema, name, kind, owner, is_partition, persistence, populated in psql.rows(TABLES_SQL):
            entry = {'oid': int(oid), 'schema': schema, 'name': name, 'kind': KIND_NAMES.get(kind, kind),
                     'owner': owner, 'partition': is_partition == 't', 'unlogged': persistence == 'u', 'rows': None}
            tables.append(entry)
            if kind == 'r' or (kind == 'm' and populated == 't'):
                countable.append(entry)
        by_oid = dict((t['oid'], t) for t in countable)
        for start in range(0, len(countable), COUNT_BATCH):
            batch = countable[start:start + COUNT_BATCH]
            sql = ' UNION ALL '.join('SELECT %d::bigint, count(*) FROM ONLY %s' % (t['oid'], qualified(t['schema'], t['name']))
                                     for t in batch)
            for oid, rows in psql.rows(sql):
                by_oid[int(oid)]['rows'] = int(rows)
        large_objects = int(psql.value(LARGE_OBJECTS_SQL) or 0)
        return {'tables': tables, 'large_objects': large_objects}

    def row_counts(self, database, manifest):
        return self._timed(self._row_counts, database, manifest)

    def _row_counts(self, database, manifest):
        try:
            restored = self.counts(database)
        except EngineError as exc:
            exc.msg = 'counting the rows of the restored database failed: %s' % exc.msg
            return failure('row_counts', exc, database=database)
        comparison = compare_counts(manifest, restored)
        if not comparison['matches']:
            shown = comparison['mismatches'][:5]
            text = '; '.join('%s: %s (manifest %s, restored %s)' % (
                '%s.%s' % (m['schema'], m['name']) if m['schema'] else m['name'], m['problem'], m['expected'],
                m['restored']) for m in shown)
            more = len(comparison['mismatches']) - len(shown)
            return result('row_counts', FAIL, '%d table(s) differ from the manifest of %s: %s%s' % (
                len(comparison['mismatches']), manifest.get('finished_at') or 'the dump', text,
                ' (and %d more)' % more if more > 0 else ''), database=database, mismatches=comparison['mismatches'])
        detail = '%d tables, %d rows: exactly the counts of the manifest (dump snapshot %s)' % (
            comparison['tables_compared'], comparison['rows_total'], manifest.get('started_at') or '?')
        if comparison['warnings']:
            detail += '; note: %s' % '; '.join(comparison['warnings'][:3])
        return result('row_counts', PASS, detail, database=database)

    # --- amcheck ---------------------------------------------------------------------------------
    def amcheck(self, database, heapallindexed=True):
        return self._timed(self._amcheck, database, heapallindexed)

    def _amcheck(self, database, heapallindexed):
        version_num = self.facts()['server_version_num']
        if version_num < 140000:
            return result('amcheck', SKIP, 'pg_amcheck needs PostgreSQL 14 or later (this is %d)' % (version_num // 10000),
                          database=database)
        try:
            binary = pg_binary(self.runner, self.inst.version, 'pg_amcheck')
        except EngineError as exc:
            return failure('amcheck', exc, database=database)
        # --install-missing creates the amcheck extension: in this scratch copy, never on production.
        argv = [binary, '--host=%s' % self.inst.socket_dir, '--port=%d' % self.inst.port, '--no-password',
                '--install-missing', '--progress']
        if heapallindexed:
            argv.append('--heapallindexed')
        argv.append(conninfo_dbname(database))
        run = self.runner.run(argv, check=False)
        found = _AMCHECK_PROGRESS_RE.findall(run.stderr or '')
        scope = ''
        if found:
            rel_done, _rel_all, pages_done, _pages_all = found[-1]
            scope = '%s relations, %s pages' % (rel_done, pages_done)
        options = 'heap and B-tree indexes%s' % (', every heap tuple found in its indexes' if heapallindexed else '')
        if run.rc == 0 and not (run.stdout or '').strip():
            return result('amcheck', PASS, 'no corruption: %s checked (%s)' % (scope or 'all relations', options),
                          database=database)
        if run.rc == 2 or (run.rc == 0 and (run.stdout or '').strip()):
            return result('amcheck', FAIL, 'pg_amcheck found corruption: %s' % _short(run.stdout, 8),
                          database=database)
        return result('amcheck', FAIL, 'pg_amcheck failed (rc=%s): %s' % (run.rc, _short(
            _strip_progress(run.stderr) or run.stdout, 6)), database=database)

    # --- full read -------------------------------------------------------------------------------
    def full_read(self, database):
        return self._timed(self._full_read, database)

    def _full_read(self, database):
        run = self.runner.run(self.psql(database).argv(FULL_READ_SQL), check=False)
        failed, done = [], None
        for line in (run.stderr or '').splitlines():
            match = _READ_RE.search(line)
            if not match:
                continue
            try:
                data = json.loads(match.group(2))
            except ValueError:
                continue
            if match.group(1) == 'failed':
                failed.append(data)
            else:
                done = data
        if failed:
            return result('full_read', FAIL, '%d table(s) could not be read: %s' % (len(failed), '; '.join(
                '%s: %s (SQLSTATE %s)' % (f.get('table'), f.get('error'), f.get('sqlstate')) for f in failed[:5])),
                database=database, unreadable=[f.get('table') for f in failed])
        if run.rc != 0 or done is None:
            return result('full_read', FAIL, 'reading every table failed: %s' % _short(run.stderr or run.stdout, 6),
                          database=database)
        return result('full_read', PASS, 'read every row of %d tables (%s on disk, TOAST included)' % (
            done.get('tables', 0), _size(done.get('bytes') or 0)), database=database)

    # --- user SQL ----------------------------------------------------------------------------------
    def sql(self, spec):
        return self._timed(self._sql, spec)

    def _sql(self, spec):
        name = 'sql:%s' % spec['name']
        expected = normalize_expected(spec['expected'])
        try:
            rows = self.psql(spec['database']).rows(spec['query'])
        except EngineError as exc:
            return result(name, FAIL, 'the query failed in database %s: %s' % (
                spec['database'], _short(exc.stderr or exc.msg, 3)), query=spec['query'], expected=expected)
        got = '\n'.join('|'.join(row) for row in rows).strip()
        if got == expected:
            return result(name, PASS, 'returned %r as expected (database %s)' % (got, spec['database']),
                          query=spec['query'], expected=expected, got=got)
        return result(name, FAIL, 'expected %r, got %r (database %s)' % (expected, got, spec['database']),
                      query=spec['query'], expected=expected, got=got)

    # --- data checksums (the instance is stopped) -------------------------------------------------------
    def checksums(self, enabled):
        return self._timed(self._checksums, enabled)

    def _checksums(self, enabled):
        if not enabled:
            return result('checksums', SKIP, 'data checksums are off in this cluster (initdb --data-checksums '
                                             'or pg_checksums --enable turn them on)')
        try:
            binary = pg_binary(self.runner, self.inst.version, 'pg_checksums')
        except EngineError as exc:
            return failure('checksums', exc)
        run = self.runner.run([binary, '--check', '--pgdata=%s' % self.inst.data_directory], check=False)
        counts = dict((k, int(v)) for k, v in _CHECKSUMS_RE.findall(run.stdout or ''))
        if run.rc == 0:
            return result('checksums', PASS, 'pg_checksums --check: %s files, %s blocks, no bad checksum' % (
                counts.get('Files scanned', '?'), counts.get('Blocks scanned', '?')))
        bad = counts.get('Bad checksums')
        return result('checksums', FAIL, 'pg_checksums --check failed%s: %s' % (
            ' with %d bad checksum(s)' % bad if bad else '', _short(run.stderr or run.stdout, 6)))


def _strip_progress(text):
    return '\n'.join(line for line in (text or '').replace('\r', '\n').splitlines()
                     if not _AMCHECK_PROGRESS_RE.search(line))


def _size(value):
    value = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return str(value)
