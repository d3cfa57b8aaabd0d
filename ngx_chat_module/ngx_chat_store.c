
/*
 * ngx_chat_store.c: the module's questions to PostgreSQL.
 *
 * Every statement calls one SQL function of sql/900_functions.sql and is
 * prepared on each pooled connection.  The two hot paths are batched:
 *   - sendMessage requests wait in a per-worker queue; a posted event takes
 *     up to chat_send_batch_size of them into one chat_send_batch() call
 *     (one transaction, one commit for all), with at most chat_send_batches
 *     batches in flight.  While PostgreSQL is busy the queue fills, so
 *     batches grow with the load: group commit without a timer.  Few large
 *     batches beat many small ones: concurrent batches wait for each
 *     other's chat row locks, and each costs a transaction.
 *   - acks accumulate likewise and leave as one chat_ack_batch() per round
 *     trip; a batch that fails on the way (connection lost, timeout) is
 *     kept and retried until its acks are chat_db_timeout old, then given
 *     up (their events are delivered again).
 * Load is shed at the door: the store keeps an estimate of how many sends
 * per millisecond PostgreSQL commits while sends wait (measured over
 * windows in which the queue never ran dry), and a new send that would
 * find more work ahead of it than chat_send_queue_time can cover is
 * refused at once (NGX_BUSY: "unavailable" with retryAfterMs), as is one
 * that arrives while the oldest waiting send has waited longer than that
 * (the measured rate lags a drop in capacity); a queued
 * send that could no longer be committed within chat_db_timeout fails
 * before it costs PostgreSQL anything.  Under overload the work done is
 * work that is answered in time.
 * Batches isolate their items: ids are bounded where the JSON is parsed,
 * and a batch that PostgreSQL still refuses for its data (an SQLSTATE of
 * ngx_chat_store_item_error()) is split in halves and retried, so that
 * only the items that fail alone fail, answered bad_request or
 * internal_error; the others are stored as if nothing happened.
 * Parameters are text; arrays go as PostgreSQL array literals.
 */


#include "ngx_chat.h"
#include "ngx_chat_store.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_bus.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_json.h"
#include "ngx_chat_order.h"
#include "ngx_chat_metrics.h"


typedef struct {
    ngx_chat_conn_t         *cc;
    ngx_chat_store_done_pt   done;
    void                    *data;
} ngx_chat_store_req_t;


/* one acked event of one device */
typedef struct {
    uint64_t                 id;
    ngx_msec_t               deadline;      /* arrival + chat_db_timeout */
    u_char                   user_len;
    u_char                   device_len;
    u_char                   user[NGX_CHAT_ID_MAX];
    u_char                   device[NGX_CHAT_ID_MAX];
} ngx_chat_ack_t;


/* an ack command waiting for its rows to be deleted */
typedef struct {
    ngx_queue_t              queue;
    ngx_chat_conn_t         *cc;
    uint64_t                 start;         /* its acks: (start, end] */
    uint64_t                 end;           /* acks enqueued up to it */
    ngx_int_t                rc;            /* the worst outcome so far */
    ngx_chat_store_done_pt   done;
    void                    *data;
} ngx_chat_ack_waiter_t;


typedef struct {
    ngx_queue_t              sends;         /* ngx_chat_send_t, waiting */
    ngx_uint_t               nsends;
    size_t                   send_bytes;    /* waiting and in flight */
    ngx_uint_t               send_batches;  /* in flight */
    ngx_uint_t               nbusy;         /* waiting sends with busy */
    ngx_uint_t               wait_batches;  /* in flight, 0 or 1 */
    ngx_uint_t               nflight;       /* sends in batches out */

    /*
     * The service rate: sends answered per ms << 10 (0: not known yet),
     * an average of windows of at least NGX_CHAT_SEND_RATE_WINDOW ms
     * that counted the batches issued while sends were waiting.
     */
    uint64_t                 rate;
    ngx_msec_t               rate_start;    /* the window opened */
    ngx_uint_t               rate_done;     /* sends answered in it */
    ngx_uint_t               rate_open;     /* 0: the queue ran dry */
    ngx_msec_t               rate_since;    /* it last stopped doing so */
    ngx_uint_t               shed;          /* refused, not logged yet */
    ngx_uint_t               shed_queued;   /* ... of them after queueing */
    ngx_msec_t               shed_logged;

    ngx_chat_ack_t          *acks;          /* waiting */
    ngx_uint_t               nacks;
    ngx_uint_t               acks_cap;
    ngx_chat_ack_t          *acks_out;      /* in flight */
    ngx_uint_t               nacks_out;

    uint64_t                 acks_in;       /* acks ever enqueued */
    uint64_t                 acks_done;     /* ... stored or given up */
    ngx_queue_t              waiters;       /* ngx_chat_ack_waiter_t */

    /*
     * A batch refused for its data is being split: the acks up to
     * acks_split_end go in batches of at most acks_split.
     */
    uint64_t                 acks_split_end;
    ngx_uint_t               acks_split;    /* 0: not splitting */
} ngx_chat_store_t;


#define NGX_CHAT_SEND_SPLIT_MAX     (8 * sizeof(ngx_uint_t))
#define NGX_CHAT_SEND_RATE_WINDOW   100     /* ms */

/*
 * One chat_send_batch() call and, after PostgreSQL refused it for its
 * data, its halves: sends[lo..hi) is the statement in flight, and the
 * ranges [hi, ends[nends - 1]), ... wait behind it in that order (so a
 * connection's sends still commit in order).
 */
typedef struct {
    ngx_uint_t               n;
    ngx_uint_t               wait;          /* sends that were busy */
    ngx_uint_t               lo;
    ngx_uint_t               hi;
    ngx_uint_t               nends;
    ngx_msec_t               issued;        /* taken from the queue */
    ngx_uint_t               timed;         /* counts for the rate */
    ngx_uint_t               ends[NGX_CHAT_SEND_SPLIT_MAX];
    ngx_chat_send_t         *sends[1];      /* chat_send_batch_size */
} ngx_chat_send_batch_t;


static void ngx_chat_store_done(void *data, PGresult *res, ngx_int_t rc);
static void ngx_chat_store_send_flush(ngx_event_t *ev);
static ngx_int_t ngx_chat_store_send_batch(ngx_chat_store_t *st,
    ngx_uint_t wait, ngx_log_t *log);
static ngx_int_t ngx_chat_store_send_issue(ngx_chat_store_t *st,
    ngx_chat_send_batch_t *b);
static void ngx_chat_store_send_done(void *data, PGresult *res,
    ngx_int_t rc);
static void ngx_chat_store_send_next(ngx_chat_store_t *st,
    ngx_chat_send_batch_t *b, ngx_queue_t *head);
static void ngx_chat_store_send_refused(ngx_chat_send_t *s, PGresult *res);
static void ngx_chat_store_send_fail(ngx_chat_send_t *s);
static ngx_uint_t ngx_chat_store_send_late(ngx_chat_store_t *st,
    ngx_uint_t ahead, ngx_msec_t budget);
static ngx_uint_t ngx_chat_store_send_stale(ngx_chat_store_t *st);
static void ngx_chat_store_send_rate(ngx_chat_store_t *st,
    ngx_chat_send_batch_t *b, ngx_uint_t done);
static void ngx_chat_store_send_shed(ngx_chat_store_t *st);
static void ngx_chat_store_send_free(ngx_chat_send_t *s);
static void ngx_chat_store_send_row(ngx_chat_send_t *s, PGresult *res,
    int row);
static ngx_int_t ngx_chat_store_item_error(PGresult *res, ngx_int_t rc);
static void ngx_chat_store_ack_flush(ngx_event_t *ev);
static void ngx_chat_store_ack_done(void *data, PGresult *res,
    ngx_int_t rc);
static void ngx_chat_store_ack_requeue(ngx_chat_store_t *st);
static void ngx_chat_store_ack_mark(ngx_chat_store_t *st, ngx_uint_t n,
    ngx_int_t rc);
static ngx_int_t ngx_chat_store_ack_worse(ngx_int_t a, ngx_int_t b);
static void ngx_chat_store_ack_wake(ngx_chat_store_t *st, ngx_int_t rc);


const ngx_chat_pg_stmt_t  ngx_chat_store_stmts[] = {

    { "chat_device_connect",
      "SELECT chat_device_connect($1, $2, $3::int)", 3 },

    /* chat_create and chat_modify behind chat_user_rate (930_limits.sql) */

    { "chat_create",
      "SELECT status, chat_id, event_json, recipients"
      " FROM chat_create_rated($1, $2::text[], $3, $4::int, $5::int,"
      " $6::int)", 6 },

    { "chat_modify",
      "SELECT status, event_json, recipients"
      " FROM chat_modify_rated($1, $2::bigint, $3, $4, $5::int, $6::int,"
      " $7::int)", 7 },

    { "chat_send_batch",
      "SELECT idx, status, message_id, seq, sent_at_ms, dup, event_json,"
      " recipients FROM chat_send_batch($1::text[], $2::text[],"
      " $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::boolean)",
      7 },

    { "chat_ack_batch",
      "SELECT chat_ack_batch($1::text[], $2::text[], $3::bigint[])", 3 },

    { "chat_list_page",
      "SELECT chat_id, chat_json FROM chat_list_page($1, $2::bigint,"
      " $3::int)", 3 },

    { "chat_remove_device",
      "SELECT chat_remove_device($1, $2)", 2 },

    { "chat_sweep",
      "SELECT inbox_deleted, messages_deleted, devices_deactivated,"
      " keys_deleted FROM chat_sweep(make_interval(secs => $1::float8),"
      " make_interval(secs => $2::float8))", 2 },

    { "chat_touch_devices",
      "SELECT chat_touch_devices($1::text[], $2::text[])", 2 },

    { "chat_poll",
      "SELECT user_id, device_id, event_id, event_json"
      " FROM chat_poll($1::text[], $2::text[], $3::bigint[], $4::int)", 4 },

    /* media (sql/920_media.sql, ngx_chat_media*.c) */

    { "chat_media_create",
      "SELECT status, attachment_id"
      " FROM chat_media_create_rated($1, $2, $3, $4::bigint, $5, $6::int,"
      " $7::int)", 7 },

    { "chat_media_uploaded",
      "SELECT chat_media_uploaded($1, $2::bigint, $3)", 3 },

    { "chat_media_pending",
      "SELECT attachment_id, size, sha256"
      " FROM chat_media_pending($1, $2::text[])", 2 },

    { "chat_media_get",
      "SELECT status, content_type, size, sha256"
      " FROM chat_media_get($1, $2)", 2 },

    { "chat_media_received",
      "SELECT status, purge FROM chat_media_received($1, $2, $3)", 3 },

    { "chat_media_purged",
      "SELECT chat_media_purged($1::text[])", 1 },

    { "chat_media_sweep",
      "SELECT attachment_id FROM chat_media_sweep("
      "make_interval(secs => $1::float8), make_interval(secs => $2::float8),"
      " $3::int)", 3 },

    { "chat_device_connect_batch",
      "SELECT idx, status FROM chat_device_connect_batch($1::text[],"
      " $2::text[], $3::int, $4::bigint[])", 4 },

    { "chat_drain_batch",
      "SELECT idx, event_id, event_json FROM chat_drain_batch($1::text[],"
      " $2::text[], $3::bigint[], $4::int)", 4 },

    { NULL, NULL, 0 }
};


ngx_int_t
ngx_chat_store_init(ngx_chat_worker_t *w)
{
    ngx_chat_store_t  *st;

    st = ngx_calloc(sizeof(ngx_chat_store_t), w->log);
    if (st == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&st->sends);
    ngx_queue_init(&st->waiters);

    w->store = st;

    w->send_flush.handler = ngx_chat_store_send_flush;
    w->send_flush.data = w;
    w->send_flush.log = w->log;
    w->send_flush.cancelable = 1;

    w->ack_flush.handler = ngx_chat_store_ack_flush;
    w->ack_flush.data = w;
    w->ack_flush.log = w->log;
    w->ack_flush.cancelable = 1;

    return NGX_OK;
}


void
ngx_chat_store_exit(ngx_chat_worker_t *w)
{
    ngx_queue_t       *q;
    ngx_chat_store_t  *st;

    st = w->store;
    if (st == NULL) {
        return;
    }

    if (w->send_flush.posted) {
        ngx_delete_posted_event(&w->send_flush);
    }

    if (w->ack_flush.timer_set) {
        ngx_del_timer(&w->ack_flush);
    }

    if (w->ack_flush.posted) {
        ngx_delete_posted_event(&w->ack_flush);
    }

    while (!ngx_queue_empty(&st->sends)) {
        q = ngx_queue_head(&st->sends);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_chat_send_t, queue));
    }

    if (st->nacks) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "chat: %ui acks not stored at exit; those events "
                      "will be delivered again", st->nacks);
    }

    st->acks_done = st->acks_in;
    ngx_chat_store_ack_wake(st, NGX_DECLINED);

    ngx_free(st->acks);
    ngx_free(st);
    w->store = NULL;
}


ngx_int_t
ngx_chat_store_query(ngx_chat_conn_t *cc, ngx_uint_t stmt, int n,
    const char **values, ngx_chat_store_done_pt done, void *data)
{
    ngx_chat_store_req_t  *req;

    req = ngx_alloc(sizeof(ngx_chat_store_req_t), ngx_cycle->log);
    if (req == NULL) {
        return NGX_ERROR;
    }

    req->cc = cc;
    req->done = done;
    req->data = data;

    if (ngx_chat_pg_query(ngx_chat_worker->pg, stmt, n, values, NULL,
                          ngx_chat_store_done, req)
        == NULL)
    {
        ngx_free(req);
        return NGX_DECLINED;
    }

    if (cc) {
        cc->pending++;
    }

    return NGX_OK;
}


static void
ngx_chat_store_done(void *data, PGresult *res, ngx_int_t rc)
{
    ngx_chat_store_req_t  *req = data;

    ngx_chat_conn_t  *cc;

    cc = req->cc;

    /*
     * Always called, whatever became of cc: a committed change still fans
     * out, and data is freed by its owner.  Answers to a connection that
     * is no longer active are refused by ngx_chat_ws_send_*().
     */
    req->done(cc, req->data, res, rc);

    if (cc) {
        ngx_chat_ws_release(cc);
    }

    ngx_free(req);
}


ngx_int_t
ngx_chat_store_send(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_str_t *attachments)
{
    u_char            *p;
    size_t             size;
    ngx_chat_send_t   *s;
    ngx_chat_store_t  *st;

    st = ngx_chat_worker->store;

    if (!ngx_chat_pg_want(ngx_chat_worker->pg)) {
        return NGX_DECLINED;
    }

    size = sizeof(ngx_chat_send_t) + cmd->id.len + cc->uid.len
           + cc->device.len + cmd->chat_id.len + cmd->client_message_id.len
           + cmd->message.len + attachments->len;

    if (st->nsends >= NGX_CHAT_SEND_QUEUE_MAX
        || st->send_bytes + size > NGX_CHAT_SEND_QUEUE_BYTES)
    {
        return NGX_BUSY;
    }

    if (ngx_chat_store_send_late(st, st->nsends + st->nflight,
                                 ngx_chat_worker->cmcf->send_queue_time)
        || ngx_chat_store_send_stale(st))
    {
        ngx_chat_store_send_shed(st);
        return NGX_BUSY;
    }

    s = ngx_alloc(size, ngx_cycle->log);
    if (s == NULL) {
        return NGX_DECLINED;
    }

    p = (u_char *) s + sizeof(ngx_chat_send_t);

#define ngx_chat_store_keep(dst, src, n)                                    \
    (dst).data = p; (dst).len = (n); p = ngx_cpymem(p, src, n)

    ngx_chat_store_keep(s->req_id, cmd->id.data, cmd->id.len);
    ngx_chat_store_keep(s->user, cc->uid.data, cc->uid.len);
    ngx_chat_store_keep(s->device, cc->device.data, cc->device.len);
    ngx_chat_store_keep(s->chat_id, cmd->chat_id.data, cmd->chat_id.len);
    ngx_chat_store_keep(s->cmid, cmd->client_message_id.data,
                        cmd->client_message_id.len);
    ngx_chat_store_keep(s->body, cmd->message.data, cmd->message.len);
    s->busy = 0;
    s->shed = 0;
    ngx_chat_store_keep(s->attachments, attachments->data,
                        attachments->len);

#undef ngx_chat_store_keep

    s->req_id_number = cmd->id_is_number;
    s->size = size;
    st->send_bytes += size;
    s->cc = cc;
    s->deadline = ngx_current_msec + ngx_chat_worker->cmcf->db_timeout;
    s->arrived = ngx_chat_metrics_now();
    cc->pending++;
    cc->nsends++;

    ngx_queue_insert_tail(&st->sends, &s->queue);
    st->nsends++;

    if (!ngx_chat_worker->send_flush.posted) {
        ngx_post_event(&ngx_chat_worker->send_flush, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_chat_store_send_flush(ngx_event_t *ev)
{
    ngx_uint_t              ahead;
    ngx_queue_t            *q, *next;
    ngx_chat_send_t        *s;
    ngx_chat_store_t       *st;
    ngx_chat_main_conf_t   *cmcf;

    st = ngx_chat_worker->store;
    cmcf = ngx_chat_worker->cmcf;

    /*
     * A send answers within chat_db_timeout of its arrival, even when it
     * had to wait for a batch slot: the late ones fail now, and so do
     * those that the work ahead of them would make late (shed).
     */

    ahead = st->nflight;

    for (q = ngx_queue_head(&st->sends);
         q != ngx_queue_sentinel(&st->sends);
         q = next)
    {
        next = ngx_queue_next(q);
        s = ngx_queue_data(q, ngx_chat_send_t, queue);

        if ((ngx_msec_int_t) (s->deadline - ngx_current_msec) > 0) {

            if (cmcf->send_queue_time == 0
                || !ngx_chat_store_send_late(st, ahead,
                                             s->deadline - ngx_current_msec))
            {
                ahead++;
                continue;
            }

            s->shed = 1;
            st->shed_queued++;
            ngx_chat_store_send_shed(st);
        }

        ngx_queue_remove(q);
        st->nsends--;

        if (s->busy) {
            st->nbusy--;
        }

        ngx_chat_store_send_fail(s);
    }

    /*
     * New sends never wait for a lock another batch holds (they come back
     * busy instead); those that came back busy go in one batch that
     * waits, so a chat held by the other workers cannot starve them.  A
     * connection's later sends wait behind its busy ones (has_busy is
     * only looked at while some send is busy).
     */

    for (q = ngx_queue_head(&st->sends);
         st->nbusy && q != ngx_queue_sentinel(&st->sends);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_chat_send_t, queue);

        if (s->cc) {
            s->cc->has_busy = 0;
        }
    }

    for (q = ngx_queue_head(&st->sends);
         st->nbusy && q != ngx_queue_sentinel(&st->sends);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_chat_send_t, queue);

        if (s->cc && s->busy) {
            s->cc->has_busy = 1;
        }
    }

    while (st->nsends > st->nbusy && st->send_batches < cmcf->send_batches) {
        if (ngx_chat_store_send_batch(st, 0, ev->log) != NGX_OK) {
            break;
        }
    }

    if (st->nbusy && st->wait_batches == 0) {
        (void) ngx_chat_store_send_batch(st, 1, ev->log);
    }
}


/* one chat_send_batch() call from the queue; NGX_DECLINED: none taken */
static ngx_int_t
ngx_chat_store_send_batch(ngx_chat_store_t *st, ngx_uint_t wait,
    ngx_log_t *log)
{
    ngx_uint_t              i;
    ngx_queue_t            *q;
    ngx_chat_send_t        *s;
    ngx_chat_send_batch_t  *b;
    ngx_chat_main_conf_t   *cmcf;

    cmcf = ngx_chat_worker->cmcf;

    b = ngx_alloc(offsetof(ngx_chat_send_batch_t, sends)
                  + cmcf->send_batch_size * sizeof(ngx_chat_send_t *), log);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->n = 0;
    b->wait = wait;
    b->lo = 0;
    b->nends = 0;
    b->issued = ngx_current_msec;
    b->timed = st->rate_open;

    /*
     * A connection's sends keep their order: while one batch holding
     * some of them is out, its later sends wait for the next batch.
     */

    for (q = ngx_queue_head(&st->sends);
         q != ngx_queue_sentinel(&st->sends)
         && b->n < cmcf->send_batch_size;
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_chat_send_t, queue);

        if ((s->cc && s->cc->sending && !s->cc->batching)
            || s->busy != wait
            || (!wait && st->nbusy && s->cc && s->cc->has_busy))
        {
            continue;
        }

        if (s->cc) {
            s->cc->batching = 1;
            s->cc->sending = 1;
        }

        b->sends[b->n++] = s;
    }

    for (i = 0; i < b->n; i++) {
        if (b->sends[i]->cc) {
            b->sends[i]->cc->batching = 0;
        }
    }

    if (b->n == 0) {
        /* every waiting send belongs to a connection with a batch out */
        ngx_free(b);
        return NGX_DECLINED;
    }

    b->hi = b->n;
    st->nflight += b->n;

    ngx_chat_metrics_hist(NGX_CHAT_H_BATCH, b->n);

    for (i = 0; i < b->n; i++) {
        s = b->sends[i];

        ngx_queue_remove(&s->queue);
        st->nsends--;

        if (s->busy) {
            st->nbusy--;
        }
    }

    if (ngx_chat_store_send_issue(st, b) != NGX_OK) {
        /* no memory, or no connection: all of them fail, retryable */
        b->hi = b->lo;
        ngx_chat_store_send_next(st, b, NULL);
    }

    return NGX_OK;
}


/* runs sends[lo..hi) of b; NGX_OK: its handler will be called */
static ngx_int_t
ngx_chat_store_send_issue(ngx_chat_store_t *st, ngx_chat_send_batch_t *b)
{
    size_t                  room[6];
    ngx_int_t               rc;
    ngx_msec_t              deadline;
    ngx_uint_t              i, k;
    ngx_chat_pg_array_t          arr[6];
    const char             *values[7];
    ngx_chat_send_t        *s;
    ngx_chat_pg_query_t    *pq;

    deadline = ngx_current_msec + ngx_chat_worker->cmcf->db_timeout;
    ngx_memzero(room, sizeof(room));

    for (i = b->lo; i < b->hi; i++) {
        s = b->sends[i];

        if ((ngx_msec_int_t) (s->deadline - deadline) < 0) {
            deadline = s->deadline;
        }

        room[0] += ngx_chat_pg_array_room(s->user.len);
        room[1] += ngx_chat_pg_array_room(s->device.len);
        room[2] += ngx_chat_pg_array_room(s->chat_id.len);
        room[3] += ngx_chat_pg_array_room(s->cmid.len);
        room[4] += ngx_chat_pg_array_room(s->body.len);
        room[5] += ngx_chat_pg_array_room(s->attachments.len);
    }

    for (k = 0; k < 6; k++) {
        if (ngx_chat_pg_array_init(&arr[k], room[k]) != NGX_OK) {
            while (k--) {
                ngx_free(arr[k].start);
            }

            return NGX_ERROR;
        }
    }

    for (i = b->lo; i < b->hi; i++) {
        s = b->sends[i];

        ngx_chat_pg_array_add(&arr[0], s->user.data, s->user.len);
        ngx_chat_pg_array_add(&arr[1], s->device.data, s->device.len);
        ngx_chat_pg_array_add(&arr[2], s->chat_id.data, s->chat_id.len);
        ngx_chat_pg_array_add(&arr[3], s->cmid.data, s->cmid.len);
        ngx_chat_pg_array_add(&arr[4], s->body.data, s->body.len);
        ngx_chat_pg_array_add(&arr[5], s->attachments.data,
                               s->attachments.len);
    }

    for (k = 0; k < 6; k++) {
        ngx_chat_pg_array_close(&arr[k]);
        values[k] = (const char *) arr[k].start;
    }

    values[6] = b->wait ? "t" : "f";

    pq = ngx_chat_pg_query(ngx_chat_worker->pg, NGX_CHAT_STMT_SEND, 7,
                           values, NULL, ngx_chat_store_send_done, b);

    if (pq == NULL) {
        rc = NGX_DECLINED;

    } else {
        rc = NGX_OK;

        if (b->wait) {
            st->wait_batches++;

        } else {
            st->send_batches++;
        }

        /* the batch is as patient as its oldest send */
        ngx_chat_pg_query_expire(pq,
                                 (ngx_msec_int_t) (deadline
                                                   - ngx_current_msec)
                                 > 1 ? deadline - ngx_current_msec : 1);
    }

    for (k = 0; k < 6; k++) {
        ngx_free(arr[k].start);
    }

    return rc;
}


static void
ngx_chat_store_send_done(void *data, PGresult *res, ngx_int_t rc)
{
    ngx_chat_send_batch_t  *b = data;

    int                 row, rows, idx;
    ngx_int_t           status;
    ngx_uint_t          i, n, busy, done;
    ngx_queue_t        *head;
    ngx_chat_send_t    *s;
    ngx_chat_store_t   *st;

    st = ngx_chat_worker ? ngx_chat_worker->store : NULL;

    if (st && b->wait) {
        st->wait_batches--;

    } else if (st) {
        st->send_batches--;
    }

    busy = 0;
    done = 0;
    head = st ? &st->sends : NULL;
    n = b->hi - b->lo;

    if (st && n > 1 && b->nends < NGX_CHAT_SEND_SPLIT_MAX
        && ngx_chat_store_item_error(res, rc))
    {
        /*
         * PostgreSQL refused the batch for something in it: the halves
         * go one after the other, the first now
         */

        if (b->nends == 0) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "chat: a send batch of %ui was refused (%s): "
                          "splitting it", n,
                          PQresultErrorField(res, PG_DIAG_SQLSTATE));
        }

        b->ends[b->nends++] = b->hi;
        b->hi = b->lo + n / 2;

        if (ngx_chat_store_send_issue(st, b) == NGX_OK) {
            return;
        }

        /* then none of them can run: they fail, retryable */
        b->nends = 0;
        b->hi = b->lo;
        ngx_chat_store_send_next(st, b, NULL);
        return;
    }

    for (i = b->lo; i < b->hi; i++) {
        if (b->sends[i] && b->sends[i]->cc) {
            b->sends[i]->cc->sending = 0;
        }
    }

    if (st && res && rc == NGX_OK) {
        rows = PQntuples(res);

        for (row = 0; row < rows; row++) {
            idx = ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                           PQgetlength(res, row, 0));

            if (idx < 1 || (ngx_uint_t) idx > n
                || b->sends[b->lo + idx - 1] == NULL)
            {
                continue;
            }

            s = b->sends[b->lo + idx - 1];
            b->sends[b->lo + idx - 1] = NULL;

            status = ngx_atoi((u_char *) PQgetvalue(res, row, 1),
                              PQgetlength(res, row, 1));

            if (status == NGX_CHAT_ST_BUSY
                && (s->cc == NULL || ngx_chat_conn_active(s->cc)))
            {
                /*
                 * its chat or key is held by a concurrent batch: back to
                 * the front of the queue, in batch order, before the
                 * connection's later sends; the deadline still holds
                 */
                ngx_queue_insert_after(head, &s->queue);
                head = &s->queue;
                st->nsends++;

                if (!s->busy) {
                    s->busy = 1;
                    st->nbusy++;
                }

                busy++;
                continue;
            }

            done++;
            ngx_chat_store_send_row(s, res, row);
        }

    } else if (st && n == 1 && b->sends[b->lo]
               && ngx_chat_store_item_error(res, rc))
    {
        /* the one send PostgreSQL refuses: it alone fails, for good */
        s = b->sends[b->lo];
        b->sends[b->lo] = NULL;
        ngx_chat_store_send_refused(s, res);
    }

    /* whatever got no row failed as a whole: the client may retry */

    for (i = b->lo; i < b->hi; i++) {
        s = b->sends[i];
        if (s == NULL) {
            continue;
        }

        b->sends[i] = NULL;
        ngx_chat_store_send_fail(s);
    }

    if (busy) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "chat: send batch: %ui busy, %ui done", busy, done);
    }

    b->lo = b->hi;

    if (st) {
        ngx_chat_store_send_rate(st, b, done);
    }

    ngx_chat_store_send_next(st, b, busy ? head : NULL);
}


/*
 * After sends[..hi) of a batch are answered: runs the next range left by
 * a split, or ends the batch.  With head (some sends came back busy and
 * were queued up to head), or when the next range cannot be run, what is
 * left goes back to the queue after head, or fails retryably.
 */

static void
ngx_chat_store_send_next(ngx_chat_store_t *st, ngx_chat_send_batch_t *b,
    ngx_queue_t *head)
{
    ngx_uint_t        i;
    ngx_chat_send_t  *s;

    if (st && b->nends && head == NULL) {
        b->hi = b->ends[--b->nends];

        for (i = b->lo; i < b->n; i++) {
            if (b->sends[i] && b->sends[i]->cc) {
                b->sends[i]->cc->sending = 1;
            }
        }

        if (ngx_chat_store_send_issue(st, b) == NGX_OK) {
            return;
        }

        b->nends = 0;
    }

    for (i = b->lo; i < b->n; i++) {
        s = b->sends[i];

        if (s == NULL) {
            continue;
        }

        if (s->cc) {
            s->cc->sending = 0;
        }

        if (st && head && (s->cc == NULL || ngx_chat_conn_active(s->cc))) {
            /* behind the busy ones, so the connection's order holds */
            ngx_queue_insert_after(head, &s->queue);
            head = &s->queue;
            st->nsends++;

            if (s->busy) {
                st->nbusy++;
            }

            continue;
        }

        ngx_chat_store_send_fail(s);
    }

    if (st) {
        st->nflight -= b->n;
    }

    ngx_free(b);

    if (st && st->nsends && !ngx_chat_worker->send_flush.posted) {
        ngx_post_event(&ngx_chat_worker->send_flush, &ngx_posted_events);
    }
}


/* a send that fails retryably: "unavailable" */
static void
ngx_chat_store_send_fail(ngx_chat_send_t *s)
{
    if (s->cc && ngx_chat_conn_active(s->cc)) {
        ngx_chat_worker->store_handlers->failed(s->cc, s);
    }

    ngx_chat_store_send_free(s);
}


/*
 * 1 when `ahead` sends (queued and in flight) would take PostgreSQL longer
 * than budget ms at the measured rate.  Never while the rate is unknown,
 * nor for what one round of full batches holds, so that the queue keeps
 * the batches full (and the rate measured) whatever the estimate.
 */

static ngx_uint_t
ngx_chat_store_send_late(ngx_chat_store_t *st, ngx_uint_t ahead,
    ngx_msec_t budget)
{
    ngx_chat_main_conf_t  *cmcf;

    cmcf = ngx_chat_worker->cmcf;

    if (cmcf->send_queue_time == 0 || st->rate == 0
        || ahead <= cmcf->send_batch_size * cmcf->send_batches)
    {
        return 0;
    }

    return ((uint64_t) ahead << 10) / st->rate > budget;
}


/*
 * 1 while the oldest waiting send has waited longer than
 * chat_send_queue_time, beyond one round of full batches: the measured
 * rate lags a drop in capacity by a few windows, the age of the queue's
 * head does not (a sojourn check, as in CoDel).
 */

static ngx_uint_t
ngx_chat_store_send_stale(ngx_chat_store_t *st)
{
    ngx_msec_int_t          waited;
    ngx_chat_send_t        *s;
    ngx_chat_main_conf_t   *cmcf;

    cmcf = ngx_chat_worker->cmcf;

    if (cmcf->send_queue_time == 0 || ngx_queue_empty(&st->sends)
        || st->nsends + st->nflight
           <= cmcf->send_batch_size * cmcf->send_batches)
    {
        return 0;
    }

    s = ngx_queue_data(ngx_queue_head(&st->sends), ngx_chat_send_t, queue);
    waited = ngx_current_msec - (s->deadline - cmcf->db_timeout);

    return waited > (ngx_msec_int_t) cmcf->send_queue_time;
}


/*
 * A batch of b came back with done sends answered: they count for the
 * rate when the batch left while sends were waiting (since the queue last
 * ran dry: demand, not PostgreSQL, set the pace before), also when it left
 * in an earlier window.  Counting only the batches issued in the current
 * window left out the one in flight when it opened, which made the rate
 * about a batch per window low (a quarter or more) and the queue shorter
 * than chat_send_queue_time allows.
 */

static void
ngx_chat_store_send_rate(ngx_chat_store_t *st, ngx_chat_send_batch_t *b,
    ngx_uint_t done)
{
    uint64_t        sample;
    ngx_msec_int_t  ms;

    if (st->rate_open && b->timed
        && (ngx_msec_int_t) (b->issued - st->rate_since) >= 0)
    {
        st->rate_done += done;
        ms = ngx_current_msec - st->rate_start;

        if (ms >= NGX_CHAT_SEND_RATE_WINDOW) {
            sample = ((uint64_t) st->rate_done << 10) / ms;

            if (sample == 0) {
                sample = 1;
            }

            /*
             * an EWMA (1/4): a rise measured overestimated would admit
             * sends that then wait past the budget; a dip refuses some
             * that could have waited, which is the cheaper error
             */

            st->rate = st->rate ? (3 * st->rate + sample) / 4 : sample;
            st->rate_start = ngx_current_msec;
            st->rate_done = 0;

            ngx_chat_metrics_gauge(NGX_CHAT_G_SEND_CAPACITY,
                                   (st->rate * 1000) >> 10);
        }
    }

    if (st->nsends == 0) {
        st->rate_open = 0;

    } else if (!st->rate_open) {
        st->rate_open = 1;
        st->rate_since = ngx_current_msec;
        st->rate_start = ngx_current_msec;
        st->rate_done = 0;
    }
}


/* a send refused for the queue ahead of it; logged at most once a second */
static void
ngx_chat_store_send_shed(ngx_chat_store_t *st)
{
    st->shed++;

    if ((ngx_msec_int_t) (ngx_current_msec - st->shed_logged) < 1000) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "chat: overloaded: %ui sends refused at once (%ui of "
                  "them queued first), %ui queued or in flight, about %uL "
                  "sends/s committed (chat_send_queue_time %M)", st->shed,
                  st->shed_queued, st->nsends + st->nflight,
                  (st->rate * 1000) >> 10,
                  ngx_chat_worker->cmcf->send_queue_time);

    st->shed = 0;
    st->shed_queued = 0;
    st->shed_logged = ngx_current_msec;
}


/* a send is done with: its connection let go, its bytes uncounted */
static void
ngx_chat_store_send_free(ngx_chat_send_t *s)
{
    ngx_chat_store_t  *st;

    if (s->cc) {
        /* a command kept behind the connection's sends may go now */

        if (--s->cc->nsends == 0) {
            ngx_chat_worker->store_handlers->idle(s->cc);
        }

        ngx_chat_ws_release(s->cc);
    }

    if (ngx_chat_worker && ngx_chat_worker->store) {
        st = ngx_chat_worker->store;
        st->send_bytes -= s->size;
    }

    ngx_free(s);
}


/*
 * A send that PostgreSQL refuses on its own: a data exception (class 22)
 * is the client's value, bad_request; anything else is ours,
 * internal_error.  Either way a retry would fail the same.
 */

static void
ngx_chat_store_send_refused(ngx_chat_send_t *s, PGresult *res)
{
    char        *state;
    ngx_uint_t   bad, level;

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    bad = (state && state[0] == '2' && state[1] == '2');

    level = bad ? NGX_LOG_INFO : NGX_LOG_ERR;

    ngx_log_error(level, ngx_cycle->log, 0,
                  "chat: sendMessage of \"%V\" device \"%V\" to chat %V "
                  "refused by PostgreSQL (%s), answered %s",
                  &s->user, &s->device, &s->chat_id, state,
                  bad ? "bad_request" : "internal_error");

    if (s->cc && ngx_chat_conn_active(s->cc)) {
        ngx_chat_worker->store_handlers->refused(s->cc, s, bad);
    }

    ngx_chat_store_send_free(s);
}


/*
 * 1 when a statement failed for what was in it (so a smaller batch
 * without the culprit would pass): PostgreSQL's errors of data, integrity
 * constraints, triggers and functions (SQLSTATE classes 21, 22, 23, 27,
 * 2F, 38, 39, 44, 54, P0, 09).  Not: connection loss and timeouts (no
 * result, 08, 57), concurrency (40, 55), resources (53, 58), and a schema
 * or permission problem (42, ...), which no split would cure.
 */

static ngx_int_t
ngx_chat_store_item_error(PGresult *res, ngx_int_t rc)
{
    char              *state;
    ngx_uint_t         i;
    static const char  classes[][3] = {
        "21", "22", "23", "27", "2F", "38", "39", "44", "54", "P0", "09"
    };

    if (rc != NGX_ERROR || res == NULL
        || PQresultStatus(res) != PGRES_FATAL_ERROR)
    {
        return 0;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state == NULL || ngx_strlen(state) != 5) {
        return 0;
    }

    for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        if (state[0] == classes[i][0] && state[1] == classes[i][1]) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_chat_store_send_row(ngx_chat_send_t *s, PGresult *res, int row)
{
    u_char            *json;
    u_char             ord[NGX_CHAT_JSON_CHAT_ID_MAX + NGX_INT64_LEN + 2];
    off_t              seq, chat;
    uint64_t           message_id, now;
    ngx_int_t          status;
    ngx_str_t          order;
    ngx_uint_t         dup;
    ngx_chat_user_t   *u;

    status = ngx_atoi((u_char *) PQgetvalue(res, row, 1),
                      PQgetlength(res, row, 1));

    if (status == NGX_CHAT_ST_OK) {
        now = ngx_chat_metrics_now();
        ngx_chat_metrics_hist(NGX_CHAT_H_SEND_COMMIT,
                              now > s->arrived ? now - s->arrived : 0);
    }

    if (s->cc && ngx_chat_conn_active(s->cc)) {
        ngx_chat_worker->store_handlers->sent(s->cc, s, status, res, row);
    }

    seq = -1;
    chat = -1;
    ngx_str_null(&order);

    if (status == NGX_CHAT_ST_OK && !PQgetisnull(res, row, 3)) {
        seq = ngx_atoof((u_char *) PQgetvalue(res, row, 3),
                        PQgetlength(res, row, 3));
        chat = ngx_atoof(s->chat_id.data, s->chat_id.len);

        if (seq > 0 && chat > 0) {
            order.data = ord;
            order.len = ngx_sprintf(ord, "%O:%O", chat, seq) - ord;
        }
    }

    if (status == NGX_CHAT_ST_OK && !PQgetisnull(res, row, 6)
        && !PQgetisnull(res, row, 7))
    {
        message_id = (uint64_t) ngx_atoof((u_char *) PQgetvalue(res, row, 2),
                                          PQgetlength(res, row, 2));
        json = (u_char *) PQgetvalue(res, row, 6);

        /*
         * A duplicate comes with the users who have not acked the message
         * yet; it is published again only if this worker did not publish
         * it (the first attempt's answer was lost, its worker died before
         * publishing, or another worker took it): a copy published again
         * while a device's ack is on its way would reach it twice.
         */
        dup = (*PQgetvalue(res, row, 5) == 't');

        if ((!dup || !ngx_chat_bus_published(message_id))
            && ngx_chat_bus_fanout((u_char *) PQgetvalue(res, row, 7),
                                   PQgetlength(res, row, 7), message_id,
                                   &s->user, &s->device, &order, json,
                                   PQgetlength(res, row, 6))
               == NGX_OK)
        {
            ngx_chat_bus_published_add(message_id);
        }
    }

    /* the sender's user has this seq: its next ones need not wait for it */

    if (order.len && s->cc && ngx_chat_conn_active(s->cc)
        && s->cc->registered)
    {
        u = s->cc->user;
        ngx_chat_order_seen(u, (uint64_t) chat, (uint64_t) seq,
                            ngx_chat_bus_deliver_event);
    }

    ngx_chat_store_send_free(s);
}


ngx_int_t
ngx_chat_store_ack(ngx_chat_conn_t *cc, uint64_t *ids, ngx_uint_t n,
    ngx_chat_store_done_pt done, void *data)
{
    ngx_uint_t              i, cap;
    ngx_msec_t              deadline;
    ngx_chat_ack_t         *a;
    ngx_chat_store_t       *st;
    ngx_chat_ack_waiter_t  *wt;

    st = ngx_chat_worker->store;

    if (st->nacks + n > NGX_CHAT_ACK_QUEUE_MAX) {
        return NGX_DECLINED;
    }

    wt = NULL;

    if (done) {
        wt = ngx_alloc(sizeof(ngx_chat_ack_waiter_t), ngx_cycle->log);
        if (wt == NULL) {
            return NGX_DECLINED;
        }
    }

    if (st->nacks + n > st->acks_cap) {
        cap = ngx_max(st->acks_cap * 2, st->nacks + n);
        cap = ngx_max(cap, 64);

        a = ngx_alloc(cap * sizeof(ngx_chat_ack_t), ngx_cycle->log);
        if (a == NULL) {
            if (wt) {
                ngx_free(wt);
            }

            return NGX_DECLINED;
        }

        if (st->acks) {
            ngx_memcpy(a, st->acks, st->nacks * sizeof(ngx_chat_ack_t));
            ngx_free(st->acks);
        }

        st->acks = a;
        st->acks_cap = cap;
    }

    st->acks_in += n;

    if (wt) {
        wt->cc = cc;
        wt->start = st->acks_in - n;
        wt->end = st->acks_in;
        wt->rc = NGX_OK;
        wt->done = done;
        wt->data = data;
        cc->pending++;
        ngx_queue_insert_tail(&st->waiters, &wt->queue);
    }

    deadline = ngx_current_msec + ngx_chat_worker->cmcf->db_timeout;

    for (i = 0; i < n; i++) {
        a = &st->acks[st->nacks++];
        a->id = ids[i];
        a->deadline = deadline;
        a->user_len = (u_char) cc->uid.len;
        a->device_len = (u_char) cc->device.len;
        ngx_memcpy(a->user, cc->uid.data, cc->uid.len);
        ngx_memcpy(a->device, cc->device.data, cc->device.len);
    }

    if (st->acks_out == NULL && !ngx_chat_worker->ack_flush.posted
        && !ngx_chat_worker->ack_flush.timer_set)
    {
        ngx_post_event(&ngx_chat_worker->ack_flush, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_chat_store_ack_flush(ngx_event_t *ev)
{
    u_char            *p;
    size_t             room[3];
    ngx_uint_t         i, k, n;
    ngx_chat_ack_t    *a;
    ngx_chat_pg_array_t     arr[3];
    const char        *values[3];
    ngx_chat_store_t  *st;
    u_char             num[NGX_INT64_LEN];

    st = ngx_chat_worker->store;

    if (st->acks_out || st->nacks == 0) {
        return;
    }

    n = ngx_min(st->nacks, NGX_CHAT_ACK_BATCH);

    if (st->acks_split) {
        n = ngx_min(n, st->acks_split);
    }
    ngx_memzero(room, sizeof(room));

    for (i = 0; i < n; i++) {
        a = &st->acks[i];
        room[0] += ngx_chat_pg_array_room(a->user_len);
        room[1] += ngx_chat_pg_array_room(a->device_len);
        room[2] += ngx_chat_pg_array_room(NGX_INT64_LEN);
    }

    for (k = 0; k < 3; k++) {
        if (ngx_chat_pg_array_init(&arr[k], room[k]) != NGX_OK) {
            while (k--) {
                ngx_free(arr[k].start);
            }

            return;
        }
    }

    for (i = 0; i < n; i++) {
        a = &st->acks[i];
        ngx_chat_pg_array_add(&arr[0], a->user, a->user_len);
        ngx_chat_pg_array_add(&arr[1], a->device, a->device_len);
        p = ngx_sprintf(num, "%uL", a->id);
        ngx_chat_pg_array_add(&arr[2], num, p - num);
    }

    for (k = 0; k < 3; k++) {
        ngx_chat_pg_array_close(&arr[k]);
        values[k] = (const char *) arr[k].start;
    }

    /* the batch leaves the queue while in flight */

    st->acks_out = ngx_alloc(n * sizeof(ngx_chat_ack_t), ev->log);

    if (st->acks_out) {
        ngx_memcpy(st->acks_out, st->acks, n * sizeof(ngx_chat_ack_t));
        st->nacks_out = n;
        ngx_memmove(st->acks, st->acks + n,
                    (st->nacks - n) * sizeof(ngx_chat_ack_t));
        st->nacks -= n;

        if (ngx_chat_pg_query(ngx_chat_worker->pg, NGX_CHAT_STMT_ACK, 3,
                              values, NULL, ngx_chat_store_ack_done, st)
            == NULL)
        {
            ngx_chat_store_ack_done(st, NULL, NGX_DECLINED);
        }
    }

    for (k = 0; k < 3; k++) {
        ngx_free(arr[k].start);
    }
}


static void
ngx_chat_store_ack_done(void *data, PGresult *res, ngx_int_t rc)
{
    ngx_chat_store_t  *st = data;

    char            *state;
    ngx_int_t        refused;
    ngx_uint_t       n, i, lost, part, level;
    ngx_chat_ack_t  *a;

    if (ngx_chat_worker == NULL || ngx_chat_worker->store != st) {
        return;
    }

    n = st->nacks_out;
    lost = 0;
    part = 1;

    if (rc == NGX_OK) {
        a = st->acks_out;
        st->acks_done += n;
        st->acks_out = NULL;
        st->nacks_out = 0;
        ngx_free(a);

    } else if (ngx_chat_store_item_error(res, rc) && n > 1) {

        /*
         * refused for something in it: its first half goes next, then
         * (whatever that gives) the rest, until the culprits are alone
         */

        if (st->acks_split == 0) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "chat: an ack batch of %ui was refused (%s): "
                          "splitting it", n,
                          PQresultErrorField(res, PG_DIAG_SQLSTATE));
            st->acks_split_end = st->acks_done + n;
        }

        ngx_chat_store_ack_requeue(st);
        st->acks_split = n / 2;
        part = 0;

    } else if (ngx_chat_store_item_error(res, rc)) {

        /* one ack PostgreSQL refuses alone: it is given up, logged once */

        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        refused = (state[0] == '2' && state[1] == '2') ? NGX_ABORT
                                                       : NGX_ERROR;
        a = st->acks_out;

        level = (refused == NGX_ABORT) ? NGX_LOG_INFO : NGX_LOG_ERR;

        ngx_log_error(level, ngx_cycle->log, 0,
                      "chat: ack of event %uL by \"%*s\" device \"%*s\" "
                      "refused by PostgreSQL (%s), given up",
                      a->id, (size_t) a->user_len, a->user,
                      (size_t) a->device_len, a->device, state);

        ngx_chat_store_ack_mark(st, 1, refused);
        st->acks_done++;
        st->acks_out = NULL;
        st->nacks_out = 0;
        ngx_free(a);

    } else {

        /*
         * lost on the way (or a failure no split would cure): the batch
         * goes back in front and is retried after a while, but acks
         * chat_db_timeout old are given up, so nothing waits forever
         */

        lost = 1;
        part = 0;
        ngx_chat_store_ack_requeue(st);

        for (i = 0; i < st->nacks; i++) {
            if ((ngx_msec_int_t) (st->acks[i].deadline - ngx_current_msec)
                > 0)
            {
                break;
            }
        }

        if (i) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "chat: %ui acks not stored within "
                          "chat_db_timeout, given up: their events will be "
                          "delivered again", i);

            ngx_chat_store_ack_mark(st, i, NGX_DECLINED);
            st->acks_done += i;
            ngx_memmove(st->acks, st->acks + i,
                        (st->nacks - i) * sizeof(ngx_chat_ack_t));
            st->nacks -= i;
        }
    }

    /*
     * a split ends once everything it covered is stored or given up;
     * after a part of it is, the rest of it goes in one piece
     */

    if (st->acks_split) {
        if (st->acks_done >= st->acks_split_end) {
            st->acks_split = 0;

        } else if (part) {
            st->acks_split = (ngx_uint_t) (st->acks_split_end
                                           - st->acks_done);
        }
    }

    ngx_chat_store_ack_wake(st, NGX_OK);

    if (st->nacks == 0) {
        return;
    }

    if (lost) {
        if (!ngx_exiting && !ngx_chat_worker->ack_flush.timer_set) {
            ngx_add_timer(&ngx_chat_worker->ack_flush,
                          ngx_chat_worker->cmcf->poll_interval);
        }

    } else if (!ngx_chat_worker->ack_flush.posted) {
        ngx_post_event(&ngx_chat_worker->ack_flush, &ngx_posted_events);
    }
}


/*
 * The batch in flight goes back to the front of the queue.  If there is
 * no room for it, it is given up instead (its waiters answered
 * unavailable).
 */

static void
ngx_chat_store_ack_requeue(ngx_chat_store_t *st)
{
    ngx_chat_ack_t  *a;

    if (st->nacks + st->nacks_out > st->acks_cap
        && st->nacks + st->nacks_out <= NGX_CHAT_ACK_QUEUE_MAX)
    {
        /* acks arrived meanwhile: make room for the batch again */
        a = ngx_alloc((st->nacks + st->nacks_out) * sizeof(ngx_chat_ack_t),
                      ngx_cycle->log);
        if (a) {
            ngx_memcpy(a, st->acks, st->nacks * sizeof(ngx_chat_ack_t));
            ngx_free(st->acks);
            st->acks = a;
            st->acks_cap = st->nacks + st->nacks_out;
        }
    }

    if (st->nacks + st->nacks_out <= NGX_CHAT_ACK_QUEUE_MAX
        && st->nacks + st->nacks_out <= st->acks_cap)
    {
        ngx_memmove(st->acks + st->nacks_out, st->acks,
                    st->nacks * sizeof(ngx_chat_ack_t));
        ngx_memcpy(st->acks, st->acks_out,
                   st->nacks_out * sizeof(ngx_chat_ack_t));
        st->nacks += st->nacks_out;

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: dropping %ui acks, their events will be "
                      "delivered again", st->nacks_out);
        ngx_chat_store_ack_mark(st, st->nacks_out, NGX_DECLINED);
        st->acks_done += st->nacks_out;
    }

    a = st->acks_out;
    st->acks_out = NULL;
    st->nacks_out = 0;
    ngx_free(a);
}


/*
 * The next n acks (those after acks_done) are about to be given up with
 * rc: their ack commands will be answered with it (or worse).
 */

static void
ngx_chat_store_ack_mark(ngx_chat_store_t *st, ngx_uint_t n, ngx_int_t rc)
{
    uint64_t                from, to;
    ngx_queue_t            *q;
    ngx_chat_ack_waiter_t  *wt;

    from = st->acks_done;
    to = st->acks_done + n;

    for (q = ngx_queue_head(&st->waiters);
         q != ngx_queue_sentinel(&st->waiters);
         q = ngx_queue_next(q))
    {
        wt = ngx_queue_data(q, ngx_chat_ack_waiter_t, queue);

        if (wt->start >= to) {
            break;
        }

        if (wt->end > from) {
            wt->rc = ngx_chat_store_ack_worse(wt->rc, rc);
        }
    }
}


/* OK < DECLINED (unavailable) < ERROR (internal) < ABORT (bad_request) */
static ngx_int_t
ngx_chat_store_ack_worse(ngx_int_t a, ngx_int_t b)
{
    static const ngx_int_t  order[] = {
        NGX_OK, NGX_DECLINED, NGX_ERROR, NGX_ABORT
    };

    ngx_uint_t  i, ia, ib;

    ia = 0;
    ib = 0;

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (order[i] == a) {
            ia = i;
        }

        if (order[i] == b) {
            ib = i;
        }
    }

    return (ib > ia) ? b : a;
}


/* answers the ack commands whose acks are all stored (FIFO) */
static void
ngx_chat_store_ack_wake(ngx_chat_store_t *st, ngx_int_t rc)
{
    ngx_int_t               wrc;
    ngx_queue_t            *q;
    ngx_chat_conn_t        *cc;
    ngx_chat_ack_waiter_t  *wt;

    while (!ngx_queue_empty(&st->waiters)) {
        q = ngx_queue_head(&st->waiters);
        wt = ngx_queue_data(q, ngx_chat_ack_waiter_t, queue);

        if (wt->end > st->acks_done) {
            break;
        }

        ngx_queue_remove(q);
        cc = wt->cc;
        wrc = ngx_chat_store_ack_worse(wt->rc, rc);

        if (ngx_chat_conn_active(cc)) {
            wt->done(cc, wt->data, NULL, wrc);

        } else {
            wt->done(NULL, wt->data, NULL, wrc);
        }

        ngx_chat_ws_release(cc);
        ngx_free(wt);
    }
}


