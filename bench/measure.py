"""Measurements: configurations of one comparison run in turns (A B C A B C ...), each run's
seconds and sizes are recorded, a failed run is recorded with its error and never stops the bench."""

import statistics
import sys
import time
import traceback


class Group:
    """One comparison: a reference configuration and the others, measured interleaved."""

    def __init__(self, key, title, reference, note=''):
        self.key = key
        self.title = title
        self.reference = reference
        self.note = note
        self.configs = []      # [{'name', 'description'}] in display order
        self.runs = {}         # name -> [run dict]

    def add(self, name, description):
        self.configs.append({'name': name, 'description': description})
        self.runs[name] = []

    def record(self, name, run):
        self.runs[name].append(run)

    def failed(self):
        return any(r.get('error') for runs in self.runs.values() for r in runs)

    def median(self, name):
        times = [r['seconds'] for r in self.runs[name] if not r.get('error')]
        return statistics.median(times) if times else None

    def summary(self):
        ref = self.median(self.reference)
        rows = []
        for config in self.configs:
            name = config['name']
            runs = self.runs[name]
            med = self.median(name)
            sizes = [r['size_bytes'] for r in runs if r.get('size_bytes') is not None]
            extra = {}
            for run in runs:
                for key, value in run.get('extra', {}).items():
                    extra.setdefault(key, []).append(value)
            rows.append({'name': name, 'description': config['description'],
                         'reference': name == self.reference,
                         'runs': [None if r.get('error') else round(r['seconds'], 3) for r in runs],
                         'errors': [r['error'] for r in runs if r.get('error')],
                         'median_seconds': None if med is None else round(med, 3),
                         'ratio_to_reference': round(med / ref, 3) if med is not None and ref else None,
                         'size_bytes': sizes[-1] if sizes else None, 'extra': extra})
        return {'key': self.key, 'title': self.title, 'reference': self.reference, 'note': self.note,
                'configs': rows}


STARTED = time.monotonic()


def log(text):
    """A progress line with the minutes and seconds since the bench started."""
    elapsed = int(time.monotonic() - STARTED)
    sys.stderr.write('\033[1m--> [%02d:%02d] %s\033[0m\n' % (elapsed // 60, elapsed % 60, text))
    sys.stderr.flush()


def interleave(group, runs, steps, between=None):
    """steps: [(name, function(run_index) -> dict with seconds [, size_bytes, extra])]. Run every
    configuration once per round, rounds one after the other; `between(name)` runs (untimed) after each."""
    for index in range(runs):
        for name, step in steps:
            started = time.time()
            try:
                run = step(index)
                log('%s / %s run %d: %.2f s%s' % (group.key, name, index + 1, run['seconds'],
                                                   ', %s bytes' % run['size_bytes'] if run.get('size_bytes') else ''))
            except Exception as exc:
                run = {'seconds': time.time() - started, 'error': str(exc)[-2000:]}
                log('%s / %s run %d FAILED: %s' % (group.key, name, index + 1, exc))
                traceback.print_exc()
            group.record(name, run)
            if between:
                try:
                    between(name)
                except Exception as exc:
                    group.record(name, {'seconds': 0, 'error': 'cleanup: %s' % exc})
                    log('%s / %s cleanup FAILED: %s' % (group.key, name, exc))
