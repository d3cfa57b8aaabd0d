
/*
 * ngx_chat_redis.c: Redis for one nginx worker.  Owns two hiredis 0.14
 * async contexts, "cmd" (PUBLISH and other commands) and "sub" (SUBSCRIBE,
 * UNSUBSCRIBE and the messages), the adapter that drives them from nginx's
 * event loop, and their whole life cycle: connect, handshake, liveness
 * PINGs, drop, reconnect with backoff.
 *
 * Life cycle of each context (ngx_chat_redis_conn_t.state):
 *
 *   DOWN --timer--> CONNECTING --TCP up--> HANDSHAKE --PONG--> READY
 *     ^                 |                      |                 |
 *     +----- cleanup hook (context freed, for any reason) -------+
 *
 * A context counts as up only once Redis has answered a PING: a frozen
 * server still completes TCP handshakes from its listen backlog.  One timer
 * per context is the connect timeout (CONNECTING, HANDSHAKE), the PING
 * period and liveness deadline (READY) or the reconnect delay (DOWN).
 *
 * Liveness (READY): a context is alive while anything at all comes from
 * Redis (a PONG, any other reply, a pushed message), and it is dropped
 * only once nothing has been read from it for the owner's timeout
 * (chat_redis_timeout, at least two PING periods).  A PING goes out every
 * period when none is unanswered, so an idle healthy link is read at least
 * once a period.  A Redis that is starved of CPU answers late but answers:
 * dropping it would make every user of the worker fall back to polling
 * PostgreSQL; a hung one (SIGSTOP, a dead host) still goes at the
 * deadline.  Reconnects wait 100 ms doubling to 5 s, +-25% jitter, and are
 * always started from the timer: never from inside hiredis.
 *
 * The adapter wraps the hiredis fd in an ngx_connection_t and registers it
 * level-triggered, so hiredis' 16 KB reads need no draining loop.  hiredis
 * owns the fd: our cleanup hook, which hiredis calls from every path that
 * frees a context, deletes the events and frees the ngx_connection_t
 * without closing it, then hiredis closes it.  The hook is also the one
 * place where a context is known to be gone, so it does the bookkeeping
 * (state, logs, on_state(0), reconnect timer) for all those paths.
 *
 * Non-blocking only: redisAsyncConnect() runs a name lookup, which does not
 * go to the network for the numeric addresses ngx_chat_redis_create()
 * accepts (glibc parses literals itself); unix sockets do not resolve.
 *
 * Subscriber PINGs (hiredis 0.14 specific): in RESP2 subscribed mode Redis
 * (checked with 7.0) answers "PING x" with the array ["pong", "x"].
 * hiredis 0.14 routes an array on a subscribed context by its first letter,
 * so "pong" is looked up among the *patterns* under the name "x".  At
 * connect the subscriber PSUBSCRIBEs NGX_CHAT_REDIS_PING_PATTERN (a literal
 * no channel is expected to use), then PINGs with that argument: the pong
 * reaches our callback.  The PING is appended to the output buffer directly,
 * without a callback, because a callback registered for it would be queued
 * on a list hiredis never shifts in subscribed mode (one leak per PING).
 * The pattern also keeps the context in subscribed mode while the owner has
 * no channels (a reply with no callback on an unsubscribed context would
 * trip an assert in hiredis).
 *
 * Subscriptions are not remembered here: after each connect the owner gets
 * on_state(1) and subscribes again.  Subscribing twice to one channel on one
 * context confuses hiredis' reply accounting (hiredis issue #256): keeping
 * one SUBSCRIBE per channel is the owner's job.
 *
 * Sharded mode (ngx_chat_redis_set_sharded(), one node of a Redis
 * Cluster, driven by ngx_chat_shards.c): SPUBLISH, SSUBSCRIBE and
 * SUNSUBSCRIBE instead of the classic commands.  hiredis 0.14 knows only
 * the classic pub/sub replies: it does not route "smessage" pushes (its
 * subscribed-mode dispatch looks them up among the classic channels, finds
 * nothing and drops them), and it would file the callback of every
 * SSUBSCRIBE on a list it never shifts.  So a sharded subscriber never
 * goes through hiredis' reply dispatch at all: commands are appended to
 * the output buffer without callbacks, and our read handler reads with
 * redisBufferRead() and takes each reply with redisGetReplyFromReader()
 * itself (ngx_chat_redis_raw_read()).  Then no pattern trick is needed
 * for the PING either.  Error replies (-MOVED, -CLUSTERDOWN...) on either
 * context are reported to the owner through on_error(); on the subscriber
 * they also drop the connection, because which channel failed cannot be
 * told from an error reply: the reconnect subscribes every channel again.
 *
 * Costs: per PUBLISH hiredis formats the command, copies it into its output
 * buffer and allocates a 32-byte reply record; per received message one
 * parsed reply, no copy by us.  Commands issued in one event loop pass leave
 * in one write(2), made at the end of the pass (a posted event); an idle
 * connection costs one PING every 3 s.  Reads are 16 KB per read event;
 * each one stamps the context's last read (one store).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/sds.h>

#include "ngx_chat_redis.h"
#include "ngx_chat_backoff.h"


#if (HIREDIS_MAJOR != 0 || HIREDIS_MINOR != 14)
#error "ngx_chat_redis.c relies on hiredis 0.14 subscribed-mode PING routing"
#endif


#define NGX_CHAT_REDIS_CONNECT_TIMEOUT  2000       /* ms, connect + PONG */
#define NGX_CHAT_REDIS_PING_INTERVAL    3000       /* ms */
#define NGX_CHAT_REDIS_LOG_EVERY        30         /* s between reports */
#define NGX_CHAT_REDIS_MAX_PENDING      100000     /* unanswered commands */
#define NGX_CHAT_REDIS_MAX_BUFFERED     (64 * 1024 * 1024)  /* unsent bytes */

#define NGX_CHAT_REDIS_PING_PATTERN     "ngx_chat:redis:liveness"

/* ngx_chat_redis_conn_t.state */
#define NGX_CHAT_REDIS_DOWN             0    /* waiting to reconnect */
#define NGX_CHAT_REDIS_CONNECTING       1    /* connect(2) in progress */
#define NGX_CHAT_REDIS_HANDSHAKE        2    /* first PING sent */
#define NGX_CHAT_REDIS_READY            3    /* PING answered: usable */
#define NGX_CHAT_REDIS_CLOSING          4    /* we are freeing it */


typedef struct {
    ngx_chat_redis_t           *rd;
    redisAsyncContext          *ac;        /* NULL when DOWN */
    ngx_connection_t           *c;         /* wraps ac->c.fd */
    ngx_event_t                 timer;     /* connect, PING or reconnect */
    const char                 *name;      /* "cmd" or "sub", for logs */
    ngx_uint_t                  state;     /* NGX_CHAT_REDIS_DOWN... */
    ngx_uint_t                  pending;   /* commands awaiting a reply */
    ngx_msec_t                  backoff;   /* next reconnect delay */
    ngx_msec_t                  last_read; /* anything read, at */
    time_t                      reported;  /* last failure logged at */
    ngx_uint_t                  failures;  /* since the last report */
    time_t                      full;      /* "refusing more" logged at */
    unsigned                    subscriber:1;
    unsigned                    ping_sent:1;    /* awaiting the PONG */
    unsigned                    failing:1;      /* down since a report */
    unsigned                    up_reported:1;  /* on_state(1) was called */
    unsigned                    writing:1;      /* in the write handler */
} ngx_chat_redis_conn_t;


struct ngx_chat_redis_s {
    ngx_chat_redis_conn_t       cmd;
    ngx_chat_redis_conn_t       sub;
    ngx_log_t                  *log;
    ngx_chat_redis_message_pt   on_message;
    ngx_chat_redis_subscribed_pt  on_subscribed;
    ngx_chat_redis_state_pt     on_state;
    void                       *data;
    ngx_str_t                   addr;      /* as configured, for logs */
    ngx_msec_t                  timeout;   /* silence that drops a link */
    char                       *host;      /* IP or unix socket path */
    int                         port;      /* 0 for a unix socket */
    ngx_chat_redis_error_pt     on_error;  /* sharded mode only */
    ngx_chat_redis_message_pt   on_bounce; /* sharded mode only */
    unsigned                    destroying:1;
    unsigned                    sharded:1; /* SPUBLISH, SSUBSCRIBE... */
};


/* a sharded publish, kept until answered: it may come back -MOVED */
typedef struct {
    ngx_chat_redis_conn_t      *conn;
    size_t                      channel_len;
    size_t                      len;
    u_char                      data[1];    /* channel, then message */
} ngx_chat_redis_spub_t;


/* an ngx_chat_redis_command() with a reply handler */
typedef struct {
    ngx_chat_redis_conn_t      *conn;
    ngx_chat_redis_reply_pt     handler;
    void                       *data;
} ngx_chat_redis_call_t;


static ngx_int_t ngx_chat_redis_parse_addr(ngx_str_t *addr, u_char *host,
    int *port);
static void ngx_chat_redis_conn_init(ngx_chat_redis_t *rd,
    ngx_chat_redis_conn_t *conn, const char *name, ngx_uint_t subscriber);
static void ngx_chat_redis_connect(ngx_chat_redis_conn_t *conn);
static ngx_int_t ngx_chat_redis_attach(ngx_chat_redis_conn_t *conn,
    redisAsyncContext *ac);
static void ngx_chat_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_chat_redis_ready(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_ping(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_drop(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_gone(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_schedule(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_lost(ngx_chat_redis_conn_t *conn,
    const char *err);
static void ngx_chat_redis_failure(ngx_chat_redis_conn_t *conn,
    const char *err);
static void ngx_chat_redis_timer_handler(ngx_event_t *ev);
static void ngx_chat_redis_alive(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_read_handler(ngx_event_t *rev);
static void ngx_chat_redis_write_handler(ngx_event_t *wev);
static void ngx_chat_redis_add_read(void *privdata);
static void ngx_chat_redis_del_read(void *privdata);
static void ngx_chat_redis_add_write(void *privdata);
static void ngx_chat_redis_del_write(void *privdata);
static void ngx_chat_redis_cleanup(void *privdata);
static ngx_int_t ngx_chat_redis_can_send(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_cmd_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_chat_redis_cmd_pong(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_chat_redis_call_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_chat_redis_sub_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_chat_redis_spublish(ngx_chat_redis_conn_t *conn,
    const char **argv, size_t *argvlen);
static void ngx_chat_redis_spub_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_chat_redis_raw_read(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_raw_reply(ngx_chat_redis_conn_t *conn,
    redisReply *reply);
static void ngx_chat_redis_pong(ngx_chat_redis_conn_t *conn);
static void ngx_chat_redis_error(ngx_chat_redis_conn_t *conn,
    redisReply *reply);
static ngx_int_t ngx_chat_redis_raw_command(ngx_chat_redis_conn_t *conn,
    const char *cmd, u_char *channel, size_t len);


ngx_int_t
ngx_chat_redis_check_addr(ngx_str_t *addr)
{
    int     port;
    u_char  host[NGX_SOCKADDR_STRLEN + 1];

    if (addr->len > NGX_SOCKADDR_STRLEN) {
        return NGX_ERROR;
    }

    return ngx_chat_redis_parse_addr(addr, host, &port);
}


/*
 * "unix:/path", "[ipv6]:port" or "ipv4:port".  Writes the NUL-terminated
 * path or IP to host (room for addr->len + 1 bytes) and the port (0 for a
 * unix socket).  Host names are refused: hiredis would resolve them with a
 * blocking lookup.
 */

static ngx_int_t
ngx_chat_redis_parse_addr(ngx_str_t *addr, u_char *host, int *port)
{
    u_char     *p, *last, *colon;
    size_t      len;
    ngx_int_t   n;
#if (NGX_HAVE_INET6)
    u_char      in6[16];
#endif

    p = addr->data;
    last = p + addr->len;

    if (addr->len > 5 && ngx_strncmp(p, "unix:", 5) == 0) {
        len = addr->len - 5;

        if (len >= sizeof(((struct sockaddr_un *) 0)->sun_path)
            || ngx_strlchr(p + 5, last, '\0') != NULL)
        {
            return NGX_ERROR;
        }

        ngx_memcpy(host, p + 5, len);
        host[len] = '\0';
        *port = 0;

        return NGX_OK;
    }

    if (addr->len && p[0] == '[') {
        colon = ngx_strlchr(p, last, ']');

        if (colon == NULL || colon + 1 == last || colon[1] != ':') {
            return NGX_ERROR;
        }

        p++;
        len = colon - p;
        colon++;

#if (NGX_HAVE_INET6)
        if (ngx_inet6_addr(p, len, in6) != NGX_OK) {
            return NGX_ERROR;
        }
#else
        return NGX_ERROR;
#endif

    } else {
        for (colon = last; colon > p && colon[-1] != ':'; colon--) {
            /* void */
        }

        if (colon == p) {
            return NGX_ERROR;
        }

        colon--;
        len = colon - p;

        if (ngx_inet_addr(p, len) == INADDR_NONE) {
            return NGX_ERROR;
        }
    }

    n = ngx_atoi(colon + 1, last - colon - 1);

    if (n < 1 || n > 65535) {
        return NGX_ERROR;
    }

    ngx_memcpy(host, p, len);
    host[len] = '\0';
    *port = (int) n;

    return NGX_OK;
}


ngx_chat_redis_t *
ngx_chat_redis_create(ngx_cycle_t *cycle, ngx_str_t *addr,
    ngx_msec_t timeout, ngx_chat_redis_message_pt on_message,
    ngx_chat_redis_subscribed_pt on_subscribed,
    ngx_chat_redis_state_pt on_state, void *data)
{
    u_char            *p;
    ngx_chat_redis_t  *rd;

    rd = ngx_calloc(sizeof(ngx_chat_redis_t) + 2 * addr->len + 1,
                    cycle->log);
    if (rd == NULL) {
        return NULL;
    }

    p = (u_char *) (rd + 1);

    if (ngx_chat_redis_parse_addr(addr, p, &rd->port) != NGX_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "redis: invalid address \"%V\", expected "
                      "\"ip:port\", \"[ipv6]:port\" or \"unix:/path\"",
                      addr);
        ngx_free(rd);
        return NULL;
    }

    rd->host = (char *) p;
    rd->addr.data = p + addr->len + 1;
    rd->addr.len = addr->len;
    ngx_memcpy(rd->addr.data, addr->data, addr->len);

    rd->log = cycle->log;
    rd->timeout = ngx_max(timeout, NGX_CHAT_REDIS_MIN_TIMEOUT);
    rd->on_message = on_message;
    rd->on_subscribed = on_subscribed;
    rd->on_state = on_state;
    rd->data = data;

    ngx_chat_redis_conn_init(rd, &rd->cmd, "cmd", 0);
    ngx_chat_redis_conn_init(rd, &rd->sub, "sub", 1);

    ngx_chat_redis_connect(&rd->cmd);
    ngx_chat_redis_connect(&rd->sub);

    return rd;
}


void
ngx_chat_redis_set_sharded(ngx_chat_redis_t *rd,
    ngx_chat_redis_error_pt on_error, ngx_chat_redis_message_pt on_bounce)
{
    /* before the first connect completes: from the event loop, later */
    rd->sharded = 1;
    rd->on_error = on_error;
    rd->on_bounce = on_bounce;
}


static void
ngx_chat_redis_conn_init(ngx_chat_redis_t *rd, ngx_chat_redis_conn_t *conn,
    const char *name, ngx_uint_t subscriber)
{
    conn->rd = rd;
    conn->name = name;
    conn->subscriber = subscriber;
    conn->state = NGX_CHAT_REDIS_DOWN;
    conn->backoff = NGX_CHAT_BACKOFF_MIN;

    conn->timer.handler = ngx_chat_redis_timer_handler;
    conn->timer.data = conn;
    conn->timer.log = rd->log;
    conn->timer.cancelable = 1;
}


/*
 * Frees both contexts: pending ngx_chat_redis_command() handlers run with a
 * NULL reply, on_state() is not called.  Not from inside a callback of this
 * module (the context being in use would be freed under hiredis).
 */

void
ngx_chat_redis_destroy(ngx_chat_redis_t *rd)
{
    ngx_uint_t              i;
    ngx_chat_redis_conn_t  *conn;

    if (rd == NULL) {
        return;
    }

    rd->destroying = 1;

    for (i = 0; i < 2; i++) {
        conn = (i == 0) ? &rd->cmd : &rd->sub;

        if (conn->timer.timer_set) {
            ngx_del_timer(&conn->timer);
        }

        if (conn->ac) {
            conn->state = NGX_CHAT_REDIS_CLOSING;
            redisAsyncFree(conn->ac);
        }
    }

    ngx_free(rd);
}


ngx_uint_t
ngx_chat_redis_up(ngx_chat_redis_t *rd)
{
    return rd->sub.state == NGX_CHAT_REDIS_READY;
}



/* connection life cycle */


static void
ngx_chat_redis_connect(ngx_chat_redis_conn_t *conn)
{
    ngx_chat_redis_t   *rd;
    redisAsyncContext  *ac;

    rd = conn->rd;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "redis %s: connecting to %V", conn->name, &rd->addr);

    /* numeric addresses only: no network lookup, see the top comment */

    if (rd->port == 0) {
        ac = redisAsyncConnectUnix(rd->host);

    } else {
        ac = redisAsyncConnect(rd->host, rd->port);
    }

    if (ac == NULL) {
        ngx_chat_redis_failure(conn, "out of memory");
        ngx_chat_redis_schedule(conn);
        return;
    }

    if (ac->err) {
        ngx_chat_redis_failure(conn, ac->errstr);
        redisAsyncFree(ac);
        ngx_chat_redis_schedule(conn);
        return;
    }

    if (ngx_chat_redis_attach(conn, ac) != NGX_OK) {
        ngx_chat_redis_failure(conn, "no free nginx connection");
        redisAsyncFree(ac);
        ngx_chat_redis_schedule(conn);
        return;
    }

    conn->state = NGX_CHAT_REDIS_CONNECTING;

    /* this also asks for the write event that reports the connect */
    redisAsyncSetConnectCallback(ac, ngx_chat_redis_connected);

    ngx_add_timer(&conn->timer, NGX_CHAT_REDIS_CONNECT_TIMEOUT);
}


static ngx_int_t
ngx_chat_redis_attach(ngx_chat_redis_conn_t *conn, redisAsyncContext *ac)
{
    ngx_log_t         *log;
    ngx_connection_t  *c;

    log = conn->rd->log;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = conn;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_chat_redis_read_handler;
    c->write->handler = ngx_chat_redis_write_handler;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    conn->c = c;
    conn->ac = ac;

    ac->data = conn;
    ac->ev.data = conn;
    ac->ev.addRead = ngx_chat_redis_add_read;
    ac->ev.delRead = ngx_chat_redis_del_read;
    ac->ev.addWrite = ngx_chat_redis_add_write;
    ac->ev.delWrite = ngx_chat_redis_del_write;
    ac->ev.cleanup = ngx_chat_redis_cleanup;

    return NGX_OK;
}


/* TCP (or unix) connect finished; on failure the cleanup hook follows */

static void
ngx_chat_redis_connected(const redisAsyncContext *ac, int status)
{
    const char             *argv[2];
    size_t                  argvlen[2];
    ngx_chat_redis_conn_t  *conn;

    conn = ac->data;

    if (status != REDIS_OK) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, conn->rd->log, 0,
                   "redis %s: connected, handshake", conn->name);

    conn->state = NGX_CHAT_REDIS_HANDSHAKE;

    if (conn->subscriber && !conn->rd->sharded) {
        argv[0] = "PSUBSCRIBE";
        argv[1] = NGX_CHAT_REDIS_PING_PATTERN;
        argvlen[0] = sizeof("PSUBSCRIBE") - 1;
        argvlen[1] = sizeof(NGX_CHAT_REDIS_PING_PATTERN) - 1;

        if (redisAsyncCommandArgv(conn->ac, ngx_chat_redis_sub_reply, conn,
                                  2, argv, argvlen)
            != REDIS_OK)
        {
            /* out of memory; the connect timeout drops the context */
            return;
        }
    }

    ngx_chat_redis_ping(conn);
}


/* the first PONG of a connection */

static void
ngx_chat_redis_ready(ngx_chat_redis_conn_t *conn)
{
    ngx_chat_redis_t  *rd;

    rd = conn->rd;

    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "redis %s: connected to %V", conn->name, &rd->addr);

    conn->state = NGX_CHAT_REDIS_READY;
    conn->last_read = ngx_current_msec;
    conn->backoff = NGX_CHAT_BACKOFF_MIN;
    conn->failing = 0;
    conn->failures = 0;

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&conn->timer, NGX_CHAT_REDIS_PING_INTERVAL);
    }

    if (conn->subscriber) {
        conn->up_reported = 1;
        rd->on_state(rd->data, 1);
    }
}


static void
ngx_chat_redis_ping(ngx_chat_redis_conn_t *conn)
{
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = "PING";
    argvlen[0] = sizeof("PING") - 1;

    if (conn->subscriber) {
        /*
         * No callback: the PONG is routed by its argument, see the top;
         * a sharded subscriber reads its replies itself and needs none.
         */

        argv[1] = NGX_CHAT_REDIS_PING_PATTERN;
        argvlen[1] = sizeof(NGX_CHAT_REDIS_PING_PATTERN) - 1;

        if (redisAppendCommandArgv(&conn->ac->c, conn->rd->sharded ? 1 : 2,
                                   argv, argvlen)
            != REDIS_OK)
        {
            return;
        }

        ngx_chat_redis_add_write(conn);

    } else {
        if (redisAsyncCommandArgv(conn->ac, ngx_chat_redis_cmd_pong, conn,
                                  1, argv, argvlen)
            != REDIS_OK)
        {
            return;
        }

        conn->pending++;
    }

    conn->ping_sent = 1;
}


/* frees the context from outside hiredis; the cleanup hook does the rest */

static void
ngx_chat_redis_drop(ngx_chat_redis_conn_t *conn)
{
    conn->state = NGX_CHAT_REDIS_CLOSING;
    redisAsyncFree(conn->ac);
}


/*
 * Called by the cleanup hook once per context, whoever frees it: hiredis
 * after an I/O or protocol error or a failed connect, or ngx_chat_redis_drop
 * and ngx_chat_redis_destroy.  The context is still valid (error string
 * readable) but must not be used; its fd is still open.
 */

static void
ngx_chat_redis_gone(ngx_chat_redis_conn_t *conn)
{
    const char         *err;
    ngx_uint_t          was;
    ngx_chat_redis_t   *rd;
    redisAsyncContext  *ac;

    rd = conn->rd;
    ac = conn->ac;
    was = conn->state;

    conn->ac = NULL;
    conn->state = NGX_CHAT_REDIS_DOWN;
    conn->pending = 0;
    conn->ping_sent = 0;

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    if (rd->destroying) {
        return;
    }

    err = (ac->err && ac->errstr[0]) ? ac->errstr : "connection closed";

    switch (was) {

    case NGX_CHAT_REDIS_CLOSING:
        /* the initiator has logged why */
        break;

    case NGX_CHAT_REDIS_READY:
        ngx_chat_redis_lost(conn, err);
        break;

    default:
        ngx_chat_redis_failure(conn, err);
    }

    ngx_chat_redis_schedule(conn);

    if (conn->up_reported) {
        conn->up_reported = 0;
        rd->on_state(rd->data, 0);
    }
}


static void
ngx_chat_redis_schedule(ngx_chat_redis_conn_t *conn)
{
    ngx_msec_t  delay;

    if (ngx_exiting || ngx_terminate || conn->rd->destroying) {
        return;
    }

    delay = ngx_chat_backoff_next(&conn->backoff);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, conn->rd->log, 0,
                   "redis %s: reconnect in %M ms", conn->name, delay);

    ngx_add_timer(&conn->timer, delay);
}


/* a usable context failed: always logged, starts a failure streak */

static void
ngx_chat_redis_lost(ngx_chat_redis_conn_t *conn, const char *err)
{
    ngx_log_error(NGX_LOG_ERR, conn->rd->log, 0,
                  "redis %s: connection to %V lost: %s",
                  conn->name, &conn->rd->addr, err);

    conn->failing = 1;
    conn->failures = 0;
    conn->reported = ngx_time();
}


/* connect failures: the first after a success, then at most every 30 s */

static void
ngx_chat_redis_failure(ngx_chat_redis_conn_t *conn, const char *err)
{
    time_t             now;
    ngx_chat_redis_t  *rd;

    rd = conn->rd;
    now = ngx_time();

    conn->failures++;

    if (conn->failing
        && now - conn->reported < NGX_CHAT_REDIS_LOG_EVERY)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                       "redis %s: cannot connect: %s", conn->name, err);
        return;
    }

    if (conn->failures > 1) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "redis %s: cannot connect to %V: %s "
                      "(%ui attempts failed since the last report)",
                      conn->name, &rd->addr, err, conn->failures);

    } else {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "redis %s: cannot connect to %V: %s",
                      conn->name, &rd->addr, err);
    }

    conn->failing = 1;
    conn->failures = 0;
    conn->reported = now;
}


static void
ngx_chat_redis_timer_handler(ngx_event_t *ev)
{
    ngx_chat_redis_conn_t  *conn;

    conn = ev->data;

    switch (conn->state) {

    case NGX_CHAT_REDIS_DOWN:
        if (!ngx_exiting && !ngx_terminate) {
            ngx_chat_redis_connect(conn);
        }

        return;

    case NGX_CHAT_REDIS_CONNECTING:
    case NGX_CHAT_REDIS_HANDSHAKE:
        ngx_chat_redis_failure(conn,
                               conn->state == NGX_CHAT_REDIS_CONNECTING
                               ? "connect timed out"
                               : "no reply to PING");
        ngx_chat_redis_drop(conn);
        return;

    case NGX_CHAT_REDIS_READY:
        ngx_chat_redis_alive(conn);
        return;

    default:
        /* CLOSING lasts no longer than redisAsyncFree() */
        return;
    }
}


/*
 * The READY tick: drop the context if nothing at all has been read from it
 * for rd->timeout, else PING (unless a PING is still unanswered: one is
 * enough, any reply proves Redis alive) and tick again at the next PING
 * period or at the deadline, whichever comes first.
 */

static void
ngx_chat_redis_alive(ngx_chat_redis_conn_t *conn)
{
    u_char            *p;
    ngx_msec_t         silent;
    ngx_chat_redis_t  *rd;
    u_char             err[64];

    rd = conn->rd;

    if (conn->c->read->posted) {
        /* read, but not handled yet (posted events run after timers) */
        conn->last_read = ngx_current_msec;
    }

    silent = ngx_current_msec - conn->last_read;

    if (silent >= rd->timeout) {
        p = ngx_snprintf(err, sizeof(err) - 1,
                         "nothing read for %M ms%s", silent,
                         conn->ping_sent ? ", PING unanswered" : "");
        *p = '\0';

        ngx_chat_redis_lost(conn, (const char *) err);
        ngx_chat_redis_drop(conn);
        return;
    }

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    if (!conn->ping_sent) {
        ngx_chat_redis_ping(conn);
    }

    ngx_add_timer(&conn->timer,
                  ngx_min(NGX_CHAT_REDIS_PING_INTERVAL,
                          rd->timeout - silent));
}


/* the adapter: hiredis <-> nginx events */


static void
ngx_chat_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t       *c;
    ngx_chat_redis_conn_t  *conn;

    c = rev->data;
    conn = c->data;

    /*
     * Bytes came (or the end of the stream, which frees the context in
     * this call): Redis is alive, however late it answers.
     */
    conn->last_read = ngx_current_msec;

    if (conn->subscriber && conn->rd->sharded) {
        ngx_chat_redis_raw_read(conn);
        return;
    }

    /* this may free the context and c: neither is used afterwards */
    redisAsyncHandleRead(conn->ac);
}


static void
ngx_chat_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t       *c;
    ngx_chat_redis_conn_t  *conn;

    c = wev->data;
    conn = c->data;

    /* conn outlives the context: only destroy frees it */

    conn->writing = 1;
    redisAsyncHandleWrite(conn->ac);
    conn->writing = 0;
}


/*
 * hiredis calls these freely (addWrite for every command): they must be
 * idempotent.  Level-triggered, so an event with data left fires again:
 * the read side stays registered for the life of the context.
 */

static void
ngx_chat_redis_add_read(void *privdata)
{
    ngx_event_t            *rev;
    ngx_chat_redis_conn_t  *conn;

    conn = privdata;
    rev = conn->c->read;

    if (!rev->active
        && ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, conn->rd->log, 0,
                      "redis %s: ngx_add_event(read) failed", conn->name);
    }
}


static void
ngx_chat_redis_del_read(void *privdata)
{
    ngx_event_t            *rev;
    ngx_chat_redis_conn_t  *conn;

    conn = privdata;
    rev = conn->c->read;

    if (rev->active) {
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }
}


/*
 * New commands on a connected context: write them at the end of this event
 * loop pass (a posted event), so that everything queued until then leaves
 * in one write(2) and an idle socket costs no epoll_ctl() pair per batch.
 * Waiting for the connect, or for room after a short write (hiredis asks
 * from inside the write handler), does need the kernel's write event.
 */

static void
ngx_chat_redis_add_write(void *privdata)
{
    ngx_event_t            *wev;
    ngx_chat_redis_conn_t  *conn;

    conn = privdata;
    wev = conn->c->write;

    if (wev->active || wev->posted) {
        return;
    }

    if ((conn->ac->c.flags & REDIS_CONNECTED) && !conn->writing) {
        ngx_post_event(wev, &ngx_posted_events);
        return;
    }

    if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, conn->rd->log, 0,
                      "redis %s: ngx_add_event(write) failed", conn->name);
    }
}


static void
ngx_chat_redis_del_write(void *privdata)
{
    ngx_event_t            *wev;
    ngx_chat_redis_conn_t  *conn;

    conn = privdata;
    wev = conn->c->write;

    if (wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }

    if (wev->posted) {
        ngx_delete_posted_event(wev);
    }
}


/*
 * hiredis frees the context: release the ngx_connection_t but leave the fd
 * to hiredis, which closes it right after (closing it here too would close
 * whatever reused the number in between).
 */

static void
ngx_chat_redis_cleanup(void *privdata)
{
    ngx_connection_t       *c;
    ngx_chat_redis_conn_t  *conn;

    conn = privdata;
    c = conn->c;

    if (c) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        c->read->closed = 1;
        c->write->closed = 1;

        ngx_free_connection(c);

        /* not closed, but no longer ours: no "open socket left" alert */
        c->fd = (ngx_socket_t) -1;

        conn->c = NULL;
    }

    ngx_chat_redis_gone(conn);
}


/* commands */


static ngx_int_t
ngx_chat_redis_can_send(ngx_chat_redis_conn_t *conn)
{
    size_t  buffered;

    /* hiredis refuses commands while it frees the context after an error */

    if (conn->state != NGX_CHAT_REDIS_READY
        || (conn->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
    {
        return NGX_DECLINED;
    }

    buffered = sdslen(conn->ac->c.obuf);

    if (conn->pending < NGX_CHAT_REDIS_MAX_PENDING
        && buffered < NGX_CHAT_REDIS_MAX_BUFFERED)
    {
        return NGX_OK;
    }

    if (ngx_time() - conn->full >= NGX_CHAT_REDIS_LOG_EVERY) {
        ngx_log_error(NGX_LOG_ERR, conn->rd->log, 0,
                      "redis %s: %ui commands unanswered, %uz bytes unsent, "
                      "refusing more", conn->name, conn->pending, buffered);
        conn->full = ngx_time();
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_chat_redis_publish(ngx_chat_redis_t *rd, u_char *channel,
    size_t channel_len, u_char *msg, size_t len)
{
    const char             *argv[3];
    size_t                  argvlen[3];
    ngx_int_t               rc;
    ngx_chat_redis_conn_t  *conn;

    conn = &rd->cmd;

    rc = ngx_chat_redis_can_send(conn);
    if (rc != NGX_OK) {
        return rc;
    }

    argv[0] = rd->sharded ? "SPUBLISH" : "PUBLISH";
    argv[1] = (const char *) channel;
    argv[2] = (const char *) msg;
    argvlen[0] = rd->sharded ? sizeof("SPUBLISH") - 1 : sizeof("PUBLISH") - 1;
    argvlen[1] = channel_len;
    argvlen[2] = len;

    if (rd->sharded) {
        return ngx_chat_redis_spublish(conn, argv, argvlen);
    }

    /* buffered by hiredis, written when the write event fires */

    if (redisAsyncCommandArgv(conn->ac, ngx_chat_redis_cmd_reply, conn,
                              3, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    conn->pending++;

    return NGX_OK;
}


/*
 * Any command but the subscriber ones and MONITOR, which would change the
 * context's mode.  handler(data, reply) runs once: with the reply (valid
 * during the call only), or with NULL if the context goes away first.
 * NGX_DECLINED when down or overloaded, NGX_ERROR when refused.
 */

ngx_int_t
ngx_chat_redis_command(ngx_chat_redis_t *rd, ngx_chat_redis_reply_pt cb,
    void *data, int argc, const char **argv, const size_t *argvlen)
{
    size_t                  n;
    ngx_int_t               rc;
    ngx_chat_redis_conn_t  *conn;
    ngx_chat_redis_call_t  *call;

    if (argc < 1) {
        return NGX_ERROR;
    }

    n = argvlen[0];

    if ((n >= 9
         && ngx_strncasecmp((u_char *) argv[0] + n - 9,
                            (u_char *) "subscribe", 9) == 0)
        || (n == 7
            && ngx_strncasecmp((u_char *) argv[0], (u_char *) "monitor", 7)
               == 0))
    {
        return NGX_ERROR;
    }

    conn = &rd->cmd;

    rc = ngx_chat_redis_can_send(conn);
    if (rc != NGX_OK) {
        return rc;
    }

    if (cb == NULL) {
        if (redisAsyncCommandArgv(conn->ac, ngx_chat_redis_cmd_reply, conn,
                                  argc, argv, argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        conn->pending++;
        return NGX_OK;
    }

    call = ngx_alloc(sizeof(ngx_chat_redis_call_t), rd->log);
    if (call == NULL) {
        return NGX_ERROR;
    }

    call->conn = conn;
    call->handler = cb;
    call->data = data;

    if (redisAsyncCommandArgv(conn->ac, ngx_chat_redis_call_reply, call,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(call);
        return NGX_ERROR;
    }

    conn->pending++;

    return NGX_OK;
}


ngx_int_t
ngx_chat_redis_subscribe(ngx_chat_redis_t *rd, u_char *channel, size_t len)
{
    const char  *argv[2];
    size_t       argvlen[2];

    if (rd->sub.state != NGX_CHAT_REDIS_READY) {
        return NGX_DECLINED;
    }

    if (rd->sharded) {
        return ngx_chat_redis_raw_command(&rd->sub, "SSUBSCRIBE", channel,
                                          len);
    }

    argv[0] = "SUBSCRIBE";
    argv[1] = (const char *) channel;
    argvlen[0] = sizeof("SUBSCRIBE") - 1;
    argvlen[1] = len;

    if (redisAsyncCommandArgv(rd->sub.ac, ngx_chat_redis_sub_reply, &rd->sub,
                              2, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_chat_redis_unsubscribe(ngx_chat_redis_t *rd, u_char *channel,
    size_t len)
{
    const char  *argv[2];
    size_t       argvlen[2];

    if (rd->sub.state != NGX_CHAT_REDIS_READY) {
        return NGX_DECLINED;
    }

    if (rd->sharded) {
        return ngx_chat_redis_raw_command(&rd->sub, "SUNSUBSCRIBE", channel,
                                          len);
    }

    argv[0] = "UNSUBSCRIBE";
    argv[1] = (const char *) channel;
    argvlen[0] = sizeof("UNSUBSCRIBE") - 1;
    argvlen[1] = len;

    /* hiredis keeps no callback for it: the replies go to the channel's */

    if (redisAsyncCommandArgv(rd->sub.ac, NULL, NULL, 2, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* replies */


/* PUBLISH and handler-less commands on the cmd context */

static void
ngx_chat_redis_cmd_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply;
    ngx_chat_redis_conn_t  *conn;

    reply = r;
    conn = privdata;

    conn->pending--;

    /* NULL: the context is being freed */

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_chat_redis_error(conn, reply);
    }
}


static void
ngx_chat_redis_cmd_pong(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply;
    ngx_chat_redis_conn_t  *conn;

    reply = r;
    conn = privdata;

    conn->pending--;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* -LOADING, -NOAUTH...: the PING timeout will drop the context */
        ngx_chat_redis_failure(conn, reply->str);
        return;
    }

    conn->ping_sent = 0;

    if (conn->state == NGX_CHAT_REDIS_HANDSHAKE) {
        ngx_chat_redis_ready(conn);
    }
}


static void
ngx_chat_redis_call_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_chat_redis_call_t  *call;

    call = privdata;

    call->conn->pending--;

    if (r && ((redisReply *) r)->type == REDIS_REPLY_ERROR
        && call->conn->rd->sharded)
    {
        call->conn->rd->on_error(call->conn->rd->data,
                                 ((redisReply *) r)->str);
    }

    call->handler(call->data, r);

    ngx_free(call);
}


/*
 * Every reply on the subscriber arrives here: "message" pushes, the
 * subscribe confirmations (reported: from then on the channel's messages
 * reach us), the psubscribe and unsubscribe ones (ignored) and our PONGs.
 */

static void
ngx_chat_redis_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply, *kind, *channel, *msg;
    ngx_chat_redis_t       *rd;
    ngx_chat_redis_conn_t  *conn;

    reply = r;
    conn = privdata;
    rd = conn->rd;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "redis %s: error reply: %s", conn->name, reply->str);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        return;
    }

    kind = reply->element[0];

    if (kind->type != REDIS_REPLY_STRING) {
        return;
    }

    if (kind->len == 7
        && ngx_strncmp(kind->str, "message", 7) == 0
        && reply->elements == 3)
    {
        channel = reply->element[1];
        msg = reply->element[2];

        if (channel->type == REDIS_REPLY_STRING
            && msg->type == REDIS_REPLY_STRING)
        {
            rd->on_message(rd->data, (u_char *) channel->str, channel->len,
                           (u_char *) msg->str, msg->len);
        }

        return;
    }

    if (kind->len == 9
        && ngx_strncmp(kind->str, "subscribe", 9) == 0
        && reply->elements == 3
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        channel = reply->element[1];
        rd->on_subscribed(rd->data, (u_char *) channel->str, channel->len);
        return;
    }

    if (kind->len == 4 && ngx_strncmp(kind->str, "pong", 4) == 0) {
        conn->ping_sent = 0;

        if (conn->state == NGX_CHAT_REDIS_HANDSHAKE) {
            ngx_chat_redis_ready(conn);
        }
    }
}


/*
 * SPUBLISH keeps a copy of what it sent until the reply: a primary that
 * no longer owns the channel's slot (resharding, a stale map) answers
 * -MOVED or -ASK, and the copy goes back to the owner (on_bounce) to be
 * published again once the slot map is read again.  One allocation and
 * copy per publish, in sharded mode only.
 */

static ngx_int_t
ngx_chat_redis_spublish(ngx_chat_redis_conn_t *conn, const char **argv,
    size_t *argvlen)
{
    ngx_chat_redis_spub_t  *sp;

    sp = ngx_alloc(sizeof(ngx_chat_redis_spub_t) + argvlen[1] + argvlen[2],
                   conn->rd->log);
    if (sp == NULL) {
        return NGX_ERROR;
    }

    sp->conn = conn;
    sp->channel_len = argvlen[1];
    sp->len = argvlen[2];
    ngx_memcpy(ngx_cpymem(sp->data, argv[1], argvlen[1]), argv[2],
               argvlen[2]);

    if (redisAsyncCommandArgv(conn->ac, ngx_chat_redis_spub_reply, sp,
                              3, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(sp);
        return NGX_ERROR;
    }

    conn->pending++;

    return NGX_OK;
}


static void
ngx_chat_redis_spub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply;
    ngx_chat_redis_t       *rd;
    ngx_chat_redis_spub_t  *sp;

    reply = r;
    sp = privdata;
    rd = sp->conn->rd;

    sp->conn->pending--;

    /* NULL: the context is being freed; its subscribers drain after */

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_chat_redis_error(sp->conn, reply);

        if (!rd->destroying
            && (ngx_strncmp(reply->str, "MOVED ", 6) == 0
                || ngx_strncmp(reply->str, "ASK ", 4) == 0
                || ngx_strncmp(reply->str, "TRYAGAIN", 8) == 0
                || ngx_strncmp(reply->str, "CLUSTERDOWN", 11) == 0))
        {
            rd->on_bounce(rd->data, sp->data, sp->channel_len,
                          sp->data + sp->channel_len, sp->len);
        }
    }

    ngx_free(sp);
}


/* sharded mode: the subscriber reads its own replies (see the top) */


static ngx_int_t
ngx_chat_redis_raw_command(ngx_chat_redis_conn_t *conn, const char *cmd,
    u_char *channel, size_t len)
{
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = cmd;
    argv[1] = (const char *) channel;
    argvlen[0] = ngx_strlen(cmd);
    argvlen[1] = len;

    if (redisAppendCommandArgv(&conn->ac->c, 2, argv, argvlen) != REDIS_OK) {
        return NGX_ERROR;
    }

    ngx_chat_redis_add_write(conn);

    return NGX_OK;
}


/*
 * What redisAsyncHandleRead() does, minus the callback dispatch: an I/O
 * error or EOF frees the context (the cleanup hook logs and schedules the
 * reconnect), as hiredis would.  Called from our read handler, never from
 * inside hiredis, so freeing here is allowed.
 */

static void
ngx_chat_redis_raw_read(ngx_chat_redis_conn_t *conn)
{
    void               *reply;
    redisAsyncContext  *ac;

    ac = conn->ac;

    if (redisBufferRead(&ac->c) != REDIS_OK) {
        redisAsyncFree(ac);
        return;
    }

    for ( ;; ) {
        if (redisGetReplyFromReader(&ac->c, &reply) != REDIS_OK) {
            /* a protocol error: the reader cannot go on */
            redisAsyncFree(ac);
            return;
        }

        if (reply == NULL) {
            return;
        }

        ngx_chat_redis_raw_reply(conn, reply);
        freeReplyObject(reply);

        if (conn->ac != ac) {
            /* dropped by the reply (an error): nothing more to read */
            return;
        }
    }
}


static void
ngx_chat_redis_raw_reply(ngx_chat_redis_conn_t *conn, redisReply *reply)
{
    redisReply        *kind, *channel, *msg;
    ngx_chat_redis_t  *rd;

    rd = conn->rd;

    switch (reply->type) {

    case REDIS_REPLY_ERROR:
        ngx_chat_redis_error(conn, reply);

        if (conn->state == NGX_CHAT_REDIS_READY) {
            ngx_chat_redis_lost(conn, reply->str);
        }

        ngx_chat_redis_drop(conn);
        return;

    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
        /* "+PONG" with no subscription, else ["pong", ""] below */
        ngx_chat_redis_pong(conn);
        return;

    case REDIS_REPLY_ARRAY:
        break;

    default:
        return;
    }

    if (reply->elements < 2 || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind = reply->element[0];
    channel = reply->element[1];

    if (kind->len == 8 && ngx_strncmp(kind->str, "smessage", 8) == 0
        && reply->elements == 3
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        msg = reply->element[2];
        rd->on_message(rd->data, (u_char *) channel->str, channel->len,
                       (u_char *) msg->str, msg->len);
        return;
    }

    if (kind->len == 10 && ngx_strncmp(kind->str, "ssubscribe", 10) == 0) {
        rd->on_subscribed(rd->data, (u_char *) channel->str, channel->len);
        return;
    }

    if (kind->len == 4 && ngx_strncmp(kind->str, "pong", 4) == 0) {
        ngx_chat_redis_pong(conn);
    }

    /*
     * "sunsubscribe": ours (the last device of a user left), or Redis'
     * when the slot moved to another shard; then the slot map changed and
     * our SPUBLISHes get -MOVED, which makes the owner reload it.
     */
}


static void
ngx_chat_redis_pong(ngx_chat_redis_conn_t *conn)
{
    conn->ping_sent = 0;

    if (conn->state == NGX_CHAT_REDIS_HANDSHAKE) {
        ngx_chat_redis_ready(conn);
    }
}


static void
ngx_chat_redis_error(ngx_chat_redis_conn_t *conn, redisReply *reply)
{
    ngx_chat_redis_t  *rd;

    rd = conn->rd;

    if (rd->sharded && rd->on_error) {
        /* -MOVED, -ASK, -CLUSTERDOWN, -TRYAGAIN: the owner reloads the map */
        rd->on_error(rd->data, reply->str);

        if (ngx_strncmp(reply->str, "MOVED ", 6) == 0) {
            ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                          "redis %s: %V: %s", conn->name, &rd->addr,
                          reply->str);
            return;
        }
    }

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "redis %s: error reply: %s", conn->name, reply->str);
}
