
/*
 * ngx_chat_redis.h: Redis for one worker: a command context (PUBLISH and
 * other commands) and a subscriber context, both hiredis async contexts
 * driven by nginx's event loop, both reconnecting by themselves.
 *
 * The subscriber does not remember channels: after every (re)connect it
 * reports "up" and its owner subscribes again to what it needs.
 */


#ifndef _NGX_CHAT_REDIS_H_INCLUDED_
#define _NGX_CHAT_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


typedef struct ngx_chat_redis_s  ngx_chat_redis_t;


/* a message arrived on a subscribed channel */
typedef void (*ngx_chat_redis_message_pt)(void *data, u_char *channel,
    size_t channel_len, u_char *msg, size_t len);

/* the subscriber confirmed a SUBSCRIBE: messages of channel come now */
typedef void (*ngx_chat_redis_subscribed_pt)(void *data, u_char *channel,
    size_t channel_len);

/* the subscriber connection came up (up = 1) or went down (up = 0) */
typedef void (*ngx_chat_redis_state_pt)(void *data, ngx_uint_t up);

/* sharded mode: an error reply (-MOVED..., -CLUSTERDOWN...) came */
typedef void (*ngx_chat_redis_error_pt)(void *data, const char *err);

/* reply of ngx_chat_redis_command(); reply is a redisReply *, or NULL */
typedef void (*ngx_chat_redis_reply_pt)(void *data, void *reply);


/* the shortest liveness deadline: two PING periods (ms) */
#define NGX_CHAT_REDIS_MIN_TIMEOUT  6000


/*
 * addr: "ip:port", "[ipv6]:port" or "unix:/path"; host names are refused
 * (hiredis would resolve them with a blocking lookup).  timeout: a context
 * from which nothing at all (no reply, no message) has been read for this
 * long is dropped and reconnected; at least NGX_CHAT_REDIS_MIN_TIMEOUT
 * (Redis is PINGed every 3 s, so a healthy idle link is read from at
 * least that often).  Starts connecting
 * both contexts; call in init_process.  NULL on a bad address or no memory.
 * Callbacks run from the event loop and must not call
 * ngx_chat_redis_destroy().  on_state(data, 1) comes after every
 * (re)connect of the subscriber: subscribe there, once per channel
 * (a second SUBSCRIBE to one channel confuses hiredis 0.14, issue #256).
 */
ngx_chat_redis_t *ngx_chat_redis_create(ngx_cycle_t *cycle, ngx_str_t *addr,
    ngx_msec_t timeout, ngx_chat_redis_message_pt on_message,
    ngx_chat_redis_subscribed_pt on_subscribed,
    ngx_chat_redis_state_pt on_state, void *data);

/*
 * Makes rd one node of a Redis Cluster: SPUBLISH, SSUBSCRIBE and
 * SUNSUBSCRIBE instead of the classic commands, on_subscribed() for each
 * "ssubscribe" confirmation, on_message() for each "smessage",
 * on_error(data, text) for every error reply (an error on the subscriber
 * also drops it: it comes back and reports on_state(1) again), and
 * on_bounce(data, channel, msg) for a publish answered -MOVED, -ASK,
 * -TRYAGAIN or -CLUSTERDOWN (not delivered: to publish again).  Call right
 * after ngx_chat_redis_create(), before returning to the event loop.
 */
void ngx_chat_redis_set_sharded(ngx_chat_redis_t *rd,
    ngx_chat_redis_error_pt on_error, ngx_chat_redis_message_pt on_bounce);

/*
 * NGX_OK when queued on a live subscriber, NGX_DECLINED when it is down,
 * NGX_ERROR when hiredis refused it (out of memory)
 */
ngx_int_t ngx_chat_redis_subscribe(ngx_chat_redis_t *rd, u_char *channel,
    size_t len);
ngx_int_t ngx_chat_redis_unsubscribe(ngx_chat_redis_t *rd, u_char *channel,
    size_t len);

/*
 * Fire and forget; commands issued in one event loop pass leave in one
 * write (pipelined).  NGX_DECLINED when the command context is down or
 * more than 100 000 commands (or 64 MB) wait for Redis; NGX_ERROR when
 * hiredis refused it (out of memory).
 */
ngx_int_t ngx_chat_redis_publish(ngx_chat_redis_t *rd, u_char *channel,
    size_t channel_len, u_char *msg, size_t len);

/*
 * Any command as an argument vector, except (p)(un)subscribe and MONITOR
 * (NGX_ERROR).  cb may be NULL; otherwise cb(data, reply) runs exactly once,
 * with the reply (valid during the call only) or NULL if the context goes
 * away first, including in ngx_chat_redis_destroy().  Returns as publish.
 */
ngx_int_t ngx_chat_redis_command(ngx_chat_redis_t *rd,
    ngx_chat_redis_reply_pt cb, void *data, int argc, const char **argv,
    const size_t *argvlen);

ngx_uint_t ngx_chat_redis_up(ngx_chat_redis_t *rd);   /* subscriber up */

/* NGX_OK if ngx_chat_redis_create() accepts addr (for config checks) */
ngx_int_t ngx_chat_redis_check_addr(ngx_str_t *addr);

/*
 * Frees both contexts and their connections (for exit_process): no
 * on_state() call, pending command handlers get NULL.  rd may be NULL.
 */
void ngx_chat_redis_destroy(ngx_chat_redis_t *rd);


#endif /* _NGX_CHAT_REDIS_H_INCLUDED_ */
