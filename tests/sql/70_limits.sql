-- tests/sql/70_limits.sql: the per-user rate limits of 930_limits.sql:
-- chat_rate_take (burst, refill, no limit), the rated entry points
-- (status 6 before any work) and the sweep of idle buckets.

SELECT t.reset();
TRUNCATE user_rates;

-- chat_rate_take -----------------------------------------------------------

SELECT t.is((SELECT array_agg(chat_rate_take('ra', 0, 1, 3))
               FROM generate_series(1, 5)),
            '{t,t,t,f,f}', 'take: a burst of 3, then refused');
SELECT t.ok((SELECT tokens < 1 FROM user_rates
              WHERE user_id = 'ra' AND kind = 0),
            'take: the bucket is empty');
SELECT t.ok(chat_rate_take('ra', 1, 1, 1), 'take: another kind is apart');
SELECT t.ok(chat_rate_take('rb', 0, 1, 1), 'take: another user is apart');
SELECT t.is((SELECT array_agg(chat_rate_take('rc', 0, 0, 1))
               FROM generate_series(1, 5)),
            '{t,t,t,t,t}', 'take: rate 0 is no limit');
SELECT t.is((SELECT count(*) FROM user_rates WHERE user_id = 'rc'),
            0::bigint, 'take: and keeps no row');

-- refill: 60r/m is one per second
UPDATE user_rates SET at = at - interval '2.5 seconds'
 WHERE user_id = 'ra' AND kind = 0;
SELECT t.is((SELECT array_agg(chat_rate_take('ra', 0, 60, 3))
               FROM generate_series(1, 3)),
            '{t,t,f}', 'take: 2.5 s at 60r/m refill two');
UPDATE user_rates SET at = at - interval '1 hour'
 WHERE user_id = 'ra' AND kind = 0;
SELECT t.is((SELECT array_agg(chat_rate_take('ra', 0, 60, 3))
               FROM generate_series(1, 4)),
            '{t,t,t,f}', 'take: a long pause refills to the burst only');

-- a clock step back (an older transaction) refills nothing
UPDATE user_rates SET at = now() + interval '1 minute', tokens = 0
 WHERE user_id = 'ra' AND kind = 0;
SELECT t.is(chat_rate_take('ra', 0, 60, 3), false,
            'take: no refill for a negative interval');

-- the rated entry points --------------------------------------------------

TRUNCATE user_rates;
SELECT t.is((SELECT array_agg(status ORDER BY g)
               FROM generate_series(1, 3) AS g,
                    LATERAL chat_create_rated('alice', ARRAY['bob'],
                                              'r' || g, 10, 1, 2)),
            '{0,0,6}', 'create: two, then 6');
SELECT t.is((SELECT count(*) FROM chats WHERE name LIKE 'r_'), 2::bigint,
            'create: the refused one made no chat');
SELECT id AS rchat FROM chats WHERE name = 'r1' \gset
SELECT t.is((SELECT row(c.*)::text
               FROM chat_create_rated('alice', ARRAY['bob'], 'r9', 10, 1, 2)
                    AS c),
            '(6,,,)', 'create: a refusal has no chat, event or recipients');
SELECT t.is((SELECT status FROM chat_create_rated('carol', ARRAY['bob'],
                                                  'rc', 10, 1, 2)),
            0, 'create: another user is not limited');
SELECT t.is((SELECT status FROM chat_create_rated('alice', ARRAY['bob'],
                                                  'r0', 10, 0, 1)),
            0, 'create: rate 0 is no limit');

SELECT t.is((SELECT array_agg(status ORDER BY g)
               FROM generate_series(1, 2) AS g,
                    LATERAL chat_modify_rated('alice', :rchat, 'd' || g,
                                              'ADD', 10, 1, 1)),
            '{0,6}', 'modify: one, then 6');
SELECT t.is((SELECT count(*) FROM participants WHERE chat_id = :rchat),
            3::bigint, 'modify: the refused one added nobody');
SELECT t.is((SELECT status FROM chat_modify_rated('alice', -1, 'x', 'ADD',
                                                  10, 1, 1)),
            6, 'modify: the rate is checked first');

SELECT t.is((SELECT array_agg(status ORDER BY g)
               FROM generate_series(1, 2) AS g,
                    LATERAL chat_media_create_rated('alice', 'p1',
                        'image/png', 10 + g, repeat('a', 64), 1, 1)),
            '{0,6}', 'media: one, then 6');
SELECT t.is((SELECT count(*) FROM attachments WHERE owner_id = 'alice'),
            1::bigint, 'media: the refused one created nothing');

-- sweep ---------------------------------------------------------------------

UPDATE user_rates SET at = now() - interval '8 days' WHERE user_id = 'alice';
SELECT t.is(chat_rate_sweep(1000), 3::bigint,
            'sweep: buckets idle for 8 days go');
SELECT t.is((SELECT count(*) FROM user_rates WHERE user_id = 'carol'),
            1::bigint, 'sweep: a fresh one stays');
SELECT * FROM chat_sweep('30 days', '30 days') \gset
UPDATE user_rates SET at = now() - interval '8 days';
SELECT * FROM chat_sweep('30 days', '30 days') \gset
SELECT t.is((SELECT count(*) FROM user_rates), 0::bigint,
            'sweep: chat_sweep deletes idle buckets');

DELETE FROM attachments WHERE owner_id = 'alice';
