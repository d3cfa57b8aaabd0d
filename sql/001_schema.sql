-- 001_schema.sql: the ngx_chat tables, sequences and indexes.
--
-- Applied once by scripts/migrate, inside one transaction, and recorded in
-- schema_migrations; numbered files must therefore not contain BEGIN or
-- COMMIT themselves.  The functions that read and write these tables live in
-- 900_functions.sql; docs/schema.md explains the keys, the indexes and the
-- locking rules.  Every hot query is keyed by the leading columns of a
-- primary key: messages by chat, inbox by device, participants by chat
-- (and by user through participants_user_idx).


-- One global sequence for every event: message ids and chat-update event
-- ids.  A device drains its inbox ORDER BY event_id.  Keep CACHE 1 (the
-- default): with a per-session cache, two sessions could hand out ids out
-- of order within one chat, and id order must equal seq order there.
CREATE SEQUENCE events_id_seq AS bigint CACHE 1;

CREATE SEQUENCE chats_id_seq AS bigint;


-- Devices of a user.  A removed or idle device is kept with active = false
-- (its inbox is dropped); connecting again reactivates it.
CREATE TABLE devices (
    user_id     text        NOT NULL,
    device_id   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    active      boolean     NOT NULL DEFAULT true,
    PRIMARY KEY (user_id, device_id),
    CONSTRAINT devices_user_id_check
        CHECK (length(user_id) BETWEEN 1 AND 64
               AND user_id !~ '[^A-Za-z0-9._@-]'),
    CONSTRAINT devices_device_id_check
        CHECK (length(device_id) BETWEEN 1 AND 64
               AND device_id !~ '[^A-Za-z0-9._@-]')
);

-- The retention sweep looks for active devices not seen for a while.
CREATE INDEX devices_idle_idx ON devices (last_seen) WHERE active;


-- Chats.  last_seq is the per-chat message counter; bumping it with
-- UPDATE ... RETURNING is also the lock that orders a chat's messages.
CREATE TABLE chats (
    id          bigint      PRIMARY KEY DEFAULT nextval('chats_id_seq'),
    name        text        NOT NULL DEFAULT '',
    admin_id    text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seq    bigint      NOT NULL DEFAULT 0
);

ALTER SEQUENCE chats_id_seq OWNED BY chats.id;


CREATE TABLE participants (
    chat_id     bigint      NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id     text        NOT NULL,
    joined_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, user_id),
    CONSTRAINT participants_user_id_check
        CHECK (length(user_id) BETWEEN 1 AND 64
               AND user_id !~ '[^A-Za-z0-9._@-]')
);

-- "Which chats is this user in" (chat_list).
CREATE INDEX participants_user_idx ON participants (user_id, chat_id);


-- Messages, clustered by chat.  id is the event id (events_id_seq), seq the
-- per-chat sequence number; both grow together within a chat.  A message
-- row lives only while at least one inbox row (kind 1) points at it; no
-- foreign key to chats, so a deleted chat's undelivered messages can still
-- be drained.
CREATE TABLE messages (
    chat_id            bigint      NOT NULL,
    id                 bigint      NOT NULL,
    seq                bigint      NOT NULL,
    sender_id          text        NOT NULL,
    sender_device      text        NOT NULL,
    client_message_id  text        NOT NULL,
    body               text        NOT NULL,
    attachments        jsonb       NOT NULL DEFAULT '[]',
    sent_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, id),
    UNIQUE (chat_id, seq)
);


-- Idempotency keys of sent messages, kept until the retention sweep even
-- after the message itself is gone.
CREATE TABLE sent_keys (
    user_id            text        NOT NULL,
    device_id          text        NOT NULL,
    client_message_id  text        NOT NULL,
    chat_id            bigint      NOT NULL,
    message_id         bigint      NOT NULL,
    seq                bigint      NOT NULL,
    sent_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id, client_message_id)
);

-- The sweep deletes the oldest keys first.
CREATE INDEX sent_keys_sent_at_idx ON sent_keys (sent_at);


-- Per-device queue of events not yet acknowledged.  kind 1 = message (the
-- event id is the message id, the JSON is built from messages at drain
-- time), kind 2 = chat update (payload holds the serialized event).
CREATE TABLE inbox (
    user_id     text        NOT NULL,
    device_id   text        NOT NULL,
    event_id    bigint      NOT NULL,
    chat_id     bigint      NOT NULL,
    kind        smallint    NOT NULL,
    payload     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id, event_id),
    CONSTRAINT inbox_kind_check CHECK (
        (kind = 1 AND payload IS NULL) OR (kind = 2 AND payload IS NOT NULL))
);

-- "Is any inbox row left for this message" after an ack, and the oldest
-- rows first for the retention sweep.
CREATE INDEX inbox_event_id_idx ON inbox (event_id);


-- inbox and messages are queues: rows are inserted and deleted all the
-- time.  Vacuum them after 1% dead rows rather than 20%, so the space is
-- reused and the indexes stay small; analyze them often, so plans follow
-- their size.
ALTER TABLE inbox SET (autovacuum_vacuum_scale_factor = 0.01,
                       autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.01,
                          autovacuum_analyze_scale_factor = 0.02);
