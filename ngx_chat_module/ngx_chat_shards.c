
/*
 * ngx_chat_shards.c: one Redis or a Redis Cluster for one worker (see
 * ngx_chat_shards.h): the nodes, the slot map and the routing.
 *
 * Nodes: one ngx_chat_redis_t (a command and a subscriber context) per
 * seed address and per primary named by the slot map, in a fixed table of
 * NGX_CHAT_SHARDS_MAX nodes.  The map is 16384 bytes, a node's index + 1
 * per slot (0: no known primary).  A node that owns no slot and is not a
 * seed (a primary that failed and was replaced) is freed by the map timer,
 * never from inside a hiredis callback; seeds stay, so that the map can
 * always be read again from one of them.
 *
 * The map is read from the command context of one node after another
 * (round robin over those that are up) with CLUSTER SLOTS: every 50 ms
 * until a map covers every slot, every 100 ms while it is stale (an error
 * reply said so, or a primary's subscriber is down: during a failover the
 * map changes only once a replica is promoted), every 5 s otherwise.
 *
 * Failover, as the owner sees it: the primary of some slots dies, its
 * subscriber reports down (serial 0), ngx_chat_shards_owner() is 0 for
 * the channels of those slots only, and the owner polls those users'
 * inboxes.  Once CLUSTER SLOTS names the promoted replica, a node is made
 * for it; when its subscriber is up its serial is the new owner of those
 * channels, and the owner subscribes them there and drains once each
 * subscription is confirmed.  Costs: a CLUSTER SLOTS reply (~100 bytes per
 * shard) per read; routing a channel is one CRC16 over its name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>

#include "ngx_chat_shards.h"
#include "ngx_chat_crc16.h"


#define NGX_CHAT_SHARDS_MAX       64        /* nodes per worker */
#define NGX_CHAT_SHARDS_EMPTY     50        /* ms, map incomplete */
#define NGX_CHAT_SHARDS_STALE     100       /* ms, map may be stale */
#define NGX_CHAT_SHARDS_PERIOD    5000      /* ms, map looks right */


typedef struct {
    ngx_chat_shards_t          *sh;
    ngx_chat_redis_t           *rd;
    uint32_t                    serial;    /* subscriber up; 0: down */
    ngx_uint_t                  slots;     /* owned in the current map */
    ngx_uint_t                  index;     /* in sh->nodes */
    unsigned                    seed:1;
    ngx_str_t                   addr;      /* "ip:port" */
    u_char                      data[NGX_SOCKADDR_STRLEN + 1];
} ngx_chat_shards_node_t;


struct ngx_chat_shards_s {
    ngx_cycle_t                *cycle;
    ngx_log_t                  *log;
    ngx_chat_shards_node_t     *nodes[NGX_CHAT_SHARDS_MAX];
    ngx_uint_t                  nnodes;    /* entries used, some NULL */
    u_char                     *map;       /* slot -> node index + 1 */
    u_char                     *next;      /* the map being read */
    u_char                     *maps;      /* both (they swap), to free */
    ngx_event_t                 timer;     /* map reads */
    ngx_uint_t                  asked;     /* round robin of map reads */
    uint32_t                    serial;    /* last subscriber serial */
    ngx_msec_t                  timeout;   /* nodes' liveness deadline */
    ngx_chat_redis_message_pt   on_message;
    ngx_chat_redis_subscribed_pt  on_subscribed;
    ngx_chat_redis_state_pt     on_state;
    ngx_chat_redis_message_pt   on_bounce;
    void                       *data;
    unsigned                    cluster:1;
    unsigned                    complete:1;  /* every slot has a node */
    unsigned                    stale:1;     /* read the map soon */
    unsigned                    querying:1;  /* CLUSTER SLOTS is out */
    unsigned                    destroying:1;
};


static ngx_chat_shards_node_t *ngx_chat_shards_node(ngx_chat_shards_t *sh,
    ngx_str_t *addr, ngx_uint_t seed);
static void ngx_chat_shards_free_node(ngx_chat_shards_t *sh, ngx_uint_t i);
static ngx_chat_shards_node_t *ngx_chat_shards_route(ngx_chat_shards_t *sh,
    u_char *key, size_t len);
static void ngx_chat_shards_message(void *data, u_char *channel,
    size_t channel_len, u_char *msg, size_t len);
static void ngx_chat_shards_subscribed(void *data, u_char *channel,
    size_t channel_len);
static void ngx_chat_shards_state(void *data, ngx_uint_t up);
static void ngx_chat_shards_error(void *data, const char *err);
static void ngx_chat_shards_bounce(void *data, u_char *channel,
    size_t channel_len, u_char *msg, size_t len);
static void ngx_chat_shards_schedule(ngx_chat_shards_t *sh);
static void ngx_chat_shards_timer(ngx_event_t *ev);
static void ngx_chat_shards_slots(void *data, void *reply);
static ngx_int_t ngx_chat_shards_parse(ngx_chat_shards_t *sh,
    redisReply *reply);
static void ngx_chat_shards_apply(ngx_chat_shards_t *sh);


ngx_chat_shards_t *
ngx_chat_shards_create(ngx_cycle_t *cycle, ngx_str_t *seeds, ngx_uint_t n,
    ngx_uint_t cluster, ngx_msec_t timeout,
    ngx_chat_redis_message_pt on_message,
    ngx_chat_redis_subscribed_pt on_subscribed,
    ngx_chat_redis_state_pt on_state, ngx_chat_redis_message_pt on_bounce,
    void *data)
{
    ngx_uint_t          i;
    ngx_chat_shards_t  *sh;

    sh = ngx_calloc(sizeof(ngx_chat_shards_t), cycle->log);
    if (sh == NULL) {
        return NULL;
    }

    sh->cycle = cycle;
    sh->log = cycle->log;
    sh->cluster = cluster ? 1 : 0;
    sh->timeout = timeout;
    sh->on_message = on_message;
    sh->on_subscribed = on_subscribed;
    sh->on_state = on_state;
    sh->on_bounce = on_bounce;
    sh->data = data;

    sh->timer.handler = ngx_chat_shards_timer;
    sh->timer.data = sh;
    sh->timer.log = sh->log;
    sh->timer.cancelable = 1;

    if (cluster) {
        sh->maps = ngx_calloc(2 * NGX_CHAT_CRC16_SLOTS, cycle->log);
        if (sh->maps == NULL) {
            ngx_free(sh);
            return NULL;
        }

        sh->map = sh->maps;
        sh->next = sh->maps + NGX_CHAT_CRC16_SLOTS;
    }

    for (i = 0; i < n && i < NGX_CHAT_SHARDS_MAX; i++) {
        if (ngx_chat_shards_node(sh, &seeds[i], 1) == NULL) {
            ngx_chat_shards_destroy(sh);
            return NULL;
        }
    }

    if (cluster) {
        ngx_add_timer(&sh->timer, NGX_CHAT_SHARDS_EMPTY);
    }

    return sh;
}


void
ngx_chat_shards_destroy(ngx_chat_shards_t *sh)
{
    ngx_uint_t  i;

    if (sh == NULL) {
        return;
    }

    /* pending CLUSTER SLOTS callbacks run now, and see destroying */
    sh->destroying = 1;

    if (sh->timer.timer_set) {
        ngx_del_timer(&sh->timer);
    }

    for (i = 0; i < sh->nnodes; i++) {
        ngx_chat_shards_free_node(sh, i);
    }

    if (sh->maps) {
        ngx_free(sh->maps);
    }

    ngx_free(sh);
}


/* the node of addr, made (and connecting) if new; NULL: table full, OOM */

static ngx_chat_shards_node_t *
ngx_chat_shards_node(ngx_chat_shards_t *sh, ngx_str_t *addr,
    ngx_uint_t seed)
{
    ngx_uint_t               i, slot;
    ngx_chat_shards_node_t  *node;

    slot = NGX_CHAT_SHARDS_MAX;

    for (i = 0; i < sh->nnodes; i++) {
        node = sh->nodes[i];

        if (node == NULL) {
            if (slot == NGX_CHAT_SHARDS_MAX) {
                slot = i;
            }

            continue;
        }

        if (node->addr.len == addr->len
            && ngx_strncmp(node->addr.data, addr->data, addr->len) == 0)
        {
            node->seed |= seed;
            return node;
        }
    }

    if (slot == NGX_CHAT_SHARDS_MAX) {
        if (sh->nnodes == NGX_CHAT_SHARDS_MAX) {
            ngx_log_error(NGX_LOG_ERR, sh->log, 0,
                          "redis cluster: more than %d nodes, \"%V\" "
                          "ignored", NGX_CHAT_SHARDS_MAX, addr);
            return NULL;
        }

        slot = sh->nnodes;
    }

    if (addr->len > NGX_SOCKADDR_STRLEN) {
        return NULL;
    }

    node = ngx_calloc(sizeof(ngx_chat_shards_node_t), sh->log);
    if (node == NULL) {
        return NULL;
    }

    node->sh = sh;
    node->index = slot;
    node->seed = seed;
    node->addr.data = node->data;
    node->addr.len = addr->len;
    ngx_memcpy(node->data, addr->data, addr->len);

    node->rd = ngx_chat_redis_create(sh->cycle, &node->addr, sh->timeout,
                                     ngx_chat_shards_message,
                                     ngx_chat_shards_subscribed,
                                     ngx_chat_shards_state, node);
    if (node->rd == NULL) {
        ngx_free(node);
        return NULL;
    }

    if (sh->cluster) {
        ngx_chat_redis_set_sharded(node->rd, ngx_chat_shards_error,
                                   ngx_chat_shards_bounce);
    }

    sh->nodes[slot] = node;

    if (slot == sh->nnodes) {
        sh->nnodes++;
    }

    return node;
}


/* from a timer or destroy only: never inside a hiredis callback */

static void
ngx_chat_shards_free_node(ngx_chat_shards_t *sh, ngx_uint_t i)
{
    ngx_chat_shards_node_t  *node;

    node = sh->nodes[i];
    if (node == NULL) {
        return;
    }

    sh->nodes[i] = NULL;

    ngx_chat_redis_destroy(node->rd);
    ngx_free(node);
}


static ngx_chat_shards_node_t *
ngx_chat_shards_route(ngx_chat_shards_t *sh, u_char *key, size_t len)
{
    ngx_uint_t  i;

    if (!sh->cluster) {
        return sh->nodes[0];
    }

    i = sh->map[ngx_chat_crc16_slot(key, len)];

    return i ? sh->nodes[i - 1] : NULL;
}


uint32_t
ngx_chat_shards_owner(ngx_chat_shards_t *sh, u_char *channel, size_t len)
{
    ngx_chat_shards_node_t  *node;

    node = ngx_chat_shards_route(sh, channel, len);

    return node ? node->serial : 0;
}


ngx_int_t
ngx_chat_shards_subscribe(ngx_chat_shards_t *sh, u_char *channel,
    size_t len, uint32_t *serial)
{
    ngx_int_t                rc;
    ngx_chat_shards_node_t  *node;

    node = ngx_chat_shards_route(sh, channel, len);

    if (node == NULL || node->serial == 0) {
        return NGX_DECLINED;
    }

    rc = ngx_chat_redis_subscribe(node->rd, channel, len);

    if (rc == NGX_OK) {
        *serial = node->serial;
    }

    return rc;
}


/*
 * Only where the channel still lives: when its slot moved, the old
 * primary unsubscribed us itself (a "sunsubscribe" push), and would answer
 * -MOVED, which drops the subscriber with every other channel on it.
 */

void
ngx_chat_shards_unsubscribe(ngx_chat_shards_t *sh, u_char *channel,
    size_t len, uint32_t serial)
{
    ngx_chat_shards_node_t  *node;

    node = ngx_chat_shards_route(sh, channel, len);

    if (serial && node && node->serial == serial) {
        (void) ngx_chat_redis_unsubscribe(node->rd, channel, len);
    }
}


ngx_int_t
ngx_chat_shards_publish(ngx_chat_shards_t *sh, u_char *channel,
    size_t channel_len, u_char *msg, size_t len)
{
    ngx_chat_shards_node_t  *node;

    node = ngx_chat_shards_route(sh, channel, channel_len);

    if (node == NULL) {
        return NGX_DECLINED;
    }

    return ngx_chat_redis_publish(node->rd, channel, channel_len, msg, len);
}


ngx_int_t
ngx_chat_shards_command(ngx_chat_shards_t *sh, u_char *key, size_t key_len,
    ngx_chat_redis_reply_pt cb, void *data, int argc, const char **argv,
    const size_t *argvlen)
{
    ngx_chat_shards_node_t  *node;

    node = ngx_chat_shards_route(sh, key, key_len);

    if (node == NULL) {
        return NGX_DECLINED;
    }

    return ngx_chat_redis_command(node->rd, cb, data, argc, argv, argvlen);
}


ngx_uint_t
ngx_chat_shards_up(ngx_chat_shards_t *sh)
{
    ngx_uint_t               i;
    ngx_chat_shards_node_t  *node;

    if (!sh->cluster) {
        return sh->nodes[0]->serial != 0;
    }

    if (!sh->complete) {
        return 0;
    }

    for (i = 0; i < sh->nnodes; i++) {
        node = sh->nodes[i];

        if (node && node->slots && node->serial == 0) {
            return 0;
        }
    }

    return 1;
}


ngx_uint_t
ngx_chat_shards_cluster(ngx_chat_shards_t *sh)
{
    return sh->cluster;
}


/* the nodes' callbacks */


static void
ngx_chat_shards_message(void *data, u_char *channel, size_t channel_len,
    u_char *msg, size_t len)
{
    ngx_chat_shards_node_t  *node = data;

    node->sh->on_message(node->sh->data, channel, channel_len, msg, len);
}


static void
ngx_chat_shards_subscribed(void *data, u_char *channel, size_t channel_len)
{
    ngx_chat_shards_node_t  *node = data;

    /*
     * A late confirmation from a primary the channel has left (its slot
     * moved) must not stand for the subscription on the new one.
     */

    if (ngx_chat_shards_route(node->sh, channel, channel_len) != node) {
        return;
    }

    node->sh->on_subscribed(node->sh->data, channel, channel_len);
}


static void
ngx_chat_shards_state(void *data, ngx_uint_t up)
{
    ngx_chat_shards_t       *sh;
    ngx_chat_shards_node_t  *node;

    node = data;
    sh = node->sh;

    if (up) {
        node->serial = ++sh->serial;

        if (sh->serial == 0) {
            /* 0 means down: skip it when the counter wraps */
            node->serial = ++sh->serial;
        }

    } else {
        node->serial = 0;

        if (sh->cluster && node->slots) {
            ngx_log_error(NGX_LOG_WARN, sh->log, 0,
                          "redis cluster: primary %V (%ui slots) is down, "
                          "reading the slot map", &node->addr, node->slots);
            sh->stale = 1;
            ngx_chat_shards_schedule(sh);
        }
    }

    if (sh->cluster && node->slots == 0) {
        /* a seed or a replaced primary: no channel of ours lives there */
        return;
    }

    sh->on_state(sh->data, ngx_chat_shards_up(sh));
}


static void
ngx_chat_shards_error(void *data, const char *err)
{
    ngx_chat_shards_t       *sh;
    ngx_chat_shards_node_t  *node;

    node = data;
    sh = node->sh;

    if (ngx_strncmp(err, "MOVED ", 6) == 0
        || ngx_strncmp(err, "ASK ", 4) == 0
        || ngx_strncmp(err, "CLUSTERDOWN", 11) == 0
        || ngx_strncmp(err, "TRYAGAIN", 8) == 0)
    {
        sh->stale = 1;
        ngx_chat_shards_schedule(sh);
    }
}


static void
ngx_chat_shards_bounce(void *data, u_char *channel, size_t channel_len,
    u_char *msg, size_t len)
{
    ngx_chat_shards_node_t  *node = data;

    /* ngx_chat_shards_error() has asked for the map already */
    node->sh->on_bounce(node->sh->data, channel, channel_len, msg, len);
}


/* the slot map */


/* brings the next map read forward to the stale period */

static void
ngx_chat_shards_schedule(ngx_chat_shards_t *sh)
{
    if (sh->destroying || ngx_exiting || ngx_terminate) {
        return;
    }

    if (sh->timer.timer_set
        && sh->timer.timer.key <= ngx_current_msec + NGX_CHAT_SHARDS_STALE)
    {
        return;
    }

    if (sh->timer.timer_set) {
        ngx_del_timer(&sh->timer);
    }

    ngx_add_timer(&sh->timer, NGX_CHAT_SHARDS_STALE);
}


static void
ngx_chat_shards_timer(ngx_event_t *ev)
{
    const char              *argv[2];
    size_t                   argvlen[2];
    ngx_uint_t               i, k;
    ngx_chat_shards_t       *sh;
    ngx_chat_shards_node_t  *node;

    sh = ev->data;

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    /* replaced primaries: their channels have moved to the new ones */

    for (i = 0; i < sh->nnodes; i++) {
        node = sh->nodes[i];

        if (node && !node->seed && node->slots == 0 && !sh->querying) {
            ngx_log_error(NGX_LOG_INFO, sh->log, 0,
                          "redis cluster: %V owns no slot, disconnecting",
                          &node->addr);
            ngx_chat_shards_free_node(sh, i);
        }
    }

    if (!sh->querying) {
        argv[0] = "CLUSTER";
        argv[1] = "SLOTS";
        argvlen[0] = sizeof("CLUSTER") - 1;
        argvlen[1] = sizeof("SLOTS") - 1;

        for (k = 0; k < sh->nnodes; k++) {
            i = (sh->asked + k) % sh->nnodes;
            node = sh->nodes[i];

            if (node
                && ngx_chat_redis_command(node->rd, ngx_chat_shards_slots,
                                          sh, 2, argv, argvlen)
                   == NGX_OK)
            {
                sh->querying = 1;
                sh->asked = i + 1;
                break;
            }
        }
    }

    ngx_add_timer(ev, !sh->complete ? NGX_CHAT_SHARDS_EMPTY
                      : sh->stale ? NGX_CHAT_SHARDS_STALE
                      : NGX_CHAT_SHARDS_PERIOD);
}


static void
ngx_chat_shards_slots(void *data, void *reply)
{
    redisReply         *r;
    ngx_chat_shards_t  *sh;

    sh = data;
    r = reply;

    if (sh->destroying) {
        return;
    }

    sh->querying = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, sh->log, 0,
                          "redis cluster: CLUSTER SLOTS failed: %s", r->str);
        }

        return;
    }

    if (ngx_chat_shards_parse(sh, r) == NGX_OK) {
        ngx_chat_shards_apply(sh);
    }
}


/*
 * CLUSTER SLOTS: [[start, end, [ip, port, id...], replicas...], ...].
 * Fills sh->next; makes nodes for primaries not seen before.
 */

static ngx_int_t
ngx_chat_shards_parse(ngx_chat_shards_t *sh, redisReply *r)
{
    u_char                  *p;
    ngx_str_t                addr;
    ngx_uint_t               i, ipv6;
    long long                start, end;
    redisReply              *e, *m;
    ngx_chat_shards_node_t  *node;
    u_char                   buf[NGX_SOCKADDR_STRLEN + 1];

    ngx_memzero(sh->next, NGX_CHAT_CRC16_SLOTS);

    for (i = 0; i < r->elements; i++) {
        e = r->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2)
        {
            goto invalid;
        }

        start = e->element[0]->integer;
        end = e->element[1]->integer;
        m = e->element[2];

        if (start < 0 || end < start || end >= NGX_CHAT_CRC16_SLOTS
            || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_INTEGER
            || m->element[0]->len == 0
            || m->element[0]->len > NGX_SOCKADDR_STRLEN - 10)
        {
            goto invalid;
        }

        ipv6 = (ngx_strlchr((u_char *) m->element[0]->str,
                            (u_char *) m->element[0]->str
                            + m->element[0]->len, ':')
                != NULL);

        p = ngx_sprintf(buf, ipv6 ? "[%*s]:%L" : "%*s:%L",
                        m->element[0]->len, m->element[0]->str,
                        m->element[1]->integer);

        addr.data = buf;
        addr.len = p - buf;

        if (ngx_chat_redis_check_addr(&addr) != NGX_OK) {
            goto invalid;
        }

        node = ngx_chat_shards_node(sh, &addr, 0);
        if (node == NULL) {
            return NGX_ERROR;
        }

        for ( /* void */ ; start <= end; start++) {
            sh->next[start] = (u_char) (node->index + 1);
        }
    }

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_ERR, sh->log, 0,
                  "redis cluster: unexpected CLUSTER SLOTS reply");
    return NGX_ERROR;
}


/*
 * Takes the map just read: counts each node's slots, and tells the owner
 * when a slot changed hands, so that it moves those subscriptions.
 */

static void
ngx_chat_shards_apply(ngx_chat_shards_t *sh)
{
    u_char                  *tmp;
    ngx_uint_t               i, changed, missing, shards, level;
    ngx_chat_shards_node_t  *node;

    changed = (ngx_memcmp(sh->map, sh->next, NGX_CHAT_CRC16_SLOTS) != 0);

    tmp = sh->map;
    sh->map = sh->next;
    sh->next = tmp;

    for (i = 0; i < sh->nnodes; i++) {
        if (sh->nodes[i]) {
            sh->nodes[i]->slots = 0;
        }
    }

    missing = 0;

    for (i = 0; i < NGX_CHAT_CRC16_SLOTS; i++) {
        if (sh->map[i] == 0 || sh->nodes[sh->map[i] - 1] == NULL) {
            sh->map[i] = 0;
            missing++;
            continue;
        }

        sh->nodes[sh->map[i] - 1]->slots++;
    }

    sh->complete = (missing == 0);
    sh->stale = !ngx_chat_shards_up(sh);

    if (!changed) {
        return;
    }

    shards = 0;

    for (i = 0; i < sh->nnodes; i++) {
        node = sh->nodes[i];

        if (node && node->slots) {
            shards++;
            ngx_log_error(NGX_LOG_INFO, sh->log, 0,
                          "redis cluster: primary %V owns %ui slots%s",
                          &node->addr, node->slots,
                          node->serial ? "" : " (connecting)");
        }
    }

    level = missing ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(level, sh->log, 0,
                  "redis cluster: slot map of %ui primaries, %ui slots "
                  "without one", shards, missing);

    sh->on_state(sh->data, ngx_chat_shards_up(sh));
}
