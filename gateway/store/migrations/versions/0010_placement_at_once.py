"""PostgreSQL: a placement in one statement, and no per-row foreign keys to `partners` on the hot tables.

1. `gateway_place(...)`, a database function that places an order whose lines name no channel in one statement
   (see gateway/store/sql/placement.py): it tries the same advisory locks a command takes (the partner shared,
   the order's and the SKUs' keys in one key order) and answers `busy` when one is held elsewhere, then `replay`
   (an Idempotency-Key that answered already), `exists` (the order id is taken), `general` (a SKU with channels
   or no stock row: the engine's general path decides) or `short` (a line asks for more than its SKU's ATS) without
   writing anything; or it writes the order, its lines, its history step, the SKUs' allocation and published
   ATS, the ATS messages that moved and the key's answer, and answers `placed` (the changes, and the key's answer).
2. The foreign keys from stock, outbox, orders, channels and platform_requests to partners are dropped (each cost
   an index probe of `partners` per row written: a third of a first snapshot's merge), and those from order_lines
   and order_events to orders (a probe per line and step of every placement, whose plan the server keeps per
   connection: a sequential scan when it was made on a small table). Neither a partner nor an order is ever
   deleted by the gateway; a trigger refuses a DELETE of a partner that still has rows, another of an order that
   still has lines or history.

SQLite keeps its foreign keys and has no function: its one writer runs the engine's path.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"

HOT_TABLES = ("stock", "outbox", "orders", "channels", "platform_requests")
OF_ORDERS = ("order_lines", "order_events")  # written with their order, in the same statement

PLACE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION gateway_place(
    p_partner integer, p_order text, p_skus text[], p_quantities bigint[], p_units bigint[], p_now bigint,
    p_command text, p_partner_space integer, p_lock_spaces integer[], p_lock_keys integer[],
    p_key text, p_digest text, p_partner_name text
) RETURNS TABLE (outcome text, detail text)
LANGUAGE plpgsql
-- its statements read a few rows by key whatever the arguments: one plan each, kept (not planned again per call)
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    locked boolean;
    answer text;
    taken boolean;
    channelled boolean;
    held bigint;
    shortages text;
    changes text;
    body text;
BEGIN
    -- 1. the locks a command takes, tried: each statement after this one reads what committed before it held them
    SELECT pg_try_advisory_xact_lock_shared(p_partner_space, p_partner)
           AND coalesce(bool_and(pg_try_advisory_xact_lock(k.ns, k.key)), true)
    INTO locked FROM unnest(p_lock_spaces, p_lock_keys) AS k(ns, key);
    IF NOT locked THEN
        RETURN QUERY SELECT 'busy'::text, NULL::text;
        RETURN;
    END IF;
    -- 2. everything that decides, in one read
    SELECT (SELECT json_build_array(r.request_sha256, r.status, r.body)::text FROM platform_requests AS r
            WHERE p_key IS NOT NULL AND r.partner_id = p_partner AND r.key = p_key),
           EXISTS (SELECT 1 FROM orders AS o WHERE o.partner_id = p_partner AND o.order_id = p_order),
           EXISTS (SELECT 1 FROM channels AS c WHERE c.partner_id = p_partner AND c.sku = ANY (p_skus)),
           count(s.sku),
           json_agg(json_build_array(l.sku, l.q, s.quantity - s.allocated))
               FILTER (WHERE l.q > s.quantity - s.allocated)::text
    INTO answer, taken, channelled, held, shortages
    FROM unnest(p_skus, p_quantities) AS l(sku, q)
    LEFT JOIN stock AS s ON s.partner_id = p_partner AND s.sku = ANY (p_skus) AND s.sku = l.sku;
    IF answer IS NOT NULL THEN
        RETURN QUERY SELECT 'replay'::text, answer;
    ELSIF taken THEN
        RETURN QUERY SELECT 'exists'::text, NULL::text;
    ELSIF channelled OR held < cardinality(p_skus) THEN
        RETURN QUERY SELECT 'general'::text, NULL::text;
    ELSIF shortages IS NOT NULL THEN
        RETURN QUERY SELECT 'short'::text, shortages;
    END IF;
    IF answer IS NOT NULL OR taken OR channelled OR held < cardinality(p_skus) OR shortages IS NOT NULL THEN
        RETURN;
    END IF;
    -- 3. everything a placement writes, in one statement
    WITH placed AS (
        INSERT INTO orders (partner_id, order_id, status, created_at, updated_at)
        VALUES (p_partner, p_order, 'pending', p_now, p_now)
        RETURNING order_id
    ), lines AS (
        INSERT INTO order_lines (partner_id, order_id, sku, quantity)
        SELECT p_partner, placed.order_id, l.sku, l.q FROM placed, unnest(p_skus, p_quantities) AS l(sku, q)
    ), history AS (
        INSERT INTO order_events (partner_id, order_id, status, at, ledger_id, command)
        SELECT p_partner, placed.order_id, 'pending', p_now, NULL, p_command FROM placed
    ), moved AS (
        UPDATE stock AS s
        SET allocated = s.allocated + l.u, published = GREATEST(s.quantity - s.allocated - l.u, 0), updated_at = p_now
        FROM placed, unnest(p_skus, p_units) AS l(sku, u), stock AS o  -- after the order's row: one write order
        -- `= ANY` on the key: the few rows by the primary key, never a scan of the partner's stock
        WHERE s.partner_id = p_partner AND s.sku = ANY (p_skus) AND s.sku = l.sku
          AND o.partner_id = p_partner AND o.sku = ANY (p_skus) AND o.sku = s.sku
        RETURNING s.sku, s.as_of, o.published AS was, s.published AS value
    ), changed AS (
        SELECT m.sku, m.as_of, m.was, m.value FROM moved AS m WHERE m.value IS DISTINCT FROM m.was
    ), queued AS (
        INSERT INTO outbox
            (partner_id, kind, key, value, as_of, ledger_id, created_at, state, batch_id, run_id, attempts)
        SELECT p_partner, 'ats', c.sku, c.value, c.as_of, NULL, p_now, 'pending', NULL, NULL, 0
        FROM changed AS c ORDER BY c.sku
        ON CONFLICT (partner_id, kind, key) WHERE state = 'pending' DO UPDATE
        SET value = excluded.value, as_of = excluded.as_of, ledger_id = excluded.ledger_id,
            created_at = excluded.created_at, batch_id = excluded.batch_id, run_id = excluded.run_id,
            attempts = excluded.attempts
    ), answer_body AS (
        -- the key's answer, as the API's CommandOut renders it (model_dump_json: compact, fields in order)
        SELECT '{"partner":' || to_json(p_partner_name)::text || ',"ats_changes":[' || coalesce(string_agg(
                   '{"sku":' || to_json(c.sku)::text || ',"before":' || coalesce(c.was::text, 'null')
                   || ',"after":' || c.value::text || '}', ',' ORDER BY c.sku), '')
               || '],"order_id":' || to_json(p_order)::text || '}' AS text
        FROM (SELECT 1) AS one LEFT JOIN changed AS c ON true
        WHERE p_key IS NOT NULL
        GROUP BY one
    ), kept AS (
        INSERT INTO platform_requests (partner_id, key, request_sha256, status, body, created_at)
        SELECT p_partner, p_key, p_digest, 201, answer_body.text, p_now FROM answer_body
    )
    SELECT json_build_array(
               coalesce((SELECT json_agg(json_build_array(c.sku, c.was, c.value) ORDER BY c.sku) FROM changed AS c),
                        '[]'::json),
               (SELECT answer_body.text FROM answer_body))::text
    INTO changes;
    RETURN QUERY SELECT 'placed'::text, changes;
END
$fn$
"""

KEEP_PARTNERS = r"""
CREATE OR REPLACE FUNCTION gateway_keep_partner() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM stock WHERE partner_id = OLD.id) OR EXISTS (SELECT 1 FROM orders WHERE partner_id = OLD.id)
       OR EXISTS (SELECT 1 FROM outbox WHERE partner_id = OLD.id)
       OR EXISTS (SELECT 1 FROM channels WHERE partner_id = OLD.id)
       OR EXISTS (SELECT 1 FROM platform_requests WHERE partner_id = OLD.id) THEN
        RAISE EXCEPTION 'partner % still has rows: it cannot be deleted', OLD.name
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$fn$
"""

KEEP_ORDERS = r"""
CREATE OR REPLACE FUNCTION gateway_keep_order() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM order_lines WHERE partner_id = OLD.partner_id AND order_id = OLD.order_id)
       OR EXISTS (SELECT 1 FROM order_events WHERE partner_id = OLD.partner_id AND order_id = OLD.order_id) THEN
        RAISE EXCEPTION 'order % still has lines or history: it cannot be deleted', OLD.order_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$fn$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, parent in [*((table, "partners") for table in HOT_TABLES), *((table, "orders") for table in OF_ORDERS)]:
        names = bind.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = to_regclass(%(table)s) "
            "AND confrelid = to_regclass(%(parent)s)",
            {"table": table, "parent": parent},
        ).scalars()
        for name in list(names):
            op.drop_constraint(name, table, type_="foreignkey")
    op.execute(KEEP_PARTNERS)
    op.execute(
        "CREATE TRIGGER partners_keep BEFORE DELETE ON partners FOR EACH ROW EXECUTE FUNCTION gateway_keep_partner()"
    )
    op.execute(KEEP_ORDERS)
    op.execute("CREATE TRIGGER orders_keep BEFORE DELETE ON orders FOR EACH ROW EXECUTE FUNCTION gateway_keep_order()")
    op.execute(PLACE_FUNCTION)
