
/*
 * ngx_chat_shards.h: Redis for one worker, as one server or as a Redis
 * Cluster.  Routes each channel (and each key) to the node that owns its
 * hash slot, and tells its owner which channels are live.
 *
 * A single Redis is one node that owns every slot and speaks the classic
 * PUBLISH/SUBSCRIBE.  In a cluster every primary is a node (a command and
 * a subscriber context, ngx_chat_redis.c) speaking SPUBLISH/SSUBSCRIBE;
 * the slot map is read with CLUSTER SLOTS and read again on -MOVED, -ASK,
 * -CLUSTERDOWN, -TRYAGAIN and whenever a primary's subscriber goes down,
 * until every slot has a primary whose subscriber is up.
 *
 * Subscriptions are identified by the serial of the subscriber connection
 * they were made on: a subscriber gets a new serial each time it comes up,
 * 0 while it is down.  ngx_chat_shards_owner() gives the serial that the
 * channel's subscription must have to be live; when it differs from the
 * one the owner made its subscription on, the owner subscribes again.
 */


#ifndef _NGX_CHAT_SHARDS_H_INCLUDED_
#define _NGX_CHAT_SHARDS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_chat_redis.h"


typedef struct ngx_chat_shards_s  ngx_chat_shards_t;


/*
 * seeds: n numeric addresses (as ngx_chat_redis_create() takes them);
 * cluster: 0 for one Redis (n must be 1); timeout: the liveness deadline
 * of every node's links (ngx_chat_redis_create()).  Starts connecting;
 * call in init_process.  on_state(data, up) comes whenever a subscriber
 * came up or went down or the slot map changed: up is
 * ngx_chat_shards_up(); the owner then compares its subscriptions with
 * ngx_chat_shards_owner().
 * on_bounce(data, channel, msg): a publish that a primary refused because
 * the slot is not (or no longer) its own; publish it again later (the map
 * is being read again).  Callbacks must not call ngx_chat_shards_destroy().
 * NULL on no memory.
 */
ngx_chat_shards_t *ngx_chat_shards_create(ngx_cycle_t *cycle,
    ngx_str_t *seeds, ngx_uint_t n, ngx_uint_t cluster, ngx_msec_t timeout,
    ngx_chat_redis_message_pt on_message,
    ngx_chat_redis_subscribed_pt on_subscribed,
    ngx_chat_redis_state_pt on_state, ngx_chat_redis_message_pt on_bounce,
    void *data);

/* the serial of the live subscriber for channel, 0 if none is up */
uint32_t ngx_chat_shards_owner(ngx_chat_shards_t *sh, u_char *channel,
    size_t len);

/*
 * On the channel's live subscriber: NGX_OK and *serial set, NGX_DECLINED
 * when it is down (or the slot has no known primary), NGX_ERROR when
 * hiredis refused.  One subscription per channel per serial.
 */
ngx_int_t ngx_chat_shards_subscribe(ngx_chat_shards_t *sh, u_char *channel,
    size_t len, uint32_t *serial);

/*
 * On the subscriber with that serial, if it is up and the channel's slot
 * is still its own (else Redis has dropped the subscription already)
 */
void ngx_chat_shards_unsubscribe(ngx_chat_shards_t *sh, u_char *channel,
    size_t len, uint32_t serial);

/* as ngx_chat_redis_publish(), on the channel's primary */
ngx_int_t ngx_chat_shards_publish(ngx_chat_shards_t *sh, u_char *channel,
    size_t channel_len, u_char *msg, size_t len);

/* as ngx_chat_redis_command(), on the primary of key's slot */
ngx_int_t ngx_chat_shards_command(ngx_chat_shards_t *sh, u_char *key,
    size_t key_len, ngx_chat_redis_reply_pt cb, void *data, int argc,
    const char **argv, const size_t *argvlen);

/* every slot has a primary whose subscriber is up */
ngx_uint_t ngx_chat_shards_up(ngx_chat_shards_t *sh);

ngx_uint_t ngx_chat_shards_cluster(ngx_chat_shards_t *sh);

/* frees every node (for exit_process); sh may be NULL */
void ngx_chat_shards_destroy(ngx_chat_shards_t *sh);


#endif /* _NGX_CHAT_SHARDS_H_INCLUDED_ */
