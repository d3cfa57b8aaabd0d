
/*
 * ngx_chat_bus.h: live fan-out.  The worker's index of connected users and
 * one Redis channel per user that has a device on this worker.
 */


#ifndef _NGX_CHAT_BUS_H_INCLUDED_
#define _NGX_CHAT_BUS_H_INCLUDED_


#include "ngx_chat.h"


/* what the bus calls above it: the session (set in ngx_chat_worker.c) */
struct ngx_chat_bus_handlers_s {
    /* an event for cc's user; replay: published late after an outage */
    void  (*event)(ngx_chat_conn_t *cc, uint64_t id, u_char *json,
                   size_t len, ngx_uint_t replay);

    /* u's channel is subscribed: its live events reach the worker now */
    void  (*listening)(ngx_chat_user_t *u);

    /* u's channel is subscribed again: what it missed is in the inboxes */
    void  (*resync)(ngx_chat_user_t *u);
};


ngx_int_t ngx_chat_bus_init(ngx_chat_worker_t *w);

/* adds cc to its user's entry, subscribing the user's channel if new */
ngx_int_t ngx_chat_bus_join(ngx_chat_conn_t *cc);

/* removes cc; the last connection of a user unsubscribes (idempotent) */
void ngx_chat_bus_leave(ngx_chat_conn_t *cc);

/* the entry of a user connected to this worker, or NULL */
ngx_chat_user_t *ngx_chat_bus_user(ngx_str_t *id);

/*
 * The worker's memory of the messages it published: _add() records one
 * (a ring of the last 16384), ngx_chat_bus_published() is 1 if id is
 * there.
 */
void ngx_chat_bus_published_add(uint64_t id);
ngx_uint_t ngx_chat_bus_published(uint64_t id);

/*
 * The fan-out of a committed event to the users of a PostgreSQL text[]
 * (users, as the SQL functions return recipients; parsed in place), as
 * ngx_chat_bus_publish_event().  NGX_OK when every copy went to Redis or
 * its backlog; NGX_ERROR when the list was bad or a copy was dropped.
 */
ngx_int_t ngx_chat_bus_fanout(u_char *users, size_t users_len,
    uint64_t event_id, ngx_str_t *exclude_user, ngx_str_t *exclude_device,
    ngx_str_t *order, u_char *json, size_t len);

/* hands an event to every connection of u but those of device */
void ngx_chat_bus_deliver_event(ngx_chat_user_t *u, uint64_t event_id,
    ngx_str_t *device, u_char *json, size_t len, ngx_uint_t replay);

/*
 * Closes, with code, every connection of (user, device) but the one whose
 * identity is keep (NULL: all), on every worker and host.
 */
void ngx_chat_bus_kick(ngx_str_t *user, ngx_str_t *device, ngx_uint_t code,
    ngx_chat_conn_t *keep);

/* retries publishes that Redis refused while it was down (periodic) */
void ngx_chat_bus_flush(void);

/* frees what is left at exit */
void ngx_chat_bus_exit(void);

/*
 * Whether the live events of cc's user reach this worker: its channel's
 * subscription is confirmed, or Redis is down (then inboxes are polled).
 * A device's first drain waits for it, or an event published between the
 * drain's read and the subscription would reach the device only on its
 * next drain.
 */
ngx_uint_t ngx_chat_bus_listening(ngx_chat_conn_t *cc);

/*
 * Whether cc's user has no live subscriber (its Redis, or its shard of a
 * cluster, is down): its inboxes are then polled.
 */
ngx_uint_t ngx_chat_bus_polled(ngx_chat_conn_t *cc);

/* the Redis callbacks */
void ngx_chat_bus_message(void *data, u_char *channel, size_t channel_len,
    u_char *msg, size_t len);
void ngx_chat_bus_subscribed(void *data, u_char *channel,
    size_t channel_len);
void ngx_chat_bus_state(void *data, ngx_uint_t up);

/* a publish a shard refused (-MOVED...): to the backlog, sent again */
void ngx_chat_bus_bounced(void *data, u_char *channel, size_t channel_len,
    u_char *msg, size_t len);


#endif /* _NGX_CHAT_BUS_H_INCLUDED_ */
