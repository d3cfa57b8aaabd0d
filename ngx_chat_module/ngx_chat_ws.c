
/*
 * ngx_chat_ws.c: a WebSocket connection, from the upgrade request to the
 * closed socket.
 *
 * The handshake is checked and authenticated in the content handler.  One
 * event loop pass later the connection is taken over: the HTTP request and
 * its pool are freed, the header buffers returned, and what remains is the
 * connection pool (connection_pool_size) holding an ngx_chat_conn_t.  From
 * then on this file reads frames with c->recv into the worker's scratch
 * buffer (a connection keeps bytes only while a frame is incomplete), and
 * writes through a per-connection queue capped at chat_output_limit.  A
 * client that lets the queue grow past the cap is dropped; what it missed
 * waits in its inbox.
 *
 * Timers: c->read carries the ping timer (and, while closing, the linger
 * timer); c->write carries send_timeout while output is blocked.
 *
 * Memory per idle connection: the connection pool and nothing else.
 */


#include "ngx_chat.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_ws_frame.h"
#include "ngx_chat_utf8.h"
#include "ngx_chat_auth.h"
#include "ngx_chat_http.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_metrics.h"

#include <openssl/sha.h>


#define NGX_CHAT_WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define NGX_CHAT_WS_CHUNK      4096
#define NGX_CHAT_WS_LINGER     1000
#define NGX_CHAT_HTTP_UPGRADE_REQUIRED  426


/* lives in the request pool between the handler and the takeover */
typedef struct {
    ngx_chat_conn_t        *cc;
    ngx_str_t               key;    /* Sec-WebSocket-Key, in r */
    ngx_uint_t              taken;  /* the takeover owns cc */
} ngx_chat_ws_ctx_t;


static void ngx_chat_ws_cleanup(void *data);
static void ngx_chat_ws_adopt(ngx_chat_conn_t *cc, ngx_connection_t *c,
    ngx_http_connection_t *hc);
static ngx_int_t ngx_chat_ws_check_upgrade(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_table_elt_t *ngx_chat_ws_header(ngx_http_request_t *r,
    const char *name, size_t len);
static ngx_int_t ngx_chat_ws_header_has(ngx_table_elt_t *h,
    const char *token, size_t len);
static ngx_int_t ngx_chat_ws_reply_101(ngx_chat_conn_t *cc, ngx_str_t *key);
static void ngx_chat_ws_takeover(ngx_event_t *ev);
static void ngx_chat_ws_read_handler(ngx_event_t *rev);
static void ngx_chat_ws_read(ngx_event_t *rev);
static void ngx_chat_ws_start(ngx_chat_conn_t *cc);
static void ngx_chat_ws_write_handler(ngx_event_t *wev);
static void ngx_chat_ws_timer(ngx_chat_conn_t *cc);
static ssize_t ngx_chat_ws_consume(ngx_chat_conn_t *cc, u_char *p,
    size_t len);
static ngx_int_t ngx_chat_ws_consume_in(ngx_chat_conn_t *cc);
static ngx_int_t ngx_chat_ws_frame(ngx_chat_conn_t *cc,
    ngx_chat_ws_frame_t *f, u_char *payload);
static ngx_int_t ngx_chat_ws_data(ngx_chat_conn_t *cc,
    ngx_chat_ws_frame_t *f, u_char *payload);
static ngx_int_t ngx_chat_ws_control(ngx_chat_conn_t *cc,
    ngx_chat_ws_frame_t *f, u_char *payload);
static ngx_int_t ngx_chat_ws_keep(ngx_chat_conn_t *cc, u_char *p,
    size_t len);
static ngx_int_t ngx_chat_ws_queue(ngx_chat_conn_t *cc, ngx_uint_t opcode,
    u_char *p, size_t len);
static ngx_int_t ngx_chat_ws_append(ngx_chat_conn_t *cc, u_char *p,
    size_t len);
static void ngx_chat_ws_schedule_write(ngx_chat_conn_t *cc);
static ngx_int_t ngx_chat_ws_flush(ngx_chat_conn_t *cc);
static void ngx_chat_ws_abort(ngx_chat_conn_t *cc, const char *reason);
static void ngx_chat_ws_finalize(ngx_chat_conn_t *cc, const char *reason);
static void ngx_chat_ws_log_close(ngx_chat_conn_t *cc, ngx_uint_t code,
    const char *reason);
static void ngx_chat_ws_free_out(ngx_chat_conn_t *cc);
static void ngx_chat_ws_free_buffers(ngx_chat_conn_t *cc);
static u_char *ngx_chat_ws_log_error(ngx_log_t *log, u_char *buf,
    size_t len);


ngx_int_t
ngx_chat_ws_handler(ngx_http_request_t *r)
{
    int64_t                iat;
    ngx_int_t              rc;
    ngx_str_t              key, user, device, token;
    ngx_chat_conn_t       *cc;
    ngx_pool_cleanup_t    *cln;
    ngx_chat_ws_ctx_t     *ctx;
    ngx_connection_t      *c;
    ngx_chat_main_conf_t  *cmcf;

    /* before anything logs the request line: ?access_token= is a secret */
    if (ngx_chat_auth_hide_token(r, &token) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_chat_worker == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_str_null(&key);

    rc = ngx_chat_ws_check_upgrade(r, &key);

    if (rc != NGX_OK) {
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_BAD_REQUEST], 1);
    }

    if (rc == NGX_CHAT_HTTP_UPGRADE_REQUIRED) {
        return ngx_chat_http_error(r, rc, "upgrade_required",
                                   "this endpoint speaks WebSocket "
                                   "(RFC 6455, version 13) only");
    }

    if (rc == NGX_HTTP_BAD_REQUEST) {
        return ngx_chat_http_error(r, rc, "bad_request",
                                   "missing or invalid Sec-WebSocket-Key");
    }

    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_chat_module);

    rc = ngx_chat_auth_request(r, &token, &cmcf->jwt_secret, &user,
                               &device, &iat);
    if (rc != NGX_OK) {
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_UNAUTHORIZED], 1);
        return ngx_chat_http_error(r, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                   "missing, invalid or expired token");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    c = r->connection;

    /*
     * One allocation holds the ngx_chat_conn_t, the device id and the peer
     * address: at takeover the request and the connection pool go, and
     * this is all an idle connection keeps.
     */

    user.len = ngx_min(user.len, NGX_CHAT_ID_MAX);

    cc = ngx_calloc(sizeof(ngx_chat_conn_t) + device.len + user.len
                    + c->socklen + c->addr_text.len, c->log);
    if (cc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cc->connection = c;
    cc->utf8 = NGX_CHAT_UTF8_ACCEPT;
    cc->device.len = device.len;
    cc->device.data = (u_char *) cc + sizeof(ngx_chat_conn_t);
    ngx_memcpy(cc->device.data, device.data, device.len);
    cc->uid.len = user.len;
    cc->uid.data = cc->device.data + device.len;
    ngx_memcpy(cc->uid.data, user.data, user.len);

    ctx = ngx_palloc(r->pool, sizeof(ngx_chat_ws_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        ngx_free(cc);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->cc = cc;
    ctx->key = key;
    ctx->taken = 0;

    /* the request may die before the takeover: cc must not leak then */
    cln->handler = ngx_chat_ws_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_chat_module);

    /*
     * The 101 means registered: the device row is written first (and a
     * device over chat_max_devices, or a token that removeDevice revoked,
     * is refused with 403), so every event committed after the upgrade
     * has this device among its recipients.  The request is held until
     * ngx_chat_ws_registered() has the answer.
     */

    if (ngx_chat_worker->ws_handlers->reg(cc, iat) != NGX_OK) {
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_UNAVAILABLE], 1);
        return ngx_chat_http_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "unavailable",
                                   "database unavailable, retry later");
    }

    r->main->count++;

    return NGX_DONE;
}


void
ngx_chat_ws_registered(ngx_chat_conn_t *cc, ngx_uint_t outcome)
{
    ngx_int_t            rc;
    ngx_uint_t           code;
    const char          *error, *message;
    ngx_connection_t    *c;
    ngx_chat_ws_ctx_t   *ctx;
    ngx_http_request_t  *r;

    c = cc->connection;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_chat_module);

    if (outcome == NGX_CHAT_WS_ACCEPT) {
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_OK], 1);

        if (ngx_chat_ws_reply_101(cc, &ctx->key) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        /*
         * The takeover runs as a posted write event, when nothing of
         * nginx's HTTP code is on the stack.
         */

        r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;

        c->write->handler = ngx_chat_ws_takeover;
        ngx_post_event(c->write, &ngx_posted_events);
        return;
    }

    switch (outcome) {

    case NGX_CHAT_WS_TOO_MANY:
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_DEVICE_LIMIT], 1);
        code = NGX_HTTP_FORBIDDEN;
        error = "too_many_devices";
        message = "too many active devices: remove one first";
        break;

    case NGX_CHAT_WS_REVOKED:
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_REVOKED], 1);
        code = NGX_HTTP_FORBIDDEN;
        error = "device_removed";
        message = "the device was removed: get a new token";
        break;

    default:
        ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_UNAVAILABLE], 1);
        code = NGX_HTTP_SERVICE_UNAVAILABLE;
        error = "unavailable";
        message = "database unavailable, retry later";
        break;
    }

    rc = ngx_chat_http_error(r, code, error, message);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_chat_ws_check_upgrade(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char            buf[32];
    ngx_str_t         decoded;
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->http_version != NGX_HTTP_VERSION_11 || r->stream) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat: websocket needs HTTP/1.1");
        goto upgrade_required;
    }

    /* nginx 1.22 does not keep r->headers_in.connection: look it up */
    h = ngx_chat_ws_header(r, "Connection", 10);

    if (r->headers_in.upgrade == NULL
        || !ngx_chat_ws_header_has(r->headers_in.upgrade, "websocket", 9)
        || h == NULL
        || !ngx_chat_ws_header_has(h, "upgrade", 7))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat: not a websocket upgrade request");
        goto upgrade_required;
    }

    h = ngx_chat_ws_header(r, "Sec-WebSocket-Version", 21);
    if (h == NULL || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat: unsupported websocket version");

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Sec-WebSocket-Version");
        ngx_str_set(&h->value, "13");

        goto upgrade_required;
    }

    h = ngx_chat_ws_header(r, "Sec-WebSocket-Key", 17);
    if (h == NULL || h->value.len != 24) {
        goto bad_key;
    }

    decoded.data = buf;

    if (ngx_decode_base64(&decoded, &h->value) != NGX_OK
        || decoded.len != 16)
    {
        goto bad_key;
    }

    *key = h->value;

    return NGX_OK;

bad_key:

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "chat: missing or invalid Sec-WebSocket-Key");

    return NGX_HTTP_BAD_REQUEST;

upgrade_required:

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Upgrade");
    ngx_str_set(&h->value, "websocket");

    return NGX_CHAT_HTTP_UPGRADE_REQUIRED;
}


static ngx_table_elt_t *
ngx_chat_ws_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* a comma separated header value contains token, case-insensitively */
static ngx_int_t
ngx_chat_ws_header_has(ngx_table_elt_t *h, const char *token, size_t len)
{
    u_char  *p, *last, *start, *end;

    /* nginx 1.22 keeps the first header of a name only */
    {
        p = h->value.data;
        last = p + h->value.len;

        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < last && *p != ',') {
                p++;
            }

            end = p;

            while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }

            if ((size_t) (end - start) == len
                && ngx_strncasecmp(start, (u_char *) token, len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


static ngx_int_t
ngx_chat_ws_reply_101(ngx_chat_conn_t *cc, ngx_str_t *key)
{
    u_char         *p;
    u_char          digest[SHA_DIGEST_LENGTH];
    u_char          buf[192];
    ngx_str_t       src, dst;
    SHA_CTX         sha;
    u_char          accept[32];

    SHA1_Init(&sha);
    SHA1_Update(&sha, key->data, key->len);
    SHA1_Update(&sha, NGX_CHAT_WS_GUID, sizeof(NGX_CHAT_WS_GUID) - 1);
    SHA1_Final(digest, &sha);

    src.data = digest;
    src.len = SHA_DIGEST_LENGTH;
    dst.data = accept;
    ngx_encode_base64(&dst, &src);

    p = ngx_cpymem(buf, "HTTP/1.1 101 Switching Protocols" CRLF
                        "Upgrade: websocket" CRLF
                        "Connection: Upgrade" CRLF
                        "Sec-WebSocket-Accept: ",
                   sizeof("HTTP/1.1 101 Switching Protocols" CRLF
                          "Upgrade: websocket" CRLF
                          "Connection: Upgrade" CRLF
                          "Sec-WebSocket-Accept: ") - 1);
    p = ngx_cpymem(p, dst.data, dst.len);
    p = ngx_cpymem(p, CRLF CRLF, 4);

    return ngx_chat_ws_append(cc, buf, p - buf);
}


static void
ngx_chat_ws_takeover(ngx_event_t *ev)
{
    uint64_t                serial;
    ngx_int_t               rc;
    ngx_buf_t              *b;
    ngx_time_t             *tp;
    ngx_chat_conn_t        *cc;
    ngx_connection_t       *c;
    ngx_chat_ws_ctx_t      *ctx;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    c = ev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_chat_module);
    cc = ctx->cc;
    hc = r->http_connection;

    /* header_in is c->buffer or a large header buffer: both in c->pool */
    b = r->header_in;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ctx->taken = 1;

    ngx_http_free_request(r, 0);

    c->destroyed = 0;
    c->data = cc;
    c->read->handler = ngx_chat_ws_read_handler;
    c->write->handler = ngx_chat_ws_write_handler;

    /* ngx_close_idle_connections() calls us with c->close at shutdown */
    c->idle = 1;

    ngx_queue_insert_tail(&ngx_chat_worker->conns, &cc->all);
    ngx_chat_worker->nconns++;
    ngx_chat_metrics_gauge(NGX_CHAT_G_CONNECTIONS, ngx_chat_worker->nconns);
    /*
     * The identity: unique on this worker and growing with the wall clock
     * (milliseconds << 12), so that kicks can tell older connections of a
     * device from newer ones across workers (ngx_chat_bus.c).
     */
    tp = ngx_timeofday();
    serial = ((uint64_t) tp->sec * 1000 + tp->msec) << 12;
    ngx_chat_worker->serial = ngx_max(ngx_chat_worker->serial + 1, serial);
    cc->serial = ngx_chat_worker->serial;
    ngx_chat_limit_init(&cc->limit, &ngx_chat_worker->cmcf->command_rate,
                        (uint32_t) ngx_current_msec);

    /* bytes the client sent right behind the handshake are frames */

    rc = NGX_OK;

    if (b && b->pos < b->last) {
        rc = ngx_chat_ws_keep(cc, b->pos, b->last - b->pos);
    }

    ngx_chat_ws_adopt(cc, c, hc);

    if (rc != NGX_OK || ngx_tcp_nodelay(c) != NGX_OK) {
        ngx_chat_ws_finalize(cc, "takeover failed");
        return;
    }

    cc->pending++;
    ngx_chat_ws_start(cc);
    ngx_chat_ws_release(cc);
}


static void
ngx_chat_ws_start(ngx_chat_conn_t *cc)
{
    ngx_connection_t  *c;

    c = cc->connection;

    ngx_add_timer(c->read, ngx_chat_worker->cmcf->ping_interval);

    if (ngx_chat_ws_flush(cc) == NGX_ERROR) {
        ngx_chat_ws_finalize(cc, "write error");
        return;
    }

    if (ngx_chat_worker->ws_handlers->open(cc) != NGX_OK) {
        ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_INTERNAL, "internal error");
        return;
    }

    if (!ngx_chat_conn_active(cc)) {
        return;
    }

    if (cc->in_len) {
        cc->in_unparsed = 1;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_chat_ws_finalize(cc, "read event error");
        return;
    }

    if (c->read->ready || cc->in_unparsed) {
        ngx_chat_ws_read(c->read);
    }
}


/*
 * Moves what the connection still needs out of its pool (the log, the
 * peer address) into cc and, without TLS, destroys the pool: the header
 * buffers, ngx_http_connection_t and the rest of the request's leftovers.
 */
static void
ngx_chat_ws_adopt(ngx_chat_conn_t *cc, ngx_connection_t *c,
    ngx_http_connection_t *hc)
{
    u_char       *p;
    ngx_buf_t    *buffer;
    ngx_chain_t  *cl, *ln;

    buffer = c->buffer;

    cc->log = *c->log;
    cc->log.handler = ngx_chat_ws_log_error;
    cc->log.data = cc;
    cc->log.action = "serving websocket";
    c->log = &cc->log;
    c->read->log = c->log;
    c->write->log = c->log;

    p = cc->uid.data + cc->uid.len;
    c->sockaddr = (struct sockaddr *) ngx_cpymem(p, c->sockaddr, c->socklen)
                  - c->socklen;
    p += c->socklen;
    c->addr_text.data = ngx_cpymem(p, c->addr_text.data, c->addr_text.len)
                        - c->addr_text.len;

    c->local_sockaddr = c->listening->sockaddr;
    c->local_socklen = c->listening->socklen;
    c->proxy_protocol = NULL;
    c->buffer = NULL;

#if (NGX_HTTP_SSL)

    if (c->ssl) {
        /*
         * OpenSSL's state lives in the pool's cleanups: keep the pool, give
         * back the header buffers as ngx_http_set_keepalive() does.
         */

        cc->pool = c->pool;

        for (cl = hc->busy; cl; /* void */) {
            ln = cl;
            cl = cl->next;
            ngx_pfree(c->pool, ln->buf->start);
            ngx_free_chain(c->pool, ln);
        }

        for (cl = hc->free; cl; /* void */) {
            ln = cl;
            cl = cl->next;
            ngx_pfree(c->pool, ln->buf->start);
            ngx_free_chain(c->pool, ln);
        }

        hc->busy = NULL;
        hc->free = NULL;

        if (buffer) {
            ngx_pfree(c->pool, buffer->start);
        }

        return;
    }

#endif

    (void) hc;
    (void) cl;
    (void) ln;
    (void) buffer;

    ngx_destroy_pool(c->pool);
    c->pool = NULL;
}


static void
ngx_chat_ws_cleanup(void *data)
{
    ngx_chat_ws_ctx_t  *ctx = data;

    ngx_chat_conn_t  *cc;

    if (ctx->taken) {
        return;
    }

    /* the registration may still hold cc: it frees it then */

    cc = ctx->cc;
    ngx_chat_ws_free_buffers(cc);
    cc->connection = NULL;
    cc->state = NGX_CHAT_CONN_CLOSED;

    if (cc->pending == 0) {
        ngx_free(cc);
    }
}


static void
ngx_chat_ws_read_handler(ngx_event_t *rev)
{
    ngx_chat_conn_t   *cc;
    ngx_connection_t  *c;

    c = rev->data;
    cc = c->data;

    cc->pending++;
    ngx_chat_ws_read(rev);
    ngx_chat_ws_release(cc);
}


static void
ngx_chat_ws_read(ngx_event_t *rev)
{
    u_char            *p;
    size_t             size;
    ssize_t            n, used;
    ngx_event_t       *wev;
    ngx_chat_conn_t   *cc;
    ngx_connection_t  *c;

    c = rev->data;
    cc = c->data;

    if (c->close) {
        /* graceful shutdown (ngx_close_idle_connections) */
        c->close = 0;
        c->idle = 0;
        cc->shutdown = 1;

        if (c->error) {
            /* worker_shutdown_timeout: no more waiting */
            ngx_chat_ws_finalize(cc, "worker shutdown timeout");
            return;
        }

        if (!ngx_chat_conn_active(cc)) {
            return;
        }

        if (ngx_exiting && ngx_chat_worker->cmcf->shutdown_spread) {
            /*
             * Spread the goodbyes over chat_shutdown_spread so that the
             * clients do not all reconnect in the same millisecond.
             */
            if (rev->timer_set) {
                ngx_del_timer(rev);
            }

            ngx_add_timer(rev, ngx_random()
                               % ngx_chat_worker->cmcf->shutdown_spread);
            return;
        }

        ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_GOING_AWAY,
                          "server shutting down");
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;
        ngx_chat_ws_timer(cc);
        return;
    }

    if (cc->state == NGX_CHAT_CONN_CLOSED) {
        return;
    }

    if (cc->in_unparsed) {
        cc->in_unparsed = 0;

        if (ngx_chat_ws_consume_in(cc) != NGX_OK) {
            return;
        }
    }

    for ( ;; ) {

        /*
         * Read into the worker's scratch buffer; bytes of an incomplete
         * frame are kept in cc->in, appended to on the next read.
         */

        p = ngx_chat_worker->scratch;
        size = ngx_chat_worker->scratch_size;

        n = c->recv(c, p, size);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_chat_ws_finalize(cc, "client closed the connection");
            return;
        }

        if (cc->in_len) {
            if (ngx_chat_ws_keep(cc, p, n) != NGX_OK) {
                ngx_chat_ws_finalize(cc, "input buffer error");
                return;
            }

            if (ngx_chat_ws_consume_in(cc) != NGX_OK) {
                return;
            }

        } else {
            used = ngx_chat_ws_consume(cc, p, n);
            if (used == NGX_ERROR || cc->connection == NULL) {
                return;
            }

            if (used < n && ngx_chat_ws_keep(cc, p + used, n - used)
                            != NGX_OK)
            {
                ngx_chat_ws_finalize(cc, "input buffer error");
                return;
            }
        }

        if ((size_t) n < size) {
            break;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_chat_ws_finalize(cc, "read event error");
        return;
    }

    /*
     * What this read answered at once (refusals, errors, pongs) leaves
     * now, not at the end of the event loop pass: a pass that also
     * answers a send batch or delivers a few thousand events would hold
     * a refusal for milliseconds.  Frames of one read still leave in one
     * write.
     */

    wev = c->write;

    if (cc->out && wev->posted && !wev->timer_set
        && cc->state == NGX_CHAT_CONN_LIVE)
    {
        ngx_delete_posted_event(wev);

        if (ngx_chat_ws_flush(cc) == NGX_ERROR) {
            ngx_chat_ws_finalize(cc, "write error");
        }
    }
}


static void
ngx_chat_ws_timer(ngx_chat_conn_t *cc)
{
    ngx_connection_t  *c;

    c = cc->connection;

    if (cc->state == NGX_CHAT_CONN_CLOSING) {
        /* the peer did not answer our close frame in time */
        ngx_chat_ws_finalize(cc, "close timed out");
        return;
    }

    if (cc->shutdown) {
        ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_GOING_AWAY,
                          "server shutting down");
        return;
    }

    if (cc->ping_sent) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "chat: no pong within %M ms, closing",
                      ngx_chat_worker->cmcf->ping_interval);
        ngx_chat_ws_finalize(cc, "no pong");
        return;
    }

    cc->ping_sent = 1;

    if (ngx_chat_ws_queue(cc, NGX_CHAT_WS_OP_PING, NULL, 0) != NGX_OK) {
        return;
    }

    ngx_add_timer(c->read, ngx_chat_worker->cmcf->ping_interval);
}


/* parses what cc->in holds; NGX_ERROR when the connection was closed */
static ngx_int_t
ngx_chat_ws_consume_in(ngx_chat_conn_t *cc)
{
    ssize_t  used;

    used = ngx_chat_ws_consume(cc, cc->in, cc->in_len);
    if (used == NGX_ERROR || cc->connection == NULL) {
        return NGX_ERROR;
    }

    if ((size_t) used == cc->in_len) {
        ngx_free(cc->in);
        cc->in = NULL;
        cc->in_len = 0;
        cc->in_cap = 0;

    } else if (used) {
        ngx_memmove(cc->in, cc->in + used, cc->in_len - used);
        cc->in_len -= used;
    }

    return NGX_OK;
}


/*
 * Parses and handles every whole frame at p.  Returns the number of bytes
 * used (the rest is an incomplete frame), or NGX_ERROR when the connection
 * was closed.  The buffer is modified (unmasked in place).
 */
static ssize_t
ngx_chat_ws_consume(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    int                   rc;
    size_t                used;
    uint64_t              max;
    ngx_chat_ws_frame_t   f;

    used = 0;
    max = ngx_chat_worker->cmcf->max_frame_size;

    while (used < len) {

        rc = ngx_chat_ws_frame_parse(p + used, len - used, max, &f);

        if (rc == NGX_CHAT_WS_FRAME_AGAIN) {
            break;
        }

        if (rc == NGX_CHAT_WS_FRAME_ETOOBIG) {
            ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                          "chat: frame larger than chat_max_frame_size");
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_TOO_BIG, "message too big");
            return NGX_ERROR;
        }

        if (rc != NGX_CHAT_WS_FRAME_OK) {
            ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                          "chat: websocket protocol error");
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_PROTOCOL, "protocol error");
            return NGX_ERROR;
        }

        if (len - used - f.header_len < f.payload_len) {
            break;
        }

        ngx_chat_ws_unmask(p + used + f.header_len, (size_t) f.payload_len,
                           f.mask, 0);

        if (ngx_chat_ws_frame(cc, &f, p + used + f.header_len) != NGX_OK) {
            return NGX_ERROR;
        }

        used += f.header_len + (size_t) f.payload_len;

        if (cc->connection == NULL) {
            return NGX_ERROR;
        }
    }

    return used;
}


static ngx_int_t
ngx_chat_ws_frame(ngx_chat_conn_t *cc, ngx_chat_ws_frame_t *f,
    u_char *payload)
{
    if (cc->state == NGX_CHAT_CONN_CLOSING) {
        /* after our close frame only the peer's close matters */
        if (f->opcode == NGX_CHAT_WS_OP_CLOSE) {
            ngx_chat_ws_finalize(cc, "closed");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (f->opcode >= NGX_CHAT_WS_OP_CLOSE) {
        return ngx_chat_ws_control(cc, f, payload);
    }

    return ngx_chat_ws_data(cc, f, payload);
}


static ngx_int_t
ngx_chat_ws_data(ngx_chat_conn_t *cc, ngx_chat_ws_frame_t *f,
    u_char *payload)
{
    u_char     *m;
    size_t      len, max, need, cap;
    ngx_int_t   rc;

    len = (size_t) f->payload_len;
    max = ngx_chat_worker->cmcf->max_frame_size;

    if (f->opcode == NGX_CHAT_WS_OP_CONT) {
        if (!cc->in_message) {
            goto protocol;
        }

        /* empty fragments cost no memory but CPU: their number is capped */

        if (++cc->msg_frames > ngx_chat_worker->cmcf->max_fragments) {
            ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                          "chat: message in more than %ui fragments "
                          "(chat_max_fragments)",
                          ngx_chat_worker->cmcf->max_fragments);
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_POLICY,
                              "too many fragments");
            return NGX_ERROR;
        }

    } else if (cc->in_message) {
        goto protocol;

    } else if (f->opcode == NGX_CHAT_WS_OP_BINARY) {
        ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_UNSUPPORTED,
                          "binary frames are not supported");
        return NGX_ERROR;

    } else {
        cc->msg_frames = 1;
    }

    cc->utf8 = ngx_chat_utf8_validate(cc->utf8, payload, len);

    if (cc->utf8 == NGX_CHAT_UTF8_REJECT
        || (f->fin && cc->utf8 != NGX_CHAT_UTF8_ACCEPT))
    {
        ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                      "chat: text frame is not valid UTF-8");
        ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_BAD_DATA, "invalid UTF-8");
        return NGX_ERROR;
    }

    if (f->fin && !cc->in_message) {
        /* the common case: a whole message in one frame, no copy */
        cc->utf8 = NGX_CHAT_UTF8_ACCEPT;
        rc = ngx_chat_worker->ws_handlers->message(cc, payload, len);
        return cc->connection ? rc : NGX_ERROR;
    }

    need = cc->msg_len + len;

    if (need > max) {
        ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                      "chat: message larger than chat_max_frame_size");
        ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_TOO_BIG, "message too big");
        return NGX_ERROR;
    }

    if (need > cc->msg_cap) {

        /*
         * The buffer at least doubles when it grows, so a message costs
         * less than twice its size in copies, however it is cut up.
         */

        cap = ngx_max(need, 2 * (size_t) cc->msg_cap);
        cap = ngx_min(cap, max);

        m = ngx_alloc(cap, cc->connection->log);
        if (m == NULL) {
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_INTERNAL, "out of memory");
            return NGX_ERROR;
        }

        if (cc->msg) {
            ngx_memcpy(m, cc->msg, cc->msg_len);
            ngx_free(cc->msg);
        }

        cc->msg = m;
        cc->msg_cap = (uint32_t) cap;
    }

    if (len) {
        ngx_memcpy(cc->msg + cc->msg_len, payload, len);
        cc->msg_len = (uint32_t) need;
    }

    if (!f->fin) {
        cc->in_message = 1;
        return NGX_OK;
    }

    m = cc->msg;
    len = cc->msg_len;

    cc->msg = NULL;
    cc->msg_len = 0;
    cc->msg_cap = 0;
    cc->msg_frames = 0;
    cc->in_message = 0;
    cc->utf8 = NGX_CHAT_UTF8_ACCEPT;

    rc = ngx_chat_worker->ws_handlers->message(cc, m ? m : (u_char *) "", len);

    if (m) {
        ngx_free(m);
    }

    return cc->connection ? rc : NGX_ERROR;

protocol:

    ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                  "chat: unexpected continuation state");
    ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_PROTOCOL, "protocol error");
    return NGX_ERROR;
}


static ngx_int_t
ngx_chat_ws_control(ngx_chat_conn_t *cc, ngx_chat_ws_frame_t *f,
    u_char *payload)
{
    int       rc;
    unsigned  code;

    switch (f->opcode) {

    case NGX_CHAT_WS_OP_PING:
        return ngx_chat_ws_queue(cc, NGX_CHAT_WS_OP_PONG, payload,
                                 (size_t) f->payload_len);

    case NGX_CHAT_WS_OP_PONG:
        cc->ping_sent = 0;
        return NGX_OK;

    default: /* NGX_CHAT_WS_OP_CLOSE */
        rc = ngx_chat_ws_parse_close(payload, (size_t) f->payload_len, &code);

        if (rc == NGX_CHAT_WS_FRAME_EPROTO) {
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_PROTOCOL, "bad close frame");
            return NGX_ERROR;
        }

        if (rc != NGX_CHAT_WS_FRAME_OK) {
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_BAD_DATA,
                              "close reason is not UTF-8");
            return NGX_ERROR;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cc->connection->log, 0,
                       "chat: client close %ui", (ngx_uint_t) code);

        /* echo the code; the socket closes once the echo is out */
        cc->peer_closed = 1;
        ngx_chat_ws_close(cc, code == NGX_CHAT_CLOSE_NO_STATUS ? 0 : code,
                          NULL);
        return NGX_ERROR;
    }
}


/* appends bytes of an incomplete frame to cc->in */
static ngx_int_t
ngx_chat_ws_keep(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    u_char  *in;
    size_t   cap;

    if (cc->in_len + len > cc->in_cap) {
        cap = ngx_max(cc->in_cap * 2, cc->in_len + len);
        cap = ngx_max(cap, 256);

        in = ngx_alloc(cap, ngx_cycle->log);
        if (in == NULL) {
            return NGX_ERROR;
        }

        if (cc->in) {
            ngx_memcpy(in, cc->in, cc->in_len);
            ngx_free(cc->in);
        }

        cc->in = in;
        cc->in_cap = cap;
    }

    ngx_memcpy(cc->in + cc->in_len, p, len);
    cc->in_len += len;

    return NGX_OK;
}


ngx_int_t
ngx_chat_ws_send_text(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    size_t   hlen;
    u_char  *h;

    if (!ngx_chat_conn_active(cc)) {
        return NGX_ERROR;
    }

    /* write the header right in front of the payload: one append */

    hlen = ngx_chat_ws_frame_header_size(len);
    h = p - hlen;
    ngx_chat_ws_frame_write_header(h, NGX_CHAT_WS_OP_TEXT, 1, len);

    if (ngx_chat_ws_append(cc, h, hlen + len) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_chat_ws_schedule_write(cc);

    return NGX_OK;
}


ngx_int_t
ngx_chat_ws_send_copy(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    u_char  h[NGX_CHAT_WS_HEADER_MAX];
    size_t  hlen;

    if (!ngx_chat_conn_active(cc)) {
        return NGX_ERROR;
    }

    hlen = ngx_chat_ws_frame_write_header(h, NGX_CHAT_WS_OP_TEXT, 1, len);

    if (cc->out_bytes + hlen + len > ngx_chat_worker->cmcf->output_limit) {
        /* let append() log and drop the connection */
        return ngx_chat_ws_append(cc, p, hlen + len);
    }

    if (ngx_chat_ws_append(cc, h, hlen) != NGX_OK
        || ngx_chat_ws_append(cc, p, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_chat_ws_schedule_write(cc);

    return NGX_OK;
}


static ngx_int_t
ngx_chat_ws_queue(ngx_chat_conn_t *cc, ngx_uint_t opcode, u_char *p,
    size_t len)
{
    u_char  frame[NGX_CHAT_WS_HEADER_MAX + 125];
    size_t  hlen;

    /* control frames only: at most 125 bytes of payload */

    if (cc->connection == NULL || len > 125) {
        return NGX_ERROR;
    }

    hlen = ngx_chat_ws_frame_write_header(frame, (int) opcode, 1, len);
    if (len) {
        ngx_memcpy(frame + hlen, p, len);
    }

    if (ngx_chat_ws_append(cc, frame, hlen + len) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_chat_ws_schedule_write(cc);

    return NGX_OK;
}


/* copies bytes to the output queue, enforcing chat_output_limit */
static ngx_int_t
ngx_chat_ws_append(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    size_t           n, size;
    ngx_chat_out_t  *out;

    if (cc->dropped) {
        return NGX_ERROR;
    }

    if (cc->out_bytes + len > ngx_chat_worker->cmcf->output_limit) {
        ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                      "chat: client does not read, output limit of %uz "
                      "bytes exceeded, dropping the connection",
                      ngx_chat_worker->cmcf->output_limit);
        ngx_chat_metrics_count(NGX_CHAT_C_DROPPED, 1);
        ngx_chat_ws_abort(cc, "output limit exceeded");
        return NGX_ERROR;
    }

    out = cc->out_last;

    while (len) {
        if (out == NULL || out->last == out->end) {
            size = ngx_max(len, NGX_CHAT_WS_CHUNK - sizeof(ngx_chat_out_t));

            out = ngx_alloc(sizeof(ngx_chat_out_t) + size, ngx_cycle->log);
            if (out == NULL) {
                ngx_chat_ws_abort(cc, "out of memory");
                return NGX_ERROR;
            }

            out->next = NULL;
            out->pos = out->data;
            out->last = out->data;
            out->end = out->data + size;

            if (cc->out_last) {
                cc->out_last->next = out;

            } else {
                cc->out = out;
            }

            cc->out_last = out;
        }

        n = ngx_min(len, (size_t) (out->end - out->last));
        out->last = ngx_cpymem(out->last, p, n);
        p += n;
        len -= n;
        cc->out_bytes += n;
    }

    return NGX_OK;
}


/* frames queued in one event loop pass leave in one write */
static void
ngx_chat_ws_schedule_write(ngx_chat_conn_t *cc)
{
    ngx_event_t  *wev;

    wev = cc->connection->write;

    if (!wev->posted && !wev->timer_set) {
        ngx_post_event(wev, &ngx_posted_events);
    }
}


static void
ngx_chat_ws_write_handler(ngx_event_t *wev)
{
    ngx_chat_conn_t   *cc;
    ngx_connection_t  *c;

    c = wev->data;
    cc = c->data;

    if (cc->state == NGX_CHAT_CONN_CLOSED) {
        return;
    }

    if (cc->dropped) {
        ngx_chat_ws_finalize(cc, "dropped");
        return;
    }

    if (cc->state == NGX_CHAT_CONN_CLOSING) {
        /* the teardown that ngx_chat_ws_close() posted; idempotent */
        ngx_chat_worker->ws_handlers->close(cc);
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "chat: client timed out reading");
        c->timedout = 1;
        ngx_chat_ws_finalize(cc, "send timed out");
        return;
    }

    if (ngx_chat_ws_flush(cc) == NGX_ERROR) {
        ngx_chat_ws_finalize(cc, "write error");
    }
}


/*
 * Writes what is queued.  NGX_OK: all sent; NGX_AGAIN: the rest waits for
 * the write event; NGX_ERROR: the connection must be finalized.
 */
static ngx_int_t
ngx_chat_ws_flush(ngx_chat_conn_t *cc)
{
    ssize_t            n;
    ngx_chat_out_t    *out;
    ngx_connection_t  *c;

    c = cc->connection;

    while (cc->out) {
        out = cc->out;

        n = c->send(c, out->pos, out->last - out->pos);

        if (n == NGX_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            if (!c->write->timer_set) {
                ngx_add_timer(c->write, ngx_chat_worker->cmcf->send_timeout);
            }

            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        out->pos += n;
        cc->out_bytes -= n;

        if (out->pos < out->last) {
            continue;
        }

        cc->out = out->next;
        if (cc->out == NULL) {
            cc->out_last = NULL;
        }

        ngx_free(out);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cc->state == NGX_CHAT_CONN_CLOSING && cc->peer_closed) {
        /* the echo of the client's close is out: nothing more to say */
        ngx_chat_ws_finalize(cc, "closed");
        return NGX_DONE;
    }

    if (cc->state == NGX_CHAT_CONN_LIVE) {
        ngx_chat_worker->ws_handlers->writable(cc);
    }

    return NGX_OK;
}


void
ngx_chat_ws_close(ngx_chat_conn_t *cc, ngx_uint_t code, const char *reason)
{
    u_char             payload[125];
    size_t             len;
    ngx_connection_t  *c;

    c = cc->connection;

    if (!ngx_chat_conn_active(cc)) {
        return;
    }

    len = 0;

    if (code) {
        len = ngx_chat_ws_close_payload(payload, (unsigned) code, reason,
                                        reason ? ngx_strlen(reason) : 0);
    }

    if (ngx_chat_ws_queue(cc, NGX_CHAT_WS_OP_CLOSE, payload, len) != NGX_OK)
    {
        return;
    }

    ngx_chat_ws_log_close(cc, code ? code : NGX_CHAT_CLOSE_NO_STATUS,
                          cc->peer_closed ? "client sent close"
                          : reason ? reason : "");

    /*
     * Nothing is torn down here: the caller may be walking a list that the
     * session's teardown would change (a fan-out, a kick).  The write
     * event that ngx_chat_ws_queue() posted closes the session.
     */

    cc->state = NGX_CHAT_CONN_CLOSING;

    /* wait a moment for the client's close frame, then close anyway */

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_add_timer(c->read, NGX_CHAT_WS_LINGER);
}


/*
 * The connection must go without a close frame (its output limit was
 * exceeded, memory ran out).  The caller may be anywhere, in a fan-out
 * loop included: the output is freed now, the rest is posted.
 */
static void
ngx_chat_ws_abort(ngx_chat_conn_t *cc, const char *reason)
{
    ngx_event_t  *wev;

    ngx_chat_ws_log_close(cc, NGX_CHAT_CLOSE_ABNORMAL, reason);

    ngx_chat_ws_free_out(cc);

    cc->dropped = 1;
    cc->state = NGX_CHAT_CONN_CLOSING;

    wev = cc->connection->write;

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (!wev->posted) {
        ngx_post_event(wev, &ngx_posted_events);
    }
}


/* closes the socket; the memory goes when no callback holds cc anymore */
static void
ngx_chat_ws_finalize(ngx_chat_conn_t *cc, const char *reason)
{
    ngx_connection_t  *c;

    c = cc->connection;

    if (c == NULL) {
        return;
    }

    /* closed without a close frame of ours: 1006, as the client sees it */
    ngx_chat_ws_log_close(cc, NGX_CHAT_CLOSE_ABNORMAL, reason);

    ngx_chat_worker->ws_handlers->close(cc);

    ngx_queue_remove(&cc->all);
    ngx_chat_worker->nconns--;
    ngx_chat_metrics_gauge(NGX_CHAT_G_CONNECTIONS, ngx_chat_worker->nconns);

    ngx_chat_ws_free_buffers(cc);

    cc->connection = NULL;
    cc->state = NGX_CHAT_CONN_CLOSED;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0, "chat: close connection");

#if (NGX_HTTP_SSL)

    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }

#endif

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, -1);
#endif

    c->destroyed = 1;

    ngx_close_connection(c);

    if (cc->pool) {
        ngx_destroy_pool(cc->pool);
        cc->pool = NULL;
    }

    /* c->log was cc->log: nothing logs for c from here on */

    if (cc->pending == 0) {
        ngx_free(cc);
    }
}


/*
 * The one INFO line of a connection's close: who (the log handler adds
 * client, user and device), how long, the close code and why.  Logged
 * when the close starts (our close frame, the client's, a drop) or, for a
 * socket that just went, at the teardown; never twice.
 */
static void
ngx_chat_ws_log_close(ngx_chat_conn_t *cc, ngx_uint_t code,
    const char *reason)
{
    ngx_connection_t  *c;

    c = cc->connection;

    if (cc->close_logged || c == NULL) {
        return;
    }

    cc->close_logged = 1;

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "chat: connection closed, code %ui, reason \"%s\", "
                  "duration %M ms", code, reason,
                  (ngx_msec_t) (ngx_current_msec - c->start_time));
}


void
ngx_chat_ws_release(ngx_chat_conn_t *cc)
{
    if (--cc->pending == 0 && cc->state == NGX_CHAT_CONN_CLOSED) {
        ngx_free(cc);
    }
}


static void
ngx_chat_ws_free_out(ngx_chat_conn_t *cc)
{
    ngx_chat_out_t  *out, *next;

    for (out = cc->out; out; out = next) {
        next = out->next;
        ngx_free(out);
    }

    cc->out = NULL;
    cc->out_last = NULL;
    cc->out_bytes = 0;
}


static void
ngx_chat_ws_free_buffers(ngx_chat_conn_t *cc)
{
    ngx_chat_ws_free_out(cc);

    if (cc->in) {
        ngx_free(cc->in);
        cc->in = NULL;
        cc->in_len = 0;
        cc->in_cap = 0;
    }

    if (cc->msg) {
        ngx_free(cc->msg);
        cc->msg = NULL;
        cc->msg_len = 0;
    }
}


void
ngx_chat_ws_close_all(void)
{
    ngx_queue_t      *q;
    ngx_chat_conn_t  *cc;

    if (ngx_chat_worker == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_chat_worker->conns)) {
        q = ngx_queue_head(&ngx_chat_worker->conns);
        cc = ngx_queue_data(q, ngx_chat_conn_t, all);

        /* a flush or close below may finalize cc: hold it until done */
        cc->pending++;

        /* best effort: a last close frame if the socket takes it */
        if (ngx_chat_conn_active(cc)) {
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_GOING_AWAY,
                              "server shutting down");
        }

        if (cc->connection && !cc->dropped) {
            (void) ngx_chat_ws_flush(cc);
        }

        if (cc->connection) {
            ngx_chat_ws_finalize(cc, "worker exiting");
        }

        ngx_chat_ws_release(cc);
    }
}


static u_char *
ngx_chat_ws_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char           *p;
    ngx_chat_conn_t  *cc;

    p = buf;

    if (log->action) {
        p = ngx_snprintf(buf, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    cc = log->data;

    if (cc && cc->connection) {
        p = ngx_snprintf(buf, len, ", client: %V",
                         &cc->connection->addr_text);
        len -= p - buf;
        buf = p;
    }

    if (cc) {
        p = ngx_snprintf(buf, len, ", user: %V, device: %V",
                         &cc->uid, &cc->device);
    }

    return p;
}
