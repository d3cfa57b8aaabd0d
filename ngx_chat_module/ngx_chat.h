
/*
 * ngx_chat.h: the types every part of ngx_chat_module shares.
 *
 * The module keeps three kinds of state:
 *   - configuration (ngx_chat_main_conf_t, ngx_chat_loc_conf_t), read-only
 *     once the workers run;
 *   - one ngx_chat_worker_t per worker process, built in init_process: the
 *     PostgreSQL pool, the Redis contexts, the index of connected users and
 *     the periodic jobs;
 *   - one ngx_chat_conn_t per WebSocket, malloc'd with its device id and
 *     peer address; the HTTP request and (without TLS) the connection pool
 *     are freed at takeover (see ngx_chat_ws.c).
 * There is no other mutable state.
 */


#ifndef _NGX_CHAT_H_INCLUDED_
#define _NGX_CHAT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_chat_limit.h"


#define NGX_CHAT_VERSION  "0.1.0"


/* the per-user rates (chat_user_rate), kept in PostgreSQL by kind */
#define NGX_CHAT_RATE_CREATE     0          /* createChat */
#define NGX_CHAT_RATE_MODIFY     1          /* modifyChatParticipants */
#define NGX_CHAT_RATE_ATTACH     2          /* createAttachment */
#define NGX_CHAT_RATE_N          3


typedef struct ngx_chat_worker_s  ngx_chat_worker_t;
typedef struct ngx_chat_conn_s    ngx_chat_conn_t;
typedef struct ngx_chat_user_s    ngx_chat_user_t;
typedef struct ngx_chat_order_s   ngx_chat_order_t;
typedef struct ngx_chat_cmdq_s    ngx_chat_cmdq_t;
typedef struct ngx_chat_out_s     ngx_chat_out_t;
typedef struct ngx_chat_pg_s      ngx_chat_pg_t;
typedef struct ngx_chat_redis_s   ngx_chat_redis_t;
typedef struct ngx_chat_shards_s  ngx_chat_shards_t;

/* what a lower layer calls above it, set once per worker (worker.c) */
typedef struct ngx_chat_ws_handlers_s   ngx_chat_ws_handlers_t;
typedef struct ngx_chat_bus_handlers_s  ngx_chat_bus_handlers_t;
typedef struct ngx_chat_store_handlers_s  ngx_chat_store_handlers_t;
typedef struct ngx_chat_cmd_plugin_s    ngx_chat_cmd_plugin_t;

/*
 * A feature's filter of each event delivered to cc (media: signed URLs for
 * the attachments): NGX_OK, *out (ngx_alloc()ed) is sent instead;
 * NGX_DECLINED: json is sent as it is.
 */
typedef ngx_int_t (*ngx_chat_render_pt)(ngx_chat_conn_t *cc, u_char *json,
    size_t len, u_char **out, size_t *out_len);



/* a connection waiting for a batched statement (ngx_chat_session.c) */
typedef struct {
    ngx_chat_conn_t         *cc;
    int64_t                  iat;               /* the token's issue time */
} ngx_chat_reg_t;

/* ... and those waiting for one kind of statement, until flush runs */
typedef struct {
    ngx_chat_reg_t          *items;
    ngx_uint_t               n;
    ngx_uint_t               cap;
    ngx_event_t              flush;             /* posted: the pass's end */
} ngx_chat_waitq_t;


typedef struct {
    ngx_str_t                jwt_secret;        /* contents of the file */
    ngx_str_t                pg_conninfo;       /* libpq conninfo */
    ngx_uint_t               pg_pool_size;      /* connections per worker */
    ngx_uint_t               pg_max_queue;      /* waiting queries */
    ngx_msec_t               db_timeout;        /* fail fast after this */
    ngx_str_t                redis_addr;        /* "host:port", the first */
    ngx_array_t             *redis_seeds;       /* ngx_str_t, every one */
    ngx_flag_t               redis_cluster;     /* cluster=on */
    ngx_msec_t               redis_timeout;     /* silent link dropped */
    ngx_str_t                redis_prefix;      /* channel name prefix */
    ngx_msec_t               ping_interval;     /* server PING period */
    ngx_msec_t               send_timeout;      /* stalled writer limit */
    size_t                   max_frame_size;    /* WebSocket message cap */
    ngx_uint_t               max_fragments;     /* frames per message */
    size_t                   output_limit;      /* queued bytes per conn */
    size_t                   max_message_size;  /* sendMessage text cap */
    ngx_uint_t               max_participants;
    size_t                   order_hold_limit;  /* held events, per worker */
    ngx_uint_t               max_devices;
    time_t                   retention;         /* seconds */
    time_t                   device_idle;       /* deactivate after */
    ngx_msec_t               sweep_interval;
    ngx_msec_t               poll_interval;     /* inbox polling w/o Redis */
    ngx_uint_t               poll_batch;        /* connections per poll */
    ngx_uint_t               drain_page;        /* events per query */
    ngx_uint_t               drain_window;      /* unacked in flight */
    ngx_msec_t               shutdown_spread;   /* 1001 closes spread */
    ngx_uint_t               send_batch_size;   /* sends per transaction */
    ngx_uint_t               send_batches;      /* ... in flight */
    ngx_chat_limit_conf_t    command_rate;      /* per connection */
    ngx_chat_limit_conf_t    user_rate[NGX_CHAT_RATE_N];
    ngx_uint_t               max_inflight;      /* commands per conn */
    ngx_msec_t               send_queue_time;   /* shed sends beyond */
    ngx_flag_t               used;              /* chat_websocket seen */
    ngx_flag_t               status;            /* chat_metrics/_health */
    ngx_shm_zone_t          *metrics_zone;      /* ngx_chat_metrics.c */
} ngx_chat_main_conf_t;


typedef struct {
    ngx_flag_t               websocket;
    ngx_flag_t               admin_token;
    time_t                   token_ttl;         /* admin-minted tokens */
} ngx_chat_loc_conf_t;


/* a chunk of queued output; frames are appended back to back */
struct ngx_chat_out_s {
    ngx_chat_out_t          *next;
    u_char                  *pos;               /* first unsent byte */
    u_char                  *last;              /* end of data */
    u_char                  *end;               /* end of the chunk */
    u_char                   data[1];
};


/*
 * A connection's life, one state at a time (nginx keeps one state field in
 * ngx_http_upstream_t and its parsers for the same reason).  Every
 * asynchronous callback that holds a connection (cc->pending, like
 * r->main->count) checks ngx_chat_conn_active() and nothing else before it
 * answers: from CLOSING on, nothing more is said to the client.  What a
 * callback may read of cc stays valid until the last one has run: the
 * memory, the user id (cc->uid) and the device id.  The user's entry in the
 * bus (cc->user) is not among them: it goes when the session closes.
 */
typedef enum {
    NGX_CHAT_CONN_NEW = 0,              /* taken over, not registered */
    NGX_CHAT_CONN_REGISTERING,          /* device row being written */
    NGX_CHAT_CONN_LIVE,                 /* registered: drain and events */
    NGX_CHAT_CONN_CLOSING,              /* close queued, teardown posted */
    NGX_CHAT_CONN_CLOSED                /* socket gone, memory held */
} ngx_chat_conn_state_e;

#define ngx_chat_conn_active(cc)  ((cc)->state < NGX_CHAT_CONN_CLOSING)


/*
 * An id set: event ids in flight and, marked NGX_CHAT_IDS_ACKED, recently
 * acked ones (a live copy of an event the drain delivered can arrive after
 * the device acked it); malloc'd, lazily, freed a moment after all are
 * acked (ngx_chat_session.c).
 */
typedef struct {
    ngx_uint_t               n;
    ngx_uint_t               nacked;            /* marked acked, of n */
    ngx_uint_t               cap;
    ngx_msec_t               acked_at;          /* when nacked reached n */
    uint64_t                 ids[1];
} ngx_chat_ids_t;

#define NGX_CHAT_IDS_ACKED  ((uint64_t) 1 << 63)


struct ngx_chat_conn_s {
    /* the connection itself (ngx_chat_ws.c) */
    ngx_connection_t        *connection;        /* NULL once closed */
    ngx_pool_t              *pool;              /* kept for TLS only */
    ngx_log_t                log;               /* c->log after takeover */
    ngx_queue_t              all;               /* in worker->conns */
    ngx_str_t                uid;               /* as long as cc lives */
    ngx_str_t                device;
    ngx_uint_t               pending;           /* callbacks outstanding */
    uint64_t                 serial;            /* connection identity */

    /* the transport's buffers (ngx_chat_ws.c) */
    u_char                  *in;                /* partial frame (malloc) */
    size_t                   in_len;
    size_t                   in_cap;

    u_char                  *msg;               /* fragments (malloc) */
    uint32_t                 msg_len;           /* <= chat_max_frame_size */
    uint32_t                 msg_cap;           /* allocated at msg */
    uint32_t                 utf8;              /* validator state */
    uint32_t                 msg_frames;        /* frames of the message */

    ngx_chat_out_t          *out;               /* queued output */
    ngx_chat_out_t          *out_last;
    size_t                   out_bytes;

    /* the bus's user index (ngx_chat_bus.c) */
    ngx_chat_user_t         *user;              /* bus entry, or NULL */
    ngx_queue_t              queue;             /* in user->conns */

    /* the session (ngx_chat_session.c) */
    uint64_t                 cursor;            /* drain position */
    ngx_chat_ids_t          *inflight;          /* delivered, not acked */

    /* the commands (ngx_chat_cmd.c, ngx_chat_cmdq.c) */
    ngx_chat_limit_t         limit;             /* chat_command_rate */
    ngx_chat_cmdq_t         *cmdq;              /* commands kept for order,
                                                   or NULL (ngx_chat_cmdq.c) */

    /* one state for the whole life (ngx_chat_conn_state_e) */
    unsigned                 state:3;

    /* the transport's (ngx_chat_ws.c) */
    unsigned                 msg_opcode:4;      /* of the fragmented msg */
    unsigned                 in_message:1;      /* fragments pending */
    unsigned                 ping_sent:1;       /* awaiting PONG */
    unsigned                 dropped:1;         /* close without a frame */
    unsigned                 peer_closed:1;     /* client sent Close */
    unsigned                 shutdown:1;        /* worker is exiting */
    unsigned                 in_unparsed:1;     /* cc->in not yet parsed */
    unsigned                 close_logged:1;    /* its close line is out */

    /* the bus's (ngx_chat_bus.c) */
    unsigned                 registered:1;      /* in the user index */

    /* the session's drain (ngx_chat_session.c) */
    unsigned                 draining:1;        /* inbox drain running */
    unsigned                 drain_query:1;     /* a page query is out */
    unsigned                 drain_again:1;     /* live event while out */
    unsigned                 drain_wait:1;      /* window full */
    unsigned                 need_drain:1;      /* retry from the poll */
    unsigned                 drain_out:1;       /* waits for output room */
    unsigned                 lingering:1;       /* in worker->linger */
    unsigned                 drain_timed:1;     /* first drain measured */

    /* the store's send batches (ngx_chat_store.c) */
    unsigned                 sending:1;         /* a send batch is out */
    unsigned                 batching:1;        /* in the batch being built */
    unsigned                 has_busy:1;        /* a send came back busy */

    uint32_t                 nsends;            /* sends in the store */
};


struct ngx_chat_user_s {
    ngx_rbtree_node_t        node;              /* key: hash of id */
    ngx_str_t                id;
    ngx_queue_t              conns;             /* ngx_chat_conn_t */
    ngx_uint_t               nconns;
    ngx_chat_order_t        *order;             /* live order, or NULL */
    unsigned                 subscribed:1;      /* SUBSCRIBE sent */
    unsigned                 listening:1;       /* ... and confirmed */
    uint32_t                 sub_serial;        /* subscriber it went to */
    u_char                   data[1];           /* the id bytes */
};


struct ngx_chat_worker_s {
    ngx_cycle_t             *cycle;
    ngx_log_t               *log;
    ngx_chat_main_conf_t    *cmcf;
    ngx_chat_pg_t           *pg;
    ngx_chat_shards_t       *shards;            /* Redis, or a cluster */

    const ngx_chat_ws_handlers_t   *ws_handlers;   /* session, commands */
    const ngx_chat_bus_handlers_t  *bus_handlers;  /* session */
    const ngx_chat_store_handlers_t  *store_handlers;  /* commands */
    const ngx_chat_cmd_plugin_t  *cmd_plugin;      /* media, or NULL */
    ngx_chat_render_pt       render;            /* media, or NULL */

    ngx_rbtree_t             users;             /* ngx_chat_user_t */
    ngx_rbtree_node_t        users_sentinel;
    ngx_uint_t               nusers;
    ngx_uint_t               nconns;

    ngx_queue_t              conns;             /* every ngx_chat_conn_t */
    uint64_t                 serial;            /* last connection serial */
    uint64_t                 instance;          /* random worker identity */
    ngx_uint_t               bus_up;            /* every subscriber up */
    ngx_uint_t               bus_was_up;        /* ... once: reconnects */
    ngx_uint_t               polling;           /* chat_poll running */
    ngx_uint_t               retry;             /* a conn needs the poll */
    ngx_queue_t              backlog;           /* publishes to retry */
    size_t                   backlog_bytes;
    size_t                   order_held;        /* ngx_chat_order.c bytes */

    u_char                  *scratch;           /* recv buffer */
    size_t                   scratch_size;

    ngx_event_t              sweep;             /* retention timer */
    ngx_event_t              ack_flush;         /* batched acks */
    ngx_event_t              send_flush;        /* batched sends */
    ngx_event_t              poll;              /* inbox polling */
    ngx_event_t              touch;             /* device last_seen */

    ngx_chat_conn_t        **linger;            /* acked sets, kept */
    ngx_uint_t               nlinger;
    ngx_uint_t               linger_cap;

    ngx_chat_waitq_t         regs;              /* waiting to register */
    ngx_chat_waitq_t         drains;            /* waiting for a page */
    ngx_uint_t               drain_stmts;       /* chat_drain_batch out */

    void                    *store;             /* ngx_chat_store.c */

    /* this worker's counts in the shared zone (ngx_chat_metrics.c) */
    struct ngx_chat_metrics_slot_s  *metrics;
    ngx_uint_t               ndevices;          /* registered conns */
    uint64_t                 event_commit;      /* us, of the live event
                                                   being delivered, or 0 */
    ngx_uint_t               cmd_type;          /* of the command being
                                                   answered (metrics) */
};


extern ngx_module_t          ngx_chat_module;
extern ngx_chat_worker_t    *ngx_chat_worker;


#endif /* _NGX_CHAT_H_INCLUDED_ */
