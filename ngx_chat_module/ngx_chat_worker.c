
/*
 * ngx_chat_worker.c: the ngx_chat_worker_t of a worker process: built in
 * init_process (PostgreSQL pool, Redis contexts, user index, scratch
 * buffer, timers), torn down in exit_process.  It also owns the periodic
 * jobs:
 *   - poll (chat_poll_interval): retries device registrations and drains
 *     that failed, and reads inboxes while Redis is down;
 *   - sweep (chat_sweep_interval): the retention sweep, run by worker 0
 *     only, and on one host at a time thanks to a Redis lease;
 *   - touch (hourly): last_seen of the connected devices, so that a device
 *     connected for weeks is not taken for an abandoned one.
 */


#include "ngx_chat.h"
#include "ngx_chat_worker.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_shards.h"
#include "ngx_chat_bus.h"
#include "ngx_chat_store.h"
#include "ngx_chat_session.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_cmd.h"
#include "ngx_chat_cmdq.h"
#include "ngx_chat_media.h"
#include "ngx_chat_status.h"
#include "ngx_chat_metrics.h"

#include <hiredis/hiredis.h>


#define NGX_CHAT_SCRATCH_SIZE   65536
#define NGX_CHAT_TOUCH_PERIOD   3600000


ngx_chat_worker_t  *ngx_chat_worker;


/* the upcalls of the transport and the bus: the one place that wires them */

static const ngx_chat_ws_handlers_t  ngx_chat_worker_ws = {
    ngx_chat_session_register,
    ngx_chat_session_open,
    ngx_chat_cmd_handle,
    ngx_chat_session_writable,
    ngx_chat_session_close
};

static const ngx_chat_store_handlers_t  ngx_chat_worker_store = {
    ngx_chat_cmd_send_done,
    ngx_chat_cmd_send_failed,
    ngx_chat_cmd_send_refused,
    ngx_chat_cmdq_sent
};

static const ngx_chat_bus_handlers_t  ngx_chat_worker_bus = {
    ngx_chat_session_event,
    ngx_chat_session_listening,
    ngx_chat_session_resync
};


static void ngx_chat_worker_timer(ngx_event_t *ev, ngx_event_handler_pt h,
    ngx_msec_t after);
static void ngx_chat_worker_poll(ngx_event_t *ev);
static void ngx_chat_worker_sweep(ngx_event_t *ev);
static void ngx_chat_worker_lease(void *data, void *reply);
static void ngx_chat_worker_swept(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_worker_touch(ngx_event_t *ev);
static void ngx_chat_worker_touched(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);


ngx_int_t
ngx_chat_worker_init(ngx_cycle_t *cycle, ngx_chat_main_conf_t *cmcf)
{
    ngx_chat_worker_t  *w;

    w = ngx_calloc(sizeof(ngx_chat_worker_t), cycle->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->cycle = cycle;
    w->log = cycle->log;
    w->cmcf = cmcf;
    w->ws_handlers = &ngx_chat_worker_ws;
    w->bus_handlers = &ngx_chat_worker_bus;
    w->store_handlers = &ngx_chat_worker_store;

    /* the media feature plugs into the commands and the events */
    w->cmd_plugin = &ngx_chat_media_plugin;
    w->render = ngx_chat_media_render;
    ngx_queue_init(&w->conns);

    w->scratch_size = NGX_CHAT_SCRATCH_SIZE;
    w->scratch = ngx_alloc(w->scratch_size, cycle->log);
    if (w->scratch == NULL) {
        ngx_free(w);
        return NGX_ERROR;
    }

    ngx_chat_worker = w;
    w->cmd_type = NGX_CHAT_CMD_T_NONE;

    /* its slot of the metrics zone, before anything counts */
    ngx_chat_status_worker_init(w);

    if (ngx_chat_bus_init(w) != NGX_OK || ngx_chat_store_init(w) != NGX_OK) {
        return NGX_ERROR;
    }

    w->pg = ngx_chat_pg_create(cycle, &cmcf->pg_conninfo, cmcf->pg_pool_size,
                               cmcf->pg_max_queue, cmcf->db_timeout,
                               ngx_chat_store_stmts);
    if (w->pg == NULL) {
        return NGX_ERROR;
    }

    w->shards = ngx_chat_shards_create(cycle, cmcf->redis_seeds->elts,
                                       cmcf->redis_seeds->nelts,
                                       cmcf->redis_cluster,
                                       cmcf->redis_timeout,
                                       ngx_chat_bus_message,
                                       ngx_chat_bus_subscribed,
                                       ngx_chat_bus_state,
                                       ngx_chat_bus_bounced, w);
    if (w->shards == NULL) {
        return NGX_ERROR;
    }

    ngx_chat_worker_timer(&w->poll, ngx_chat_worker_poll,
                          cmcf->poll_interval);

    if (ngx_worker == 0) {
        ngx_chat_worker_timer(&w->sweep, ngx_chat_worker_sweep,
                              ngx_min(cmcf->sweep_interval, 5000));
    }

    ngx_chat_worker_timer(&w->touch, ngx_chat_worker_touch,
                          NGX_CHAT_TOUCH_PERIOD);

    return NGX_OK;
}


void
ngx_chat_worker_exit(ngx_cycle_t *cycle)
{
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;
    if (w == NULL) {
        return;
    }

    ngx_chat_ws_close_all();
    ngx_chat_session_exit();

    if (w->poll.timer_set) {
        ngx_del_timer(&w->poll);
    }

    if (w->sweep.timer_set) {
        ngx_del_timer(&w->sweep);
    }

    if (w->touch.timer_set) {
        ngx_del_timer(&w->touch);
    }

    ngx_chat_store_exit(w);
    ngx_chat_bus_exit();

    if (w->shards) {
        ngx_chat_shards_destroy(w->shards);
        w->shards = NULL;
    }

    if (w->pg) {
        ngx_chat_pg_destroy(w->pg);
        w->pg = NULL;
    }

    ngx_chat_status_worker_exit(w);

    ngx_free(w->scratch);
    ngx_free(w);
    ngx_chat_worker = NULL;
}


static void
ngx_chat_worker_timer(ngx_event_t *ev, ngx_event_handler_pt h,
    ngx_msec_t after)
{
    ev->handler = h;
    ev->data = ngx_chat_worker;
    ev->log = ngx_chat_worker->log;
    ev->cancelable = 1;

    ngx_add_timer(ev, after);
}


static void
ngx_chat_worker_poll(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_chat_bus_flush();
    ngx_chat_session_poll();

    ngx_add_timer(ev, ngx_chat_worker->cmcf->poll_interval);
}


/*
 * The sweep runs where the lease "<prefix>sweep" could be taken (SET NX PX
 * for one interval), so one host sweeps per interval.  Without Redis the
 * sweep runs anyway: it is idempotent, only wasted work if doubled.
 */
static void
ngx_chat_worker_sweep(ngx_event_t *ev)
{
    u_char                *p;
    const char            *argv[6];
    size_t                 argvlen[6];
    ngx_chat_main_conf_t  *cmcf;
    u_char                 key[128], val[64], ms[NGX_INT_T_LEN];

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    cmcf = ngx_chat_worker->cmcf;

    ngx_add_timer(ev, cmcf->sweep_interval);

    argv[0] = "SET";
    argvlen[0] = 3;
    p = ngx_snprintf(key, sizeof(key), "%Vsweep", &cmcf->redis_prefix);
    argv[1] = (const char *) key;
    argvlen[1] = p - key;
    p = ngx_sprintf(val, "%016xL", ngx_chat_worker->instance);
    argv[2] = (const char *) val;
    argvlen[2] = p - val;
    argv[3] = "NX";
    argvlen[3] = 2;
    argv[4] = "PX";
    argvlen[4] = 2;
    p = ngx_sprintf(ms, "%M", cmcf->sweep_interval - cmcf->sweep_interval / 10);
    argv[5] = (const char *) ms;
    argvlen[5] = p - ms;

    /* one key: on a cluster, the shard of its slot holds it */

    if (!ngx_chat_shards_up(ngx_chat_worker->shards)
        || ngx_chat_shards_command(ngx_chat_worker->shards, key, argvlen[1],
                                   ngx_chat_worker_lease, ngx_chat_worker,
                                   6, argv, argvlen)
           != NGX_OK)
    {
        ngx_chat_worker_lease(NULL, NULL);
    }
}


static void
ngx_chat_worker_lease(void *data, void *reply)
{
    u_char                *p;
    const char            *values[2];
    ngx_chat_main_conf_t  *cmcf;
    u_char                 ret[NGX_TIME_T_LEN + 1], idle[NGX_TIME_T_LEN + 1];

    if (ngx_chat_worker == NULL) {
        return;
    }

    if (data && (reply == NULL || ((redisReply *) reply)->type
                                  != REDIS_REPLY_STATUS))
    {
        /* another host holds the lease (nil reply) */
        return;
    }

    cmcf = ngx_chat_worker->cmcf;

    p = ngx_sprintf(ret, "%T", cmcf->retention);
    *p = '\0';
    p = ngx_sprintf(idle, "%T", cmcf->device_idle);
    *p = '\0';

    values[0] = (const char *) ret;
    values[1] = (const char *) idle;

    (void) ngx_chat_store_query(NULL, NGX_CHAT_STMT_SWEEP, 2, values,
                                ngx_chat_worker_swept, NULL);
}


static void
ngx_chat_worker_swept(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    if (rc != NGX_OK || PQntuples(res) != 1) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "chat: sweep removed %s inbox rows, %s messages, "
                  "%s devices, %s idempotency keys",
                  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                  PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
}


static void
ngx_chat_worker_touch(ngx_event_t *ev)
{
    size_t            room[2];
    ngx_uint_t        k;
    ngx_queue_t      *q;
    ngx_chat_pg_array_t    arr[2];
    const char       *values[2];
    ngx_chat_conn_t  *cc;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, NGX_CHAT_TOUCH_PERIOD);

    if (ngx_queue_empty(&ngx_chat_worker->conns)) {
        return;
    }

    room[0] = 0;
    room[1] = 0;

    for (q = ngx_queue_head(&ngx_chat_worker->conns);
         q != ngx_queue_sentinel(&ngx_chat_worker->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, all);

        if (cc->state == NGX_CHAT_CONN_LIVE) {
            room[0] += ngx_chat_pg_array_room(cc->uid.len);
            room[1] += ngx_chat_pg_array_room(cc->device.len);
        }
    }

    for (k = 0; k < 2; k++) {
        if (ngx_chat_pg_array_init(&arr[k], room[k]) != NGX_OK) {
            if (k) {
                ngx_free(arr[0].start);
            }

            return;
        }
    }

    for (q = ngx_queue_head(&ngx_chat_worker->conns);
         q != ngx_queue_sentinel(&ngx_chat_worker->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, all);

        if (cc->state == NGX_CHAT_CONN_LIVE) {
            ngx_chat_pg_array_add(&arr[0], cc->uid.data,
                                   cc->uid.len);
            ngx_chat_pg_array_add(&arr[1], cc->device.data, cc->device.len);
        }
    }

    for (k = 0; k < 2; k++) {
        ngx_chat_pg_array_close(&arr[k]);
        values[k] = (const char *) arr[k].start;
    }

    (void) ngx_chat_store_query(NULL, NGX_CHAT_STMT_TOUCH, 2, values,
                                ngx_chat_worker_touched, NULL);

    ngx_free(arr[0].start);
    ngx_free(arr[1].start);
}


static void
ngx_chat_worker_touched(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    /* nothing to do: a failure is retried at the next period */
}
