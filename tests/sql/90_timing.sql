-- tests/sql/90_timing.sql: informational only, nothing asserted but that
-- the sends succeed.  100 messages to a 2-member chat sent as 100 single
-- calls (100 round trips, 100 commits) against one chat_send_batch call of
-- 100 (one round trip, one commit).  Both go through a dblink session so
-- every call is its own autocommit transaction, as from the module.

SELECT t.reset();

SELECT chat_device_connect('alice', 'a1', 5) AS x \gset
SELECT chat_device_connect('bob', 'b1', 5) AS x \gset
SELECT chat_id AS chat FROM chat_create('alice', ARRAY['bob'], 'T', 10) \gset

CREATE OR REPLACE FUNCTION t.time_sends(p_conn text, p_chat bigint)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    i       int;
    t0      timestamptz;
    single  interval;
    batch   interval;
    ok      bigint := 0;
    n       bigint;
BEGIN
    PERFORM dblink_connect('timer', p_conn || ' application_name=timer');

    t0 := clock_timestamp();
    FOR i IN 1 .. 100 LOOP
        SELECT count(*) INTO n
          FROM dblink('timer',
                      format('SELECT status FROM chat_send_batch('
                             'ARRAY[''alice''], ARRAY[''a1''], ARRAY[%s], '
                             'ARRAY[''single-%s''], ARRAY[''hello''], NULL)',
                             p_chat, i)) AS x(status int)
         WHERE x.status = 0;
        ok := ok + n;
    END LOOP;
    single := clock_timestamp() - t0;

    t0 := clock_timestamp();
    SELECT count(*) INTO n
      FROM dblink('timer',
                  format('SELECT status FROM chat_send_batch('
                         'array_fill(''alice''::text, ARRAY[100]), '
                         'array_fill(''a1''::text, ARRAY[100]), '
                         'array_fill(%s::bigint, ARRAY[100]), '
                         'ARRAY(SELECT ''batch-'' || g '
                         '        FROM generate_series(1, 100) g), '
                         'array_fill(''hello''::text, ARRAY[100]), NULL)',
                         p_chat)) AS x(status int)
     WHERE x.status = 0;
    ok := ok + n;
    batch := clock_timestamp() - t0;

    PERFORM dblink_disconnect('timer');

    RETURN NEXT t.is(ok, 200::bigint, 'timing: all 200 sends stored');
    RETURN NEXT format('# 100 single sends: %s ms (%s msg/s)',
                       round(extract(epoch FROM single) * 1000, 1),
                       round(100 / greatest(extract(epoch FROM single),
                                            0.000001)));
    RETURN NEXT format('# 1 batch of 100:   %s ms (%s msg/s)',
                       round(extract(epoch FROM batch) * 1000, 1),
                       round(100 / greatest(extract(epoch FROM batch),
                                            0.000001)));
END
$$;

SELECT t.time_sends(:'dbl', :chat);
