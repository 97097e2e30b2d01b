# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw the Grafana dashboard's panels from metrics files captured on a real host.

Grafana cannot be installed here, so this stands in for its renderer, with the dashboard's own
queries: the captured pgops_backup.prom files are backfilled into a Prometheus TSDB
(`promtool tsdb create-blocks-from openmetrics`), a throw-away `prometheus` (Debian package
`prometheus`) serves them, every panel's PromQL is evaluated through its HTTP API, and matplotlib
(Debian package `python3-matplotlib`) draws the panels where the dashboard's grid puts them.

Usage: python3 docs/render_dashboard.py CAPTURE_DIR OUTPUT.png
CAPTURE_DIR holds the NN-label.prom files the molecule scenario `monitoring` keeps in
.cache/logs/monitoring-metrics/.
"""

import datetime
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import matplotlib
matplotlib.use('Agg')
import matplotlib.dates as mdates  # noqa: E402 pylint: disable=wrong-import-position
import matplotlib.pyplot as plt  # noqa: E402 pylint: disable=wrong-import-position

DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'roles', 'monitoring', 'files',
                         'pgops-backup-dashboard.json')
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
INSTANCE = 'monitoring-debian13:9100'
BG, PANEL, TEXT, GRID = '#111217', '#181b1f', '#ccccdc', '#2c3235'
TOP, SCALE = 0.975, 0.965  # the grid below a band for the title
COLORS = ['#73bf69', '#f2cc0c', '#8ab8ff', '#ff780a', '#f2495c', '#5794f2', '#b877d9', '#705da0', '#37872d', '#fade2a']


def openmetrics(capture_dir):
    """Every captured sample, stamped with the time its file was collected, grouped by family."""
    families = {}
    for path in sorted(glob.glob(os.path.join(capture_dir, '*.prom'))):
        with open(path) as handle:
            lines = [line for line in handle.read().splitlines() if line and not line.startswith('#')]
        stamp = None
        for line in lines:
            if line.startswith('pgops_backup_metrics_last_run_timestamp_seconds '):
                stamp = line.split()[1]
        for line in lines:
            name, labels, value = SAMPLE_RE.match(line).groups()
            extra = 'instance="%s",job="node"' % INSTANCE
            families.setdefault(name, []).append('%s{%s} %s %s' % (
                name, ','.join(filter(None, [labels, extra])), value, stamp))
    out = []
    for name in sorted(families):
        out.append('# TYPE %s gauge' % name)
        out.extend(families[name])
    out.append('# EOF')
    return '\n'.join(out) + '\n', sorted(int(s.rsplit(' ', 1)[1]) for f in families.values() for s in f)


def moment(capture_dir):
    """Stat panels and tables show the last capture taken while archiving was broken, if any."""
    broken = sorted(glob.glob(os.path.join(capture_dir, '*broken*.prom')))
    if not broken:
        return None
    with open(broken[-1]) as handle:
        found = re.search(r'^pgops_backup_metrics_last_run_timestamp_seconds (\d+)$', handle.read(), re.MULTILINE)
    return int(found.group(1)) if found else None


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def query(base, path, **params):
    url = '%s/api/v1/%s?%s' % (base, path, urllib.parse.urlencode(params))
    with urllib.request.urlopen(url, timeout=30) as response:
        data = json.loads(response.read().decode())
    assert data['status'] == 'success', data
    return data['data']['result']


def expand(expr):
    return expr.replace('$instance', '.+').replace('$stanza', '.*')


def legend(fmt, labels):
    return re.sub(r'\{\{\s*(\w+)\s*\}\}', lambda m: labels.get(m.group(1), ''), fmt or '') or str(labels)


def human(value, unit):
    if value is None:
        return '-'
    if unit == 's':
        for size, suffix in ((86400, 'd'), (3600, 'h'), (60, 'min')):
            if abs(value) >= size:
                return '%.1f %s' % (value / size, suffix)
        return ('%.1f s' if abs(value) < 10 else '%.0f s') % value
    if unit == 'bytes':
        for size, suffix in ((2 ** 30, 'GiB'), (2 ** 20, 'MiB'), (2 ** 10, 'KiB')):
            if abs(value) >= size:
                return '%.1f %s' % (value / size, suffix)
        return '%.0f B' % value
    return ('%.2f' % value).rstrip('0').rstrip('.')


def mapped(value, panel):
    for mapping in panel['fieldConfig']['defaults'].get('mappings', []):
        options = mapping['options']
        if mapping['type'] == 'value' and str(int(value)) in options:
            return options[str(int(value))]['text'], options[str(int(value))]['color']
        if mapping['type'] == 'range' and options['from'] <= value <= options['to']:
            return options['result']['text'], options['result']['color']
    steps = panel['fieldConfig']['defaults']['thresholds']['steps']
    color = steps[0]['color']
    for step in steps[1:]:
        if value >= step['value']:
            color = step['color']
    return human(value, panel['fieldConfig']['defaults'].get('unit')), color


def draw_stat(ax, panel, base, at):
    results = []
    for target in panel['targets']:
        results += [(legend(target.get('legendFormat'), r['metric']), float(r['value'][1]))
                    for r in query(base, 'query', query=expand(target['expr']), time=at)]
    ax.set_axis_off()
    if not results:
        ax.text(0.5, 0.45, 'No data', ha='center', va='center', color=TEXT, fontsize=12, transform=ax.transAxes)
        return
    for i, (name, value) in enumerate(results[:2]):
        text, color = mapped(value, panel)
        color = {'green': '#37872d', 'red': '#c4162a'}.get(color, color)
        height = 0.78 / min(len(results), 2)
        y = 0.02 + i * height
        ax.add_patch(plt.Rectangle((0.02, y), 0.96, height - 0.02, color=color, transform=ax.transAxes))
        ax.text(0.5, y + height * 0.58, text, ha='center', va='center', color='white', fontsize=15,
                fontweight='bold', transform=ax.transAxes)
        ax.text(0.5, y + height * 0.2, name, ha='center', va='center', color='white', fontsize=6.5,
                transform=ax.transAxes)


def draw_timeseries(ax, panel, base, start, end):
    unit = panel['fieldConfig']['defaults'].get('unit')
    n = 0
    for target in panel['targets']:
        for r in query(base, 'query_range', query=expand(target['expr']), start=start, end=end, step=5):
            times = [mdates.date2num(datetime.datetime.fromtimestamp(float(point[0]), datetime.timezone.utc))
                     for point in r['values']]
            values = [float(point[1]) for point in r['values']]
            dashed = target['legendFormat'].startswith('objective')
            ax.plot(times, values, color=COLORS[n % len(COLORS)], linewidth=1.6, linestyle='--' if dashed else '-',
                    label=legend(target['legendFormat'], r['metric']))
            n += 1
    ax.set_facecolor(PANEL)
    ax.grid(color=GRID, linewidth=0.6)
    ax.tick_params(colors=TEXT, labelsize=6.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.xaxis.set_major_formatter(mdates.DateFormatter('%H:%M:%S'))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, position: human(value, unit)))
    if n:
        ax.legend(loc='upper left', fontsize=6, frameon=False, labelcolor=TEXT, ncol=1)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, 'No data', ha='center', va='center', color=TEXT, fontsize=12, transform=ax.transAxes)


def draw_table(ax, panel, base, at):
    ax.set_axis_off()
    rows = {}
    for i, target in enumerate(panel['targets']):
        for r in query(base, 'query', query=expand(target['expr']), time=at):
            rows.setdefault(r['metric'].get('record', '?'), ['', ''])[i] = r['value'][1]
    cells = [[name, values[0], human(float(values[1]), 's') if values[1] else '-'] for name, values in sorted(rows.items())]
    if not cells:
        ax.text(0.5, 0.5, 'No data', ha='center', va='center', color=TEXT, fontsize=12, transform=ax.transAxes)
        return
    table = ax.table(cellText=cells, colLabels=['record', 'failed', 'finished ago'], loc='upper center',
                     cellLoc='left', colWidths=[0.6, 0.15, 0.25])
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for (row, unused_column), cell in table.get_celld().items():
        cell.set_facecolor(PANEL if row else GRID)
        cell.set_edgecolor(GRID)
        cell.get_text().set_color('#f2495c' if row and cells[row - 1][1] == '1' else TEXT)


def render(capture_dir, output):
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    text, stamps = openmetrics(capture_dir)
    at = moment(capture_dir) or stamps[-1]
    work = tempfile.mkdtemp(prefix='pgops-dashboard-')
    prometheus = None
    try:
        with open(os.path.join(work, 'series.om'), 'w') as handle:
            handle.write(text)
        subprocess.run(['promtool', 'tsdb', 'create-blocks-from', 'openmetrics', os.path.join(work, 'series.om'),
                        os.path.join(work, 'data')], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(work, 'prometheus.yml'), 'w') as handle:
            handle.write('global: {}\n')
        port = free_port()
        prometheus = subprocess.Popen(['prometheus', '--config.file=%s' % os.path.join(work, 'prometheus.yml'),
                                       '--storage.tsdb.path=%s' % os.path.join(work, 'data'),
                                       '--storage.tsdb.retention.time=3650d',
                                       '--web.listen-address=127.0.0.1:%d' % port],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = 'http://127.0.0.1:%d' % port
        for unused_attempt in range(60):
            try:
                urllib.request.urlopen(base + '/-/ready', timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        start, end = stamps[0] - 30, stamps[-1] + 30
        panels = [p for p in dashboard['panels'] if p['type'] != 'row']
        rows = max(p['gridPos']['y'] + p['gridPos']['h'] for p in dashboard['panels'])
        fig = plt.figure(figsize=(16, rows * 0.36), facecolor=BG)
        title = '%s  (%s, %s to %s UTC; values at %s)' % (
            dashboard['title'], INSTANCE, time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(stamps[0])),
            time.strftime('%H:%M:%S', time.gmtime(stamps[-1])), time.strftime('%H:%M:%S', time.gmtime(at)))
        fig.suptitle(title, color=TEXT, fontsize=12, x=0.01, ha='left', y=0.995)
        for row in (p for p in dashboard['panels'] if p['type'] == 'row'):
            fig.text(0.01, TOP - (row['gridPos']['y'] + 0.9) / rows * SCALE, row['title'], color=TEXT, fontsize=10,
                     fontweight='bold')
        for panel in panels:
            g = panel['gridPos']
            left, width = g['x'] / 24.0 + 0.004, g['w'] / 24.0 - 0.008
            top = TOP - g['y'] / float(rows) * SCALE - 0.012
            height = g['h'] / float(rows) * SCALE - 0.03
            frame = fig.add_axes([left, top - height - 0.008, width, height + 0.012])
            frame.set_facecolor(PANEL)
            frame.set_xticks([])
            frame.set_yticks([])
            for spine in frame.spines.values():
                spine.set_color(GRID)
            frame.text(0.01, 0.97, panel['title'], color=TEXT, fontsize=8.5, va='top', transform=frame.transAxes)
            inner = [left + width * 0.07, top - height + 0.005, width * 0.9, height - 0.03]
            if panel['type'] == 'stat':
                inner = [left + 0.002, top - height - 0.004, width - 0.004, height - 0.012]
            ax = fig.add_axes(inner)
            ax.set_facecolor(PANEL)
            if panel['type'] == 'stat':
                draw_stat(ax, panel, base, at)
            elif panel['type'] == 'timeseries':
                draw_timeseries(ax, panel, base, start, end)
            else:
                draw_table(ax, panel, base, at)
        fig.savefig(output, dpi=90, facecolor=BG)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    render(sys.argv[1], sys.argv[2])
