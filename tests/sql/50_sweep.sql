-- tests/sql/50_sweep.sql: chat_sweep (retention of inbox rows, messages and
-- keys; idle devices; bounded work; one sweep at a time).  Rows are aged by
-- moving their timestamps into the past rather than by sleeping.

SELECT t.reset();

SELECT count(chat_device_connect(u, u || g, 5)) AS x
  FROM unnest(ARRAY['alice', 'bob', 'carol']) AS u,
       generate_series(1, 2) AS g
\gset
SELECT chat_id AS chat FROM chat_create('alice', ARRAY['bob', 'carol'],
                                        'abc', 10) \gset

-- 6 messages from alice1; the first 4 become 2 days old
SELECT count(*) AS x
  FROM generate_series(1, 6) AS g,
       LATERAL t.send1('alice', 'alice1', :chat, 's' || g, 'b' || g) AS s
\gset
SELECT array_agg(id ORDER BY id) AS ids FROM messages \gset
CREATE TEMP TABLE old_ids AS
SELECT unnest((:'ids'::bigint[])[1:4]) AS id;

UPDATE inbox SET created_at = now() - interval '2 days'
 WHERE event_id IN (SELECT id FROM old_ids) OR kind = 2;
UPDATE messages SET sent_at = now() - interval '2 days'
 WHERE id IN (SELECT id FROM old_ids);
UPDATE sent_keys SET sent_at = now() - interval '2 days'
 WHERE message_id IN (SELECT id FROM old_ids);

SELECT t.is((SELECT count(*) FROM inbox), 6 * 5 + 6::bigint,
            'sweep setup: 30 message rows + 6 chat update rows');

-- nothing is old enough for a week of retention
SELECT t.is((SELECT row(s.*)::text FROM chat_sweep('7 days', '30 days') s),
            '(0,0,0,0)', 'sweep: nothing older than the retention');

-- bounded: at most 10 inbox rows looked at, 10 keys
SELECT inbox_deleted AS i1, messages_deleted AS m1, keys_deleted AS k1
  FROM chat_sweep('1 day', NULL, 10) \gset
SELECT t.ok(:i1 > 0 AND :i1 <= 10, 'sweep bounded: at most 10 inbox rows');
SELECT t.ok(:k1 = 4, 'sweep bounded: the 4 old keys (fewer than 10)');
SELECT t.is(:m1::bigint,
            (SELECT 4 - count(*) FROM messages
              WHERE id IN (SELECT id FROM old_ids)),
            'sweep bounded: messages counted as they go');

-- the rest
SELECT inbox_deleted + :i1 AS itot, messages_deleted + :m1 AS mtot,
       devices_deactivated AS dv, keys_deleted AS k2
  FROM chat_sweep('1 day', '30 days') \gset
SELECT t.is(:itot::bigint, 4 * 5 + 6::bigint,
            'sweep: every old inbox row deleted (messages and updates)');
SELECT t.is(:mtot::bigint, 4::bigint, 'sweep: the 4 old messages deleted');
SELECT t.is(:k2::bigint, 0::bigint, 'sweep: keys already gone');
SELECT t.is(:dv::bigint, 0::bigint, 'sweep: no idle device');
SELECT t.is((SELECT array_agg(id ORDER BY id) FROM messages)::text,
            ((:'ids'::bigint[])[5:6])::text, 'sweep: new messages kept');
SELECT t.is((SELECT count(*) FROM inbox), 2 * 5::bigint,
            'sweep: new inbox rows kept');
SELECT t.is((SELECT count(*) FROM sent_keys), 2::bigint,
            'sweep: new keys kept');
SELECT t.is((SELECT row(s.*)::text FROM chat_sweep('1 day', '30 days') s),
            '(0,0,0,0)', 'sweep: a second run finds nothing');

-- a key whose message was deleted long ago still goes by its own age
UPDATE sent_keys SET sent_at = now() - interval '2 days'
 WHERE message_id = (:'ids'::bigint[])[5];
SELECT t.is((SELECT keys_deleted FROM chat_sweep('1 day', NULL)), 1::bigint,
            'sweep: keys by their own age');

-- idle devices: deactivated, inboxes dropped, orphaned messages deleted
UPDATE devices SET last_seen = now() - interval '40 days'
 WHERE device_id IN ('bob1', 'bob2', 'carol1', 'carol2', 'alice2');
SELECT t.is((SELECT row(s.*)::text FROM chat_sweep(NULL, '30 days') s),
            '(10,2,5,0)',
            'sweep: 5 idle devices, their 10 rows, 2 messages orphaned');
SELECT t.is((SELECT array_agg(device_id ORDER BY device_id) FROM devices
              WHERE active)::text, '{alice1}',
            'sweep: only the fresh device stays active');
SELECT t.is((SELECT count(*) FROM messages), 0::bigint,
            'sweep: no message outlives its inbox rows');
SELECT t.is(chat_device_connect('bob', 'bob1', 5), 0,
            'sweep: an idle-deactivated device can reconnect');

-- touched devices are not idle
UPDATE devices SET last_seen = now() - interval '40 days' WHERE active;
SELECT chat_touch_devices(ARRAY['bob'], ARRAY['bob1']) AS x \gset
SELECT t.is((SELECT devices_deactivated FROM chat_sweep(NULL, '30 days')),
            1::bigint, 'sweep: a touched device is kept');
SELECT t.ok((SELECT active FROM devices WHERE device_id = 'bob1'),
            'sweep: bob1 still active');

-- only one sweep at a time
SELECT dblink_connect('sweeper', :'dbl' || ' application_name=sweeper') AS x
\gset
UPDATE sent_keys SET sent_at = now() - interval '2 days';
BEGIN;
SELECT keys_deleted AS kk FROM chat_sweep('1 day', NULL) \gset
SELECT t.is((SELECT row(s.*)::text
               FROM dblink('sweeper',
                           'SELECT * FROM chat_sweep(''1 day'', NULL)')
                    AS s(a bigint, b bigint, c bigint, d bigint)),
            '(0,0,0,0)', 'sweep: a concurrent sweep returns zeros at once');
COMMIT;
SELECT t.is(:kk::bigint, 1::bigint, 'sweep: the first sweep did the work');
SELECT dblink_disconnect('sweeper') AS x \gset
