-- tests/sql/20_chats.sql: chat_create, chat_modify, chat_list,
-- chat_is_participant and the chatUpdate events they queue.

SELECT t.reset();

-- devices: alice 2, bob 1, carol none, dave 1 (+1 inactive)
SELECT chat_device_connect('alice', 'a1', 5) AS x \gset
SELECT chat_device_connect('alice', 'a2', 5) AS x \gset
SELECT chat_device_connect('bob', 'b1', 5) AS x \gset
SELECT chat_device_connect('dave', 'v1', 5) AS x \gset
SELECT chat_device_connect('dave', 'v2', 5) AS x \gset
SELECT chat_remove_device('dave', 'v2') AS x \gset

-- create -------------------------------------------------------------------

SELECT status AS st, chat_id AS chat, event_json AS ev,
       recipients::text AS rc
  FROM chat_create('alice', ARRAY['carol', 'bob', 'carol', 'alice'],
                   'Team', 10) \gset
SELECT t.is(:st, 0, 'create: ok');
SELECT t.is(:'rc', '{alice,bob,carol}', 'create: recipients deduplicated');
SELECT t.is((SELECT array_agg(user_id ORDER BY user_id) FROM participants
              WHERE chat_id = :chat)::text, '{alice,bob,carol}',
            'create: participants deduplicated, creator included');
SELECT t.is((SELECT admin_id FROM chats WHERE id = :chat), 'alice',
            'create: creator is admin');
SELECT t.is((SELECT last_seq FROM chats WHERE id = :chat), 0::bigint,
            'create: last_seq 0');

SELECT t.is((:'ev'::jsonb) - 'eventId',
            jsonb_build_object('type', 'chatUpdate', 'chatId', :'chat',
                               'name', 'Team',
                               'participants',
                               '["alice","bob","carol"]'::jsonb,
                               'admin', 'alice'),
            'create: chatUpdate event content');
SELECT t.is(jsonb_typeof(:'ev'::jsonb -> 'eventId'), 'string',
            'create: eventId is a string');
SELECT t.is(jsonb_typeof(:'ev'::jsonb -> 'chatId'), 'string',
            'create: chatId is a string');
SELECT t.ok((:'ev'::json ->> 'type') = 'chatUpdate'
            AND :'ev' LIKE '{"type" : "chatUpdate"%',
            'create: "type" comes first');

SELECT t.is((SELECT count(*) FROM inbox WHERE chat_id = :chat), 3::bigint,
            'create: one inbox row per active device of participants');
SELECT t.is((SELECT array_agg(user_id || '/' || device_id
                              ORDER BY user_id, device_id)
               FROM inbox WHERE chat_id = :chat)::text,
            '{alice/a1,alice/a2,bob/b1}', 'create: the right devices');
SELECT t.ok((SELECT bool_and(kind = 2 AND payload = :'ev'
                             AND event_id::text = (:'ev'::json ->> 'eventId'))
               FROM inbox WHERE chat_id = :chat),
            'create: kind 2 rows carry the event as payload');

SELECT t.is((SELECT status FROM chat_create('alice', NULL, 'x', 10)), 4,
            'create: no participants: 4');
SELECT t.is((SELECT status FROM chat_create('alice', '{}', 'x', 10)), 4,
            'create: empty participants: 4');
SELECT t.is((SELECT status FROM chat_create('alice', ARRAY['alice'], 'x',
                                            10)), 4,
            'create: only the creator: 4');
SELECT t.is((SELECT status FROM chat_create('alice', ARRAY['b b'], 'x',
                                            10)), 4,
            'create: bad participant id: 4');
SELECT t.is((SELECT status FROM chat_create('alice', ARRAY['bob', NULL],
                                            'x', 10)), 4,
            'create: NULL participant: 4');
SELECT t.is((SELECT status FROM chat_create('', ARRAY['bob'], 'x', 10)), 4,
            'create: bad creator id: 4');
SELECT t.is((SELECT status FROM chat_create('alice', ARRAY['bob', 'carol'],
                                            'x', 2)), 3,
            'create: 3 participants over a max of 2: 3');
SELECT t.is((SELECT status FROM chat_create('alice', ARRAY['bob', 'bob'],
                                            'x', 2)), 0,
            'create: 2 participants after dedup fit a max of 2');
SELECT t.is((SELECT count(*) FROM chats), 2::bigint,
            'create: refused chats are not stored');

SELECT chat_id AS chat2 FROM chat_create('bob', ARRAY['carol'], NULL, NULL)
\gset
SELECT t.is((SELECT name FROM chats WHERE id = :chat2), '',
            'create: NULL name stored as empty');
SELECT t.is((SELECT count(*) FROM participants WHERE chat_id = :chat2),
            2::bigint, 'create: NULL max means 100');
SELECT t.is((SELECT status FROM chat_create('u0',
                 ARRAY(SELECT 'u' || g FROM generate_series(1, 100) g),
                 'big', NULL)), 3,
            'create: 101 participants over the default 100: 3');

-- modify -------------------------------------------------------------------

-- deterministic seniority: alice, bob, carol joined in that order
UPDATE participants SET joined_at = now() - interval '3 hours'
 WHERE chat_id = :chat AND user_id = 'alice';
UPDATE participants SET joined_at = now() - interval '2 hours'
 WHERE chat_id = :chat AND user_id = 'bob';
UPDATE participants SET joined_at = now() - interval '1 hours'
 WHERE chat_id = :chat AND user_id = 'carol';

SELECT t.is((SELECT status FROM chat_modify('alice', -5, 'bob', 'ADD', 10)),
            1, 'modify: unknown chat: 1');
SELECT t.is((SELECT status FROM chat_modify('eve', :chat, 'eve', 'ADD',
                                            10)), 2,
            'modify: non-participant adds: 2');
SELECT t.is((SELECT status FROM chat_modify('eve', :chat, 'bob', 'REMOVE',
                                            10)), 2,
            'modify: non-participant removes: 2');
SELECT t.is((SELECT status FROM chat_modify('alice', :chat, 'bob', 'KICK',
                                            10)), 4,
            'modify: unknown op: 4');
SELECT t.is((SELECT status FROM chat_modify('alice', :chat, 'bob', NULL,
                                            10)), 4,
            'modify: NULL op: 4');
SELECT t.is((SELECT status FROM chat_modify('alice', :chat, 'x y', 'ADD',
                                            10)), 4,
            'modify: bad user id: 4');
SELECT t.is((SELECT status FROM chat_modify('alice', NULL, 'bob', 'ADD',
                                            10)), 4,
            'modify: NULL chat: 4');

-- ADD by a non-admin participant
DELETE FROM inbox;
SELECT status AS st, event_json AS ev, recipients::text AS rc
  FROM chat_modify('bob', :chat, 'dave', 'add', 10) \gset
SELECT t.is(:st, 0, 'modify: a non-admin participant adds (op case-blind)');
SELECT t.is(:'rc', '{alice,bob,carol,dave}', 'modify add: recipients');
SELECT t.is((:'ev'::jsonb) -> 'participants',
            '["alice","bob","carol","dave"]'::jsonb,
            'modify add: event lists the new participant last');
SELECT t.is(:'ev'::jsonb ->> 'admin', 'alice', 'modify add: admin kept');
SELECT t.is((SELECT array_agg(user_id || '/' || device_id
                              ORDER BY user_id, device_id)
               FROM inbox)::text,
            '{alice/a1,alice/a2,bob/b1,dave/v1}',
            'modify add: event to every active device, incl. the new one');
SELECT t.ok(chat_is_participant('dave', :chat), 'is_participant: true');
SELECT t.ok(NOT chat_is_participant('eve', :chat), 'is_participant: false');
SELECT t.ok(NOT chat_is_participant('dave', -1),
            'is_participant: unknown chat');

DELETE FROM inbox;
SELECT status AS st, event_json IS NULL AS noev, recipients IS NULL AS norc
  FROM chat_modify('carol', :chat, 'dave', 'ADD', 10) \gset
SELECT t.is(:st, 0, 'modify: adding a member again is ok');
SELECT t.ok(:'noev'::boolean AND :'norc'::boolean,
            'modify: adding a member again has no event');
SELECT t.is((SELECT count(*) FROM inbox), 0::bigint,
            'modify: adding a member again queues nothing');

SELECT t.is((SELECT status FROM chat_modify('alice', :chat, 'erin', 'ADD',
                                            4)), 3,
            'modify: add over the max: 3');
SELECT t.ok(NOT chat_is_participant('erin', :chat),
            'modify: refused add not stored');

-- REMOVE
SELECT t.is((SELECT status FROM chat_modify('bob', :chat, 'carol', 'REMOVE',
                                            10)), 2,
            'modify: non-admin removes another: 2');
SELECT t.ok(chat_is_participant('carol', :chat),
            'modify: forbidden remove changes nothing');
SELECT t.is((SELECT status FROM chat_modify('bob', :chat, 'erin', 'REMOVE',
                                            10)), 2,
            'modify: non-admin removes a non-member: 2');

SELECT status AS st, event_json IS NULL AS noev
  FROM chat_modify('alice', :chat, 'erin', 'REMOVE', 10) \gset
SELECT t.ok(:st = 0 AND :'noev'::boolean,
            'modify: admin removes a non-member: ok, no event');

DELETE FROM inbox;
SELECT status AS st, event_json AS ev, recipients::text AS rc
  FROM chat_modify('dave', :chat, 'dave', 'REMOVE', 10) \gset
SELECT t.is(:st, 0, 'modify: self-remove by a non-admin');
SELECT t.is(:'rc', '{alice,bob,carol,dave}',
            'modify self-remove: recipients include the removed user');
SELECT t.is((:'ev'::jsonb) -> 'participants', '["alice","bob","carol"]',
            'modify self-remove: event without the removed user');
SELECT t.is((SELECT count(*) FROM inbox WHERE user_id = 'dave'), 1::bigint,
            'modify self-remove: removed user''s device gets the event');
SELECT t.ok(NOT chat_is_participant('dave', :chat),
            'modify self-remove: gone');

SELECT status AS st, recipients::text AS rc
  FROM chat_modify('alice', :chat, 'carol', 'REMOVE', 10) \gset
SELECT t.is(:st, 0, 'modify: admin removes another');
SELECT t.is(:'rc', '{alice,bob,carol}', 'modify admin remove: recipients');

-- the admin leaves: the longest-standing participant takes over
SELECT chat_modify('alice', :chat, 'carol', 'ADD', 10) AS x \gset
SELECT status AS st, event_json AS ev
  FROM chat_modify('alice', :chat, 'alice', 'REMOVE', 10) \gset
SELECT t.is(:st, 0, 'modify: admin leaves');
SELECT t.is((SELECT admin_id FROM chats WHERE id = :chat), 'bob',
            'modify: longest-standing participant becomes admin');
SELECT t.is(:'ev'::jsonb ->> 'admin', 'bob', 'modify: event names new admin');
SELECT t.is((SELECT status FROM chat_modify('bob', :chat, 'carol', 'REMOVE',
                                            10)), 0,
            'modify: new admin may remove others');

-- the last participant leaves: the chat is deleted
DELETE FROM inbox;
SELECT status AS st, event_json AS ev, recipients::text AS rc
  FROM chat_modify('bob', :chat, 'bob', 'REMOVE', 10) \gset
SELECT t.is(:st, 0, 'modify: last participant leaves');
SELECT t.is((SELECT count(*) FROM chats WHERE id = :chat), 0::bigint,
            'modify: empty chat deleted');
SELECT t.is(:'rc', '{bob}', 'modify: last leaver is told');
SELECT t.ok((:'ev'::jsonb -> 'participants') = '[]'
            AND (:'ev'::jsonb -> 'admin') = 'null',
            'modify: event of a deleted chat: no participants, admin null');
SELECT t.is((SELECT count(*) FROM inbox WHERE user_id = 'bob'), 1::bigint,
            'modify: last leaver''s device gets the event');
SELECT t.is((SELECT status FROM chat_modify('bob', :chat, 'bob', 'ADD', 10)),
            1, 'modify: deleted chat is not found');

-- list ---------------------------------------------------------------------

SELECT chat_id AS c3 FROM chat_create('carol', ARRAY['alice'], 'Two "q"',
                                      10) \gset
SELECT t.send1('carol', 'c1', :c3, 'k1', 'hi') AS x \gset
SELECT t.is(chat_list('nobody'), '[]', 'list: no chats gives []');
SELECT t.is(json_typeof(chat_list('carol')::json), 'array',
            'list: valid JSON array');
SELECT t.is(chat_list('carol')::jsonb,
            jsonb_build_array(
                jsonb_build_object('chatId', :'chat2', 'name', '',
                                   'participants', '["bob","carol"]'::jsonb,
                                   'admin', 'bob', 'lastSeq', 0),
                jsonb_build_object('chatId', :'c3', 'name', 'Two "q"',
                                   'participants', '["alice","carol"]'::jsonb,
                                   'admin', 'carol', 'lastSeq', 1)),
            'list: content, by chat id, lastSeq counted');
SELECT t.is(json_array_length(chat_list('alice')::json), 2,
            'list: alice is in two chats');

-- list by pages (sql/930_chat_pages.sql) -----------------------------------

SELECT t.is((SELECT count(*) FROM chat_list_page('nobody', NULL, 10)),
            0::bigint, 'page: no chats gives no rows');
SELECT t.is((SELECT array_agg(chat_id ORDER BY chat_id)
               FROM chat_list_page('carol', NULL, 10))::text,
            format('{%s,%s}', :'chat2', :'c3'), 'page: carol''s two chats');
SELECT t.is((SELECT jsonb_agg(chat_json::jsonb ORDER BY chat_id)
               FROM chat_list_page('carol', 0, 10)),
            chat_list('carol')::jsonb,
            'page: the same objects as chat_list, by chat id');
SELECT t.is((SELECT string_agg(chat_id::text, ',')
               FROM chat_list_page('carol', NULL, 1)), :'chat2',
            'page: limit 1 gives the first chat');
SELECT t.is((SELECT string_agg(chat_id::text, ',')
               FROM chat_list_page('carol', :chat2, 1)), :'c3',
            'page: after the first chat, the second');
SELECT t.is((SELECT count(*) FROM chat_list_page('carol', :c3, 10)),
            0::bigint, 'page: after the last chat, nothing');
SELECT t.is((SELECT count(*) FROM chat_list_page('carol', NULL, 0)),
            0::bigint, 'page: limit 0 gives nothing');

-- 30 more chats of carol's, one of them left again: every chat exactly
-- once, in id order, whatever the page size
SELECT count(*) AS x FROM (
    SELECT chat_create('carol', ARRAY['u' || i], 'p' || i, 10)
      FROM generate_series(1, 30) AS i) AS s \gset
SELECT max(chat_id) AS left_chat FROM participants
 WHERE user_id = 'carol' \gset
SELECT t.is(status, 0, 'page: carol leaves one chat')
  FROM chat_modify('carol', :left_chat, 'carol', 'REMOVE', 10);

CREATE TEMP TABLE pages (n int, chat_id bigint);
DO $$
DECLARE
    v_size   int;
    v_after  bigint;
    v_row    record;
    v_rows   int;
BEGIN
    FOREACH v_size IN ARRAY ARRAY[1, 7, 31, 1000] LOOP
        v_after := NULL;
        LOOP
            v_rows := 0;
            FOR v_row IN SELECT * FROM chat_list_page('carol', v_after,
                                                      v_size)
            LOOP
                INSERT INTO pages VALUES (v_size, v_row.chat_id);
                v_after := v_row.chat_id;
                v_rows := v_rows + 1;
            END LOOP;
            EXIT WHEN v_rows < v_size;
        END LOOP;
    END LOOP;
END
$$;

SELECT t.is((SELECT count(DISTINCT n) FROM pages), 4::bigint,
            'page: four page sizes walked');
SELECT t.ok(NOT EXISTS (
                SELECT n FROM pages GROUP BY n
                HAVING array_agg(chat_id ORDER BY chat_id)
                       IS DISTINCT FROM
                       (SELECT array_agg(p.chat_id ORDER BY p.chat_id)
                          FROM participants p WHERE p.user_id = 'carol')),
            'page: every page size gives each of carol''s chats once');
SELECT t.is((SELECT count(*) FROM pages WHERE n = 1), 31::bigint,
            'page: carol is in 31 chats');
SELECT t.ok(NOT EXISTS (SELECT 1 FROM pages WHERE chat_id = :left_chat),
            'page: not the chat carol left');
DROP TABLE pages;
