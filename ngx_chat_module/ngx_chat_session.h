
/*
 * ngx_chat_session.h: a device's session on a connection: registration,
 * live events, the inbox drain and the acks.
 */


#ifndef _NGX_CHAT_SESSION_H_INCLUDED_
#define _NGX_CHAT_SESSION_H_INCLUDED_


#include "ngx_chat.h"


ngx_int_t ngx_chat_session_open(ngx_chat_conn_t *cc);

/* stops everything live for cc; idempotent */
void ngx_chat_session_close(ngx_chat_conn_t *cc);

/* an event for cc's user arrived from the bus */
void ngx_chat_session_event(ngx_chat_conn_t *cc, uint64_t id, u_char *json,
    size_t len, ngx_uint_t replay);

/* cc's output queue is empty again */
void ngx_chat_session_writable(ngx_chat_conn_t *cc);

/* the device acked these events */
void ngx_chat_session_acked(ngx_chat_conn_t *cc, uint64_t *ids,
    ngx_uint_t n);

/*
 * Before the upgrade: writes the device row (token issued at iat), then
 * calls ngx_chat_ws_registered() with the outcome.  NGX_ERROR: not queued.
 */
ngx_int_t ngx_chat_session_register(ngx_chat_conn_t *cc, int64_t iat);

/* NGX_OK when the session is live (registered and upgraded) */
ngx_int_t ngx_chat_session_ready(ngx_chat_conn_t *cc);

/* frees the registrations still waiting (exit_process) */
void ngx_chat_session_exit(void);

/* u's channel is subscribed: the drains that waited for it start */
void ngx_chat_session_listening(ngx_chat_user_t *u);

/* drain u's connections again (its Redis, or shard, came back) */
void ngx_chat_session_resync(ngx_chat_user_t *u);

/* periodic: retry drains, poll the users whose Redis shard is down */
void ngx_chat_session_poll(void);


#endif /* _NGX_CHAT_SESSION_H_INCLUDED_ */
