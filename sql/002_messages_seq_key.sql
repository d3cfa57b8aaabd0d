-- 002_messages_seq_key.sql: a chat's seq stays unique, with the index led
-- by seq instead of chat_id.
--
-- With two indexes led by chat_id, (chat_id, id) and (chat_id, seq), a
-- generic plan made on the statistics of a nearly empty messages table
-- (it is a queue: often nearly empty when analyzed) could look a message
-- up through (chat_id, seq), with only chat_id as the index condition,
-- reading every entry of the chat for each message.  An ack, a drain page
-- and the message garbage collection got slower with every message a chat
-- had seen (docs/benchmarks.md, run G).  Led by seq, that index is of no
-- use to a lookup by (chat_id, id), which only the primary key serves.
-- messages holds only undelivered messages, so the rebuild is short.

ALTER TABLE messages DROP CONSTRAINT messages_chat_id_seq_key;
ALTER TABLE messages ADD CONSTRAINT messages_seq_chat_id_key
    UNIQUE (seq, chat_id);
