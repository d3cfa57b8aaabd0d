
/*
 * chat_bench.h: shared declarations of chat-bench, the load generator and
 * benchmark client of ngx_chat (tests/load).
 *
 * chat-bench is one parent process that forks --procs workers.  Each
 * worker owns a slice of the WebSocket connections and runs them on one
 * epoll loop (no threads); the parent orders the phases of a scenario
 * (connect, setup, run), samples /proc for the server's CPU and memory,
 * aggregates the workers' counters and histograms (sent over a pipe) and
 * prints a progress line on stderr and one JSON result on stdout.
 *
 * Files:
 *   chat-bench.c          options, the parent, the JSON result
 *   chat_bench_hist.c     log-linear latency histogram (HDR-like)
 *   chat_bench_proto.c    pure codecs: base64, JWT, WebSocket frames, JSON
 *   chat_bench_sys.c      /proc readers, the parent/worker pipe messages
 *   chat_bench_conn.c     one connection: connect, handshake, frames
 *   chat_bench_tls.c      --tls: the OpenSSL client on the epoll loop
 *   chat_bench_scen.c     the scenarios (idle, chat, offline, storm)
 *
 * Functions return 0 on success and -1 on failure unless said otherwise.
 */

#ifndef CHAT_BENCH_H
#define CHAT_BENCH_H


#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/types.h>
#include <openssl/ssl.h>


/* ----------------------------------------------------------------------
 * histogram: values in nanoseconds, 128 linear sub-buckets per power of
 * two (relative error < 0.8%), exact min/max/sum
 */

#define NGX_CHAT_BENCH_HIST_SUB_BITS  7
#define NGX_CHAT_BENCH_HIST_SUB       (1 << NGX_CHAT_BENCH_HIST_SUB_BITS)
#define NGX_CHAT_BENCH_HIST_BUCKETS   (NGX_CHAT_BENCH_HIST_SUB * 58)

typedef struct {
    uint64_t  count;
    uint64_t  min;
    uint64_t  max;
    uint64_t  sum;
    uint64_t  b[NGX_CHAT_BENCH_HIST_BUCKETS];
} ngx_chat_bench_hist_t;

void ngx_chat_bench_hist_reset(ngx_chat_bench_hist_t *h);
void ngx_chat_bench_hist_add(ngx_chat_bench_hist_t *h, uint64_t v);
void ngx_chat_bench_hist_merge(ngx_chat_bench_hist_t *dst,
    const ngx_chat_bench_hist_t *src);
/* the value at percentile p (0..100]: the bucket's highest value, <= max */
uint64_t ngx_chat_bench_hist_pct(const ngx_chat_bench_hist_t *h, double p);
uint32_t ngx_chat_bench_hist_index(uint64_t v);
uint64_t ngx_chat_bench_hist_high(uint32_t idx);
/* sparse encoding for the pipe: returns bytes written (<= size) or 0 */
size_t ngx_chat_bench_hist_encode(const ngx_chat_bench_hist_t *h,
    uint8_t *out, size_t size);
/* decodes and merges into h; returns bytes consumed, 0 if malformed */
size_t ngx_chat_bench_hist_decode_merge(ngx_chat_bench_hist_t *h,
    const uint8_t *in, size_t len);


/* ----------------------------------------------------------------------
 * pure codecs (chat_bench_proto.c)
 */

/* base64 (url = 1: base64url without padding); returns the length */
size_t ngx_chat_bench_b64(char *dst, const uint8_t *src, size_t len,
    int url);
/* Sec-WebSocket-Accept for a key (its base64 text): 28 chars + NUL */
void ngx_chat_bench_ws_accept(char out[29], const char *key, size_t len);
/* HS256 JWT with sub, dev, iat, exp; returns its length, -1 if too long */
int ngx_chat_bench_jwt(char *out, size_t size, const uint8_t *secret,
    size_t slen, const char *user, const char *dev, int64_t iat,
    int64_t exp);
/* a masked client frame; dst needs len + 14 bytes; returns its size */
size_t ngx_chat_bench_ws_frame(uint8_t *dst, int opcode,
    const uint8_t *payload, size_t len, uint32_t mask);

/* one server frame header */
typedef struct {
    int       fin;
    int       opcode;
    int       rsv;
    int       masked;
    size_t    hlen;          /* header bytes */
    uint64_t  plen;          /* payload bytes */
} ngx_chat_bench_frame_t;

/* 0: need more bytes, 1: header parsed into f, -1: impossible length */
int ngx_chat_bench_ws_header(const uint8_t *p, size_t len,
    ngx_chat_bench_frame_t *f);

/* a JSON value found in a server message: raw bytes (strings without the
 * quotes, escapes left in place) */
enum {
    NGX_CHAT_BENCH_JV_NONE = 0,
    NGX_CHAT_BENCH_JV_STRING,
    NGX_CHAT_BENCH_JV_NUMBER,
    NGX_CHAT_BENCH_JV_TRUE,
    NGX_CHAT_BENCH_JV_FALSE,
    NGX_CHAT_BENCH_JV_NULL,
    NGX_CHAT_BENCH_JV_OBJECT,
    NGX_CHAT_BENCH_JV_ARRAY
};

typedef struct {
    const char  *p;
    size_t       len;
    int          kind;
} ngx_chat_bench_jv_t;

/* the fields chat-bench reads from server messages */
typedef struct {
    ngx_chat_bench_jv_t  type;
    ngx_chat_bench_jv_t  id;
    ngx_chat_bench_jv_t  ok;
    ngx_chat_bench_jv_t  code;        /* error.code */
    ngx_chat_bench_jv_t  chat_id;
    ngx_chat_bench_jv_t  message_id;
    ngx_chat_bench_jv_t  seq;
    ngx_chat_bench_jv_t  event_id;
    ngx_chat_bench_jv_t  message;
    ngx_chat_bench_jv_t  name;
    ngx_chat_bench_jv_t  duplicate;
} ngx_chat_bench_msg_t;

/* 0 ok, -1 not one JSON object */
int ngx_chat_bench_json_parse(const char *p, size_t len,
    ngx_chat_bench_msg_t *m);
/* a number or a string of digits as uint64; -1 if neither */
int ngx_chat_bench_jv_u64(const ngx_chat_bench_jv_t *v, uint64_t *out);
int ngx_chat_bench_jv_is(const ngx_chat_bench_jv_t *v, const char *s);

/* known-answer checks of the codecs and the histogram; 0 if all pass */
int ngx_chat_bench_selftest(FILE *out);


/* ----------------------------------------------------------------------
 * counters: one array per worker, summed (or min/max'ed) by the parent
 */

#define NGX_CHAT_BENCH_COUNTERS(X)                                          \
    X(CONNECTS, sum, 0)        /* connect() calls */                        \
    X(UPGRADED, sum, 0)        /* 101 received */                           \
    X(READY, sum, 0)           /* first ping answered (registered) */       \
    X(OPEN_NOW, sum, 0)        /* gauge: registered connections now */      \
    X(CONN_FAILED, sum, 0)     /* gave up connecting */                     \
    X(RECONNECTS, sum, 0)                                                   \
    X(SENT, sum, 0)            /* sendMessage written (first time) */       \
    X(ACKED, sum, 0)           /* sendMessage ok */                         \
    X(ACKED_DUP, sum, 0)       /* ok with duplicate:true (after retry) */   \
    X(RESENDS, sum, 0)                                                      \
    X(SEND_FAILED, sum, 0)     /* definite error: given up */               \
    X(SEND_REFUSED, sum, 0)    /* unavailable, not resent (--no-resend) */  \
    X(INFLIGHT, sum, 0)        /* gauge: sends not resolved yet */          \
    X(EXPECTED, sum, 0)        /* deliveries owed for acked sends */        \
    X(DELIVERED, sum, 0)       /* unique newMessage events received */      \
    X(DUPLICATES, sum, 0)      /* same messageId again on a device */       \
    X(REORDERS, sum, 0)        /* seq lower than one seen in the chat */    \
    X(REDELIVERED, sum, 0)     /* unacked events sent again (expected) */   \
    X(EVENTS_ACKED, sum, 0)                                                 \
    X(CHAT_UPDATES, sum, 0)                                                 \
    X(CHATS_CREATED, sum, 0)                                                \
    X(DRAINS, sum, 0)          /* offline drains completed */               \
    X(BYTES_IN, sum, 0)                                                     \
    X(BYTES_OUT, sum, 0)                                                    \
    X(PHASE, min, 0)           /* last phase completed */                   \
    X(T_CONNECT_FIRST, min, 0) /* CLOCK_MONOTONIC ns */                     \
    X(T_CONNECT_LAST, max, 0)                                               \
    X(T_RUN_FIRST, min, 0)                                                  \
    X(T_LAST_ACK, max, 0)                                                   \
    X(T_LAST_DELIVERY, max, 0)                                              \
    X(T_STORM_BACK, max, 0)                                                 \
    X(T_STORM_DRAINED, max, 0)                                              \
    X(ERR_BAD_REQUEST, sum, 1)                                              \
    X(ERR_UNKNOWN_TYPE, sum, 1)                                             \
    X(ERR_UNAVAILABLE, sum, 1)                                              \
    X(ERR_FORBIDDEN, sum, 1)                                                \
    X(ERR_NOT_FOUND, sum, 1)                                                \
    X(ERR_LIMIT_EXCEEDED, sum, 1)                                           \
    X(ERR_INTERNAL_ERROR, sum, 1)                                           \
    X(ERR_OTHER_CODE, sum, 1)                                               \
    X(CLOSE_1000, sum, 1)                                                   \
    X(CLOSE_1001, sum, 1)                                                   \
    X(CLOSE_1002, sum, 1)                                                   \
    X(CLOSE_1003, sum, 1)                                                   \
    X(CLOSE_1007, sum, 1)                                                   \
    X(CLOSE_1008, sum, 1)                                                   \
    X(CLOSE_1009, sum, 1)                                                   \
    X(CLOSE_1011, sum, 1)                                                   \
    X(CLOSE_4001, sum, 1)                                                   \
    X(CLOSE_4003, sum, 1)                                                   \
    X(CLOSE_4004, sum, 1)                                                   \
    X(CLOSE_OTHER, sum, 1)                                                  \
    X(CONN_REFUSED, sum, 1)                                                 \
    X(CONN_RESET, sum, 1)                                                   \
    X(CONN_TIMEOUT, sum, 1)                                                 \
    X(CONN_ADDRNOTAVAIL, sum, 1)                                            \
    X(CONN_EOF, sum, 1)        /* server closed without a Close frame */    \
    X(CONN_OTHER, sum, 1)                                                   \
    X(HTTP_401, sum, 1)                                                     \
    X(HTTP_4XX, sum, 1)                                                     \
    X(HTTP_5XX, sum, 1)                                                     \
    X(HTTP_OTHER, sum, 1)                                                   \
    X(BAD_ACCEPT, sum, 1)      /* wrong Sec-WebSocket-Accept */             \
    X(PROTOCOL, sum, 1)        /* server frame or JSON breaking the rules */\
    X(UNKNOWN_RESPONSE, sum, 1)                                             \
    X(REQUEST_TIMEOUT, sum, 1) /* no response within --request-timeout */\
    X(SETUP_UNDELIVERED, sum, 1) /* setup: events stored for online \
                                    devices, not delivered in time */   \
    X(NO_CHAT_ID, sum, 1)      /* sends skipped: chat id never learned */

#define NGX_CHAT_BENCH_X_ENUM(name, agg, err)  NGX_CHAT_BENCH_C_##name,

enum {
    NGX_CHAT_BENCH_COUNTERS(NGX_CHAT_BENCH_X_ENUM)
    NGX_CHAT_BENCH_NCOUNTERS
};

enum {
    NGX_CHAT_BENCH_AGG_SUM = 0,
    NGX_CHAT_BENCH_AGG_MIN,
    NGX_CHAT_BENCH_AGG_MAX
};

typedef struct {
    const char  *name;
    int          agg;
    int          error;
} ngx_chat_bench_counter_info_t;

extern const ngx_chat_bench_counter_info_t
    ngx_chat_bench_counter_info[NGX_CHAT_BENCH_NCOUNTERS];

#define NGX_CHAT_BENCH_CNT(w, name)  ((w)->cnt[NGX_CHAT_BENCH_C_##name])


/* the histograms a worker keeps */
enum {
    NGX_CHAT_BENCH_H_CONNECT = 0,   /* connect() to first response */
    NGX_CHAT_BENCH_H_UPGRADE,       /* connect() to 101 */
    NGX_CHAT_BENCH_H_ACK,           /* scheduled send to sendMessage ok */
    NGX_CHAT_BENCH_H_E2E,           /* scheduled send to delivery */
    NGX_CHAT_BENCH_H_DRAIN,         /* offline: connect to last received */
    NGX_CHAT_BENCH_H_DRAIN_ACKED,   /* offline: connect to last ack answered */
    NGX_CHAT_BENCH_H_STORM_BACK,    /* storm: disconnect to registered */
    NGX_CHAT_BENCH_H_STORM_DRAINED, /* storm: disconnect to redelivered */
    NGX_CHAT_BENCH_H_REFUSED,       /* a send written to "unavailable" */
    NGX_CHAT_BENCH_NHISTS
};

extern const char *ngx_chat_bench_hist_names[NGX_CHAT_BENCH_NHISTS];


/* ----------------------------------------------------------------------
 * options
 */

enum {
    NGX_CHAT_BENCH_IDLE = 0,
    NGX_CHAT_BENCH_CHAT,
    NGX_CHAT_BENCH_OFFLINE,
    NGX_CHAT_BENCH_STORM
};

enum {
    NGX_CHAT_BENCH_PH_NONE = 0,
    NGX_CHAT_BENCH_PH_CONNECT,
    NGX_CHAT_BENCH_PH_SETUP,
    NGX_CHAT_BENCH_PH_RUN,
    NGX_CHAT_BENCH_PH_STOP
};

typedef struct {
    int             scenario;
    struct in_addr  host;
    uint16_t        port;
    char            path[256];
    uint8_t         secret[4096];
    size_t          secret_len;
    char            tag[24];
    uint32_t        procs;
    uint32_t        src_ips;
    uint32_t        conns;          /* idle, storm: N */
    uint32_t        users;          /* chat: U */
    uint32_t        background;     /* chat: B */
    double          rate;           /* chat: messages/s in all, 0 = max */
    double          duration;       /* seconds */
    uint32_t        msg_size;       /* bytes of message text */
    double          group_share;    /* share of messages to small groups */
    double          big_share;      /* share to groups of 50-100 */
    uint32_t        inflight;       /* chat --rate 0: sends in flight */
    uint32_t        messages;       /* offline: K */
    uint32_t        reps;           /* offline: repetitions */
    uint32_t        pairs;          /* offline: pairs in parallel */
    uint32_t        unacked;        /* storm: events held unacked */
    int             storm_rst;      /* storm: disconnect with RST */
    uint32_t        concurrency;    /* connects in progress per worker */
    uint32_t        retries;        /* connect attempts before giving up */
    double          connect_timeout;
    double          request_timeout;
    double          phase_timeout;
    double          drain_timeout;
    double          retry_max;      /* cap of the resend backoff, s */
    int             no_resend;      /* "unavailable" sends: given up */
    uint64_t        tick;           /* ns; the loop sleeps at least this */
    uint64_t        seed;
    int             nginx_pid;
    int             pg_pid;
    int             redis_pid;
    int             quiet;
    int             tls;            /* wss:// (TLS to the server) */
    int             http;           /* idle: a plain GET left keep-alive */
    uint32_t        nconns;         /* derived: connections in all */
    uint32_t        group;          /* derived: connections per unit */
} ngx_chat_bench_opts_t;


/* ----------------------------------------------------------------------
 * the pipe between the workers and the parent
 */

enum {
    NGX_CHAT_BENCH_MSG_PROGRESS = 1, /* counters + live histogram */
    NGX_CHAT_BENCH_MSG_FINAL,        /* counters + every histogram */
    NGX_CHAT_BENCH_MSG_GO,           /* parent: phase, t0 */
    NGX_CHAT_BENCH_MSG_STOP          /* parent: stop and report */
};

typedef struct {
    uint32_t  type;
    uint32_t  len;                   /* payload bytes after this header */
} ngx_chat_bench_pipe_hdr_t;

typedef struct {
    uint32_t  phase;
    uint32_t  pad;
    uint64_t  t0;                    /* CLOCK_MONOTONIC ns */
} ngx_chat_bench_go_t;

int ngx_chat_bench_pipe_write(int fd, uint32_t type, const void *p,
    size_t len);


/* ----------------------------------------------------------------------
 * /proc (chat_bench_sys.c)
 */

typedef struct {
    uint64_t  cpu_ns;                /* utime + stime */
    uint64_t  rss_kib;               /* VmRSS */
    uint32_t  nprocs;
} ngx_chat_bench_proc_t;

typedef struct {
    uint64_t  slab_kib;
    uint64_t  sockets_used;
    uint64_t  tcp_inuse;
    uint64_t  tcp_orphan;
    uint64_t  tcp_tw;
    uint64_t  tcp_alloc;
    uint64_t  tcp_mem_pages;
} ngx_chat_bench_kernel_t;

uint64_t ngx_chat_bench_now(void);           /* CLOCK_MONOTONIC ns */
/* a process and (with_children) its children, from /proc */
void ngx_chat_bench_proc_sample(int pid, int with_children,
    ngx_chat_bench_proc_t *out);
void ngx_chat_bench_kernel_sample(ngx_chat_bench_kernel_t *out);


/* ----------------------------------------------------------------------
 * a worker: its connections and scenario state
 */

#define NGX_CHAT_BENCH_NIL  0xffffffffu

enum {
    NGX_CHAT_BENCH_CS_IDLE = 0,      /* not connected, may be queued */
    NGX_CHAT_BENCH_CS_CONNECTING,
    NGX_CHAT_BENCH_CS_TLS,           /* --tls: TLS handshake */
    NGX_CHAT_BENCH_CS_HANDSHAKE,     /* request sent, waiting for 101 */
    NGX_CHAT_BENCH_CS_OPEN,
    NGX_CHAT_BENCH_CS_FAILED         /* gave up */
};

typedef struct {
    int        fd;
    uint32_t   li;            /* local index in the worker */
    uint32_t   g;             /* global index */
    uint8_t    state;
    uint8_t    ready;         /* a response arrived: registered */
    uint8_t    tries;         /* failed connects in a row */
    uint8_t    msgop;         /* opcode of a fragmented message */
    uint8_t    queued;        /* in the connect queue */
    uint8_t    keep_closed;   /* closed on purpose: do not reconnect */
    uint8_t    counted;       /* resolved for the connect phase */
    uint8_t    starting;      /* counted in w->connecting until ready */
    uint8_t    done;          /* scenario: this unit finished */
    uint8_t    key[16];       /* Sec-WebSocket-Key */
    uint64_t   t_start;       /* connect() */
    uint64_t   t_retry;       /* reconnect at (0: not waiting) */
    uint8_t   *rbuf;          /* bytes not parsed yet */
    uint32_t   rlen;
    uint32_t   rcap;
    uint8_t   *wbuf;          /* bytes not written yet */
    uint32_t   wpos;
    uint32_t   wlen;
    uint32_t   wcap;
    uint8_t   *mbuf;          /* fragments of a message */
    uint32_t   mlen;
    uint32_t   mcap;
    uint32_t   phead;         /* requests of this connection */
    uint32_t   expect;        /* scenario: events still expected */
    uint32_t   got;           /* scenario: events received */
    uint32_t   rep;           /* offline: repetition */
    uint32_t   pstate;        /* scenario state of this connection */
} ngx_chat_bench_conn_t;

/* a request waiting for its response */
enum {
    NGX_CHAT_BENCH_RQ_PING = 1,
    NGX_CHAT_BENCH_RQ_SEND,
    NGX_CHAT_BENCH_RQ_CREATE,
    NGX_CHAT_BENCH_RQ_ACK
};

enum {
    NGX_CHAT_BENCH_RS_FREE = 0,
    NGX_CHAT_BENCH_RS_INFLIGHT,      /* written, no response yet */
    NGX_CHAT_BENCH_RS_WAITING        /* to (re)send at retry_at or ready */
};

typedef struct {
    uint64_t   sched;         /* latency origin */
    uint64_t   sent;          /* last written */
    uint64_t   retry_at;
    uint32_t   li;
    uint32_t   arg;           /* chat index */
    uint32_t   n;             /* clientMessageId serial */
    uint32_t   cseq;          /* conversation sequence (chat, sender) */
    uint32_t   gen;
    uint32_t   prev;
    uint32_t   next;
    uint8_t    kind;
    uint8_t    state;
    uint8_t    tries;
} ngx_chat_bench_req_t;

/* open addressing map of nonzero uint64 keys */
typedef struct {
    uint64_t  *keys;
    uint64_t  *vals;
    size_t     cap;
    size_t     n;
} ngx_chat_bench_map_t;

uint64_t *ngx_chat_bench_map_get(ngx_chat_bench_map_t *m, uint64_t key);
/* the value slot of key, inserted (0) if new; *isnew set; NULL on ENOMEM */
uint64_t *ngx_chat_bench_map_put(ngx_chat_bench_map_t *m, uint64_t key,
    int *isnew);
void ngx_chat_bench_map_free(ngx_chat_bench_map_t *m);

/* the chat plan: identical in every worker (seeded) */
typedef struct {
    uint32_t    chat;
    uint32_t    li;           /* local sender */
    uint32_t    n;            /* messages sent by it in this chat */
} ngx_chat_bench_slot_t;

typedef struct {
    uint32_t                nchats;
    uint32_t               *off;       /* members of chat i: off[i]..off[i+1] */
    uint32_t               *members;   /* global indexes, creator first */
    uint8_t                *kind;      /* 0 1:1, 1 group 3-20, 2 group 50-100 */
    uint64_t               *chat_id;   /* server's id, 0 unknown */
    ngx_chat_bench_slot_t  *slots[3];  /* local senders per kind */
    uint32_t                nslots[3];
} ngx_chat_bench_plan_t;

typedef struct {
    ngx_chat_bench_opts_t   *o;
    uint32_t                 proc;        /* this worker's number */
    int                      ep;          /* epoll */
    int                      rd;          /* pipe from the parent */
    int                      wr;          /* pipe to the parent */
    uint64_t                 cnt[NGX_CHAT_BENCH_NCOUNTERS];
    ngx_chat_bench_hist_t   *hist[NGX_CHAT_BENCH_NHISTS];
    ngx_chat_bench_hist_t   *live;        /* since the last progress */
    int                      live_kind;   /* which H_ feeds live */

    ngx_chat_bench_conn_t   *conns;
    uint32_t                 nconns;
    uint32_t                *cq;          /* connect queue (ring) */
    uint32_t                 cq_head;
    uint32_t                 cq_len;
    uint32_t                 connecting;  /* connects in progress */
    uint32_t                 waiting;     /* connections with t_retry */
    uint32_t                 resolved;    /* ready or failed (phase 1) */

    ngx_chat_bench_req_t    *rq;
    uint32_t                 rq_cap;
    uint32_t                 rq_free;
    uint32_t                 rq_timed;    /* WAITING with a retry_at */

    ngx_chat_bench_map_t     seen;        /* messageId,li -> flags */
    ngx_chat_bench_map_t     order;       /* chatId,li -> last seq */
    ngx_chat_bench_map_t     learned;     /* chat,li -> 1 */

    ngx_chat_bench_plan_t    plan;
    uint32_t                 learn_left;  /* chat ids still to learn */
    uint32_t                 create_left; /* createChat not answered */

    int                      phase;       /* phase running */
    uint64_t                 t0;          /* its start */
    uint64_t                 run_end;     /* chat: last scheduled send */
    uint64_t                 nsched;      /* chat: sends scheduled so far */
    uint64_t                 ntotal;      /* chat: sends to schedule */
    double                   interval;    /* chat: ns between sends */
    uint32_t                 units_left;  /* offline/storm units busy */
    uint32_t                 serial;      /* clientMessageId serial */
    uint64_t                 recv_left;   /* storm setup: held events due */
    uint32_t                *sq;          /* storm setup: (chat, li) to send */
    uint32_t                 sq_head;
    uint32_t                 sq_len;
    uint64_t                 last_timed;  /* last scan of timed requests */
    uint64_t                 sends_done;  /* setup: all answered at */
    uint64_t                 last_conn_scan;
    uint64_t                 last_report;
    char                    *json;        /* command being built */
    size_t                   json_cap;
    uint8_t                 *report;      /* pipe message being built */
    size_t                   report_cap;
    int                      stopping;

    uint64_t                 rng[2];      /* masks, keys: xorshift128+ */
    uint8_t                 *scratch;     /* read buffer */
    uint8_t                 *out;         /* frame being built */
    size_t                   out_cap;
    char                    *acks;        /* eventIds to ack, "1","2" */
    size_t                   acks_len;
    uint32_t                 nacks;
    char                     tok[512];

    SSL_CTX                 *ssl_ctx;     /* --tls only */
    SSL                    **ssl;         /* --tls only: per connection */
} ngx_chat_bench_w_t;

#define NGX_CHAT_BENCH_SCRATCH  (256 * 1024)
#define NGX_CHAT_BENCH_ACKS_MAX 1000
#define NGX_CHAT_BENCH_ACKS_PREFIX  64
#define NGX_CHAT_BENCH_ACKS_SIZE                                            \
    (NGX_CHAT_BENCH_ACKS_PREFIX + NGX_CHAT_BENCH_ACKS_MAX * 28 + 8)

uint64_t ngx_chat_bench_rand(ngx_chat_bench_w_t *w);

/* chat_bench_conn.c */
void ngx_chat_bench_conn_queue(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
void ngx_chat_bench_conn_pump(ngx_chat_bench_w_t *w, uint64_t now);
void ngx_chat_bench_conn_event(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint32_t events);
/* a text message; -1 if the connection failed (it is closed then) */
int ngx_chat_bench_conn_send(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, const char *text, size_t len);
/* close: rst = 1 resets; the scenario is told (it reconnects unless
 * keep_closed or stopping) */
void ngx_chat_bench_conn_close(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, int counter, int rst);
void ngx_chat_bench_conn_check_timeouts(ngx_chat_bench_w_t *w,
    uint64_t now);
/* adds an eventId to the ack batch of the connection being read */
void ngx_chat_bench_conn_ack_add(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, const char *id, size_t len);
/* sends the batch (with a request id if rid != 0) */
int ngx_chat_bench_conn_ack_flush(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint64_t rid);

/* chat_bench_tls.c: no-ops without --tls */
int ngx_chat_bench_tls_init(ngx_chat_bench_w_t *w);
/* the TCP connect succeeded: 1 if a TLS handshake starts, 0 if there is
 * none (plain), -1 on failure */
int ngx_chat_bench_tls_start(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
/* 0 done, 1 wants more events, -1 failed (errno set) */
int ngx_chat_bench_tls_handshake(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
/* read(2) and write(2) through TLS: -1 with errno EAGAIN would block */
ssize_t ngx_chat_bench_tls_recv(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint8_t *buf, size_t size);
ssize_t ngx_chat_bench_tls_send(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, const uint8_t *buf, size_t size);
void ngx_chat_bench_tls_free(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);

/* chat_bench_scen.c */
int ngx_chat_bench_scen_init(ngx_chat_bench_w_t *w);
void ngx_chat_bench_scen_go(ngx_chat_bench_w_t *w, int phase, uint64_t t0);
/* runs what is due; returns the next time it wants to run */
uint64_t ngx_chat_bench_scen_tick(ngx_chat_bench_w_t *w, uint64_t now);
void ngx_chat_bench_scen_open(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
void ngx_chat_bench_scen_message(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, const char *text, size_t len);
/* the connection is gone: its requests are dropped or kept for a resend,
 * and a reconnect is scheduled unless c->keep_closed or w->stopping */
void ngx_chat_bench_scen_closed(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
/* the user id of a global connection index */
size_t ngx_chat_bench_scen_user(ngx_chat_bench_w_t *w, uint32_t g,
    char *buf, size_t size);
uint32_t ngx_chat_bench_scen_global(const ngx_chat_bench_opts_t *o,
    uint32_t proc, uint32_t li);
uint32_t ngx_chat_bench_scen_local_count(const ngx_chat_bench_opts_t *o,
    uint32_t proc);
void ngx_chat_bench_scen_report(ngx_chat_bench_w_t *w, int final);


#endif /* CHAT_BENCH_H */
