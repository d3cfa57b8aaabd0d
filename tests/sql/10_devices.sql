-- tests/sql/10_devices.sql: chat_device_connect, chat_remove_device,
-- chat_touch_devices.

SELECT t.reset();

-- connect: created, already active, limit
SELECT t.is(chat_device_connect('u1', 'd1', 3), 0, 'connect creates a device');
SELECT t.ok((SELECT active FROM devices WHERE user_id = 'u1'
              AND device_id = 'd1'), 'new device is active');

UPDATE devices SET last_seen = now() - interval '1 day',
                   created_at = now() - interval '2 days'
 WHERE user_id = 'u1' AND device_id = 'd1';
SELECT t.is(chat_device_connect('u1', 'd1', 3), 0,
            'connect of an active device is ok');
SELECT t.ok((SELECT last_seen > now() - interval '1 minute' FROM devices
              WHERE user_id = 'u1' AND device_id = 'd1'),
            'connect of an active device refreshes last_seen');
SELECT t.is((SELECT count(*) FROM devices WHERE user_id = 'u1'), 1::bigint,
            'reconnect does not add a row');

SELECT t.is(chat_device_connect('u1', 'd2', 3), 0, 'second device');
SELECT t.is(chat_device_connect('u1', 'd3', 3), 0, 'third device');
SELECT t.is(chat_device_connect('u1', 'd4', 3), 3,
            'fourth device refused: limit_exceeded');
SELECT t.is((SELECT count(*) FROM devices WHERE user_id = 'u1'), 3::bigint,
            'refused device not stored');
SELECT t.is(chat_device_connect('u1', 'd1', 3), 0,
            'an already active device still connects at the limit');
SELECT t.is(chat_device_connect('u2', 'd4', 3), 0,
            'the limit is per user');
SELECT t.is(chat_device_connect('u3', 'd1', 0), 3,
            'max 0 refuses every new device');

-- bad requests
SELECT t.is(chat_device_connect('', 'd1', 3), 4, 'empty user id: 4');
SELECT t.is(chat_device_connect('u 1', 'd1', 3), 4, 'space in user id: 4');
SELECT t.is(chat_device_connect('u1', repeat('x', 65), 3), 4,
            '65-char device id: 4');
SELECT t.is(chat_device_connect('u1', repeat('x', 64), 9), 0,
            '64-char device id is fine');
SELECT t.is(chat_device_connect(NULL, 'd1', 3), 4, 'NULL user: 4');
SELECT t.is(chat_device_connect('u1', 'd1', NULL), 4, 'NULL max: 4');
SELECT t.is(chat_device_connect('a.b_c-d@e', 'D.9', 3), 0,
            'all allowed id characters');
SELECT chat_remove_device('u1', repeat('x', 64)) AS ignore \gset

-- remove, then the fourth device fits
SELECT t.is(chat_remove_device('u1', 'd2'), 0, 'remove_device ok');
SELECT t.ok(NOT (SELECT active FROM devices WHERE user_id = 'u1'
                  AND device_id = 'd2'), 'removed device is inactive');
SELECT t.is(chat_remove_device('u1', 'd2'), 1,
            'removing an inactive device: not_found');
SELECT t.is(chat_remove_device('u1', 'nope'), 1,
            'removing an unknown device: not_found');
SELECT t.is(chat_remove_device('nobody', 'd1'), 1,
            'removing a device of an unknown user: not_found');
SELECT t.is(chat_device_connect('u1', 'd4', 3), 0,
            'fourth device allowed after remove_device');
SELECT t.is(chat_device_connect('u1', 'd2', 3), 3,
            'reactivating beyond the limit is refused');
SELECT t.is(chat_remove_device('u1', 'd4'), 0, 'remove d4');
SELECT t.is(chat_device_connect('u1', 'd2', 3), 0, 'reactivate d2');
SELECT t.ok((SELECT active AND created_at < now() FROM devices
              WHERE user_id = 'u1' AND device_id = 'd2'), 'd2 active again');
SELECT t.is((SELECT count(*) FROM devices WHERE user_id = 'u1' AND active),
            3::bigint, 'three active devices');

-- touch
UPDATE devices SET last_seen = now() - interval '1 day';
SELECT chat_touch_devices(ARRAY['u1', 'u1', 'u1', 'zz'],
                          ARRAY['d3', 'd1', 'd4', 'd1']);
SELECT t.ok((SELECT last_seen > now() - interval '1 minute' FROM devices
              WHERE user_id = 'u1' AND device_id = 'd1'), 'touch d1');
SELECT t.ok((SELECT last_seen > now() - interval '1 minute' FROM devices
              WHERE user_id = 'u1' AND device_id = 'd3'), 'touch d3');
SELECT t.ok((SELECT last_seen < now() - interval '1 hour' FROM devices
              WHERE user_id = 'u1' AND device_id = 'd4'),
            'touch leaves an inactive device alone');
SELECT t.ok((SELECT last_seen < now() - interval '1 hour' FROM devices
              WHERE user_id = 'u1' AND device_id = 'd2'),
            'touch leaves devices not listed alone');
SELECT chat_touch_devices('{}', '{}');
SELECT t.ok(true, 'touch with empty arrays');

-- batched registration -------------------------------------------------------

SELECT t.is((SELECT array_agg(status ORDER BY idx)
               FROM chat_device_connect_batch(
                        ARRAY['zed', 'zed', 'yan', 'zed', 'zed'],
                        ARRAY['z1', 'z2', 'y1', 'z3', 'z4'], 3))::text,
            '{0,0,0,0,3}',
            'batch connect: one status per element, the 4th device refused');
SELECT t.is((SELECT array_agg(status ORDER BY idx)
               FROM chat_device_connect_batch(ARRAY['zed'], ARRAY['z1'],
                                              3))::text,
            '{0}', 'batch connect: an active device again is ok');

-- the set-based paths and the one-by-one rest in one batch: known active
-- devices, new ones under and over the cap (counted with the user's
-- active devices, in arrival order), an element repeated, bad ids, a
-- revoked token and a reactivation
SELECT chat_device_connect('kim', 'k1', 3), chat_device_connect('kim', 'k2', 3),
       chat_device_connect('lee', 'l1', 3);
SELECT chat_remove_device('lee', 'l1');
SELECT t.is((SELECT array_agg(status ORDER BY idx)
               FROM chat_device_connect_batch(
                        ARRAY['kim', 'kim', 'kim', 'kim', 'max', 'max',
                              'bad user', 'lee', 'lee', 'max'],
                        ARRAY['k4', 'k1', 'k3', 'k5', 'm1', 'm1',
                              'x', 'l1', 'l1', 'm2'], 3,
                        ARRAY[0, 0, 0, 0, 0, 0, 0, 0,
                              extract(epoch FROM now())::bigint + 10,
                              0]::bigint[]))::text,
            '{0,0,3,3,0,0,4,7,0,0}',
            'batch connect: every path of one batch');
SELECT t.is((SELECT string_agg(user_id || '/' || device_id || '='
                               || active, ',' ORDER BY user_id, device_id)
               FROM devices WHERE user_id IN ('kim', 'lee', 'max')),
            'kim/k1=true,kim/k2=true,kim/k4=true,lee/l1=true,max/m1=true,'
            || 'max/m2=true',
            'batch connect: the devices it admitted, and only those');
SELECT t.is((SELECT array_agg(status ORDER BY idx)
               FROM chat_device_connect_batch(ARRAY['kim'], ARRAY['k1'],
                                              NULL))::text,
            '{4}', 'batch connect: no cap given is a bad request');
