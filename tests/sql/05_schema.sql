-- tests/sql/05_schema.sql: the interface the module relies on: function
-- signatures and result columns, keys and indexes, the event sequence.

SELECT t.reset();

-- signatures, as the module's prepared statements call them
SELECT t.is((SELECT string_agg(format('%s(%s) -> %s', p.proname,
                                      pg_get_function_identity_arguments(p.oid),
                                      pg_get_function_result(p.oid)),
                               E'\n' ORDER BY p.proname)
               FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace
                AND p.proname IN ('chat_device_connect', 'chat_create',
                                  'chat_modify', 'chat_send_batch',
                                  'chat_ack_batch', 'chat_drain', 'chat_list',
                                  'chat_list_page',
                                  'chat_remove_device', 'chat_sweep',
                                  'chat_touch_devices', 'chat_is_participant',
                                  'chat_message_event_json')),
            'chat_ack_batch(p_users text[], p_devices text[], '
            'p_events bigint[]) -> integer' || E'\n' ||
            'chat_create(p_creator text, p_participants text[], '
            'p_name text, p_max integer) -> TABLE(status integer, '
            'chat_id bigint, event_json text, recipients text[])' || E'\n' ||
            'chat_device_connect(p_user text, p_device text, '
            'p_max_devices integer) -> integer' || E'\n' ||
            'chat_drain(p_user text, p_device text, p_after bigint, '
            'p_limit integer) -> TABLE(event_id bigint, event_json text)'
            || E'\n' ||
            'chat_is_participant(p_user text, p_chat bigint) -> boolean'
            || E'\n' ||
            'chat_list(p_user text) -> text' || E'\n' ||
            'chat_list_page(p_user text, p_after bigint, p_limit integer) '
            '-> TABLE(chat_id bigint, chat_json text)' || E'\n' ||
            'chat_message_event_json(p_chat_id bigint, p_id bigint, '
            'p_seq bigint, p_sender text, p_sender_device text, p_body text, '
            'p_attachments jsonb, p_sent_at timestamp with time zone) -> text'
            || E'\n' ||
            'chat_modify(p_actor text, p_chat bigint, p_user text, '
            'p_op text, p_max integer) -> TABLE(status integer, '
            'event_json text, recipients text[])' || E'\n' ||
            'chat_remove_device(p_user text, p_device text) -> integer'
            || E'\n' ||
            'chat_send_batch(p_users text[], p_devices text[], '
            'p_chats bigint[], p_cmids text[], p_bodies text[], '
            'p_attachments jsonb[], p_wait boolean) '
            '-> TABLE(idx integer, status integer, '
            'message_id bigint, seq bigint, sent_at_ms bigint, dup boolean, '
            'event_json text, recipients text[])' || E'\n' ||
            'chat_sweep(p_retention interval, p_device_idle interval, '
            'p_limit integer) -> TABLE(inbox_deleted bigint, '
            'messages_deleted bigint, devices_deactivated bigint, '
            'keys_deleted bigint)' || E'\n' ||
            'chat_touch_devices(p_users text[], p_devices text[]) -> void',
            'schema: the functions the module calls, exact signatures');

SELECT t.ok((SELECT count(*) = 0 FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace
                AND p.proname LIKE 'chat\_%'
                AND p.prosecdef),
            'schema: no SECURITY DEFINER functions');

-- primary keys and indexes
SELECT t.is((SELECT string_agg(indexrelid::regclass || ' ' ||
                               (pg_get_indexdef(indexrelid, 0, true)
                                ~ 'UNIQUE')
                               || ' ' || regexp_replace(
                                   pg_get_indexdef(indexrelid),
                                   '^.* USING ', ''),
                               E'\n' ORDER BY indexrelid::regclass::text)
               FROM pg_index
              WHERE indrelid IN ('devices'::regclass, 'chats'::regclass,
                                 'participants'::regclass,
                                 'messages'::regclass,
                                 'sent_keys'::regclass, 'inbox'::regclass)),
            'chats_pkey true btree (id)' || E'\n' ||
            'devices_idle_idx false btree (last_seen) WHERE active'
            || E'\n' ||
            'devices_pkey true btree (user_id, device_id)' || E'\n' ||
            'inbox_event_id_idx false btree (event_id)' || E'\n' ||
            'inbox_pkey true btree (user_id, device_id, event_id)' || E'\n' ||
            'messages_pkey true btree (chat_id, id)' || E'\n' ||
            'messages_seq_chat_id_key true btree (seq, chat_id)' || E'\n' ||
            'participants_pkey true btree (chat_id, user_id)' || E'\n' ||
            'participants_user_idx false btree (user_id, chat_id)' || E'\n' ||
            'sent_keys_pkey true btree (user_id, device_id, '
            'client_message_id)' || E'\n' ||
            'sent_keys_sent_at_idx false btree (sent_at)',
            'schema: keys and indexes');

SELECT t.is((SELECT cache_size FROM pg_sequences
              WHERE sequencename = 'events_id_seq'), 1::bigint,
            'schema: events_id_seq has no per-session cache');

-- the id checks in the tables match chat_valid_id
SELECT t.ok(NOT chat_valid_id('a/b') AND NOT chat_valid_id('')
            AND NOT chat_valid_id(repeat('a', 65)) AND NOT chat_valid_id(NULL)
            AND NOT chat_valid_id(E'a\nb') AND NOT chat_valid_id('ä')
            AND chat_valid_id('Az09._@-'),
            'schema: chat_valid_id');
DO $$
BEGIN
    INSERT INTO devices (user_id, device_id) VALUES ('a b', 'd');
    RAISE EXCEPTION 'bad id accepted';
EXCEPTION WHEN check_violation THEN
    NULL;
END
$$;
SELECT t.ok(true, 'schema: devices reject a bad id');
