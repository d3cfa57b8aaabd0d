
/*
 * ngx_chat_bus.c: live fan-out through Redis pub/sub.
 *
 * Each worker keeps an index (an rbtree keyed by a hash of the user id) of
 * the users with a connection on it, and is subscribed to one channel per
 * such user: "<prefix>u:<user id>".  Workers of one nginx and of every
 * other gateway host talk only through these channels.  Messages are text:
 *
 *   e|<event id>|<device to skip or empty>|[<chat>:<seq>][@<t>]|<JSON>
 *   r|...                 the same, published again after Redis was down
 *   k|<device>|<close code>|<identity of the connection to keep or empty>
 *
 * "e" is an event for every connection of the user (the sender's own
 * connection is skipped); a newMessage carries its chat and seq, which the
 * receiving worker uses to hand a chat's messages over in seq order
 * (ngx_chat_order.c; an "e" without that field, from an older gateway,
 * is delivered as it comes); <t> is the wall clock time (microseconds)
 * of the event's commit, for the delivery latency (ngx_chat_metrics.c;
 * an older gateway takes "chat:seq@t" for no order field); "k" closes
 * the connections of one device (a device removed, or the same device
 * connected again elsewhere).
 * Pub/sub is lossy (Redis restarts, slow subscribers): the inbox in
 * PostgreSQL stays the source of truth, and every (re)subscription is
 * followed by a drain of the inboxes concerned (ngx_chat_session.c).
 *
 * On a Redis Cluster (ngx_chat_shards.c) each channel lives on the shard
 * of its hash slot (sharded pub/sub).  A user's channel is live when it is
 * subscribed on the subscriber connection that ngx_chat_shards_owner()
 * names; whenever that changes (a shard down, failed over, back) the
 * users concerned, and only they, are polled, subscribed again and
 * drained (ngx_chat_bus_state()).  One Redis is the case of one shard.
 */


#include "ngx_chat.h"
#include "ngx_chat_bus.h"
#include "ngx_chat_shards.h"
#include "ngx_chat_pg_array.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_order.h"
#include "ngx_chat_metrics.h"


#define NGX_CHAT_BUS_IDENTITY_LEN  (NGX_INT64_LEN * 2 + 1)
#define NGX_CHAT_BUS_BACKLOG_MAX   (16 * 1024 * 1024)
#define NGX_CHAT_BUS_SENT_MAX      16384   /* published ids remembered */


/*
 * A publish Redis refused (its command connection was down): kept, in
 * order, and sent again when Redis is back, so that devices connected
 * elsewhere get it live rather than at their next connection.
 */
typedef struct {
    ngx_queue_t              queue;
    size_t                   channel_len;
    size_t                   len;
    u_char                   data[1];       /* channel, then message */
} ngx_chat_bus_msg_t;


static ngx_chat_user_t *ngx_chat_bus_find(ngx_str_t *id, uint32_t hash);
static void ngx_chat_bus_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_chat_bus_channel(ngx_str_t *user, u_char *buf,
    size_t size, ngx_str_t *channel);
static void ngx_chat_bus_subscribe(ngx_chat_user_t *u);
static size_t ngx_chat_bus_identity(ngx_chat_conn_t *cc, u_char *buf);
static void ngx_chat_bus_deliver(ngx_chat_user_t *u, u_char *p, size_t len);
static void ngx_chat_bus_kick_local(ngx_chat_user_t *u, ngx_str_t *device,
    ngx_uint_t code, u_char *keep, size_t keep_len);
static void ngx_chat_bus_resubscribe(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static uint32_t ngx_chat_bus_owner(ngx_chat_user_t *u);
static ngx_int_t ngx_chat_bus_publish(u_char *channel, size_t channel_len,
    u_char *msg, size_t len);
static ngx_int_t ngx_chat_bus_backlog_add(u_char *channel,
    size_t channel_len, u_char *msg, size_t len);
static ngx_int_t ngx_chat_bus_publish_event(ngx_str_t *users, ngx_uint_t n,
    uint64_t event_id, ngx_str_t *exclude_user, ngx_str_t *exclude_device,
    ngx_str_t *order, u_char *json, size_t len);
static ngx_chat_user_t *ngx_chat_bus_channel_user(u_char *channel,
    size_t channel_len);


/*
 * The ids of the last NGX_CHAT_BUS_SENT_MAX messages this worker published
 * (or kept in the backlog), a ring allocated on first use (128 KiB): a
 * duplicate send is published again only if its message is not here
 * (ngx_chat_bus_published()).
 */
static uint64_t    *ngx_chat_bus_sent;
static ngx_uint_t   ngx_chat_bus_sent_next;


ngx_int_t
ngx_chat_bus_init(ngx_chat_worker_t *w)
{
    ngx_rbtree_init(&w->users, &w->users_sentinel,
                    ngx_chat_bus_insert_value);
    ngx_queue_init(&w->backlog);

    /* an identity for this worker process, unique across hosts */
    w->instance = ((uint64_t) ngx_random() << 32) ^ (uint64_t) ngx_random()
                  ^ ((uint64_t) ngx_pid << 16) ^ (uint64_t) ngx_time();

    return NGX_OK;
}


ngx_int_t
ngx_chat_bus_join(ngx_chat_conn_t *cc)
{
    uint32_t          hash;
    ngx_str_t        *user;
    ngx_chat_user_t  *u;

    user = &cc->uid;

    hash = ngx_crc32_short(user->data, user->len);

    u = ngx_chat_bus_find(user, hash);

    if (u == NULL) {
        u = ngx_alloc(sizeof(ngx_chat_user_t) + user->len, ngx_cycle->log);
        if (u == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(u, sizeof(ngx_chat_user_t));
        u->node.key = hash;
        u->id.len = user->len;
        u->id.data = u->data;
        ngx_memcpy(u->data, user->data, user->len);
        ngx_queue_init(&u->conns);

        ngx_rbtree_insert(&ngx_chat_worker->users, &u->node);
        ngx_chat_worker->nusers++;

        ngx_chat_bus_subscribe(u);
    }

    ngx_queue_insert_tail(&u->conns, &cc->queue);
    u->nconns++;
    cc->user = u;
    cc->registered = 1;

    return NGX_OK;
}


void
ngx_chat_bus_leave(ngx_chat_conn_t *cc)
{
    u_char            buf[256];
    ngx_str_t         channel;
    ngx_chat_user_t  *u;

    if (!cc->registered) {
        return;
    }

    cc->registered = 0;
    u = cc->user;
    cc->user = NULL;

    ngx_queue_remove(&cc->queue);
    u->nconns--;

    if (u->nconns) {
        return;
    }

    if (u->subscribed
        && ngx_chat_bus_channel(&u->id, buf, sizeof(buf), &channel) == NGX_OK)
    {
        ngx_chat_shards_unsubscribe(ngx_chat_worker->shards, channel.data,
                                    channel.len, u->sub_serial);
    }

    ngx_rbtree_delete(&ngx_chat_worker->users, &u->node);
    ngx_chat_worker->nusers--;

    ngx_chat_order_free(u);
    ngx_free(u);
}


static void
ngx_chat_bus_subscribe(ngx_chat_user_t *u)
{
    u_char     buf[256];
    ngx_str_t  channel;

    u->subscribed = 0;
    u->listening = 0;
    u->sub_serial = 0;

    if (ngx_chat_bus_channel(&u->id, buf, sizeof(buf), &channel) != NGX_OK) {
        return;
    }

    if (ngx_chat_shards_subscribe(ngx_chat_worker->shards, channel.data,
                                  channel.len, &u->sub_serial)
        == NGX_OK)
    {
        u->subscribed = 1;
    }
}


/* the serial a live subscription of u's channel has, 0: none is up */

static uint32_t
ngx_chat_bus_owner(ngx_chat_user_t *u)
{
    u_char     buf[256];
    ngx_str_t  channel;

    if (ngx_chat_bus_channel(&u->id, buf, sizeof(buf), &channel) != NGX_OK) {
        return 0;
    }

    return ngx_chat_shards_owner(ngx_chat_worker->shards, channel.data,
                                 channel.len);
}


/* the user entry of a channel name, or NULL */
static ngx_chat_user_t *
ngx_chat_bus_channel_user(u_char *channel, size_t channel_len)
{
    ngx_str_t              user;
    ngx_chat_main_conf_t  *cmcf;

    cmcf = ngx_chat_worker->cmcf;

    if (channel_len <= cmcf->redis_prefix.len + 2
        || ngx_strncmp(channel, cmcf->redis_prefix.data,
                       cmcf->redis_prefix.len) != 0
        || ngx_strncmp(channel + cmcf->redis_prefix.len, "u:", 2) != 0)
    {
        return NULL;
    }

    user.data = channel + cmcf->redis_prefix.len + 2;
    user.len = channel_len - cmcf->redis_prefix.len - 2;

    return ngx_chat_bus_find(&user, ngx_crc32_short(user.data, user.len));
}


void
ngx_chat_bus_subscribed(void *data, u_char *channel, size_t channel_len)
{
    ngx_chat_user_t  *u;

    u = ngx_chat_bus_channel_user(channel, channel_len);

    if (u && u->subscribed && !u->listening) {
        u->listening = 1;
        ngx_chat_worker->bus_handlers->listening(u);
    }
}


ngx_uint_t
ngx_chat_bus_listening(ngx_chat_conn_t *cc)
{
    uint32_t          owner;
    ngx_chat_user_t  *u;

    u = cc->user;

    if (u == NULL) {
        return !ngx_chat_worker->bus_up;
    }

    owner = ngx_chat_bus_owner(u);

    return owner == 0 || (u->listening && u->sub_serial == owner);
}


ngx_uint_t
ngx_chat_bus_polled(ngx_chat_conn_t *cc)
{
    if (cc->user == NULL) {
        return !ngx_chat_worker->bus_up;
    }

    return ngx_chat_bus_owner(cc->user) == 0;
}


ngx_chat_user_t *
ngx_chat_bus_user(ngx_str_t *id)
{
    return ngx_chat_bus_find(id, ngx_crc32_short(id->data, id->len));
}


ngx_int_t
ngx_chat_bus_fanout(u_char *users, size_t users_len, uint64_t event_id,
    ngx_str_t *exclude_user, ngx_str_t *exclude_device, ngx_str_t *order,
    u_char *json, size_t len)
{
    u_char      *p, *last;
    ngx_int_t    rc;
    ngx_str_t   *list;
    ngx_uint_t   n, max;

    last = users + users_len;

    for (max = 1, p = users; p < last; p++) {
        max += (*p == ',');
    }

    list = ngx_alloc(max * sizeof(ngx_str_t), ngx_cycle->log);
    if (list == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_chat_pg_array_parse(users, users_len, list, max, &n);

    if (rc == NGX_OK) {
        rc = ngx_chat_bus_publish_event(list, n, event_id, exclude_user,
                                        exclude_device, order, json, len);
    }

    ngx_free(list);

    return rc;
}


/*
 * Publishes an event to each user's channel.  The connection of
 * (exclude_user, exclude_device), the sender, does not get it.  order is
 * "<chat>:<seq>" for a newMessage (kept in seq order on the receiving
 * side), empty otherwise.  NGX_OK when every user's copy went to Redis or
 * to the backlog, NGX_ERROR when one was dropped.
 */
static ngx_int_t
ngx_chat_bus_publish_event(ngx_str_t *users, ngx_uint_t n, uint64_t event_id,
    ngx_str_t *exclude_user, ngx_str_t *exclude_device, ngx_str_t *order,
    u_char *json, size_t len)
{
    u_char      *msg, *p, *body;
    u_char       buf[256];
    size_t       size;
    uint64_t     commit;
    ngx_int_t    rc;
    ngx_str_t    channel;
    ngx_uint_t   i, skip;

    if (n == 0) {
        return NGX_OK;
    }

    size = sizeof("e||||@") + 2 * NGX_INT64_LEN + exclude_device->len
           + order->len + len;

    msg = ngx_alloc(size, ngx_cycle->log);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    /* the commit is a moment ago: its result is what brought us here */
    commit = ngx_chat_metrics_now();

    /* two variants: with the sender's device to skip, and without */

    p = ngx_sprintf(msg, "e|%uL|", event_id);
    body = p;

    for (i = 0; i < n; i++) {

        if (ngx_chat_bus_channel(&users[i], buf, sizeof(buf), &channel)
            != NGX_OK)
        {
            rc = NGX_ERROR;
            continue;
        }

        skip = (exclude_user->len == users[i].len
                && ngx_strncmp(exclude_user->data, users[i].data,
                               users[i].len) == 0);

        p = body;

        if (skip) {
            p = ngx_cpymem(p, exclude_device->data, exclude_device->len);
        }

        *p++ = '|';
        p = ngx_cpymem(p, order->data, order->len);
        p = ngx_sprintf(p, "@%uL|", commit);
        p = ngx_cpymem(p, json, len);

        if (ngx_chat_bus_publish(channel.data, channel.len, msg, p - msg)
            != NGX_OK)
        {
            rc = NGX_ERROR;
        }
    }

    ngx_free(msg);

    return rc;
}


void
ngx_chat_bus_published_add(uint64_t id)
{
    if (ngx_chat_bus_sent == NULL) {
        ngx_chat_bus_sent = ngx_calloc(NGX_CHAT_BUS_SENT_MAX
                                       * sizeof(uint64_t), ngx_cycle->log);
        if (ngx_chat_bus_sent == NULL) {
            return;
        }
    }

    ngx_chat_bus_sent[ngx_chat_bus_sent_next] = id;
    ngx_chat_bus_sent_next = (ngx_chat_bus_sent_next + 1)
                             % NGX_CHAT_BUS_SENT_MAX;
}


/* a linear scan: only duplicate sends ask, and they are rare */

ngx_uint_t
ngx_chat_bus_published(uint64_t id)
{
    ngx_uint_t  i;

    if (ngx_chat_bus_sent == NULL || id == 0) {
        return 0;
    }

    for (i = 0; i < NGX_CHAT_BUS_SENT_MAX; i++) {
        if (ngx_chat_bus_sent[i] == id) {
            return 1;
        }
    }

    return 0;
}


/* NGX_OK: handed to Redis or kept in the backlog; NGX_ERROR: dropped */

static ngx_int_t
ngx_chat_bus_publish(u_char *channel, size_t channel_len, u_char *msg,
    size_t len)
{
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;

    /*
     * One Redis: the backlog keeps the publishes in order.  On a cluster
     * only the shards that are down hold theirs back: the backlog is
     * retried as a whole and each entry leaves when its shard takes it
     * (its receivers poll meanwhile, and drain when they subscribe again).
     */

    if ((ngx_queue_empty(&w->backlog)
         || ngx_chat_shards_cluster(w->shards))
        && ngx_chat_shards_publish(w->shards, channel, channel_len, msg, len)
           == NGX_OK)
    {
        return NGX_OK;
    }

    return ngx_chat_bus_backlog_add(channel, channel_len, msg, len);
}


/* NGX_OK: kept to be published again; NGX_ERROR: dropped */

static ngx_int_t
ngx_chat_bus_backlog_add(u_char *channel, size_t channel_len, u_char *msg,
    size_t len)
{
    ngx_chat_worker_t   *w;
    ngx_chat_bus_msg_t  *m;

    w = ngx_chat_worker;

    if (w->backlog_bytes + len > NGX_CHAT_BUS_BACKLOG_MAX) {
        /* the inbox still has it: devices get it on their next drain */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "chat: publish backlog full");
        return NGX_ERROR;
    }

    m = ngx_alloc(sizeof(ngx_chat_bus_msg_t) + channel_len + len,
                  ngx_cycle->log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->channel_len = channel_len;
    m->len = len;
    ngx_memcpy(ngx_cpymem(m->data, channel, channel_len), msg, len);

    ngx_queue_insert_tail(&w->backlog, &m->queue);
    w->backlog_bytes += len;

    return NGX_OK;
}


/*
 * A shard answered a publish -MOVED (its slot moved, our map was stale):
 * the receivers now listen on another primary.  Kept and published again
 * by the next ngx_chat_bus_flush(), after the map was read again, as a
 * replay ("r"): a receiver that drained meanwhile has it already.
 */

void
ngx_chat_bus_bounced(void *data, u_char *channel, size_t channel_len,
    u_char *msg, size_t len)
{
    if (ngx_chat_worker == NULL) {
        return;
    }

    (void) ngx_chat_bus_backlog_add(channel, channel_len, msg, len);
}


void
ngx_chat_bus_flush(void)
{
    ngx_uint_t           cluster;
    ngx_queue_t         *q, *next;
    ngx_chat_worker_t   *w;
    ngx_chat_bus_msg_t  *m;

    w = ngx_chat_worker;
    cluster = ngx_chat_shards_cluster(w->shards);

    for (q = ngx_queue_head(&w->backlog);
         q != ngx_queue_sentinel(&w->backlog);
         q = next)
    {
        next = ngx_queue_next(q);
        m = ngx_queue_data(q, ngx_chat_bus_msg_t, queue);

        /*
         * "r": a replay.  Receivers that polled their inboxes meanwhile
         * have it already (it is at or below their drain position).
         */
        if (m->data[m->channel_len] == 'e') {
            m->data[m->channel_len] = 'r';
        }

        if (ngx_chat_shards_publish(w->shards, m->data, m->channel_len,
                                    m->data + m->channel_len, m->len)
            != NGX_OK)
        {
            if (cluster) {
                continue;
            }

            return;
        }

        ngx_queue_remove(q);
        w->backlog_bytes -= m->len;
        ngx_free(m);
    }
}


void
ngx_chat_bus_exit(void)
{
    ngx_queue_t        *q;
    ngx_chat_worker_t  *w;

    w = ngx_chat_worker;

    while (!ngx_queue_empty(&w->backlog)) {
        q = ngx_queue_head(&w->backlog);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_chat_bus_msg_t, queue));
    }

    w->backlog_bytes = 0;

    if (ngx_chat_bus_sent) {
        ngx_free(ngx_chat_bus_sent);
        ngx_chat_bus_sent = NULL;
    }
}


void
ngx_chat_bus_kick(ngx_str_t *user, ngx_str_t *device, ngx_uint_t code,
    ngx_chat_conn_t *keep)
{
    u_char            *p;
    u_char             buf[256], msg[256];
    size_t             klen;
    ngx_str_t          channel;
    ngx_chat_user_t   *u;
    u_char             ident[NGX_CHAT_BUS_IDENTITY_LEN];

    klen = keep ? ngx_chat_bus_identity(keep, ident) : 0;

    /* at once on this worker, then everywhere else through Redis */

    u = ngx_chat_bus_find(user, ngx_crc32_short(user->data, user->len));
    if (u) {
        ngx_chat_bus_kick_local(u, device, code, ident, klen);
    }

    if (ngx_chat_bus_channel(user, buf, sizeof(buf), &channel) != NGX_OK) {
        return;
    }

    p = ngx_snprintf(msg, sizeof(msg), "k|%V|%ui|", device, code);
    p = ngx_cpymem(p, ident, klen);

    (void) ngx_chat_bus_publish(channel.data, channel.len, msg, p - msg);
}


void
ngx_chat_bus_message(void *data, u_char *channel, size_t channel_len,
    u_char *msg, size_t len)
{
    u_char           *p, *last, *f[3];
    ngx_str_t         device;
    ngx_int_t         code;
    ngx_uint_t        i;
    ngx_chat_user_t  *u;

    u = ngx_chat_bus_channel_user(channel, channel_len);
    if (u == NULL) {
        return;
    }

    /* split "x|a|b|rest" at its first three bars */

    p = msg;
    last = msg + len;

    for (i = 0; i < 3; i++) {
        p = ngx_strlchr(p, last, '|');
        if (p == NULL) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "chat: malformed bus message on \"%*s\"",
                          channel_len, channel);
            return;
        }

        f[i] = ++p;
    }

    if (msg[0] == 'e' || msg[0] == 'r') {
        ngx_chat_bus_deliver(u, msg, len);
        return;
    }

    if (msg[0] == 'k') {
        device.data = f[0];
        device.len = f[1] - f[0] - 1;
        code = ngx_atoi(f[1], f[2] - f[1] - 1);

        if (code < NGX_CHAT_CLOSE_NORMAL || code > NGX_CHAT_CLOSE_APP_MAX) {
            return;
        }

        ngx_chat_bus_kick_local(u, &device, code, f[2], last - f[2]);
    }
}


static void
ngx_chat_bus_deliver(ngx_chat_user_t *u, u_char *p, size_t len)
{
    u_char     *last, *id, *skip, *ord, *json, *at;
    off_t       t;
    uint64_t    event_id, chat, seq;
    ngx_int_t   n;
    ngx_str_t   device;

    last = p + len;

    id = p + 2;
    skip = ngx_strlchr(id, last, '|') + 1;
    ord = ngx_strlchr(skip, last, '|') + 1;

    if (ord < last && *ord == '{') {
        /* no order field (an older gateway) */
        json = ord;
        ord = NULL;

    } else {
        json = ngx_strlchr(ord, last, '|');
        if (json == NULL) {
            return;
        }

        json++;
    }

    n = ngx_atoof(id, skip - id - 1);
    if (n <= 0) {
        return;
    }

    event_id = (uint64_t) n;
    device.data = skip;
    device.len = (ord ? ord : json) - skip - 1;

    /* the commit time, for what is delivered live from here */

    at = ord ? ngx_strlchr(ord, json - 1, '@') : NULL;
    t = at ? ngx_atoof(at + 1, json - at - 2) : 0;
    ngx_chat_worker->event_commit = (p[0] == 'e' && t > 0) ? (uint64_t) t : 0;

    if (ord
        && ngx_chat_order_parse(ord, (at ? at : json - 1) - ord, &chat, &seq)
           == NGX_OK)
    {
        ngx_chat_order_event(u, chat, seq, event_id, &device, json,
                             last - json, p[0] == 'r',
                             ngx_chat_bus_deliver_event);

    } else {
        ngx_chat_bus_deliver_event(u, event_id, &device, json, last - json,
                                   p[0] == 'r');
    }

    ngx_chat_worker->event_commit = 0;
}


void
ngx_chat_bus_deliver_event(ngx_chat_user_t *u, uint64_t event_id,
    ngx_str_t *device, u_char *json, size_t len, ngx_uint_t replay)
{
    ngx_queue_t      *q;
    ngx_chat_conn_t  *cc;

    /*
     * Delivering never changes the list: a connection dropped on the way
     * (output limit) is torn down from a posted event.
     */

    for (q = ngx_queue_head(&u->conns);
         q != ngx_queue_sentinel(&u->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, queue);

        if (device->len == cc->device.len
            && ngx_strncmp(device->data, cc->device.data, device->len) == 0)
        {
            continue;
        }

        ngx_chat_worker->bus_handlers->event(cc, event_id, json, len,
                                             replay);
    }
}


static void
ngx_chat_bus_kick_local(ngx_chat_user_t *u, ngx_str_t *device,
    ngx_uint_t code, u_char *keep, size_t keep_len)
{
    u_char            *dash;
    size_t             n;
    uint64_t           serial;
    ngx_queue_t       *q;
    ngx_chat_conn_t   *cc;
    u_char             ident[NGX_CHAT_BUS_IDENTITY_LEN];

    /*
     * A kick that keeps a connection closes only the connections that
     * came before it: the kick of a connection can reach a worker after
     * the same device connected again, and must not close the newer one.
     * Serials grow with the wall clock (see ngx_chat_ws_takeover), so
     * "before" is exact on one worker and as good as the clocks across workers.
     */

    serial = 0;

    if (keep_len) {
        dash = ngx_strlchr(keep, keep + keep_len, '-');
        if (dash) {
            serial = (uint64_t) ngx_atoof(dash + 1,
                                          keep + keep_len - dash - 1);
        }
    }

    /* ngx_chat_ws_close() posts its teardown: the list stays as it is */

    for (q = ngx_queue_head(&u->conns);
         q != ngx_queue_sentinel(&u->conns);
         q = ngx_queue_next(q))
    {
        cc = ngx_queue_data(q, ngx_chat_conn_t, queue);

        if (!ngx_chat_conn_active(cc)
            || device->len != cc->device.len
            || ngx_strncmp(device->data, cc->device.data, device->len) != 0)
        {
            continue;
        }

        if (keep_len) {
            n = ngx_chat_bus_identity(cc, ident);

            if ((keep_len == n && ngx_strncmp(keep, ident, n) == 0)
                || cc->serial > serial)
            {
                continue;
            }
        }

        ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                      "chat: closing connection with %ui", code);

        ngx_chat_ws_close(cc, code,
                          code == NGX_CHAT_CLOSE_REPLACED
                          ? "device connected elsewhere" : "device removed");
    }
}


static size_t
ngx_chat_bus_identity(ngx_chat_conn_t *cc, u_char *buf)
{
    return ngx_sprintf(buf, "%016xL-%uL", ngx_chat_worker->instance,
                       cc->serial)
           - buf;
}


/*
 * A subscriber came up or went down, or the slot map changed: every user
 * whose live subscriber is not the one its channel was subscribed on is
 * subscribed again (or, with no subscriber up, left to the poll) and its
 * devices drained: what was published meanwhile is in the inboxes.
 */

void
ngx_chat_bus_state(void *data, ngx_uint_t up)
{
    ngx_rbtree_t  *tree;

    tree = &ngx_chat_worker->users;

    if (!up && ngx_chat_worker->bus_up) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat: redis subscriber down, inboxes are polled "
                      "every %M ms, at most %ui connections at a time",
                      ngx_chat_worker->cmcf->poll_interval,
                      ngx_chat_worker->cmcf->poll_batch);
    }

    if (up && !ngx_chat_worker->bus_up && ngx_chat_worker->bus_was_up) {
        ngx_chat_metrics_count(NGX_CHAT_C_REDIS_RECONN, 1);
    }

    if (up) {
        ngx_chat_worker->bus_was_up = 1;
    }

    ngx_chat_worker->bus_up = up;
    ngx_chat_metrics_gauge(NGX_CHAT_G_REDIS_UP, up ? 1 : 0);
    ngx_chat_metrics_gauge(NGX_CHAT_G_POLLING, up ? 0 : 1);

    if (tree->root != tree->sentinel) {
        ngx_chat_bus_resubscribe(tree->root, tree->sentinel);
    }
}


static void
ngx_chat_bus_resubscribe(ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    uint32_t          owner;
    ngx_chat_user_t  *u;

    if (node->left != sentinel) {
        ngx_chat_bus_resubscribe(node->left, sentinel);
    }

    u = (ngx_chat_user_t *) node;
    owner = ngx_chat_bus_owner(u);

    /*
     * When a slot moves between two live shards, the old primary has
     * unsubscribed the channel itself ("sunsubscribe"): nothing to leave.
     */

    if (owner != u->sub_serial || (owner && !u->subscribed)) {
        ngx_chat_bus_subscribe(u);

        if (u->subscribed) {
            ngx_chat_worker->bus_handlers->resync(u);
        }
    }

    if (node->right != sentinel) {
        ngx_chat_bus_resubscribe(node->right, sentinel);
    }
}


static ngx_int_t
ngx_chat_bus_channel(ngx_str_t *user, u_char *buf, size_t size,
    ngx_str_t *channel)
{
    ngx_str_t  *prefix;

    prefix = &ngx_chat_worker->cmcf->redis_prefix;

    if (prefix->len + 2 + user->len > size) {
        return NGX_ERROR;
    }

    channel->data = buf;
    channel->len = ngx_sprintf(buf, "%Vu:%V", prefix, user) - buf;

    return NGX_OK;
}


static ngx_chat_user_t *
ngx_chat_bus_find(ngx_str_t *id, uint32_t hash)
{
    ngx_int_t           rc;
    ngx_chat_user_t    *u;
    ngx_rbtree_node_t  *node, *sentinel;

    node = ngx_chat_worker->users.root;
    sentinel = ngx_chat_worker->users.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        u = (ngx_chat_user_t *) node;

        rc = ngx_memn2cmp(id->data, u->id.data, id->len, u->id.len);

        if (rc == 0) {
            return u;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_chat_bus_insert_value(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_chat_user_t     *u, *t;
    ngx_rbtree_node_t  **p;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            u = (ngx_chat_user_t *) node;
            t = (ngx_chat_user_t *) temp;

            p = (ngx_memn2cmp(u->id.data, t->id.data, u->id.len, t->id.len)
                 < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
