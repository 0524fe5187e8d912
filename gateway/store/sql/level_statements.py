"""PostgreSQL's SQL for loading a snapshot (see levels.py): the COPY tables, the checks, the merge.

A snapshot's rows are copied into a temporary table (by binary COPY, or as snapshot_copy.py reads the raw file
into it), checked against the stock (stale, predating a movement, becoming oversold) and merged into it in one
statement that also queues the published ATS that moved (a pending message's payload is kept, as every ATS
queuing keeps it: a schedule owed, records.SCHEDULE_OWED, is still sent).
"""

from __future__ import annotations

from gateway.domain.messages import MessageKind, OutboxState
from gateway.store.sql.statements import PENDING

LEVELS = "gateway_levels"
LEVELS_TABLE = (
    "CREATE TEMPORARY TABLE gateway_levels (sku TEXT NOT NULL, quantity BIGINT NOT NULL, as_of BIGINT NOT NULL)"
    " ON COMMIT DROP"
)
LEVELS_DROP = "DROP TABLE IF EXISTS pg_temp.gateway_levels"
LEVELS_COPY = "COPY gateway_levels (sku, quantity, as_of) FROM STDIN (FORMAT BINARY)"
LEVELS_ANALYZE = "ANALYZE gateway_levels"
STOCK_ANALYZE = "ANALYZE stock"
FEW_CHANGED = 20  # a merge of at most 1 row in 20 of its snapshot looks its rows up by key (LOOK_UP_BY_KEY)
# to the end of the transaction, or until set "on" again; only with the planner's figures for the stock up to date
# (STOCK_ROWS: its rows as the planner counts them), else a table it thinks tiny might be scanned once per row
LOOK_UP_BY_KEY = "SELECT set_config('enable_hashjoin', %(on)s, true), set_config('enable_mergejoin', %(on)s, true)"
STOCK_ROWS = "SELECT reltuples FROM pg_class WHERE oid = CAST('stock' AS regclass)"
ANALYZE_AFTER = 10_000  # new SKUs a merge adds before it analyzes the stock (when they grow it by a tenth)
MERGE_LEVELS = f"""
WITH fresh AS (
    INSERT INTO stock (partner_id, sku, quantity, as_of, allocated, published, set_by, updated_at)
    SELECT %(p)s, i.sku, i.quantity, i.as_of, 0, GREATEST(i.quantity, 0), %(set_by)s, %(now)s
    FROM gateway_levels AS i
    WHERE NOT EXISTS (SELECT 1 FROM stock AS s WHERE s.partner_id = %(p)s AND s.sku = i.sku)
    RETURNING sku, as_of, CAST(NULL AS BIGINT) AS before, published AS after
), moved AS (
    UPDATE stock AS s
    SET quantity = i.quantity, as_of = i.as_of, set_by = %(set_by)s, updated_at = %(now)s,
        published = GREATEST(i.quantity - s.allocated, 0)
    FROM gateway_levels AS i, stock AS o
    WHERE s.partner_id = %(p)s AND s.sku = i.sku AND o.partner_id = s.partner_id AND o.sku = s.sku
      AND (s.quantity, s.as_of) IS DISTINCT FROM (i.quantity, i.as_of)
      AND NOT (s.as_of IS NOT NULL AND i.as_of < s.as_of)
    RETURNING s.sku, s.as_of, o.published AS before, s.published AS after
), published AS (
    SELECT sku, as_of, before, after FROM fresh
    UNION ALL
    SELECT sku, as_of, before, after FROM moved WHERE after IS DISTINCT FROM before
), queued AS (
    INSERT INTO outbox (partner_id, kind, key, value, as_of, ledger_id, created_at, state, batch_id, run_id, attempts)
    SELECT %(p)s, '{MessageKind.ATS.value}', sku, after, as_of, %(ledger)s, %(now)s, '{OutboxState.PENDING.value}',
        NULL, %(run)s, 0 FROM published
    ON CONFLICT (partner_id, kind, key) WHERE {PENDING} DO UPDATE
    SET value = excluded.value, as_of = excluded.as_of, ledger_id = excluded.ledger_id,
        created_at = excluded.created_at, batch_id = NULL, run_id = excluded.run_id, attempts = 0
)
SELECT sku, before, after, count(*) OVER () FROM published LIMIT %(sample)s
"""
_STALE = "s.as_of IS NOT NULL AND i.as_of < s.as_of"
# a stored SKU that was not oversold and that the merge puts below its allocation
_BECOMES_OVERSOLD = f"NOT ({_STALE}) AND s.quantity >= s.allocated AND i.quantity < s.allocated"
LEVEL_STATS = f"""
SELECT count(*) FILTER (WHERE {_STALE}),
       count(*) FILTER (WHERE NOT ({_STALE}) AND (s.quantity, s.as_of) IS DISTINCT FROM (i.quantity, i.as_of)
                          AND s.last_moved_at IS NOT NULL AND i.as_of < s.last_moved_at),
       count(*) FILTER (WHERE {_BECOMES_OVERSOLD}),
       count(*)
FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
"""
OVERSOLD_SAMPLE = f"""
SELECT i.sku, i.quantity, s.allocated FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
WHERE {_BECOMES_OVERSOLD} ORDER BY i.sku LIMIT %(sample)s
"""
STALE_SAMPLE = f"""
SELECT i.sku FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
WHERE {_STALE} ORDER BY i.sku LIMIT 20
"""
PREDATES_SAMPLE = f"""
SELECT i.sku FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
WHERE NOT ({_STALE}) AND (s.quantity, s.as_of) IS DISTINCT FROM (i.quantity, i.as_of)
  AND s.last_moved_at IS NOT NULL AND i.as_of < s.last_moved_at
ORDER BY i.sku LIMIT 20
"""
