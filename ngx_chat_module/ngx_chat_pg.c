
/*
 * ngx_chat_pg.c: the per-worker pool of asynchronous PostgreSQL connections.
 *
 * This file owns every PGconn of a worker and the ngx_connection_t that
 * wraps each one's socket.  A pool is pool_size slots; a slot goes
 *
 *   DOWN -> CONNECTING -> PREPARING -> IDLE <-> BUSY
 *              |              |         |       |
 *              +--------------+---------+-------+--> BACKOFF -> CONNECTING
 *
 * CONNECTING drives PQconnectPoll() from the socket events libpq asks for;
 * PREPARING prepares every statement of the table in one round trip (one
 * simple query of PREPAREs); IDLE waits for a query; BUSY runs one.  A
 * failed connect, a failed prepare, a lost connection or a server that
 * does not end a query that overran its deadline closes the connection
 * and arms a cancelable timer: 100 ms doubling to 5 s, with
 * +-25% jitter, reset to 100 ms once a connection reaches IDLE.  No timer is
 * armed once the worker is exiting.  The backoff is for an idle pool: a
 * query that finds no connection up (and fails fast) brings the next
 * reconnect of the slot due first forward to at most 100 ms from then
 * (ngx_chat_pg_demand(), one attempt at a time), and the first slot to
 * reach IDLE calls the other slots in backoff back within 100 ms, so that
 * under load the pool is back within about 100 ms of the server accepting
 * connections, whatever the backoff had grown to.
 *
 * Nothing here blocks: none of libpq's synchronous calls (the exec,
 * connectdb, ping, cancel and reset families) is used.  A query that
 * overruns its deadline cannot be cancelled without blocking (libpq 15's
 * cancel request opens a new connection synchronously), so its connection
 * is dropped and reconnected instead.
 *
 * Host names: libpq resolves them with a blocking name lookup inside
 * PQconnectPoll().  The conninfo must therefore use hostaddr=, a numeric
 * host, or a unix socket directory; the chat_postgres directive refuses
 * anything else (ngx_chat_pg_check_conninfo()).
 *
 * Sockets are registered level-triggered (NGX_LEVEL_EVENT): read interest
 * is always on for an established connection, so a server restart or an
 * admin termination is noticed on idle connections too, and write interest
 * is on only while libpq has output to flush (or while the connect wants
 * to write).  Level triggering means libpq need not be drained in a loop.
 * libpq may close its socket and open another during PQconnectPoll() (next
 * host or address, SSL/GSS fallback), possibly under the same number, so
 * after each poll the socket is compared by number and inode and wrapped
 * again if it changed.  On close, events are deleted with NGX_CLOSE_EVENT
 * (the socket is closed by PQfinish(), or already was by libpq), the
 * ngx_connection_t is freed without closing the fd, and c->fd is set to -1
 * so that nginx reports no "open socket left" at exit.
 *
 * Queries.  ngx_chat_pg_query() copies a query into one ngx_alloc() block.
 * A query is in exactly one place: the FIFO wait queue, running on a slot,
 * the "failing" list (a DECLINED answer posted to ngx_posted_events, so
 * that no handler runs inside ngx_chat_pg_query()), or being finished.  Its
 * ngx_event_t is both its deadline timer and that posted event.  Deadline
 * timers are not cancelable: a gracefully exiting worker waits for its
 * queries (at most the timeout) before exit_process destroys the pool.
 * A query whose deadline passes while it runs is answered NGX_DECLINED at
 * once; its connection stays busy until the server's statement_timeout
 * (set to the same time) ends the statement, and is closed only if the
 * server has not done so a second after that could have happened.
 * When no connection is up (PREPARING, IDLE or BUSY), new queries fail
 * fast and waiting ones are answered NGX_DECLINED.
 *
 * Handlers may call ngx_chat_pg_query(), but not ngx_chat_pg_destroy().
 * The code never touches a slot's connection after calling a handler.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <libpq-fe.h>

#include "ngx_chat_pg.h"
#include "ngx_chat_backoff.h"
#include "ngx_chat_metrics.h"


/* the worker's queue depth for ngx_chat_pg_queue_depth */
#define ngx_chat_pg_depth(pg)                                               \
    ngx_chat_metrics_gauge(NGX_CHAT_G_PG_QUEUE, (pg)->nwaiting)


#define NGX_CHAT_PG_DEMAND_DELAY     100     /* reconnect, queries waiting */
#define NGX_CHAT_PG_CONNECT_TIMEOUT  10000   /* connect and prepare */
#define NGX_CHAT_PG_CANCEL_GRACE     1000    /* a timed-out statement ends */
#define NGX_CHAT_PG_LOG_INTERVAL     30000   /* connect failure logs */
#define NGX_CHAT_PG_MSG_LEN          512


/* slot states */
#define NGX_CHAT_PG_DOWN             0
#define NGX_CHAT_PG_CONNECTING       1
#define NGX_CHAT_PG_PREPARING        2
#define NGX_CHAT_PG_IDLE             3
#define NGX_CHAT_PG_BUSY             4
#define NGX_CHAT_PG_BACKOFF          5

/* where a query is */
#define NGX_CHAT_PG_Q_WAITING        0       /* in pg->waiting */
#define NGX_CHAT_PG_Q_RUNNING        1       /* q->slot runs it */
#define NGX_CHAT_PG_Q_FAILING        2       /* in pg->failing, posted */
#define NGX_CHAT_PG_Q_DONE           3       /* being finished */


typedef struct {
    ngx_chat_pg_t              *pg;
    PGconn                     *conn;
    ngx_connection_t           *c;          /* wraps PQsocket(conn) */
    ngx_file_uniq_t             ino;        /* inode of that socket */
    ngx_event_t                 ev;         /* backoff, connect timeout */
    ngx_chat_pg_query_t        *query;      /* running, or NULL */
    PGresult                   *res;        /* its result so far */
    ngx_uint_t                  id;         /* 1-based, for logs */
    ngx_uint_t                  state;      /* NGX_CHAT_PG_DOWN... */
    ngx_msec_t                  backoff;    /* next reconnect delay */
    PostgresPollingStatusType   poll;       /* what the connect waits for */
    unsigned                    flushing:1; /* PQflush() returned 1 */
    unsigned                    was_up:1;   /* ready once: reconnects */
} ngx_chat_pg_slot_t;


struct ngx_chat_pg_s {
    ngx_log_t                  *log;
    const ngx_chat_pg_stmt_t   *stmts;
    ngx_uint_t                  nstmts;
    char                       *prepare;    /* PREPARE all of them */
    ngx_chat_pg_slot_t         *slots;
    ngx_uint_t                  nslots;
    ngx_uint_t                  max_queue;
    ngx_msec_t                  timeout;    /* per query, 0: none */
    ngx_queue_t                 waiting;    /* queries, FIFO */
    ngx_uint_t                  nwaiting;
    size_t                      wait_bytes; /* of the waiting queries */
    ngx_queue_t                 failing;    /* DECLINED answers posted */
    const char                 *keywords[10];
    const char                 *values[10];
    char                        options[128]; /* "-c ..." settings */
    ngx_msec_t                  err_time;   /* last connect failure log */
    ngx_uint_t                  nerrs;      /* failures not logged since */
    unsigned                    failed:1;   /* in a run of failures */
    unsigned                    destroying:1;
    char                        conninfo[1];
};


struct ngx_chat_pg_query_s {
    ngx_queue_t                 queue;      /* pg->waiting or pg->failing */
    ngx_event_t                 ev;         /* deadline; posted failure */
    ngx_chat_pg_t              *pg;
    ngx_chat_pg_slot_t         *slot;       /* when running */
    ngx_chat_pg_handler_pt      handler;
    void                       *data;
    ngx_uint_t                  stmt;
    ngx_uint_t                  where;      /* NGX_CHAT_PG_Q_WAITING... */
    size_t                      size;       /* of the block */
    int                         nparams;
    char                      **values;     /* in the same block */
    int                        *lengths;
};


static void ngx_chat_pg_slot_connect(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_poll(ngx_chat_pg_slot_t *slot);
static ngx_int_t ngx_chat_pg_slot_watch(ngx_chat_pg_slot_t *slot);
static ngx_int_t ngx_chat_pg_slot_interest(ngx_chat_pg_slot_t *slot,
    ngx_uint_t rd, ngx_uint_t wr);
static void ngx_chat_pg_slot_unwatch(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_prepare(ngx_chat_pg_slot_t *slot);
static ngx_int_t ngx_chat_pg_prepare_sql(ngx_chat_pg_t *pg);
static void ngx_chat_pg_slot_ready(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_send(ngx_chat_pg_slot_t *slot,
    ngx_chat_pg_query_t *q);
static ngx_int_t ngx_chat_pg_slot_flush(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_process(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_complete(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_drop(ngx_chat_pg_slot_t *slot, const char *what,
    const char *msg);
static void ngx_chat_pg_slot_close(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_slot_schedule(ngx_chat_pg_slot_t *slot);
static void ngx_chat_pg_read_handler(ngx_event_t *rev);
static void ngx_chat_pg_write_handler(ngx_event_t *wev);
static void ngx_chat_pg_slot_timer(ngx_event_t *ev);
static void ngx_chat_pg_notice(void *arg, const PGresult *res);
static ngx_uint_t ngx_chat_pg_live(ngx_chat_pg_t *pg);
static ngx_chat_pg_slot_t *ngx_chat_pg_idle(ngx_chat_pg_t *pg);
static void ngx_chat_pg_dispatch(ngx_chat_pg_t *pg);
static void ngx_chat_pg_check_down(ngx_chat_pg_t *pg);
static void ngx_chat_pg_demand(ngx_chat_pg_t *pg, ngx_chat_pg_slot_t *ready);
static void ngx_chat_pg_query_fail(ngx_chat_pg_query_t *q);
static void ngx_chat_pg_query_handler(ngx_event_t *ev);
static void ngx_chat_pg_query_finish(ngx_chat_pg_query_t *q, PGresult *res,
    ngx_int_t rc);
static void ngx_chat_pg_query_free(ngx_chat_pg_query_t *q);
static u_char *ngx_chat_pg_text(u_char *buf, const char *msg);


ngx_chat_pg_t *
ngx_chat_pg_create(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t pool_size, ngx_uint_t max_queue, ngx_msec_t timeout,
    const ngx_chat_pg_stmt_t *stmts)
{
    ngx_uint_t           i, n;
    ngx_chat_pg_t       *pg;
    ngx_chat_pg_slot_t  *slot;
    u_char               msg[NGX_CHAT_PG_MSG_LEN];

    if (pool_size == 0) {
        pool_size = 1;
    }

    pg = ngx_calloc(sizeof(ngx_chat_pg_t) + conninfo->len, cycle->log);
    if (pg == NULL) {
        return NULL;
    }

    ngx_memcpy(pg->conninfo, conninfo->data, conninfo->len);
    pg->conninfo[conninfo->len] = '\0';

    pg->log = cycle->log;

    if (ngx_chat_pg_check_conninfo(pg->conninfo, msg, sizeof(msg))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, pg->log, 0, "chat: postgresql %s", msg);
        ngx_free(pg);
        return NULL;
    }

    pg->slots = ngx_calloc(pool_size * sizeof(ngx_chat_pg_slot_t),
                           cycle->log);
    if (pg->slots == NULL) {
        ngx_free(pg);
        return NULL;
    }

    for (n = 0; stmts[n].name != NULL; n++) { /* void */ }

    pg->stmts = stmts;
    pg->nstmts = n;

    if (ngx_chat_pg_prepare_sql(pg) != NGX_OK) {
        ngx_free(pg->slots);
        ngx_free(pg);
        return NULL;
    }
    pg->nslots = pool_size;
    pg->max_queue = max_queue;
    pg->timeout = timeout;
    ngx_queue_init(&pg->waiting);
    ngx_queue_init(&pg->failing);

    /*
     * Defaults first, then the conninfo expanded from "dbname": libpq keeps
     * the last value of a repeated keyword, so the conninfo overrides them.
     * GSS encryption is off by default: acquiring Kerberos credentials may
     * block.  TCP keepalives notice a silent network partition.
     */

    n = 0;
    pg->keywords[n] = "fallback_application_name";
    pg->values[n++] = "ngx_chat";
    pg->keywords[n] = "client_encoding";
    pg->values[n++] = "UTF8";
    pg->keywords[n] = "keepalives";
    pg->values[n++] = "1";
    pg->keywords[n] = "keepalives_idle";
    pg->values[n++] = "30";
    pg->keywords[n] = "gssencmode";
    pg->values[n++] = "disable";

    /*
     * A statement we stopped waiting for must not go on running: the
     * server gives up too.  JIT compilation costs tens of milliseconds and
     * never pays off for our short statements.  Every statement looks rows
     * up by key: no plan may scan a whole table, even one made while the
     * queue tables were nearly empty (a drain page then scanned all of
     * inbox and, per row, all of messages: 50 ms instead of 0.6).  A
     * conninfo "options" replaces all three.
     */
    *ngx_snprintf((u_char *) pg->options, sizeof(pg->options) - 1,
                  "-c jit=off -c enable_seqscan=off -c statement_timeout=%M",
                  timeout) = '\0';
    pg->keywords[n] = "options";
    pg->values[n++] = pg->options;

    pg->keywords[n] = "dbname";
    pg->values[n++] = pg->conninfo;
    pg->keywords[n] = NULL;
    pg->values[n] = NULL;

    for (i = 0; i < pool_size; i++) {
        slot = &pg->slots[i];
        slot->pg = pg;
        slot->id = i + 1;
        slot->backoff = NGX_CHAT_BACKOFF_MIN;
        slot->ev.handler = ngx_chat_pg_slot_timer;
        slot->ev.data = slot;
        slot->ev.log = pg->log;
        slot->ev.cancelable = 1;
    }

    for (i = 0; i < pool_size; i++) {
        ngx_chat_pg_slot_connect(&pg->slots[i]);
    }

    return pg;
}


/*
 * A conninfo without "=" that is not a URI is a bare database name, as
 * libpq reads it.  Each entry of host= must be an IP address, a unix
 * socket directory ("/...") or an abstract socket ("@..."), unless the
 * hostaddr= entry at the same place gives the address.
 */

ngx_int_t
ngx_chat_pg_check_conninfo(const char *conninfo, u_char *err, size_t size)
{
    u_char             buf[NGX_CHAT_PG_MSG_LEN];
    char              *msg, *h, *a, *hend, *aend, *hlast, *alast;
    size_t             len;
    ngx_int_t          rc;
    struct in_addr     a4;
    struct in6_addr    a6;
    PQconninfoOption  *opts, *o;
    const char        *host, *hostaddr, *service;

    if (strchr(conninfo, '=') == NULL
        && ngx_strncmp(conninfo, "postgres://", 11) != 0
        && ngx_strncmp(conninfo, "postgresql://", 13) != 0)
    {
        return NGX_OK;
    }

    msg = NULL;
    opts = PQconninfoParse(conninfo, &msg);

    if (opts == NULL) {
        *ngx_snprintf(err, size - 1, "has an invalid conninfo: %s",
                      msg ? ngx_chat_pg_text(buf, msg)
                          : (u_char *) "out of memory") = '\0';
        if (msg) {
            PQfreemem(msg);
        }
        return NGX_ERROR;
    }

    host = NULL;
    hostaddr = NULL;
    service = NULL;

    for (o = opts; o->keyword != NULL; o++) {
        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            hostaddr = o->val;

        } else if (ngx_strcmp(o->keyword, "service") == 0) {
            service = o->val;
        }
    }

    rc = NGX_OK;

    if (service != NULL && service[0] != '\0') {
        *ngx_snprintf(err, size - 1,
                      "does not take service=: the service file would be "
                      "read, and its host resolved, in the workers; give "
                      "host= or hostaddr=") = '\0';
        rc = NGX_ERROR;
        goto done;
    }

    if (host == NULL) {
        goto done;
    }

    /* both are comma-separated lists, taken place by place */

    h = (char *) host;
    hend = h + ngx_strlen(h);
    a = (char *) (hostaddr ? hostaddr : "");
    aend = a + ngx_strlen(a);

    while (h < hend) {
        hlast = strchr(h, ',');
        if (hlast == NULL) {
            hlast = hend;
        }

        alast = (a < aend) ? strchr(a, ',') : NULL;
        if (alast == NULL) {
            alast = aend;
        }

        len = hlast - h;

        if (len > 0 && h[0] != '/' && h[0] != '@' && alast == a) {
            if (len < sizeof(buf)) {
                ngx_memcpy(buf, h, len);
                buf[len] = '\0';
            }

            if (len >= sizeof(buf)
                || (inet_pton(AF_INET, (char *) buf, &a4) != 1
                    && inet_pton(AF_INET6, (char *) buf, &a6) != 1))
            {
                *ngx_snprintf(err, size - 1,
                              "has the host name \"%*s\": the workers "
                              "would resolve it with a blocking lookup; "
                              "use an IP address (host= or hostaddr=) or "
                              "a unix socket directory", len, h) = '\0';
                rc = NGX_ERROR;
                goto done;
            }
        }

        h = hlast + 1;
        a = (alast < aend) ? alast + 1 : aend;
    }

done:

    PQconninfoFree(opts);

    return rc;
}


ngx_chat_pg_query_t *
ngx_chat_pg_query(ngx_chat_pg_t *pg, ngx_uint_t stmt, int nparams,
    const char *const *values, const int *lengths,
    ngx_chat_pg_handler_pt handler, void *data)
{
    int                   i;
    u_char               *p;
    size_t                size, len;
    ngx_chat_pg_query_t  *q;

    if (pg == NULL || pg->destroying) {
        return NULL;
    }

    if (stmt >= pg->nstmts || nparams != pg->stmts[stmt].nparams) {
        ngx_log_error(NGX_LOG_ALERT, pg->log, 0,
                      "chat: postgresql statement #%ui called with %d "
                      "parameters", stmt, nparams);
        return NULL;
    }

    if (!ngx_chat_pg_live(pg)) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                       "chat pg: \"%s\" failed fast: no connection",
                       pg->stmts[stmt].name);
        ngx_chat_pg_demand(pg, NULL);
        return NULL;
    }

    if (pg->nwaiting >= pg->max_queue && ngx_chat_pg_idle(pg) == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                       "chat pg: \"%s\" failed fast: queue full",
                       pg->stmts[stmt].name);
        return NULL;
    }

    size = sizeof(ngx_chat_pg_query_t)
           + nparams * (sizeof(char *) + sizeof(int));

    for (i = 0; i < nparams; i++) {
        if (values[i] != NULL) {
            len = (lengths != NULL && lengths[i] >= 0)
                  ? (size_t) lengths[i] : ngx_strlen(values[i]);
            size += len + 1;
        }
    }

    /* the queue's bytes are capped too; a query alone always fits */

    if (pg->nwaiting && pg->wait_bytes + size > NGX_CHAT_PG_QUEUE_BYTES
        && ngx_chat_pg_idle(pg) == NULL)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                       "chat pg: \"%s\" failed fast: queue bytes full",
                       pg->stmts[stmt].name);
        return NULL;
    }

    q = ngx_alloc(size, pg->log);
    if (q == NULL) {
        return NULL;
    }

    ngx_memzero(q, sizeof(ngx_chat_pg_query_t));

    q->pg = pg;
    q->handler = handler;
    q->data = data;
    q->stmt = stmt;
    q->nparams = nparams;
    q->values = (char **) (q + 1);
    q->lengths = (int *) (q->values + nparams);

    /* text parameters: each is copied with a terminating NUL */

    p = (u_char *) (q->lengths + nparams);

    for (i = 0; i < nparams; i++) {
        if (values[i] == NULL) {
            q->values[i] = NULL;
            q->lengths[i] = 0;
            continue;
        }

        len = (lengths != NULL && lengths[i] >= 0)
              ? (size_t) lengths[i] : ngx_strlen(values[i]);

        q->values[i] = (char *) p;
        q->lengths[i] = (int) len;
        p = ngx_cpymem(p, values[i], len);
        *p++ = '\0';
    }

    q->ev.handler = ngx_chat_pg_query_handler;
    q->ev.data = q;
    q->ev.log = pg->log;

    if (pg->timeout) {
        ngx_add_timer(&q->ev, pg->timeout);
    }

    q->where = NGX_CHAT_PG_Q_WAITING;
    q->size = size;
    ngx_queue_insert_tail(&pg->waiting, &q->queue);
    pg->nwaiting++;
    ngx_chat_pg_depth(pg);
    pg->wait_bytes += size;

    ngx_chat_pg_dispatch(pg);

    return q;
}


void
ngx_chat_pg_query_expire(ngx_chat_pg_query_t *q, ngx_msec_t ms)
{
    if (q->ev.timer_set
        && (ngx_msec_int_t) (q->ev.timer.key - (ngx_current_msec + ms)) > 0)
    {
        ngx_add_timer(&q->ev, ms);
    }
}


ngx_uint_t
ngx_chat_pg_up(ngx_chat_pg_t *pg)
{
    return (pg != NULL && !pg->destroying) ? ngx_chat_pg_live(pg) : 0;
}


ngx_uint_t
ngx_chat_pg_want(ngx_chat_pg_t *pg)
{
    if (pg == NULL || pg->destroying) {
        return 0;
    }

    if (ngx_chat_pg_live(pg)) {
        return 1;
    }

    ngx_chat_pg_demand(pg, NULL);

    return 0;
}


void
ngx_chat_pg_destroy(ngx_chat_pg_t *pg)
{
    ngx_uint_t            i;
    ngx_queue_t           doomed, *x;
    ngx_chat_pg_query_t  *q;
    ngx_chat_pg_slot_t   *slot;

    if (pg == NULL) {
        return;
    }

    pg->destroying = 1;
    ngx_queue_init(&doomed);

    for (i = 0; i < pg->nslots; i++) {
        slot = &pg->slots[i];
        q = slot->query;

        if (q != NULL) {
            slot->query = NULL;
            q->slot = NULL;
            ngx_queue_insert_tail(&doomed, &q->queue);
        }

        ngx_chat_pg_slot_close(slot);
    }

    ngx_queue_add(&doomed, &pg->waiting);
    ngx_queue_add(&doomed, &pg->failing);
    ngx_queue_init(&pg->waiting);
    ngx_queue_init(&pg->failing);
    pg->nwaiting = 0;
    ngx_chat_pg_depth(pg);
    pg->wait_bytes = 0;

    for (x = ngx_queue_head(&doomed);
         x != ngx_queue_sentinel(&doomed);
         x = ngx_queue_next(x))
    {
        q = ngx_queue_data(x, ngx_chat_pg_query_t, queue);
        q->where = NGX_CHAT_PG_Q_DONE;
    }

    /* each is answered NGX_DECLINED, then freed */

    while (!ngx_queue_empty(&doomed)) {
        x = ngx_queue_head(&doomed);
        ngx_queue_remove(x);
        q = ngx_queue_data(x, ngx_chat_pg_query_t, queue);
        ngx_chat_pg_query_finish(q, NULL, NGX_DECLINED);
    }

    ngx_free(pg->prepare);
    ngx_free(pg->slots);
    ngx_free(pg);
}


/* connection life cycle */

static void
ngx_chat_pg_slot_connect(ngx_chat_pg_slot_t *slot)
{
    PGconn         *conn;
    ngx_chat_pg_t  *pg;

    pg = slot->pg;

    conn = PQconnectStartParams(pg->keywords, pg->values, 1);

    if (conn == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pg->log, 0,
                      "chat: PQconnectStartParams() failed");
        slot->state = NGX_CHAT_PG_DOWN;
        ngx_chat_pg_slot_schedule(slot);
        return;
    }

    slot->conn = conn;
    slot->state = NGX_CHAT_PG_CONNECTING;

    /* before the first PQconnectPoll(), wait as if it returned WRITING */
    slot->poll = PGRES_POLLING_WRITING;

    if (PQstatus(conn) == CONNECTION_BAD || PQsetnonblocking(conn, 1) != 0)
    {
        ngx_chat_pg_slot_drop(slot, "failed", PQerrorMessage(conn));
        return;
    }

    PQsetNoticeReceiver(conn, ngx_chat_pg_notice, slot);

    if (ngx_chat_pg_slot_watch(slot) != NGX_OK) {
        ngx_chat_pg_slot_drop(slot, "failed", "cannot watch the socket");
        return;
    }

    ngx_add_timer(&slot->ev, NGX_CHAT_PG_CONNECT_TIMEOUT);
}


static void
ngx_chat_pg_slot_poll(ngx_chat_pg_slot_t *slot)
{
    PostgresPollingStatusType  rc;

    rc = PQconnectPoll(slot->conn);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, slot->pg->log, 0,
                   "chat pg: #%ui PQconnectPoll: %d", slot->id, (int) rc);

    switch (rc) {

    case PGRES_POLLING_FAILED:
        ngx_chat_pg_slot_drop(slot, "failed", PQerrorMessage(slot->conn));
        return;

    case PGRES_POLLING_OK:
        slot->state = NGX_CHAT_PG_PREPARING;

        if (ngx_chat_pg_slot_watch(slot) != NGX_OK) {
            ngx_chat_pg_slot_drop(slot, "failed", "cannot watch the socket");
            return;
        }

        ngx_chat_pg_slot_prepare(slot);
        return;

    case PGRES_POLLING_READING:
        slot->poll = PGRES_POLLING_READING;
        break;

    default:
        slot->poll = PGRES_POLLING_WRITING;
        break;
    }

    if (ngx_chat_pg_slot_watch(slot) != NGX_OK) {
        ngx_chat_pg_slot_drop(slot, "failed", "cannot watch the socket");
    }
}


/*
 * Makes slot->c wrap the current PQsocket() and sets the event interest
 * the state wants.  A socket libpq replaced is already closed: its events
 * are gone from the kernel, only nginx's bookkeeping is dropped.
 */

static ngx_int_t
ngx_chat_pg_slot_watch(ngx_chat_pg_slot_t *slot)
{
    int                fd;
    ngx_chat_pg_t     *pg;
    ngx_file_info_t    fi;
    ngx_connection_t  *c;

    pg = slot->pg;

    fd = PQsocket(slot->conn);
    if (fd == -1) {
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == -1) {
        ngx_log_error(NGX_LOG_ALERT, pg->log, ngx_errno,
                      ngx_fd_info_n " on postgresql socket %d failed", fd);
        return NGX_ERROR;
    }

    c = slot->c;

    if (c != NULL && (c->fd != fd || slot->ino != ngx_file_uniq(&fi))) {
        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                       "chat pg: #%ui socket %d replaced by %d",
                       slot->id, c->fd, fd);
        ngx_chat_pg_slot_unwatch(slot);
        c = NULL;
    }

    if (c == NULL) {
        c = ngx_get_connection(fd, pg->log);
        if (c == NULL) {
            return NGX_ERROR;
        }

        c->data = slot;
        c->read->handler = ngx_chat_pg_read_handler;
        c->write->handler = ngx_chat_pg_write_handler;
        c->read->log = pg->log;
        c->write->log = pg->log;

        slot->c = c;
        slot->ino = ngx_file_uniq(&fi);
    }

    if (slot->state == NGX_CHAT_PG_CONNECTING) {
        return ngx_chat_pg_slot_interest(slot,
                                         slot->poll == PGRES_POLLING_READING,
                                         slot->poll == PGRES_POLLING_WRITING);
    }

    return ngx_chat_pg_slot_interest(slot, 1, slot->flushing);
}


static ngx_int_t
ngx_chat_pg_slot_interest(ngx_chat_pg_slot_t *slot, ngx_uint_t rd,
    ngx_uint_t wr)
{
    ngx_event_t  *rev, *wev;

    rev = slot->c->read;
    wev = slot->c->write;

    if (rd && !rev->active) {
        if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!rd && rev->active) {
        if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (wr && !wev->active) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!wr && wev->active) {
        if (ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the socket is closed right after (PQfinish()), or already was */

static void
ngx_chat_pg_slot_unwatch(ngx_chat_pg_slot_t *slot)
{
    ngx_connection_t  *c;

    c = slot->c;

    if (c == NULL) {
        return;
    }

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    slot->c = NULL;
}


/*
 * Prepares every statement in one round trip: one simple query of
 * PREPAREs (ngx_chat_pg_prepare_sql()), which runs as one implicit
 * transaction, so the first that fails fails them all.  One PQsendPrepare()
 * a statement cost a round trip each: 20 of them before a reconnected pool
 * could serve, seconds on a busy PostgreSQL that had just come back.
 */

static void
ngx_chat_pg_slot_prepare(ngx_chat_pg_slot_t *slot)
{
    if (!PQsendQuery(slot->conn, slot->pg->prepare)) {
        ngx_chat_pg_slot_drop(slot, "failed", PQerrorMessage(slot->conn));
        return;
    }

    if (ngx_chat_pg_slot_flush(slot) == NGX_ERROR) {
        ngx_chat_pg_slot_drop(slot, "failed", PQerrorMessage(slot->conn));
    }
}


/* "PREPARE name AS sql;" for every statement, NUL-terminated */

static ngx_int_t
ngx_chat_pg_prepare_sql(ngx_chat_pg_t *pg)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = 1;

    for (i = 0; i < pg->nstmts; i++) {
        len += sizeof("PREPARE  AS ;\n") - 1 + ngx_strlen(pg->stmts[i].name)
               + ngx_strlen(pg->stmts[i].sql);
    }

    pg->prepare = ngx_alloc(len, pg->log);
    if (pg->prepare == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) pg->prepare;

    for (i = 0; i < pg->nstmts; i++) {
        p = ngx_sprintf(p, "PREPARE %s AS %s;\n", pg->stmts[i].name,
                        pg->stmts[i].sql);
    }

    *p = '\0';

    return NGX_OK;
}


static void
ngx_chat_pg_slot_ready(ngx_chat_pg_slot_t *slot)
{
    ngx_chat_pg_t  *pg;

    pg = slot->pg;

    if (slot->ev.timer_set) {
        ngx_del_timer(&slot->ev);
    }

    slot->state = NGX_CHAT_PG_IDLE;
    slot->backoff = NGX_CHAT_BACKOFF_MIN;

    if (slot->was_up) {
        ngx_chat_metrics_count(NGX_CHAT_C_PG_RECONNECTS, 1);
    }

    slot->was_up = 1;

    if (pg->failed && pg->nerrs) {
        ngx_log_error(NGX_LOG_INFO, pg->log, 0,
                      "chat: postgresql connection #%ui to \"%s\" port %s "
                      "established (%ui failures were not logged)",
                      slot->id, PQhost(slot->conn), PQport(slot->conn),
                      pg->nerrs);

    } else {
        ngx_log_error(NGX_LOG_INFO, pg->log, 0,
                      "chat: postgresql connection #%ui to \"%s\" port %s "
                      "established", slot->id, PQhost(slot->conn),
                      PQport(slot->conn));
    }

    pg->failed = 0;
    pg->nerrs = 0;

    ngx_chat_pg_demand(pg, slot);

    ngx_chat_pg_dispatch(pg);
}


/*
 * Someone waits for the pool.  ready == NULL: a query found no connection
 * up; the slot in backoff due first reconnects within
 * NGX_CHAT_PG_DEMAND_DELAY, unless a connect is under way already (one
 * attempt at a time, and none sooner than that delay after the last one
 * failed).  ready != NULL: that slot just reached IDLE, the server is
 * back; every other slot in backoff starts over from the minimum and
 * reconnects within the delay.
 */

static void
ngx_chat_pg_demand(ngx_chat_pg_t *pg, ngx_chat_pg_slot_t *ready)
{
    ngx_uint_t           i;
    ngx_chat_pg_slot_t  *slot, *first;

    if (ngx_exiting || ngx_terminate || pg->destroying) {
        return;
    }

    first = NULL;

    for (i = 0; i < pg->nslots; i++) {
        slot = &pg->slots[i];

        if (ready == NULL && slot->state == NGX_CHAT_PG_CONNECTING) {
            return;
        }

        if (slot->state != NGX_CHAT_PG_BACKOFF || !slot->ev.timer_set) {
            continue;
        }

        if ((ngx_msec_int_t) (slot->ev.timer.key - ngx_current_msec)
            <= NGX_CHAT_PG_DEMAND_DELAY)
        {
            if (ready == NULL) {
                /* one is due soon enough */
                return;
            }

            continue;
        }

        if (ready) {
            slot->backoff = NGX_CHAT_BACKOFF_MIN;
            ngx_del_timer(&slot->ev);
            ngx_add_timer(&slot->ev, NGX_CHAT_PG_DEMAND_DELAY);
            continue;
        }

        if (first == NULL
            || (ngx_msec_int_t) (slot->ev.timer.key - first->ev.timer.key)
               < 0)
        {
            first = slot;
        }
    }

    if (first) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                       "chat pg: #%ui reconnect sooner: queries wait",
                       first->id);

        ngx_del_timer(&first->ev);
        ngx_add_timer(&first->ev, NGX_CHAT_PG_DEMAND_DELAY);
    }
}


/*
 * Sends q on an IDLE slot.  On failure q goes back to the head of the
 * wait queue and the slot is dropped (which may fail the queue).
 */

static void
ngx_chat_pg_slot_send(ngx_chat_pg_slot_t *slot, ngx_chat_pg_query_t *q)
{
    ngx_chat_pg_t  *pg;

    pg = slot->pg;

    slot->state = NGX_CHAT_PG_BUSY;
    slot->query = q;
    q->slot = slot;
    q->where = NGX_CHAT_PG_Q_RUNNING;

    if (PQsendQueryPrepared(slot->conn, pg->stmts[q->stmt].name, q->nparams,
                            (const char *const *) q->values, q->lengths,
                            NULL, 0)
        && ngx_chat_pg_slot_flush(slot) != NGX_ERROR)
    {
        return;
    }

    slot->query = NULL;
    q->slot = NULL;
    q->where = NGX_CHAT_PG_Q_WAITING;
    ngx_queue_insert_head(&pg->waiting, &q->queue);
    pg->nwaiting++;
    ngx_chat_pg_depth(pg);
    pg->wait_bytes += q->size;

    ngx_chat_pg_slot_drop(slot, "lost", PQerrorMessage(slot->conn));
}


static ngx_int_t
ngx_chat_pg_slot_flush(ngx_chat_pg_slot_t *slot)
{
    int  rc;

    rc = PQflush(slot->conn);

    if (rc < 0) {
        return NGX_ERROR;
    }

    if ((ngx_uint_t) rc != slot->flushing) {
        slot->flushing = rc ? 1 : 0;

        if (ngx_chat_pg_slot_interest(slot, 1, slot->flushing) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return rc ? NGX_AGAIN : NGX_OK;
}


/*
 * Input on an established connection.  Returns right after any state
 * change that may call out (dispatch, a handler, a drop): the response to
 * a newly sent command cannot be buffered yet, and level-triggered events
 * report what the socket still holds.
 */

static void
ngx_chat_pg_slot_process(ngx_chat_pg_slot_t *slot)
{
    u_char      buf[NGX_CHAT_PG_MSG_LEN];
    PGconn     *conn;
    PGnotify   *n;
    PGresult   *res;

    conn = slot->conn;

    if (!PQconsumeInput(conn)) {
        ngx_chat_pg_slot_drop(slot, "lost", PQerrorMessage(conn));
        return;
    }

    if (slot->flushing && ngx_chat_pg_slot_flush(slot) == NGX_ERROR) {
        ngx_chat_pg_slot_drop(slot, "lost", PQerrorMessage(conn));
        return;
    }

    while (!PQisBusy(conn)) {

        res = PQgetResult(conn);

        if (res == NULL) {

            if (slot->state == NGX_CHAT_PG_PREPARING) {
                res = slot->res;

                if (res == NULL) {
                    ngx_chat_pg_slot_ready(slot);
                    return;
                }

                /* prepare failed: retry later, the schema may be migrated */

                *ngx_snprintf(buf, sizeof(buf) - 1, "%s",
                              PQresultErrorMessage(res)) = '\0';
                ngx_chat_pg_slot_drop(slot, "failed to prepare",
                                      (char *) buf);
                return;
            }

            if (slot->state == NGX_CHAT_PG_BUSY) {
                ngx_chat_pg_slot_complete(slot);
                return;
            }

            break;
        }

        if (slot->state == NGX_CHAT_PG_PREPARING) {
            if (PQresultStatus(res) == PGRES_COMMAND_OK
                || slot->res != NULL)
            {
                PQclear(res);

            } else {
                slot->res = res;        /* the error, logged when dropped */
            }

            continue;
        }

        if (slot->state == NGX_CHAT_PG_BUSY) {

            /* one result per statement; keep the first, or an error */

            if (slot->res == NULL) {
                slot->res = res;

            } else if (PQresultStatus(slot->res) != PGRES_FATAL_ERROR
                       && PQresultStatus(res) == PGRES_FATAL_ERROR)
            {
                PQclear(slot->res);
                slot->res = res;

            } else {
                PQclear(res);
            }

            continue;
        }

        PQclear(res);
    }

    while ((n = PQnotifies(conn)) != NULL) {
        PQfreemem(n);
    }

    if (PQstatus(conn) == CONNECTION_BAD) {
        ngx_chat_pg_slot_drop(slot, "lost", PQerrorMessage(conn));
    }
}


static void
ngx_chat_pg_slot_complete(ngx_chat_pg_slot_t *slot)
{
    u_char                buf[NGX_CHAT_PG_MSG_LEN];
    ngx_int_t             rc;
    PGresult             *res;
    ngx_chat_pg_t        *pg;
    ngx_chat_pg_query_t  *q;
    ExecStatusType        status;

    pg = slot->pg;

    if (PQstatus(slot->conn) == CONNECTION_BAD) {
        /* the outcome is unknown: the query gets NGX_DECLINED */
        ngx_chat_pg_slot_drop(slot, "lost", PQerrorMessage(slot->conn));
        return;
    }

    q = slot->query;
    res = slot->res;

    slot->query = NULL;
    slot->res = NULL;
    slot->state = NGX_CHAT_PG_IDLE;

    if (q == NULL) {
        /* the end of a statement whose caller timed out: nobody waits */

        if (res != NULL) {
            PQclear(res);
        }

        if (slot->ev.timer_set) {
            ngx_del_timer(&slot->ev);
        }

        ngx_chat_pg_dispatch(pg);
        return;
    }

    q->slot = NULL;
    q->where = NGX_CHAT_PG_Q_DONE;

    status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        rc = NGX_OK;

    } else {
        ngx_chat_metrics_count(NGX_CHAT_C_PG_ERRORS, 1);
        ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                      "chat: postgresql statement \"%s\" failed: %s",
                      pg->stmts[q->stmt].name,
                      res ? ngx_chat_pg_text(buf, PQresultErrorMessage(res))
                          : (u_char *) "no result");
        rc = NGX_ERROR;
    }

    ngx_chat_pg_query_finish(q, res, rc);

    ngx_chat_pg_dispatch(pg);
}


/*
 * Closes the connection, fails the running query and schedules a
 * reconnect.  what == NULL: the caller logged already.  Failures while
 * connecting are logged once per run of failures and then every 30 s;
 * the loss of an established connection is logged each time.
 */

static void
ngx_chat_pg_slot_drop(ngx_chat_pg_slot_t *slot, const char *what,
    const char *msg)
{
    u_char               buf[NGX_CHAT_PG_MSG_LEN];
    ngx_chat_pg_t        *pg;
    ngx_chat_pg_query_t  *q;

    pg = slot->pg;

    ngx_chat_metrics_count(NGX_CHAT_C_PG_ERRORS, 1);

    if (what == NULL) {
        /* void */

    } else if (slot->state == NGX_CHAT_PG_CONNECTING
               || slot->state == NGX_CHAT_PG_PREPARING
               || slot->state == NGX_CHAT_PG_DOWN)
    {
        if (!pg->failed
            || ngx_current_msec - pg->err_time >= NGX_CHAT_PG_LOG_INTERVAL)
        {
            if (pg->nerrs) {
                ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                              "chat: postgresql connection #%ui %s: %s "
                              "(and %ui more failures not logged)",
                              slot->id, what, ngx_chat_pg_text(buf, msg),
                              pg->nerrs);

            } else {
                ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                              "chat: postgresql connection #%ui %s: %s",
                              slot->id, what, ngx_chat_pg_text(buf, msg));
            }

            pg->failed = 1;
            pg->err_time = ngx_current_msec;
            pg->nerrs = 0;

        } else {
            pg->nerrs++;
        }

    } else {
        ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                      "chat: postgresql connection #%ui %s: %s",
                      slot->id, what, ngx_chat_pg_text(buf, msg));
    }

    q = slot->query;

    if (q != NULL) {
        slot->query = NULL;
        q->slot = NULL;
        ngx_chat_pg_query_fail(q);
    }

    ngx_chat_pg_slot_close(slot);
    ngx_chat_pg_slot_schedule(slot);
    ngx_chat_pg_check_down(pg);
}


/* the running query, if any, is the caller's */

static void
ngx_chat_pg_slot_close(ngx_chat_pg_slot_t *slot)
{
    if (slot->ev.timer_set) {
        ngx_del_timer(&slot->ev);
    }

    if (slot->res != NULL) {
        PQclear(slot->res);
        slot->res = NULL;
    }

    ngx_chat_pg_slot_unwatch(slot);

    if (slot->conn != NULL) {
        PQfinish(slot->conn);
        slot->conn = NULL;
    }

    slot->flushing = 0;
    slot->state = NGX_CHAT_PG_DOWN;
}


static void
ngx_chat_pg_slot_schedule(ngx_chat_pg_slot_t *slot)
{
    ngx_msec_t  delay;

    if (ngx_exiting || ngx_terminate || slot->pg->destroying) {
        slot->state = NGX_CHAT_PG_DOWN;
        return;
    }

    delay = ngx_chat_backoff_next(&slot->backoff);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, slot->pg->log, 0,
                   "chat pg: #%ui reconnect in %M ms", slot->id, delay);

    slot->state = NGX_CHAT_PG_BACKOFF;
    ngx_add_timer(&slot->ev, delay);
}


static void
ngx_chat_pg_read_handler(ngx_event_t *rev)
{
    ngx_connection_t    *c;
    ngx_chat_pg_slot_t  *slot;

    c = rev->data;
    slot = c->data;

    if (c->close) {
        /* worker_shutdown_timeout: the worker is going away */
        ngx_chat_pg_slot_drop(slot, NULL, NULL);
        return;
    }

    if (slot->state == NGX_CHAT_PG_CONNECTING) {
        ngx_chat_pg_slot_poll(slot);
        return;
    }

    ngx_chat_pg_slot_process(slot);
}


static void
ngx_chat_pg_write_handler(ngx_event_t *wev)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_chat_pg_slot_t  *slot;

    c = wev->data;
    slot = c->data;

    if (slot->state == NGX_CHAT_PG_CONNECTING) {
        ngx_chat_pg_slot_poll(slot);
        return;
    }

    if (!slot->flushing) {
        return;
    }

    rc = ngx_chat_pg_slot_flush(slot);

    if (rc == NGX_ERROR) {
        ngx_chat_pg_slot_drop(slot, "lost", PQerrorMessage(slot->conn));
        return;
    }

    if (rc == NGX_OK) {
        /* libpq may have read input while it could not write */
        ngx_chat_pg_slot_process(slot);
    }
}


static void
ngx_chat_pg_slot_timer(ngx_event_t *ev)
{
    ngx_chat_pg_slot_t  *slot;

    slot = ev->data;

    switch (slot->state) {

    case NGX_CHAT_PG_BACKOFF:
        if (ngx_exiting || ngx_terminate) {
            slot->state = NGX_CHAT_PG_DOWN;
            return;
        }

        ngx_chat_pg_slot_connect(slot);
        return;

    case NGX_CHAT_PG_CONNECTING:
    case NGX_CHAT_PG_PREPARING:
        ngx_chat_pg_slot_drop(slot, "failed", "timed out");
        return;

    case NGX_CHAT_PG_BUSY:
        /* a statement given up on (query_handler) never ended */
        ngx_chat_pg_slot_drop(slot, "failed", "a statement that timed out "
                              "was not cancelled by the server");
        return;

    default:
        return;
    }
}


static void
ngx_chat_pg_notice(void *arg, const PGresult *res)
{
    u_char               buf[NGX_CHAT_PG_MSG_LEN];
    ngx_chat_pg_slot_t  *slot;

    slot = arg;

    ngx_log_error(NGX_LOG_NOTICE, slot->pg->log, 0,
                  "chat: postgresql connection #%ui: %s", slot->id,
                  ngx_chat_pg_text(buf, PQresultErrorMessage(res)));
}


/* pool */

static ngx_uint_t
ngx_chat_pg_live(ngx_chat_pg_t *pg)
{
    ngx_uint_t  i, state;

    for (i = 0; i < pg->nslots; i++) {
        state = pg->slots[i].state;

        if (state == NGX_CHAT_PG_PREPARING
            || state == NGX_CHAT_PG_IDLE
            || state == NGX_CHAT_PG_BUSY)
        {
            return 1;
        }

        /*
         * A first connect (worker start) or a reconnect after a clean loss
         * is worth waiting for, within the query timeout; after a failed
         * attempt we fail fast.
         */
        if (state == NGX_CHAT_PG_CONNECTING && !pg->failed) {
            return 1;
        }
    }

    return 0;
}


static ngx_chat_pg_slot_t *
ngx_chat_pg_idle(ngx_chat_pg_t *pg)
{
    ngx_uint_t  i;

    for (i = 0; i < pg->nslots; i++) {
        if (pg->slots[i].state == NGX_CHAT_PG_IDLE) {
            return &pg->slots[i];
        }
    }

    return NULL;
}


static void
ngx_chat_pg_dispatch(ngx_chat_pg_t *pg)
{
    ngx_queue_t          *x;
    ngx_chat_pg_slot_t   *slot;
    ngx_chat_pg_query_t  *q;

    if (pg->destroying) {
        return;
    }

    while (!ngx_queue_empty(&pg->waiting)) {

        slot = ngx_chat_pg_idle(pg);
        if (slot == NULL) {
            return;
        }

        x = ngx_queue_head(&pg->waiting);
        ngx_queue_remove(x);
        pg->nwaiting--;
        ngx_chat_pg_depth(pg);

        q = ngx_queue_data(x, ngx_chat_pg_query_t, queue);
        pg->wait_bytes -= q->size;

        ngx_chat_pg_slot_send(slot, q);
    }
}


/* with no connection up, waiting queries fail rather than wait */

static void
ngx_chat_pg_check_down(ngx_chat_pg_t *pg)
{
    ngx_queue_t          *x;
    ngx_chat_pg_query_t  *q;

    if (ngx_chat_pg_live(pg)) {
        return;
    }

    while (!ngx_queue_empty(&pg->waiting)) {
        x = ngx_queue_head(&pg->waiting);
        ngx_queue_remove(x);
        pg->nwaiting--;
        ngx_chat_pg_depth(pg);

        q = ngx_queue_data(x, ngx_chat_pg_query_t, queue);
        pg->wait_bytes -= q->size;
        ngx_chat_pg_query_fail(q);
    }
}


/* NGX_DECLINED, delivered from ngx_posted_events; q is in no queue */

static void
ngx_chat_pg_query_fail(ngx_chat_pg_query_t *q)
{
    if (q->ev.timer_set) {
        ngx_del_timer(&q->ev);
    }

    q->where = NGX_CHAT_PG_Q_FAILING;
    ngx_queue_insert_tail(&q->pg->failing, &q->queue);

    ngx_post_event(&q->ev, &ngx_posted_events);
}


/* the deadline, or a posted failure */

static void
ngx_chat_pg_query_handler(ngx_event_t *ev)
{
    ngx_chat_pg_t        *pg;
    ngx_chat_pg_slot_t   *slot;
    ngx_chat_pg_query_t  *q;

    q = ev->data;
    pg = q->pg;

    ev->timedout = 0;

    switch (q->where) {

    case NGX_CHAT_PG_Q_WAITING:
        ngx_queue_remove(&q->queue);
        pg->nwaiting--;
        ngx_chat_pg_depth(pg);
        pg->wait_bytes -= q->size;

        /* INFO: under overload this is per query, the cause is elsewhere */

        ngx_log_error(NGX_LOG_INFO, pg->log, 0,
                      "chat: postgresql statement \"%s\" timed out after "
                      "%M ms waiting for a connection",
                      pg->stmts[q->stmt].name, pg->timeout);
        break;

    case NGX_CHAT_PG_Q_RUNNING:
        slot = q->slot;
        slot->query = NULL;
        q->slot = NULL;

        /*
         * The caller is answered now.  The connection stays busy until
         * the server's own statement_timeout (the same time, counted from
         * when the statement started, so at most that much later) ends
         * the statement, whose result is then thrown away.  Closing the
         * connection would not stop the statement (a server notices a
         * closed client only when it writes to it), and would cost a new
         * session and its prepares while PostgreSQL is already behind.  A
         * server that does not answer by then is dropped (slot_timer).
         */

        ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                      "chat: postgresql statement \"%s\" timed out after "
                      "%M ms; connection #%ui waits for the server to "
                      "cancel it", pg->stmts[q->stmt].name, pg->timeout,
                      slot->id);

        if (slot->ev.timer_set) {
            ngx_del_timer(&slot->ev);
        }

        ngx_add_timer(&slot->ev, pg->timeout + NGX_CHAT_PG_CANCEL_GRACE);
        break;

    case NGX_CHAT_PG_Q_FAILING:
        ngx_queue_remove(&q->queue);
        break;

    default:
        return;
    }

    q->where = NGX_CHAT_PG_Q_DONE;

    ngx_chat_pg_query_finish(q, NULL, NGX_DECLINED);
}


/* calls the handler, clears res and frees q */

static void
ngx_chat_pg_query_finish(ngx_chat_pg_query_t *q, PGresult *res,
    ngx_int_t rc)
{
    if (q->ev.timer_set) {
        ngx_del_timer(&q->ev);
    }

    if (q->ev.posted) {
        ngx_delete_posted_event(&q->ev);
    }

    q->where = NGX_CHAT_PG_Q_DONE;

    if (q->handler != NULL) {
        q->handler(q->data, res, rc);
    }

    if (res != NULL) {
        PQclear(res);
    }

    ngx_chat_pg_query_free(q);
}


static void
ngx_chat_pg_query_free(ngx_chat_pg_query_t *q)
{
    if (q->ev.timer_set) {
        ngx_del_timer(&q->ev);
    }

    if (q->ev.posted) {
        ngx_delete_posted_event(&q->ev);
    }

    ngx_free(q);
}


/* one line of at most NGX_CHAT_PG_MSG_LEN - 1 characters, for the log */

static u_char *
ngx_chat_pg_text(u_char *buf, const char *msg)
{
    u_char  *p, *last;

    p = buf;
    last = buf + NGX_CHAT_PG_MSG_LEN - 1;

    if (msg == NULL) {
        msg = "";
    }

    while (*msg != '\0' && p < last) {
        if (*msg == '\n' || *msg == '\t' || *msg == '\r') {
            if (p > buf && p[-1] != ' ') {
                *p++ = ' ';
            }

        } else {
            *p++ = (u_char) *msg;
        }

        msg++;
    }

    while (p > buf && p[-1] == ' ') {
        p--;
    }

    *p = '\0';

    return buf;
}
