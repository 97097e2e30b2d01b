# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery window of one stanza in one repository: to which moments can we go back now?

`compute` is the arithmetic, over plain data (the backups pgBackRest lists, the segment names the
repository holds); `check_stanza` and `check_host` read those from the host. The answer:

- first recoverable point: the end of the oldest backup whose WAL is continuous from its start to
  the newest archived segment (recovery can stop at any moment from there on);
- latest recoverable point: the last commit in the newest archived WAL (pg_waldump), or the end of
  the newest backup when that is later (an idle server);
- gaps: runs of segments missing between the oldest backup's start and the newest segment, each
  named (timeline, first and last missing segment). A backup older than a gap can still recover to
  points before it; the moments between the gap and the end of the next backup cannot be recovered
  at all (`unrecoverable`), and that is reported, never dropped.

A gap *blocks* until a full backup taken after the gap was first seen exists: the documented remedy
(find out why WAL went missing, then take a full backup) is what clears the alert.

Plain Python, no Ansible imports: installed on managed hosts as part of `pgops-backup`.
"""

import time

from .pitr import Segments, backup_timeline, timeline_path
from .pgserver import parse_lsn
from .process import EngineError
from .wal import WalArchive

SECOND = 1000000
NEWEST_COMMIT_SCAN = 4  # segments read back from the newest one to find the last commit
# With asynchronous archiving and several push processes a segment can reach the repository a
# little after the one behind it: a hole whose next segment was stored this recently is not a gap yet.
SETTLE_SECONDS = 300


def _segno(segments, name):
    return segments.parse(name)[1]


def default_path(present, segments):
    """Without history files: the highest timeline present, alone."""
    tlis = [segments.parse(n)[0] for n in present]
    return timeline_path(max(tlis), []) if tlis else {1: None}


def on_path(backup, path):
    """Whether a backup lies on the history of the newest timeline (before its timeline's switch)."""
    tli = backup_timeline(backup)
    if tli not in path:
        return False
    switch = path[tli]
    return switch is None or parse_lsn(backup['lsn_stop']) <= switch


def usable(backups, path):
    """Backups that can start a recovery on this timeline history, oldest end first."""
    out = [b for b in backups if not b.get('error') and b.get('wal_start') and b.get('lsn_stop')
           and b.get('stop') is not None and on_path(b, path)]
    return sorted(out, key=lambda b: (b['stop'], b['label']))


def newest_segno(present, path, segments):
    """The newest archived segment number reachable on `path`, and its name (or None, None)."""
    best = None
    for name in present:
        tli, segno = segments.parse(name)
        # a switch segment exists on both timelines: the newer one's copy is the one recovery reads
        if tli in WalArchive.covering(segno, path, segments) and (best is None or (segno, tli) > best[:2]):
            best = (segno, tli, name)
    return (best[0], best[2]) if best else (None, None)


def missing_segments(first, last, present, path, segments):
    """Segment numbers from `first` to `last` that no timeline of `path` able to hold them has.
    The segment holding a switchpoint must come from the newer timeline (PostgreSQL needs that copy)."""
    switch_segments = set(segments.of_lsn(s) for s in path.values() if s is not None)
    out = []
    for segno in range(first, last + 1):
        names = [segments.name(tli, segno) for tli in WalArchive.covering(segno, path, segments)]
        if segno in switch_segments:
            names = names[:1]
        if not any(n in present for n in names):
            out.append((segno, names[0] if names else segments.name(max(path), segno)))
    return out


def group_gaps(missing, segments):
    """[(segno, name)] -> runs of consecutive segments."""
    gaps = []
    for segno, name in missing:
        if gaps and gaps[-1]['last_segno'] == segno - 1:
            gaps[-1].update(last_segno=segno, last_missing=name, segments=gaps[-1]['segments'] + 1)
        else:
            gaps.append({'first_segno': segno, 'last_segno': segno, 'first_missing': name, 'last_missing': name,
                         'segments': 1, 'timeline': segments.parse(name)[0]})
    return gaps


def _settling(gap, present, path, segments, times, now, settle):
    """Whether the segment after a hole was stored less than `settle` seconds ago (the hole may
    still fill: asynchronous archiving pushes several segments at once)."""
    if now is None or not settle:
        return False
    segno = gap['last_segno'] + 1
    stored = [times.get(segments.name(tli, segno)) for tli in WalArchive.covering(segno, path, segments)]
    stored = [t for t in stored if t is not None]
    return bool(stored) and now - max(stored) < settle


def _reach(backup, gaps, segments):
    """The first gap a backup's recovery runs into, or None; 'inside' when its own WAL has a gap."""
    start = _segno(segments, backup['wal_start'])
    stop = _segno(segments, backup.get('wal_stop') or backup['wal_start'])
    for gap in gaps:
        if gap['last_segno'] < start:
            continue
        if gap['first_segno'] <= stop:
            return 'inside', gap
        return 'before', gap
    return None, None


def compute(backups, present, segments, path=None, newest_commit_us=None, times=None, gap_seen=None, now=None,
            settle=SETTLE_SECONDS):
    """The window of one stanza in one repository.

    backups: backup summaries (pgbackrest.parse_info) of this repository and the current database
    present: names (24 characters) of the segments the repository holds
    segments: pitr.Segments of the cluster's segment size
    path: {timeline: switchpoint LSN or None} of the newest timeline (None: the highest present)
    newest_commit_us: last commit time found in the newest segments (None: not known)
    times: {segment name: epoch the repository stored it} (to bound the unrecoverable periods)
    gap_seen: {first missing segment: epoch first seen}, updated in place (the caller keeps it)
    now: epoch of this check
    """
    segments = segments if isinstance(segments, Segments) else Segments(segments)
    present = set(present)
    times = times or {}
    gap_seen = {} if gap_seen is None else gap_seen
    path = path or default_path(present, segments)
    candidates = usable(backups, path)
    newest, newest_name = newest_segno(present, path, segments)
    out = {'timeline': max(path), 'newest_segment': newest_name, 'oldest_backup': None, 'first_recoverable': None,
           'latest_recoverable': None, 'window_seconds': None, 'recoverable': False, 'gaps': [],
           'missing_segments': 0, 'unrecoverable': [], 'unrecoverable_seconds': 0, 'backups': []}
    if not candidates:
        gap_seen.clear()
        return out
    out['oldest_backup'] = candidates[0]['label']
    first = min(_segno(segments, b['wal_start']) for b in candidates)
    stops = max(_segno(segments, b.get('wal_stop') or b['wal_start']) for b in candidates)
    last = max(newest if newest is not None else first, stops)
    holes = group_gaps(missing_segments(first, last, present, path, segments), segments)
    gaps = [g for g in holes if not _settling(g, present, path, segments, times, now, settle)]
    out['missing_segments'] = sum(g['segments'] for g in gaps)

    reaching = []
    for backup in candidates:
        where, gap = _reach(backup, gaps, segments)
        entry = {'label': backup['label'], 'type': backup['type'], 'stop': backup['stop'],
                 'recoverable_from': backup['stop'] + 1 if where != 'inside' else None,
                 'reaches_latest': where is None,
                 'stops_at_gap': gap['first_missing'] if gap else None}
        out['backups'].append(entry)
        if where is None:
            reaching.append(backup)

    for gap in gaps:
        seen = gap_seen.setdefault(gap['first_missing'], now)
        before = [b for b in candidates if _segno(segments, b.get('wal_stop') or b['wal_start']) < gap['first_segno']]
        after = [b for b in reaching if _segno(segments, b['wal_start']) > gap['last_segno']]
        fulls_since = [b for b in after if b['type'] == 'full' and seen is not None and b['start'] >= seen]
        previous = segments.name(gap['timeline'], gap['first_segno'] - 1)
        hole_from = times.get(previous) or (before[-1]['stop'] + 1 if before else None)
        hole_to = after[0]['stop'] + 1 if after else None
        gap.update(first_seen=seen, blocking=not fulls_since,
                   backup_before=before[-1]['label'] if before else None,
                   backup_after=after[0]['label'] if after else None)
        out['gaps'].append(dict((k, v) for k, v in gap.items() if not k.endswith('_segno')))
        out['unrecoverable'].append({'after_segment': previous, 'from': hole_from, 'to': hole_to,
                                     'until_backup': gap['backup_after']})
        if hole_from is not None and hole_to is not None:
            out['unrecoverable_seconds'] += max(0, hole_to - hole_from)
    for name in [n for n in gap_seen if n not in set(g['first_missing'] for g in holes)]:
        del gap_seen[name]  # healed or expired with the backups that needed it (a settling hole keeps its memory)

    if reaching:
        oldest = reaching[0]
        backup_end = reaching[-1]['stop'] + 1
        commit = newest_commit_us / float(SECOND) if newest_commit_us else None
        latest, bound = (commit, 'last commit') if commit is not None and commit >= backup_end \
            else (backup_end, 'end of the newest backup')
        out['recoverable'] = True
        out['first_recoverable'] = {'epoch': oldest['stop'] + 1, 'backup': oldest['label'], 'lsn': oldest['lsn_stop']}
        out['latest_recoverable'] = {'epoch': latest, 'segment': newest_name, 'bound': bound}
        out['window_seconds'] = round(max(0.0, latest - (oldest['stop'] + 1)), 3)
    return out


# --- reading the host ----------------------------------------------------------------------------

def _archive_of(summary, repo_key):
    """The current database's archive in one repository: {'id', 'min', 'max'} or None."""
    current = max((d.get('id') or 0 for d in summary.get('databases') or []), default=None)
    found = [a for a in summary['archive'] if a.get('repo_key') in (None, repo_key) and a.get('max')
             and (current is None or _db_of(a['id']) == current)]
    return found[-1] if found else None


def _db_of(archive_id):
    try:
        return int(str(archive_id).rsplit('-', 1)[1])
    except (IndexError, ValueError):
        return 0


def _present(wal, path, first_segno, last_segno):
    """Every segment the repository holds on `path` between two segment numbers (one listing per
    timeline and 256 segments: cheap enough for a timer)."""
    segments = wal.segments
    present = set()
    begin = 0
    for tli in sorted(path):
        switch = path[tli]
        low = max(first_segno, segments.of_lsn(begin))
        high = last_segno if switch is None else min(last_segno, segments.of_lsn(switch))
        for log_id in range(low // segments.per_id, high // segments.per_id + 1):
            present |= wal.listing('%08X%08X' % (tli, log_id))
        if switch is not None:
            begin = switch
    return present


def check_repo(pgbr, summary, repo_key, segment_size, gap_seen, now, version=None, settle=SETTLE_SECONDS):
    """The window of one stanza in one repository, read from the host (the stanza is pgbr's)."""
    segments = Segments(segment_size)
    archive = _archive_of(summary, repo_key)
    current = max((d.get('id') or 0 for d in summary.get('databases') or []), default=None)
    backups = [b for b in summary['backups'] if b.get('repo_key') in (None, repo_key)
               and b.get('db_id') in (None, current)]
    if archive is None:
        result = compute(backups, set(), segments, gap_seen=gap_seen, now=now)
        result.update(archive_id=None, repo=repo_key)
        return result
    version = version or str(archive['id']).split('-', 1)[0]
    with WalArchive(pgbr, version, segment_size, archive_id=archive['id'], repo=repo_key) as wal:
        tli, last = segments.parse(archive['max'])
        tli = wal.newest_timeline(tli)
        path = timeline_path(tli, wal.history(tli))
        starts = [segments.parse(b['wal_start'])[1] for b in usable(backups, path)]
        first = min(starts) if starts else last
        present = _present(wal, path, first, last)
        newest, _name = newest_segno(present, path, segments)
        commit, note = None, None
        if newest is not None:
            try:
                found = wal.scan(newest, max(first, newest - NEWEST_COMMIT_SCAN + 1), path, NEWEST_COMMIT_SCAN)
                commit = found['newest_commit'][0] if found['newest_commit'] else None
            except EngineError as exc:  # no pg_waldump here (a repository host): the backup end bounds it
                note = 'last commit not read: %s' % exc.msg
        result = compute(backups, present, segments, path=path, newest_commit_us=commit, times=wal.times,
                         gap_seen=gap_seen, now=now, settle=settle)
    result.update(archive_id=archive['id'], repo=repo_key, note=note)
    return result


def check_host(pgbr_for, summaries, segment_size_of, state, now, settle=SETTLE_SECONDS):
    """Windows of every stanza and repository.

    pgbr_for(stanza) -> PgBackRest; summaries: pgbackrest.parse_info; segment_size_of(stanza) -> bytes;
    state: {'gaps': {'STANZA/REPO': {first missing: first seen}}}, updated in place.
    Returns [{'stanza', 'repo', 'ok', 'error', ...compute()}]; a stanza that cannot be read is
    reported with its error, and the others are still computed."""
    out = []
    seen = state.setdefault('gaps', {})
    keep = set()
    for summary in summaries:
        keys = [r['key'] for r in summary['repos']] or sorted(
            set(b['repo_key'] for b in summary['backups'] if b['repo_key'] is not None)) or [1]
        for key in keys:
            name = '%s/%s' % (summary['name'], key)
            keep.add(name)
            started = time.monotonic()
            try:
                result = check_repo(pgbr_for(summary['name']), summary, key, segment_size_of(summary['name']),
                                    seen.setdefault(name, {}), now, settle=settle)
                result.update(ok=True, error=None)
            except EngineError as exc:
                result = {'repo': key, 'ok': False, 'error': exc.full_message()}
            result.update(stanza=summary['name'], seconds=round(time.monotonic() - started, 3))
            out.append(result)
    for name in [n for n in seen if n not in keep]:
        del seen[name]
    return out
