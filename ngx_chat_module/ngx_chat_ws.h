
/*
 * ngx_chat_ws.h: WebSocket connections (handshake, takeover of the socket,
 * frame I/O, output queue, ping and close).
 */


#ifndef _NGX_CHAT_WS_H_INCLUDED_
#define _NGX_CHAT_WS_H_INCLUDED_


#include "ngx_chat.h"
#include "ngx_chat_ws_frame.h"      /* the close codes NGX_CHAT_CLOSE_* */


/* room to leave in front of a payload for the largest server header */
#define NGX_CHAT_WS_HEADER_MAX         10


/*
 * The layers above the transport plug in here, as nginx's HTTP code sets
 * r->read_event_handler: ngx_chat_ws.c calls nothing above it by name.
 * Set once per worker (ngx_chat_worker.c).
 */
struct ngx_chat_ws_handlers_s {
    /* before the upgrade: writes the device row of an authenticated
     * request (its token issued at iat), then ngx_chat_ws_registered();
     * NGX_ERROR: could not even start (503) */
    ngx_int_t  (*reg)(ngx_chat_conn_t *cc, int64_t iat);

    /* the socket is taken over: the session starts; NGX_ERROR: 1011 */
    ngx_int_t  (*open)(ngx_chat_conn_t *cc);

    /* one whole text message; NGX_OK unless the connection was closed */
    ngx_int_t  (*message)(ngx_chat_conn_t *cc, u_char *p, size_t len);

    /* the output queue of a live connection is empty again */
    void       (*writable)(ngx_chat_conn_t *cc);

    /* the connection is closing or closed: stop all it does (idempotent;
     * called from a posted event or the final close, never inside a
     * caller's loop) */
    void       (*close)(ngx_chat_conn_t *cc);
};


ngx_int_t ngx_chat_ws_handler(ngx_http_request_t *r);

/*
 * Queues one text frame.  buf holds NGX_CHAT_WS_HEADER_MAX free bytes
 * before the payload (p = buf + NGX_CHAT_WS_HEADER_MAX).  Returns NGX_OK,
 * or NGX_ERROR when the connection is closed or was just closed because its
 * output limit was exceeded.
 */
ngx_int_t ngx_chat_ws_send_text(ngx_chat_conn_t *cc, u_char *p, size_t len);

/* queues one text frame, copying the payload */
ngx_int_t ngx_chat_ws_send_copy(ngx_chat_conn_t *cc, u_char *p, size_t len);

/*
 * Starts the close handshake with code and reason: the connection is
 * CLOSING at once (nothing more is sent to it), its session is torn down
 * from a posted event, never inside the caller.
 */
void ngx_chat_ws_close(ngx_chat_conn_t *cc, ngx_uint_t code,
    const char *reason);

/* what became of an upgrade request's registration */
#define NGX_CHAT_WS_ACCEPT             0   /* 101, then the takeover */
#define NGX_CHAT_WS_TOO_MANY           1   /* 403 too_many_devices */
#define NGX_CHAT_WS_REVOKED            2   /* 403 device_removed */
#define NGX_CHAT_WS_UNAVAILABLE        3   /* 503 unavailable */

/* the registration that handlers->reg started is done: outcome as above */
void ngx_chat_ws_registered(ngx_chat_conn_t *cc, ngx_uint_t outcome);

/* a callback that held cc (cc->pending) is done with it */
void ngx_chat_ws_release(ngx_chat_conn_t *cc);

/* closes every connection of the worker (exit_process) */
void ngx_chat_ws_close_all(void);


#endif /* _NGX_CHAT_WS_H_INCLUDED_ */
