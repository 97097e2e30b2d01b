"""results.json and results.md from the measured groups; the acceptance figures of issue 8."""

import json
import os


def human(size):
    if size is None:
        return ''
    for unit in ('B', 'kB', 'MB', 'GB'):
        if size < 1024 or unit == 'GB':
            return '%.0f %s' % (size, unit) if unit in ('B', 'kB') else '%.1f %s' % (size, unit)
        size /= 1024.0


def _median(groups, key, name):
    for group in groups:
        if group['key'] == key:
            for config in group['configs']:
                if config['name'] == name:
                    return config['median_seconds']
    return None


def acceptance(groups):
    """[(criterion, target, measured, met)] for the issue's acceptance figures."""
    out = []

    def ratio(a, b):
        return round(a / b, 2) if a and b else None

    defaults = _median(groups, 'full', 'defaults')
    guides = _median(groups, 'full', 'guides')
    copy = _median(groups, 'full', 'raw_copy')
    job = _median(groups, 'pg_dump', 'job')
    z9 = _median(groups, 'pg_dump', 'z9')
    for criterion, target, value, met in (
            ('full backup: guides / defaults', '>= 6x', ratio(guides, defaults), lambda v: v >= 6),
            ('full backup: defaults / raw copy', '<= 1.15x', ratio(defaults, copy), lambda v: v <= 1.15),
            ('pg_dump: -Fc -Z 9 / job defaults', '>= 1.8x', ratio(z9, job), lambda v: v >= 1.8)):
        out.append({'criterion': criterion, 'target': target, 'measured': value,
                    'met': None if value is None else bool(met(value))})
    return out


def markdown(data):
    meta = data['meta']
    lines = ['# Benchmark results %s' % meta['date'], '',
             'Machine: %s' % meta['machine_line'], '',
             'Versions: %s' % ', '.join('%s %s' % kv for kv in sorted(meta['versions'].items())), '',
             'Data: database `bench` %s requested, %s measured (PGDATA without pg_wal %s); %d runs per '
             'configuration, interleaved. Wall times in seconds; ratio = median / median of the group\'s '
             'reference (marked *); below 1 is faster than the reference. Sizes are of the last run '
             '(repository backup set, dump directory or copy).' % (
                 human(meta['size_mb_requested'] * 1024 * 1024), human(meta['database_bytes']),
                 human(meta['pgdata_bytes']), meta['runs']), '',
             '| comparison | configuration | runs (s) | median (s) | ratio | size |', '|---|---|---|---|---|---|']
    for group in data['groups']:
        for config in group['configs']:
            runs = ' / '.join('FAILED' if r is None else '%.2f' % r for r in config['runs'])
            extra = ''
            if config['extra'].get('changed') is not None:
                extra = ' (changed=%s)' % '/'.join(str(c) for c in config['extra']['changed'])
            if config['extra'].get('changed_per_host') is not None:
                extra = ' (changed per host %s)' % '/'.join(str(c) for c in config['extra']['changed_per_host'])
            lines.append('| %s | %s%s%s | %s | %s | %s | %s |' % (
                group['title'], config['description'], ' *' if config['reference'] else '', extra, runs,
                '' if config['median_seconds'] is None else '%.2f' % config['median_seconds'],
                '' if config['ratio_to_reference'] is None else '%.2fx' % config['ratio_to_reference'],
                human(config['size_bytes'])))
    lines += ['', '## Acceptance (issue 8)', '', '| criterion | target | measured | met |', '|---|---|---|---|']
    for item in data['acceptance']:
        lines.append('| %s | %s | %s | %s |' % (
            item['criterion'], item['target'], '-' if item['measured'] is None else '%.2fx' % item['measured'],
            {True: 'yes', False: '**no**', None: '-'}[item['met']]))
    lines += ['', '## Notes', '']
    for group in data['groups']:
        if group['note']:
            lines.append('- %s: %s' % (group['title'], group['note']))
        for config in group['configs']:
            for error in config['errors']:
                lines.append('- FAILED %s / %s: `%s`' % (group['title'], config['name'],
                                                          error.strip().splitlines()[-1][:300]))
    for note in data.get('notes', []):
        lines.append('- %s' % note)
    return '\n'.join(lines) + '\n'


def write(directory, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'results.json'), 'w') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')
    with open(os.path.join(directory, 'results.md'), 'w') as handle:
        handle.write(markdown(data))


def readme_block(data):
    """The README's copy of the latest table: where and when it was measured, the table, acceptance."""
    text = markdown(data)
    body = text.split('\n| comparison |', 1)[1].split('\n## Notes', 1)[0]
    meta = data['meta']
    return ('Latest run: %s on %s; %s. Full results, notes and chart: '
            '[bench/results/latest/](bench/results/latest/results.md).\n\n| comparison |%s'
            % (meta['date'], meta['machine_line'], meta['size_label'], body.rstrip() + '\n'))


if __name__ == '__main__':
    import sys
    with open(sys.argv[1]) as source:
        sys.stdout.write(readme_block(json.load(source)))
