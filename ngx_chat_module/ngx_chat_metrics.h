
/*
 * ngx_chat_metrics.h: the module's counters, gauges and histograms, kept
 * in one shared memory zone so that a scrape of any worker sees them all
 * (ngx_chat_metrics.c).
 *
 * Each worker owns one slot of the zone and counts into it with atomic
 * adds only: no lock, no allocation, nothing per connection.  A scrape
 * sums the slots (gauges of live workers only).  Calls are safe before
 * and after the worker has a slot (they do nothing then).
 */


#ifndef _NGX_CHAT_METRICS_H_INCLUDED_
#define _NGX_CHAT_METRICS_H_INCLUDED_


#include "ngx_chat.h"


/* gauges: set by the worker that owns the slot */
#define NGX_CHAT_G_CONNECTIONS    0     /* WebSockets open */
#define NGX_CHAT_G_DEVICES        1     /* registered, in the user index */
#define NGX_CHAT_G_PG_QUEUE       2     /* queries waiting for the pool */
#define NGX_CHAT_G_REDIS_UP       3     /* subscriber link up: 0 or 1 */
#define NGX_CHAT_G_POLLING        4     /* inboxes polled: 0 or 1 */
#define NGX_CHAT_G_SEND_CAPACITY  5     /* sends/s committed, measured */
#define NGX_CHAT_G_N              6

/* counters without labels */
#define NGX_CHAT_C_ACKED          0     /* event ids acked */
#define NGX_CHAT_C_PG_ERRORS      1     /* statements failed, conn lost */
#define NGX_CHAT_C_PG_RECONNECTS  2     /* pool connections re-established */
#define NGX_CHAT_C_REDIS_RECONN   3     /* subscriber links re-established */
#define NGX_CHAT_C_DROPPED        4     /* slow consumers dropped */
#define NGX_CHAT_C_UPLOADS        5     /* media uploads stored */
#define NGX_CHAT_C_DOWNLOADS      6     /* media downloads served */
#define NGX_CHAT_C_UP_BYTES       7
#define NGX_CHAT_C_DOWN_BYTES     8
#define NGX_CHAT_C_N              9

/* ngx_chat_connects_total{result} */
#define NGX_CHAT_CONNECT_OK           0
#define NGX_CHAT_CONNECT_UNAUTHORIZED 1
#define NGX_CHAT_CONNECT_DEVICE_LIMIT 2
#define NGX_CHAT_CONNECT_REVOKED      3
#define NGX_CHAT_CONNECT_UNAVAILABLE  4
#define NGX_CHAT_CONNECT_RATE_LIMITED 5
#define NGX_CHAT_CONNECT_BAD_REQUEST  6
#define NGX_CHAT_CONNECT_N            7

/* ngx_chat_commands_total{type}: NONE while no command is answered */
#define NGX_CHAT_CMD_T_INVALID    0     /* no parsable type */
#define NGX_CHAT_CMD_T_UNKNOWN    1     /* a type nobody handles */
#define NGX_CHAT_CMD_T_FIRST      2     /* the names of the table */
#define NGX_CHAT_CMD_T_PING       2
#define NGX_CHAT_CMD_T_SEND       3
#define NGX_CHAT_CMD_T_ACK        4
#define NGX_CHAT_CMD_T_CREATE     5
#define NGX_CHAT_CMD_T_MODIFY     6
#define NGX_CHAT_CMD_T_GET_CHATS  7
#define NGX_CHAT_CMD_T_REMOVE     8
#define NGX_CHAT_CMD_T_ATTACH_CREATE  9
#define NGX_CHAT_CMD_T_ATTACH_URL     10
#define NGX_CHAT_CMD_T_ATTACH_ACK     11
#define NGX_CHAT_CMD_T_N          12
#define NGX_CHAT_CMD_T_NONE       NGX_CHAT_CMD_T_N

/* ... {result}: "ok", the protocol's error codes, "other" */
#define NGX_CHAT_CMD_R_N          10

/* ngx_chat_events_delivered_total{type} */
#define NGX_CHAT_EV_NEW_MESSAGE   0
#define NGX_CHAT_EV_CHAT_UPDATE   1
#define NGX_CHAT_EV_OTHER         2
#define NGX_CHAT_EV_N             3

/* histograms */
#define NGX_CHAT_H_SEND_COMMIT    0     /* sendMessage to commit, us */
#define NGX_CHAT_H_DELIVERY       1     /* commit to socket, live, us */
#define NGX_CHAT_H_DRAIN          2     /* a drain, start to end, us */
#define NGX_CHAT_H_ACK            3     /* written to acked, us */
#define NGX_CHAT_H_BATCH          4     /* sends per batch */
#define NGX_CHAT_H_POLL           5     /* connections per chat_poll */
#define NGX_CHAT_H_N              6

#define NGX_CHAT_H_BUCKETS        15    /* bounds and +Inf */


typedef struct {
    ngx_atomic_t             count;
    ngx_atomic_t             sum;           /* us, or items */
    ngx_atomic_t             bucket[NGX_CHAT_H_BUCKETS];  /* not cumul. */
} ngx_chat_metrics_hist_t;


/* one worker's counts, in the shared zone */
typedef struct ngx_chat_metrics_slot_s {
    ngx_atomic_t             pid;           /* owner; 0: free */
    ngx_atomic_t             gauge[NGX_CHAT_G_N];
    ngx_atomic_t             counter[NGX_CHAT_C_N];
    ngx_atomic_t             connects[NGX_CHAT_CONNECT_N];
    ngx_atomic_t             commands[NGX_CHAT_CMD_T_N][NGX_CHAT_CMD_R_N];
    ngx_atomic_t             delivered[NGX_CHAT_EV_N];
    ngx_chat_metrics_hist_t  hist[NGX_CHAT_H_N];
} ngx_chat_metrics_slot_t;


/* the zone: slot 0 is shared by workers that found no slot of their own */
typedef struct {
    ngx_uint_t               nslots;
    ngx_chat_metrics_slot_t  slots[1];
} ngx_chat_metrics_shm_t;


#define NGX_CHAT_METRICS_SLOTS    64


/* the zone's size for ngx_shared_memory_add() */
size_t ngx_chat_metrics_zone_size(void);

/* lays out a zone's memory (new), or keeps what a reload left (old) */
ngx_chat_metrics_shm_t *ngx_chat_metrics_init_zone(void *mem, size_t size);

/* a slot for this process (pid), or the shared slot 0 */
ngx_chat_metrics_slot_t *ngx_chat_metrics_claim(ngx_chat_metrics_shm_t *shm,
    ngx_pid_t pid);

/* gives the slot back at exit: its counters stay, its gauges go */
void ngx_chat_metrics_release(ngx_chat_metrics_slot_t *slot);

/* the Prometheus text (0.0.4) of the zone: size for the buffer, render */
size_t ngx_chat_metrics_size(void);
u_char *ngx_chat_metrics_render(ngx_chat_metrics_shm_t *shm, u_char *p,
    u_char *last);

/* a wall clock in microseconds (the commit time crosses hosts) */
uint64_t ngx_chat_metrics_now(void);

/* the index of a command type for commands_total */
ngx_uint_t ngx_chat_metrics_cmd_type(u_char *name, size_t len);

/* the name of a command type index ("command" for none) */
const char *ngx_chat_metrics_cmd_name(ngx_uint_t type);

/* the index of an error code (or "ok") for commands_total */
ngx_uint_t ngx_chat_metrics_cmd_result(const char *code);

/* the type of an event from its JSON text */
ngx_uint_t ngx_chat_metrics_event_type(u_char *json, size_t len);

void ngx_chat_metrics_observe(ngx_chat_metrics_slot_t *slot, ngx_uint_t h,
    uint64_t value);


#define ngx_chat_metrics_slot()                                             \
    (ngx_chat_worker ? ngx_chat_worker->metrics : NULL)

#define ngx_chat_metrics_add(field, n)                                      \
    do {                                                                    \
        ngx_chat_metrics_slot_t  *ngx_chat_m_ = ngx_chat_metrics_slot();    \
        if (ngx_chat_m_) {                                                  \
            (void) ngx_atomic_fetch_add(&ngx_chat_m_->field,                \
                                        (ngx_atomic_int_t) (n));            \
        }                                                                   \
    } while (0)

#define ngx_chat_metrics_count(c, n)  ngx_chat_metrics_add(counter[c], n)

/* gauges: the owner writes its own slot (not in the shared slot 0) */
#define ngx_chat_metrics_gauge(g, v)                                        \
    do {                                                                    \
        ngx_chat_metrics_slot_t  *ngx_chat_m_ = ngx_chat_metrics_slot();    \
        if (ngx_chat_m_ && ngx_chat_m_->pid) {                              \
            ngx_chat_m_->gauge[g] = (ngx_atomic_uint_t) (v);                \
        }                                                                   \
    } while (0)

#define ngx_chat_metrics_hist(h, v)                                         \
    ngx_chat_metrics_observe(ngx_chat_metrics_slot(), h, v)


#endif /* _NGX_CHAT_METRICS_H_INCLUDED_ */
