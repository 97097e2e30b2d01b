"""Benchmark data generated inside PostgreSQL with SQL: text, uuids, json, a wide table and many
small tables, so that it compresses like real tables (not like pgbench_accounts).

Each big table gets its share of the requested size: a first chunk of rows measures the bytes per
row, then the rest is inserted in one statement. Two sessions load in parallel (the host has 2 cores),
each taking the next table from a queue.
"""

import queue
import threading
import time

from measure import log

SMALL_TABLES = 300
# Share of the requested size per table (primary key indexes take the rest).
SHARES = {'bench_orders': 0.32, 'bench_events': 0.27, 'bench_wide': 0.26, 'small': 0.07}
CALIBRATION_ROWS = 20000
SESSIONS = 2   # the bench machine has 2 cores

SYLLABLES = ['ka', 'ne', 'ri', 'to', 'mu', 'sa', 'lo', 'pe', 'di', 'an', 'or', 'el', 'us', 'im', 'ber', 'con',
             'ter', 'val', 'mon', 'res', 'pro', 'sta', 'gen', 'lin', 'da', 'vi', 'ho', 'fu', 'ze', 'qua', 'tri',
             'ment', 'ing', 'tion', 'er', 'ly', 'al', 'ous', 'ble', 'ra', 'ce', 'mi', 'no', 'bo', 'ta', 'po',
             'ge', 'wa', 'ya', 'ki', 'shi', 'cha', 'pla', 'gro', 'ste', 'ver', 'cor', 'par', 'tor', 'mar',
             'sel', 'dor', 'fin', 'lu']
STATUSES = ['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded', 'on_hold']
ACTIONS = ['login', 'logout', 'view', 'click', 'purchase', 'search', 'update', 'share']
AGENTS = ['Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0',
          'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15', 'curl/8.5.0', 'okhttp/4.12.0']


def _array(items):
    return 'ARRAY[%s]' % ','.join("'%s'" % i for i in items)


def _pick(items):
    return '(%s)[1 + floor(random() * %d)::int]' % (_array(items), len(items))


def _word():
    return '%s || %s' % (_pick(SYLLABLES), _pick(SYLLABLES))


def sentence(words):
    """A random sentence of about `words` words made of two syllables each (compresses like prose)."""
    return "left(%s, %d + floor(random() * %d)::int)" % (
        " || ' ' || ".join('(%s)' % _word() for _ in range(words)), words * 3, words * 3)


def orders_select(first, last):
    return """SELECT g, gen_random_uuid(), floor(random() * 200000)::int, %s,
  round((random() * 500)::numeric, 2), timestamptz '2024-01-01 00:00+00' + g * interval '7 seconds',
  upper(substr(md5(g::text), 1, 10)), %s
FROM generate_series(%d, %d) g""" % (_pick(STATUSES), sentence(16), first, last)


def events_select(first, last):
    return """SELECT g, timestamptz '2024-01-01 00:00+00' + g * interval '3 seconds', jsonb_build_object(
  'user_id', floor(random() * 100000)::int, 'action', %s, 'session', md5(random()::text),
  'ip', concat_ws('.', 10, floor(random() * 256)::int, floor(random() * 256)::int, floor(random() * 256)::int),
  'agent', %s, 'amount', round((random() * 1000)::numeric, 2), 'ok', random() < 0.97,
  'tags', jsonb_build_array(%s, %s), 'message', %s)
FROM generate_series(%d, %d) g""" % (_pick(ACTIONS), _pick(AGENTS), _word(), _word(), sentence(8), first, last)


WIDE_COLUMNS = (
    [('i%02d' % n, 'int', 'floor(random() * %d)::int' % (10 ** (1 + n % 6))) for n in range(12)]
    + [('t%02d' % n, 'text', _pick(STATUSES if n % 2 else ACTIONS)) for n in range(10)]
    + [('n%02d' % n, 'numeric(14,4)', 'round((random() * 10000)::numeric, 4)') for n in range(8)]
    + [('d%02d' % n, 'timestamptz', "timestamptz '2020-01-01 00:00+00' + random() * interval '1500 days'")
       for n in range(6)]
    + [('b%02d' % n, 'boolean', 'random() < 0.3') for n in range(4)]
    + [('h%02d' % n, 'text', 'substr(md5(random()::text), 1, %d)' % (8 + 4 * n)) for n in range(4)]
    + [('w%02d' % n, 'text', _word()) for n in range(4)])


def wide_select(first, last):
    return 'SELECT g, %s FROM generate_series(%d, %d) g' % (', '.join(c[2] for c in WIDE_COLUMNS), first, last)


TABLES = {
    'bench_orders': ('id bigint, order_uuid uuid, customer_id int, status text, amount numeric(12,2), '
                     'created_at timestamptz, sku text, note text', orders_select),
    'bench_events': ('id bigint, created_at timestamptz, payload jsonb', events_select),
    'bench_wide': ('id bigint, ' + ', '.join('%s %s' % (c[0], c[1]) for c in WIDE_COLUMNS), wide_select),
}


def small_sql(table_bytes):
    """SMALL_TABLES small tables of about table_bytes each (rows of ~140 bytes)."""
    rows = max(20, int(table_bytes / 140))
    return """DO $$
BEGIN
  FOR n IN 1..%d LOOP
    EXECUTE format('CREATE TABLE bench_small_%%s (id int PRIMARY KEY, name text, code text, value numeric(12,2),
      updated_at timestamptz, note text)', lpad(n::text, 3, '0'));
    EXECUTE format($q$INSERT INTO bench_small_%%s SELECT g, %s, upper(substr(md5(random()::text), 1, 8)),
      round((random() * 1000)::numeric, 2), timestamptz '2024-01-01 00:00+00' + random() * interval '600 days', %s
      FROM generate_series(1, %d) g$q$, lpad(n::text, 3, '0'));
  END LOOP;
END $$;""" % (SMALL_TABLES, _word(), sentence(8), rows)


def _load_table(host, table, target_bytes):
    columns, select = TABLES[table]
    host.psql('CREATE TABLE %s (%s);\nINSERT INTO %s %s;' % (table, columns, table, select(1, CALIBRATION_ROWS)),
              what='create ' + table)
    used = int(host.psql("SELECT pg_table_size('%s')" % table))
    rows = max(CALIBRATION_ROWS, int(target_bytes / (used / CALIBRATION_ROWS)))
    if rows > CALIBRATION_ROWS:
        host.psql('INSERT INTO %s %s;' % (table, select(CALIBRATION_ROWS + 1, rows)), what='load ' + table,
                  timeout=3600)
    host.psql('ALTER TABLE %s ADD PRIMARY KEY (id);' % table, what='index ' + table, timeout=3600)


def load(host, size_mb):
    """Create database bench with about size_mb MB of data; return its size in bytes."""
    host.psql('CREATE DATABASE bench;', db='postgres')
    total = size_mb * 1024 * 1024
    errors = []

    def session(jobs):
        try:
            for job in jobs:
                job()
        except Exception as exc:  # reported after both sessions ended
            errors.append(exc)

    # Biggest first; each session takes the next job when it is done (the tables cost different CPU
    # per byte: bench_wide calls random() 40 times a row), so both cores stay busy to the end.
    jobs = queue.Queue()
    for table in ('bench_orders', 'bench_events', 'bench_wide'):
        jobs.put(lambda table=table: _load_table(host, table, total * SHARES[table]))
    jobs.put(lambda: host.psql(small_sql(total * SHARES['small'] / SMALL_TABLES), what='small tables', timeout=3600))

    def worker():
        while not errors:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                return
            session([job])

    started = time.time()
    threads = [threading.Thread(target=worker) for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    loaded = time.time()
    settle(host)
    log('data: tables and indexes %.0f s, VACUUM (FREEZE, ANALYZE) + CHECKPOINT %.0f s'
        % (loaded - started, time.time() - loaded))
    return int(host.psql("SELECT pg_database_size('bench')"))


def settle(host):
    """No work left for autovacuum (hint bits set, visibility map, statistics) and a clean checkpoint,
    so that no background writes land in the middle of a measurement."""
    host.psql('VACUUM (FREEZE, ANALYZE);', timeout=3600)
    host.psql('CHECKPOINT;', timeout=600)


def change(host, fraction=0.05, round_no=0):
    """Change about `fraction` of the data: update that share of the rows of each big table (a
    contiguous id range, different for each round) and of the small tables. Returns rows changed."""
    changed = 0
    for table in TABLES:
        count = int(host.psql('SELECT max(id) FROM %s' % table))
        span = max(1, int(count * fraction))
        low = 1 + (round_no * span) % max(1, count - span)
        column = {'bench_orders': "note = note || ' (revised)', status = 'on_hold'",
                  'bench_events': "payload = payload || jsonb_build_object('revised', true)",
                  'bench_wide': "t00 = 'revised', i00 = i00 + 1"}[table]
        host.psql('UPDATE %s SET %s WHERE id BETWEEN %d AND %d;' % (table, column, low, low + span - 1),
                  timeout=3600)
        changed += span
    tables = max(1, int(SMALL_TABLES * fraction))
    host.psql("""DO $$ BEGIN FOR n IN 1..%d LOOP
  EXECUTE format('UPDATE bench_small_%%s SET value = value + 1', lpad(n::text, 3, '0'));
END LOOP; END $$;""" % tables)
    settle(host)
    return changed
