-- 930_chat_pages.sql: getChats by pages (re-applied on every migrate, like
-- every file >= 900).
--
-- chat_list (900_functions.sql) answers every chat of a user with its
-- whole participant list in one value.  Anyone may add anyone to a chat,
-- so that value had no bound: forty chats of a hundred long user ids made
-- a victim's getChats larger than chat_output_limit, and the gateway
-- dropped the victim's connection on every getChats.  The gateway now
-- reads pages of chat_list_page and also cuts each page by bytes; chat_list
-- stays only for gateways of the previous version during a rolling
-- upgrade.


-- ---------------------------------------------------------------------------
-- chat_list_page: the user's chats with an id above p_after (NULL or 0:
-- from the first), in chat id order, at most p_limit of them (NULL means
-- 50; capped to 0..1000).  One row per chat: its id and its JSON object,
-- the same object as an element of chat_list's array.
--
-- The order is the key of participants_user_idx (user_id, chat_id), which
-- only that index serves, with the range given as a row comparison: a
-- generic plan cannot walk the primary key (chat_id, user_id) through
-- every chat instead.  The JSON is built by a correlated subquery, so only
-- for the rows the LIMIT lets through.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_list_page(p_user text, p_after bigint,
    p_limit int)
RETURNS TABLE(chat_id bigint, chat_json text)
LANGUAGE sql STABLE
AS $$
    SELECT p.chat_id,
           (SELECT json_build_object(
                       'chatId', c.id::text,
                       'name', c.name,
                       'participants', to_json(chat_participant_array(c.id)),
                       'admin', c.admin_id,
                       'lastSeq', c.last_seq)::text
              FROM chats c
             WHERE c.id = p.chat_id)
      FROM participants p
     WHERE p.user_id = p_user
       AND (p.user_id, p.chat_id) > (p_user, coalesce(p_after, 0))
     ORDER BY p.user_id, p.chat_id
     LIMIT least(greatest(coalesce(p_limit, 50), 0), 1000)
$$;
