
/*
 * ngx_chat_store.h: what the module asks PostgreSQL, as prepared
 * statements of the SQL functions in sql/, and the batching of the two hot
 * paths (sendMessage and ack) into few round trips.
 */


#ifndef _NGX_CHAT_STORE_H_INCLUDED_
#define _NGX_CHAT_STORE_H_INCLUDED_


#include "ngx_chat.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_pg_array.h"
#include "ngx_chat_json.h"


#define NGX_CHAT_ST_OK              0
#define NGX_CHAT_ST_NOT_FOUND       1
#define NGX_CHAT_ST_FORBIDDEN       2
#define NGX_CHAT_ST_LIMIT           3
#define NGX_CHAT_ST_BAD_REQUEST     4
#define NGX_CHAT_ST_BUSY            5       /* sendMessage: try again */
#define NGX_CHAT_ST_RATE            6       /* over chat_user_rate */
#define NGX_CHAT_ST_REVOKED         7       /* token older than removal */


#define NGX_CHAT_SEND_QUEUE_MAX     20000   /* waiting sends per worker */
#define NGX_CHAT_SEND_QUEUE_BYTES   (64 * 1024 * 1024)  /* ... their bytes,
                                                       with those in flight */
#define NGX_CHAT_ACK_BATCH          2000    /* acks per statement */
#define NGX_CHAT_ACK_QUEUE_MAX      200000  /* waiting acks per worker */


enum {
    NGX_CHAT_STMT_DEVICE_CONNECT = 0,
    NGX_CHAT_STMT_CREATE,
    NGX_CHAT_STMT_MODIFY,
    NGX_CHAT_STMT_SEND,
    NGX_CHAT_STMT_ACK,
    NGX_CHAT_STMT_LIST,
    NGX_CHAT_STMT_REMOVE_DEVICE,
    NGX_CHAT_STMT_SWEEP,
    NGX_CHAT_STMT_TOUCH,
    NGX_CHAT_STMT_POLL,
    NGX_CHAT_STMT_MEDIA_CREATE,             /* sql/920_media.sql */
    NGX_CHAT_STMT_MEDIA_UPLOADED,
    NGX_CHAT_STMT_MEDIA_PENDING,
    NGX_CHAT_STMT_MEDIA_GET,
    NGX_CHAT_STMT_MEDIA_RECEIVED,
    NGX_CHAT_STMT_MEDIA_PURGED,
    NGX_CHAT_STMT_MEDIA_SWEEP,
    NGX_CHAT_STMT_DEVICE_CONNECT_BATCH,     /* sql/910_delivery.sql */
    NGX_CHAT_STMT_DRAIN_BATCH,
    NGX_CHAT_STMT_N
};


/*
 * Called with the result of a connection's query, always, also when the
 * connection closed meanwhile (cc held by cc->pending, its identity
 * valid, ngx_chat_conn_active() false): answer nothing then, but finish
 * the work (fan-out of what committed) and free data.  rc as for
 * ngx_chat_pg_handler_pt.
 */
typedef void (*ngx_chat_store_done_pt)(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);


/* a sendMessage waiting for its batch; strings follow the struct */
typedef struct {
    ngx_queue_t              queue;
    ngx_chat_conn_t         *cc;           /* NULL once it closed */
    ngx_msec_t               deadline;     /* arrival + chat_db_timeout */
    uint64_t                 arrived;      /* us, for the commit latency */
    ngx_str_t                req_id;       /* client request id */
    unsigned                 req_id_number:1;
    ngx_str_t                user;
    ngx_str_t                device;
    ngx_str_t                chat_id;
    ngx_str_t                cmid;
    ngx_str_t                body;
    ngx_str_t                attachments;  /* JSON array text */
    size_t                   size;         /* of the allocation */
    unsigned                 busy:1;       /* came back busy: wait */
    unsigned                 shed:1;       /* failed for the queue */
} ngx_chat_send_t;


/*
 * What the store tells the layer that queued a send: the store answers
 * no client itself.  Set once per worker (ngx_chat_worker.c).  cc is
 * active in the first three (the store checks).
 */
struct ngx_chat_store_handlers_s {
    /* the send's row of its batch: status NGX_CHAT_ST_*, res row */
    void  (*sent)(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
                  ngx_int_t status, PGresult *res, int row);

    /* not stored, the client may retry ("unavailable") */
    void  (*failed)(ngx_chat_conn_t *cc, ngx_chat_send_t *s);

    /* PostgreSQL refused this send alone: bad, the client's value */
    void  (*refused)(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
                     ngx_uint_t bad);

    /* the last send cc had queued is answered (cc may be closed) */
    void  (*idle)(ngx_chat_conn_t *cc);
};


extern const ngx_chat_pg_stmt_t  ngx_chat_store_stmts[];


ngx_int_t ngx_chat_store_init(ngx_chat_worker_t *w);
void ngx_chat_store_exit(ngx_chat_worker_t *w);

/* runs a statement for cc (cc NULL: for the worker); NGX_DECLINED: down */
ngx_int_t ngx_chat_store_query(ngx_chat_conn_t *cc, ngx_uint_t stmt,
    int n, const char **values, ngx_chat_store_done_pt done, void *data);

/*
 * NGX_OK queued; NGX_DECLINED: unavailable; NGX_BUSY: the worker's send
 * queue is full (NGX_CHAT_SEND_QUEUE_MAX or NGX_CHAT_SEND_QUEUE_BYTES) or
 * the sends ahead would take longer than chat_send_queue_time (shed)
 */
ngx_int_t ngx_chat_store_send(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_str_t *attachments);

/*
 * Queues acks of cc's device; NGX_DECLINED when the queue is full.  With
 * data, done(cc, data, NULL, rc) is called once every one of these acks is
 * committed (NGX_OK) or given up: NGX_DECLINED when some were not stored
 * within chat_db_timeout (retryable), NGX_ABORT when PostgreSQL refused one
 * for its value (SQLSTATE class 22) and NGX_ERROR for any other refusal of
 * one ack alone (both final).  ids must be 1..INT64_MAX.
 */
ngx_int_t ngx_chat_store_ack(ngx_chat_conn_t *cc, uint64_t *ids,
    ngx_uint_t n, ngx_chat_store_done_pt done, void *data);


#endif /* _NGX_CHAT_STORE_H_INCLUDED_ */
