
/*
 * ngx_chat_session.c: a device's session on one connection.
 *
 * Before the upgrade the device row is written (chat_device_connect_batch:
 * at most chat_max_devices active devices, tokens issued before a
 * removeDevice refused): the 101 means the device is a recipient of every
 * event committed from then on.  On open, after the upgrade, the
 * connection joins its user's entry in the bus (so its channel is
 * subscribed), any older connection of the same device is told to go
 * (close 4001), and the inbox is drained in pages of chat_drain_page
 * events, at most chat_drain_window of them unacked at a time.
 *
 * Exactly once in normal operation: cc->inflight holds the ids delivered
 * on this connection and not acked yet, and for NGX_CHAT_ACK_LINGER ms the
 * acked ones (the live copy of an event that the drain delivered may come
 * after the ack); an event already in it is not sent again, whether it
 * comes from the drain or live.  While a drain runs, a
 * live event beyond the drain position (cc->cursor) is left to the drain,
 * which keeps the order of each chat; one at or below it (a transaction
 * that committed late) is delivered at once unless already in flight.
 * After any fault (Redis reconnect, PostgreSQL outage, a new connection)
 * delivery is at least once: clients drop duplicates by eventId.
 */


#include "ngx_chat.h"
#include "ngx_chat_session.h"
#include "ngx_chat_bus.h"
#include "ngx_chat_store.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_metrics.h"


#define NGX_CHAT_INFLIGHT_MAX(cmcf)  ((cmcf)->drain_window * 4)

/*
 * Beside each id of a set, the time it was written (the low 32 bits of
 * microseconds: differences are right for 71 minutes), for the ack
 * latency; the set's allocation holds both arrays.
 */
#define ngx_chat_ids_times(set)  ((uint32_t *) &(set)->ids[(set)->cap])
#define ngx_chat_ids_size(cap)                                              \
    (sizeof(ngx_chat_ids_t) + (cap) * (sizeof(uint64_t) + sizeof(uint32_t)))


#define NGX_CHAT_REG_BATCH    500
#define NGX_CHAT_DRAIN_BATCH  100

/* chat_drain_batch statements out at once: half the pool, at least one */
#define NGX_CHAT_DRAIN_STMTS(cmcf)  ngx_max((cmcf)->pg_pool_size / 2, 1)

/* how long acked ids are kept, and for how many connections at most */
#define NGX_CHAT_ACK_LINGER      1000
#define NGX_CHAT_LINGER_MAX      65536

#define ngx_chat_ids_unacked(set)  ((set) ? (set)->n - (set)->nacked : 0)


/* the connections of one batched statement: registrations or drains */
typedef struct {
    ngx_uint_t               n;
    ngx_chat_conn_t         *conns[1];     /* NULL once answered */
} ngx_chat_reg_batch_t;


static void ngx_chat_session_reg_flush(ngx_event_t *ev);
static void ngx_chat_session_reg_send(ngx_chat_worker_t *w,
    ngx_chat_reg_batch_t *b, ngx_uint_t n, size_t *room);
static ngx_int_t ngx_chat_session_wait(ngx_chat_waitq_t *q,
    ngx_chat_conn_t *cc, int64_t iat, ngx_event_handler_pt flush);
static void ngx_chat_session_unwait(ngx_chat_waitq_t *q, ngx_uint_t n);
static void ngx_chat_session_waitq_exit(ngx_chat_waitq_t *q);
static void ngx_chat_session_linger(ngx_chat_conn_t *cc);
static void ngx_chat_session_unlinger(void);
static void ngx_chat_session_reg_done(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_session_registered(ngx_chat_reg_batch_t *b,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_session_register_status(ngx_chat_conn_t *cc,
    ngx_int_t status);
static void ngx_chat_session_drain(ngx_chat_conn_t *cc);
static void ngx_chat_session_drain_flush(ngx_event_t *ev);
static ngx_int_t ngx_chat_session_pages(ngx_chat_conn_t **conns,
    ngx_uint_t n, ngx_uint_t stmt, ngx_chat_store_done_pt done, void *data);
static void ngx_chat_session_drain_done(ngx_chat_conn_t *unused,
    void *data, PGresult *res, ngx_int_t rc);
static void ngx_chat_session_drained(ngx_chat_conn_t *cc, PGresult *res,
    int first, int n, ngx_int_t rc);
static void ngx_chat_session_deliver(ngx_chat_conn_t *cc, uint64_t id,
    u_char *json, size_t len);
static ngx_int_t ngx_chat_session_has(ngx_chat_conn_t *cc, uint64_t id);
static void ngx_chat_session_add(ngx_chat_conn_t *cc, uint64_t id);
static void ngx_chat_session_poll_all(void);
static void ngx_chat_session_retry(void);
static void ngx_chat_session_polled(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_chat_session_open(ngx_chat_conn_t *cc)
{
    if (ngx_chat_bus_join(cc) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                  "chat: device connected");

    ngx_chat_worker->ndevices++;
    ngx_chat_metrics_gauge(NGX_CHAT_G_DEVICES, ngx_chat_worker->ndevices);

    /* one connection per device: an older one elsewhere goes */
    ngx_chat_bus_kick(&cc->uid, &cc->device, NGX_CHAT_CLOSE_REPLACED, cc);

    if (!ngx_chat_conn_active(cc)) {
        return NGX_OK;
    }

    /* registered before the upgrade: what waits in the inbox comes now */
    cc->state = NGX_CHAT_CONN_LIVE;
    cc->draining = 1;

    ngx_chat_session_drain(cc);

    return NGX_OK;
}


void
ngx_chat_session_close(ngx_chat_conn_t *cc)
{
    if (cc->registered) {
        /* joined in ngx_chat_session_open(); close may run twice */
        ngx_chat_worker->ndevices--;
        ngx_chat_metrics_gauge(NGX_CHAT_G_DEVICES,
                               ngx_chat_worker->ndevices);
    }

    ngx_chat_bus_leave(cc);

    if (cc->inflight) {
        ngx_free(cc->inflight);
        cc->inflight = NULL;
    }
}


ngx_int_t
ngx_chat_session_ready(ngx_chat_conn_t *cc)
{
    return cc->state == NGX_CHAT_CONN_LIVE ? NGX_OK : NGX_DECLINED;
}


/*
 * Registrations are batched: connections wait in ngx_chat_worker->regs
 * until the end of the event loop pass, and up to NGX_CHAT_REG_BATCH of
 * them go in one chat_device_connect_batch() statement.  A burst of
 * connects (a reload, a storm of reconnects) costs few round trips.  The
 * token's issue time waits beside the connection (only for the query:
 * an idle connection does not carry it).
 */
ngx_int_t
ngx_chat_session_register(ngx_chat_conn_t *cc, int64_t iat)
{
    if (cc->state != NGX_CHAT_CONN_NEW) {
        return NGX_ERROR;
    }

    if (ngx_chat_session_wait(&ngx_chat_worker->regs, cc, iat,
                              ngx_chat_session_reg_flush)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cc->state = NGX_CHAT_CONN_REGISTERING;

    return NGX_OK;
}


static void
ngx_chat_session_reg_flush(ngx_event_t *ev)
{
    size_t                  room[3];
    ngx_uint_t              i, n;
    ngx_chat_conn_t        *cc;
    ngx_chat_worker_t      *w;
    ngx_chat_reg_batch_t   *b;

    w = ngx_chat_worker;

    while (w->regs.n) {
        n = ngx_min(w->regs.n, NGX_CHAT_REG_BATCH);

        b = ngx_alloc(sizeof(ngx_chat_reg_batch_t)
                      + (n - 1) * sizeof(ngx_chat_conn_t *), ev->log);
        if (b == NULL) {
            return;
        }

        b->n = 0;
        ngx_memzero(room, sizeof(room));

        for (i = 0; i < n; i++) {
            cc = w->regs.items[i].cc;

            if (cc->state != NGX_CHAT_CONN_REGISTERING) {
                /* gone before its turn */
                ngx_chat_ws_release(cc);
                w->regs.items[i].cc = NULL;
                continue;
            }

            b->conns[b->n++] = cc;
            room[0] += ngx_chat_pg_array_room(cc->uid.len);
            room[1] += ngx_chat_pg_array_room(cc->device.len);
            room[2] += ngx_chat_pg_array_room(NGX_INT64_LEN);
        }

        if (b->n == 0) {
            ngx_chat_session_unwait(&w->regs, n);
            ngx_free(b);
            continue;
        }

        ngx_chat_session_reg_send(w, b, n, room);
    }
}


/*
 * The statement of a batch: the users, devices and token issue times of
 * the first n waiting registrations (those gone have a NULL cc), which
 * leave the waiting list; room is what each array needs.
 */
static void
ngx_chat_session_reg_send(ngx_chat_worker_t *w, ngx_chat_reg_batch_t *b,
    ngx_uint_t n, size_t *room)
{
    u_char                 *p;
    ngx_uint_t              i, k;
    ngx_chat_conn_t        *cc;
    const char             *values[4];
    ngx_chat_pg_array_t     arr[3];     /* users, devices, iats */
    u_char                  max[NGX_INT_T_LEN + 1];
    u_char                  num[NGX_INT64_LEN];

    for (k = 0; k < 3; k++) {
        if (ngx_chat_pg_array_init(&arr[k], room[k]) != NGX_OK) {
            while (k--) {
                ngx_free(arr[k].start);
            }

            ngx_chat_session_unwait(&w->regs, n);
            ngx_chat_session_registered(b, NULL, NGX_ERROR);
            return;
        }
    }

    for (i = 0; i < n; i++) {
        cc = w->regs.items[i].cc;

        if (cc == NULL) {
            continue;
        }

        ngx_chat_pg_array_add(&arr[0], cc->uid.data, cc->uid.len);
        ngx_chat_pg_array_add(&arr[1], cc->device.data, cc->device.len);
        p = ngx_sprintf(num, "%L", w->regs.items[i].iat);
        ngx_chat_pg_array_add(&arr[2], num, p - num);
    }

    ngx_chat_session_unwait(&w->regs, n);

    for (k = 0; k < 3; k++) {
        ngx_chat_pg_array_close(&arr[k]);
    }

    *ngx_sprintf(max, "%ui", w->cmcf->max_devices) = '\0';

    values[0] = (const char *) arr[0].start;
    values[1] = (const char *) arr[1].start;
    values[2] = (const char *) max;
    values[3] = (const char *) arr[2].start;

    if (ngx_chat_store_query(NULL, NGX_CHAT_STMT_DEVICE_CONNECT_BATCH, 4,
                             values, ngx_chat_session_reg_done, b)
        != NGX_OK)
    {
        ngx_chat_session_registered(b, NULL, NGX_DECLINED);
    }

    for (k = 0; k < 3; k++) {
        ngx_free(arr[k].start);
    }
}


static void
ngx_chat_session_reg_done(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_session_registered(data, res, rc);
}


/* the outcome of a batch: each connection's status, or a failure for all */
static void
ngx_chat_session_registered(ngx_chat_reg_batch_t *b, PGresult *res,
    ngx_int_t rc)
{
    int               row, rows;
    ngx_int_t         idx, status;
    ngx_uint_t        i;
    ngx_chat_conn_t  *cc;

    if (rc == NGX_OK && res) {
        rows = PQntuples(res);

        for (row = 0; row < rows; row++) {
            idx = ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                           PQgetlength(res, row, 0));
            status = ngx_atoi((u_char *) PQgetvalue(res, row, 1),
                              PQgetlength(res, row, 1));

            if (idx < 1 || (ngx_uint_t) idx > b->n
                || b->conns[idx - 1] == NULL)
            {
                continue;
            }

            cc = b->conns[idx - 1];
            b->conns[idx - 1] = NULL;

            ngx_chat_session_register_status(cc, status);
            ngx_chat_ws_release(cc);
        }
    }

    for (i = 0; i < b->n; i++) {
        cc = b->conns[i];

        if (cc) {
            ngx_chat_session_register_status(cc, NGX_ERROR);
            ngx_chat_ws_release(cc);
        }
    }

    ngx_free(b);
}


/* the upgrade request waiting for its registration goes on or is refused */
static void
ngx_chat_session_register_status(ngx_chat_conn_t *cc, ngx_int_t status)
{
    if (cc->state != NGX_CHAT_CONN_REGISTERING) {
        return;
    }

    cc->state = NGX_CHAT_CONN_NEW;

    switch (status) {

    case NGX_CHAT_ST_OK:
        ngx_chat_ws_registered(cc, NGX_CHAT_WS_ACCEPT);
        return;

    case NGX_CHAT_ST_LIMIT:
        ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                      "chat: too many active devices (chat_max_devices %ui)",
                      ngx_chat_worker->cmcf->max_devices);
        ngx_chat_ws_registered(cc, NGX_CHAT_WS_TOO_MANY);
        return;

    case NGX_CHAT_ST_REVOKED:
        ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                      "chat: token issued before the device was removed");
        ngx_chat_ws_registered(cc, NGX_CHAT_WS_REVOKED);
        return;

    default:
        ngx_chat_ws_registered(cc, NGX_CHAT_WS_UNAVAILABLE);
        return;
    }
}


static void
ngx_chat_session_drain(ngx_chat_conn_t *cc)
{
    ngx_chat_main_conf_t  *cmcf;

    if (cc->state != NGX_CHAT_CONN_LIVE || cc->drain_query || cc->drain_out)
    {
        return;
    }

    cmcf = ngx_chat_worker->cmcf;

    if (!ngx_chat_bus_listening(cc)) {
        /*
         * Not before the user's channel is subscribed: an event published
         * between the page's read and the subscription would be missed by
         * both.  ngx_chat_session_listening() (or the poll) starts it.
         */
        cc->need_drain = 1;
        ngx_chat_worker->retry = 1;
        return;
    }

    if (ngx_chat_ids_unacked(cc->inflight) >= cmcf->drain_window) {
        cc->drain_wait = 1;
        return;
    }

    cc->drain_wait = 0;
    cc->draining = 1;
    cc->drain_again = 0;

    if (ngx_chat_session_wait(&ngx_chat_worker->drains, cc, 0,
                              ngx_chat_session_drain_flush)
        != NGX_OK)
    {
        cc->need_drain = 1;
        ngx_chat_worker->retry = 1;
        return;
    }

    cc->drain_query = 1;
    cc->need_drain = 0;
}


/*
 * Drains are batched as registrations are: a connection that wants a page
 * waits in ngx_chat_worker->drains until the end of the event loop pass,
 * and up to NGX_CHAT_DRAIN_BATCH of them go in one chat_drain_batch()
 * statement, each from its own cursor (rows come by element, then event).
 * After a burst of connects each device's first page, mostly empty, costs
 * a share of one statement instead of a statement of its own.
 *
 * At most NGX_CHAT_DRAIN_STMTS such statements are out at once; the other
 * connections wait (and their batches fill up) until one is answered.
 * When Redis comes back every connection of the worker wants a page at
 * once: the drains then reach PostgreSQL a few batches at a time instead
 * of all queued together, where the last would wait past chat_db_timeout
 * (which counts from the queue), fail and be retried all together again.
 */
static void
ngx_chat_session_drain_flush(ngx_event_t *ev)
{
    ngx_uint_t              i, n;
    ngx_chat_conn_t        *cc;
    ngx_chat_worker_t      *w;
    ngx_chat_reg_batch_t   *b;

    w = ngx_chat_worker;

    while (w->drains.n && w->drain_stmts < NGX_CHAT_DRAIN_STMTS(w->cmcf)) {
        n = ngx_min(w->drains.n, NGX_CHAT_DRAIN_BATCH);

        b = ngx_alloc(sizeof(ngx_chat_reg_batch_t)
                      + (n - 1) * sizeof(ngx_chat_conn_t *), ev->log);

        if (b != NULL) {
            b->n = 0;
        }

        for (i = 0; i < n; i++) {
            cc = w->drains.items[i].cc;

            if (b == NULL || cc->state != NGX_CHAT_CONN_LIVE) {
                /* gone before its turn; or no memory: the poll retries */
                ngx_chat_session_drained(cc, NULL, 0, 0, NGX_ERROR);
                ngx_chat_ws_release(cc);
                continue;
            }

            b->conns[b->n++] = cc;
        }

        ngx_chat_session_unwait(&w->drains, n);

        if (b == NULL) {
            continue;
        }

        if (b->n == 0) {
            ngx_free(b);
            continue;
        }

        /* counted until ngx_chat_session_drain_done() */
        w->drain_stmts++;

        if (ngx_chat_session_pages(b->conns, b->n,
                                   NGX_CHAT_STMT_DRAIN_BATCH,
                                   ngx_chat_session_drain_done, b)
            != NGX_OK)
        {
            ngx_chat_session_drain_done(NULL, b, NULL, NGX_DECLINED);
        }
    }
}


/*
 * Asks stmt (chat_drain_batch or chat_poll: users, devices, cursors and a
 * page size) for the n connections of conns, each from its cursor; done
 * is called with data, or NGX_DECLINED is returned.
 */
static ngx_int_t
ngx_chat_session_pages(ngx_chat_conn_t **conns, ngx_uint_t n,
    ngx_uint_t stmt, ngx_chat_store_done_pt done, void *data)
{
    u_char                 *p;
    size_t                  room[3];
    ngx_int_t               rc;
    ngx_uint_t              i, k;
    ngx_chat_conn_t        *cc;
    const char             *values[4];
    ngx_chat_pg_array_t     arr[3];     /* users, devices, cursors */
    u_char                  limit[NGX_INT_T_LEN + 1];
    u_char                  num[NGX_INT64_LEN];

    ngx_memzero(room, sizeof(room));

    for (i = 0; i < n; i++) {
        room[0] += ngx_chat_pg_array_room(conns[i]->uid.len);
        room[1] += ngx_chat_pg_array_room(conns[i]->device.len);
        room[2] += ngx_chat_pg_array_room(NGX_INT64_LEN);
    }

    for (k = 0; k < 3; k++) {
        if (ngx_chat_pg_array_init(&arr[k], room[k]) != NGX_OK) {
            while (k--) {
                ngx_free(arr[k].start);
            }

            return NGX_DECLINED;
        }
    }

    for (i = 0; i < n; i++) {
        cc = conns[i];
        ngx_chat_pg_array_add(&arr[0], cc->uid.data, cc->uid.len);
        ngx_chat_pg_array_add(&arr[1], cc->device.data, cc->device.len);
        p = ngx_sprintf(num, "%uL", cc->cursor);
        ngx_chat_pg_array_add(&arr[2], num, p - num);
    }

    for (k = 0; k < 3; k++) {
        ngx_chat_pg_array_close(&arr[k]);
        values[k] = (const char *) arr[k].start;
    }

    *ngx_sprintf(limit, "%ui", ngx_chat_worker->cmcf->drain_page) = '\0';
    values[3] = (const char *) limit;

    rc = ngx_chat_store_query(NULL, stmt, 4, values, done, data);

    for (k = 0; k < 3; k++) {
        ngx_free(arr[k].start);
    }

    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}


/* a batch's rows, ordered by element (idx, 1-based) and event, split */
static void
ngx_chat_session_drain_done(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc)
{
    int                     row, rows, first;
    ngx_int_t               idx;
    ngx_uint_t              i;
    ngx_chat_conn_t        *cc;
    ngx_chat_waitq_t       *q;
    ngx_chat_reg_batch_t   *b;

    b = data;
    row = 0;
    rows = (rc == NGX_OK && res) ? PQntuples(res) : 0;

    ngx_chat_worker->drain_stmts--;

    for (i = 0; i < b->n; i++) {
        cc = b->conns[i];
        first = row;

        while (row < rows) {
            idx = ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                           PQgetlength(res, row, 0));

            if (idx != (ngx_int_t) i + 1) {
                if (idx > (ngx_int_t) i + 1) {
                    break;
                }

                /* not ordered as asked: nothing is trusted */
                rc = NGX_ERROR;
                rows = 0;
                break;
            }

            row++;
        }

        if (rc == NGX_OK && res == NULL) {
            rc = NGX_ERROR;
        }

        ngx_chat_session_drained(cc, res, first, rc == NGX_OK
                                 ? row - first : 0, rc);
        ngx_chat_ws_release(cc);
    }

    ngx_free(b);

    q = &ngx_chat_worker->drains;

    if (q->n && !q->flush.posted) {
        /* drains left waiting for a free statement: their turn */
        ngx_post_event(&q->flush, &ngx_posted_events);
    }
}


/* a connection's share of a batch: n rows of res from first */
static void
ngx_chat_session_drained(ngx_chat_conn_t *cc, PGresult *res, int first,
    int n, ngx_int_t rc)
{
    int         row;
    size_t      len, room;
    uint64_t    id;

    cc->drain_query = 0;

    if (cc->state != NGX_CHAT_CONN_LIVE) {
        return;
    }

    if (rc != NGX_OK) {
        /* the poll timer tries again; live events wait for the drain */
        cc->need_drain = 1;
        ngx_chat_worker->retry = 1;
        return;
    }

    /*
     * A backlog must not overflow chat_output_limit: fill at most half of
     * it, then wait until the client has taken it (ngx_chat_session_
     * writable); the rest of the page is fetched again from the cursor.
     */

    room = ngx_chat_worker->cmcf->output_limit / 2;

    for (row = first; row < first + n; row++) {
        id = (uint64_t) ngx_atoof((u_char *) PQgetvalue(res, row, 1),
                                  PQgetlength(res, row, 1));
        len = PQgetlength(res, row, 2);

        if (cc->out_bytes && cc->out_bytes + len + 16 > room) {
            cc->drain_out = 1;
            return;
        }

        if (id > cc->cursor) {
            cc->cursor = id;
        }

        ngx_chat_session_deliver(cc, id, (u_char *) PQgetvalue(res, row, 2),
                                 len);

        if (cc->state != NGX_CHAT_CONN_LIVE) {
            return;
        }
    }

    if ((ngx_uint_t) n < ngx_chat_worker->cmcf->drain_page
        && !cc->drain_again)
    {
        cc->draining = 0;

        if (!cc->drain_timed) {
            /* the device's catch-up: from its accept to an empty inbox */
            cc->drain_timed = 1;
            ngx_chat_metrics_hist(NGX_CHAT_H_DRAIN,
                                  (uint64_t) (ngx_current_msec
                                              - cc->connection->start_time)
                                  * 1000);
        }

        return;
    }

    ngx_chat_session_drain(cc);
}


void
ngx_chat_session_listening(ngx_chat_user_t *u)
{
    ngx_queue_t      *q;
    ngx_chat_conn_t  *cc;

    for (q = ngx_queue_head(&u->conns);
         q != ngx_queue_sentinel(&u->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, queue);

        if (cc->state == NGX_CHAT_CONN_LIVE && cc->need_drain) {
            ngx_chat_session_drain(cc);
        }
    }
}


void
ngx_chat_session_writable(ngx_chat_conn_t *cc)
{
    if (cc->drain_out) {
        cc->drain_out = 0;
        ngx_chat_session_drain(cc);
    }
}


void
ngx_chat_session_event(ngx_chat_conn_t *cc, uint64_t id, u_char *json,
    size_t len, ngx_uint_t replay)
{
    if (cc->state != NGX_CHAT_CONN_LIVE) {
        /* not registered yet: the drain after registration brings it */
        return;
    }

    if (replay && id <= cc->cursor) {
        /* published late after a Redis outage: the poll delivered it */
        return;
    }

    if (cc->draining && id > cc->cursor) {
        /* the drain will fetch it, in order */
        cc->drain_again = 1;
        return;
    }

    ngx_chat_session_deliver(cc, id, json, len);
}


static void
ngx_chat_session_deliver(ngx_chat_conn_t *cc, uint64_t id, u_char *json,
    size_t len)
{
    u_char     *out;
    size_t      out_len;
    uint64_t    now;
    ngx_int_t   rc;

    if (ngx_chat_session_has(cc, id)) {
        return;
    }

    if (ngx_chat_worker->render
        && ngx_chat_worker->render(cc, json, len, &out, &out_len) == NGX_OK)
    {
        rc = ngx_chat_ws_send_copy(cc, out, out_len);
        ngx_free(out);

    } else {
        rc = ngx_chat_ws_send_copy(cc, json, len);
    }

    if (rc != NGX_OK) {
        return;
    }

    ngx_chat_metrics_add(delivered[ngx_chat_metrics_event_type(json, len)],
                         1);

    if (ngx_chat_worker->event_commit) {
        /* a live event: its commit time came with it (ngx_chat_bus.c) */
        now = ngx_chat_metrics_now();
        ngx_chat_metrics_hist(NGX_CHAT_H_DELIVERY,
                              now > ngx_chat_worker->event_commit
                              ? now - ngx_chat_worker->event_commit : 0);
    }

    ngx_chat_session_add(cc, id);
}


void
ngx_chat_session_acked(ngx_chat_conn_t *cc, uint64_t *ids, ngx_uint_t n)
{
    uint32_t         now;
    ngx_uint_t       i, k;
    ngx_chat_ids_t  *set;

    set = cc->inflight;

    ngx_chat_metrics_count(NGX_CHAT_C_ACKED, n);

    if (set) {
        now = (uint32_t) ngx_chat_metrics_now();

        for (i = 0; i < n; i++) {
            for (k = 0; k < set->n; k++) {
                if (set->ids[k] == ids[i]) {
                    set->ids[k] |= NGX_CHAT_IDS_ACKED;
                    set->nacked++;
                    ngx_chat_metrics_hist(NGX_CHAT_H_ACK,
                                  (uint32_t) (now
                                              - ngx_chat_ids_times(set)[k]));
                    break;
                }
            }
        }

        if (set->nacked == set->n) {
            ngx_chat_session_linger(cc);
        }
    }

    if (cc->drain_wait
        && ngx_chat_ids_unacked(cc->inflight)
           <= ngx_chat_worker->cmcf->drain_window / 2)
    {
        ngx_chat_session_drain(cc);
    }
}


/*
 * Every id of cc's set is acked: the set is kept NGX_CHAT_ACK_LINGER ms
 * more (ngx_chat_session_unlinger frees it), on a worker-wide list so
 * that an idle connection pays nothing once it has gone.
 */
static void
ngx_chat_session_linger(ngx_chat_conn_t *cc)
{
    ngx_uint_t          cap;
    ngx_chat_conn_t   **list;
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;
    cc->inflight->acked_at = ngx_current_msec;

    if (cc->lingering) {
        return;
    }

    if (w->nlinger == w->linger_cap) {
        cap = ngx_min(ngx_max(w->linger_cap * 2, 64), NGX_CHAT_LINGER_MAX);
        list = NULL;

        if (cap > w->linger_cap) {
            list = ngx_alloc(cap * sizeof(ngx_chat_conn_t *),
                             ngx_cycle->log);
        }

        if (list == NULL) {
            /* no room to keep it: what it guards against is rare */
            ngx_free(cc->inflight);
            cc->inflight = NULL;
            return;
        }

        if (w->linger) {
            ngx_memcpy(list, w->linger,
                       w->nlinger * sizeof(ngx_chat_conn_t *));
            ngx_free(w->linger);
        }

        w->linger = list;
        w->linger_cap = cap;
    }

    w->linger[w->nlinger++] = cc;
    cc->lingering = 1;
    cc->pending++;
}


/* periodic: frees the acked sets kept long enough */
static void
ngx_chat_session_unlinger(void)
{
    ngx_uint_t          i;
    ngx_chat_ids_t     *set;
    ngx_chat_conn_t    *cc;
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;

    for (i = 0; i < w->nlinger; /* void */) {
        cc = w->linger[i];
        set = cc->inflight;

        if (ngx_chat_conn_active(cc) && set && set->nacked == set->n
            && (ngx_msec_int_t) (ngx_current_msec - set->acked_at)
               < NGX_CHAT_ACK_LINGER)
        {
            i++;
            continue;
        }

        /* kept long enough, in use again (it comes back when all are
         * acked), or closed */

        if (set && set->nacked == set->n) {
            ngx_free(set);
            cc->inflight = NULL;
        }

        w->linger[i] = w->linger[--w->nlinger];
        cc->lingering = 0;
        ngx_chat_ws_release(cc);
    }
}


static ngx_int_t
ngx_chat_session_has(ngx_chat_conn_t *cc, uint64_t id)
{
    ngx_uint_t       k;
    ngx_chat_ids_t  *set;

    set = cc->inflight;

    if (set == NULL) {
        return 0;
    }

    for (k = 0; k < set->n; k++) {
        if ((set->ids[k] & ~NGX_CHAT_IDS_ACKED) == id) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_chat_session_add(ngx_chat_conn_t *cc, uint64_t id)
{
    uint32_t         now;
    ngx_uint_t       i, k, cap, max;
    ngx_chat_ids_t  *set, *old;

    set = cc->inflight;
    max = NGX_CHAT_INFLIGHT_MAX(ngx_chat_worker->cmcf);

    if (set && set->n == set->cap && set->nacked) {
        /* full: the acked ones go first */
        for (k = 0, i = 0; i < set->n; i++) {
            if (!(set->ids[i] & NGX_CHAT_IDS_ACKED)) {
                ngx_chat_ids_times(set)[k] = ngx_chat_ids_times(set)[i];
                set->ids[k++] = set->ids[i];
            }
        }

        set->n = k;
        set->nacked = 0;
    }

    now = (uint32_t) ngx_chat_metrics_now();

    if (set && set->n < set->cap) {
        ngx_chat_ids_times(set)[set->n] = now;
        set->ids[set->n++] = id;
        return;
    }

    if (set && set->cap >= max) {
        /* a client that does not ack: stop tracking, dups possible */
        return;
    }

    cap = set ? ngx_min(set->cap * 2, max) : 8;

    old = set;
    set = ngx_alloc(ngx_chat_ids_size(cap), ngx_cycle->log);
    if (set == NULL) {
        return;
    }

    set->cap = cap;
    set->n = 0;
    set->nacked = 0;
    set->acked_at = 0;

    if (old) {
        ngx_memcpy(set->ids, old->ids, old->n * sizeof(uint64_t));
        ngx_memcpy(ngx_chat_ids_times(set), ngx_chat_ids_times(old),
                   old->n * sizeof(uint32_t));
        set->n = old->n;
        set->nacked = old->nacked;
        set->acked_at = old->acked_at;
        ngx_free(old);
    }

    ngx_chat_ids_times(set)[set->n] = now;
    set->ids[set->n++] = id;
    cc->inflight = set;
}


/*
 * cc waits in q (held by cc->pending) until q's flush handler runs at the
 * end of the event loop pass and takes it into a batch
 */
static ngx_int_t
ngx_chat_session_wait(ngx_chat_waitq_t *q, ngx_chat_conn_t *cc, int64_t iat,
    ngx_event_handler_pt flush)
{
    ngx_uint_t       cap;
    ngx_chat_reg_t  *items;

    if (q->n == q->cap) {
        cap = ngx_max(q->cap * 2, 64);

        items = ngx_alloc(cap * sizeof(ngx_chat_reg_t), ngx_cycle->log);
        if (items == NULL) {
            return NGX_ERROR;
        }

        if (q->items) {
            ngx_memcpy(items, q->items, q->n * sizeof(ngx_chat_reg_t));
            ngx_free(q->items);
        }

        q->items = items;
        q->cap = cap;
    }

    q->items[q->n].cc = cc;
    q->items[q->n].iat = iat;
    q->n++;
    cc->pending++;

    if (!q->flush.posted) {
        q->flush.handler = flush;
        q->flush.data = ngx_chat_worker;
        q->flush.log = ngx_chat_worker->log;
        ngx_post_event(&q->flush, &ngx_posted_events);
    }

    return NGX_OK;
}


/* the first n waiting connections of q are taken */
static void
ngx_chat_session_unwait(ngx_chat_waitq_t *q, ngx_uint_t n)
{
    ngx_memmove(q->items, q->items + n, (q->n - n) * sizeof(ngx_chat_reg_t));
    q->n -= n;
}


static void
ngx_chat_session_waitq_exit(ngx_chat_waitq_t *q)
{
    ngx_uint_t  i;

    if (q->flush.posted) {
        ngx_delete_posted_event(&q->flush);
    }

    for (i = 0; i < q->n; i++) {
        ngx_chat_ws_release(q->items[i].cc);
    }

    if (q->items) {
        ngx_free(q->items);
    }

    q->items = NULL;
    q->n = 0;
    q->cap = 0;
}


/* at worker exit: what waits for a batch, and acked sets kept, go */
void
ngx_chat_session_exit(void)
{
    ngx_uint_t          i;
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;

    for (i = 0; i < w->regs.n; i++) {
        if (w->regs.items[i].cc->state == NGX_CHAT_CONN_REGISTERING) {
            w->regs.items[i].cc->state = NGX_CHAT_CONN_NEW;
        }
    }

    ngx_chat_session_waitq_exit(&w->regs);
    ngx_chat_session_waitq_exit(&w->drains);

    for (i = 0; i < w->nlinger; i++) {
        w->linger[i]->lingering = 0;
        ngx_chat_ws_release(w->linger[i]);
    }

    if (w->linger) {
        ngx_free(w->linger);
    }

    w->linger = NULL;
    w->nlinger = 0;
    w->linger_cap = 0;
}


void
ngx_chat_session_resync(ngx_chat_user_t *u)
{
    ngx_queue_t      *q;
    ngx_chat_conn_t  *cc;

    for (q = ngx_queue_head(&u->conns);
         q != ngx_queue_sentinel(&u->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, queue);

        if (cc->state == NGX_CHAT_CONN_LIVE) {
            cc->draining = 1;
            cc->drain_again = 1;
            ngx_chat_session_drain(cc);
        }
    }
}


void
ngx_chat_session_poll(void)
{
    /*
     * Walking every connection each second would cost an idle worker with
     * 100 000 connections real CPU: only after something failed.
     */

    ngx_chat_session_unlinger();

    if (ngx_chat_worker->retry) {
        ngx_chat_worker->retry = 0;
        ngx_chat_session_retry();
    }

    if (!ngx_chat_worker->bus_up) {
        ngx_chat_session_poll_all();
    }
}


static void
ngx_chat_session_retry(void)
{
    ngx_queue_t      *q;
    ngx_chat_conn_t  *cc;

    for (q = ngx_queue_head(&ngx_chat_worker->conns);
         q != ngx_queue_sentinel(&ngx_chat_worker->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, all);

        if (cc->state == NGX_CHAT_CONN_LIVE && cc->need_drain) {
            ngx_chat_worker->retry = 1;
            ngx_chat_session_drain(cc);
        }
    }
}


/*
 * Redis (or the shard of their channel) is down: read the inboxes of the
 * connected, idle devices concerned, at most chat_poll_batch of them in
 * one statement (chat_poll), each from its drain position, and at most
 * one such statement at a time per worker.  The walk starts where the
 * previous one stopped: every connection it visits goes to the back of
 * the worker's list, so a worker with P such connections reads each of
 * them at least once every ceil(P / chat_poll_batch) polls, and the
 * database sees one bounded statement per worker per chat_poll_interval
 * however many connections the worker holds.
 */
static void
ngx_chat_session_poll_all(void)
{
    ngx_uint_t          i, n, max;
    ngx_queue_t        *q;
    ngx_chat_conn_t    *cc, **conns;
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;

    if (w->polling || w->nconns == 0) {
        return;
    }

    max = ngx_min(w->nconns, w->cmcf->poll_batch);

    conns = ngx_alloc(max * sizeof(ngx_chat_conn_t *), ngx_cycle->log);
    if (conns == NULL) {
        return;
    }

    n = 0;

    for (i = 0; i < w->nconns && n < max; i++) {
        q = ngx_queue_head(&w->conns);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&w->conns, q);

        cc = ngx_queue_data(q, ngx_chat_conn_t, all);

        if (cc->state == NGX_CHAT_CONN_LIVE && !cc->draining
            && !cc->drain_query && ngx_chat_bus_polled(cc))
        {
            conns[n++] = cc;
        }
    }

    if (n
        && ngx_chat_session_pages(conns, n, NGX_CHAT_STMT_POLL,
                                  ngx_chat_session_polled, NULL)
           == NGX_OK)
    {
        w->polling = 1;
        ngx_chat_metrics_hist(NGX_CHAT_H_POLL, n);
    }

    ngx_free(conns);
}


static void
ngx_chat_session_polled(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    int               row, rows;
    uint64_t          id;
    ngx_str_t         user, device;
    ngx_queue_t      *q;
    ngx_chat_user_t  *u;
    ngx_chat_conn_t  *cc;

    ngx_chat_worker->polling = 0;

    if (rc != NGX_OK) {
        return;
    }

    rows = PQntuples(res);

    /* rows come grouped by device, in event order */

    for (row = 0; row < rows; row++) {
        user.data = (u_char *) PQgetvalue(res, row, 0);
        user.len = PQgetlength(res, row, 0);
        device.data = (u_char *) PQgetvalue(res, row, 1);
        device.len = PQgetlength(res, row, 1);
        id = (uint64_t) ngx_atoof((u_char *) PQgetvalue(res, row, 2),
                                  PQgetlength(res, row, 2));

        u = ngx_chat_bus_user(&user);
        if (u == NULL) {
            continue;
        }

        for (q = ngx_queue_head(&u->conns);
             q != ngx_queue_sentinel(&u->conns);
             q = ngx_queue_next(q))
        {
            cc = ngx_queue_data(q, ngx_chat_conn_t, queue);

            if (cc->state != NGX_CHAT_CONN_LIVE || cc->draining
                || cc->device.len != device.len
                || ngx_strncmp(cc->device.data, device.data, device.len)
                   != 0)
            {
                continue;
            }

            if (id > cc->cursor) {
                cc->cursor = id;
                ngx_chat_session_deliver(cc, id,
                                         (u_char *) PQgetvalue(res, row, 3),
                                         PQgetlength(res, row, 3));
            }

            break;
        }
    }
}
