
/*
 * ngx_chat_pg.h: a per-worker pool of asynchronous PostgreSQL connections.
 *
 * Only libpq's non-blocking API is used (PQconnectStart/PQconnectPoll,
 * PQsendQueryPrepared, PQconsumeInput/PQisBusy/PQgetResult), with each
 * socket registered in nginx's event loop.  Every statement the module uses
 * is prepared on each new connection from the table given at creation.
 */


#ifndef _NGX_CHAT_PG_H_INCLUDED_
#define _NGX_CHAT_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <libpq-fe.h>


/* the bytes of parameters waiting in a pool's queue (besides max_queue) */
#define NGX_CHAT_PG_QUEUE_BYTES  (64 * 1024 * 1024)


typedef struct ngx_chat_pg_s        ngx_chat_pg_t;
typedef struct ngx_chat_pg_query_s  ngx_chat_pg_query_t;


typedef struct {
    const char              *name;      /* prepared statement name */
    const char              *sql;       /* text with $1..$n */
    int                      nparams;
} ngx_chat_pg_stmt_t;


/*
 * Called exactly once per accepted query, never from inside
 * ngx_chat_pg_query() itself.  rc is
 *   NGX_OK        res holds PGRES_TUPLES_OK or PGRES_COMMAND_OK;
 *   NGX_ERROR     the statement failed (res holds the error result, or NULL);
 *   NGX_DECLINED  unavailable: timed out, connection lost, pool shut down.
 * res is cleared by the pool after the handler returns.
 */
typedef void (*ngx_chat_pg_handler_pt)(void *data, PGresult *res,
    ngx_int_t rc);


/*
 * stmts is a static array ended by an entry with name == NULL.
 *
 * Call from init_process (the event loop must be initialized); connecting
 * starts at once.  conninfo is a libpq connection string or URI; it must
 * use hostaddr=, a numeric host or a unix socket directory, because libpq
 * resolves host names with a blocking DNS lookup (it is refused
 * otherwise: ngx_chat_pg_check_conninfo()).  Defaults it may override:
 * fallback_application_name=ngx_chat, client_encoding=UTF8, keepalives=1,
 * keepalives_idle=30, gssencmode=disable.
 * A statement that fails to prepare makes the connection retry with backoff
 * (so the pool heals once the schema is migrated).  timeout is the deadline
 * of each query from ngx_chat_pg_query() on, 0 for none.  Returns NULL on
 * an invalid conninfo or no memory.
 */
ngx_chat_pg_t *ngx_chat_pg_create(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t pool_size, ngx_uint_t max_queue, ngx_msec_t timeout,
    const ngx_chat_pg_stmt_t *stmts);

/*
 * Checks a NUL-terminated conninfo at configuration time: it must parse,
 * have no service=, and name each host by an IP address or a unix socket
 * (or give its hostaddr=), so that no worker ever resolves a name.
 * NGX_OK, or NGX_ERROR with a NUL-terminated reason in err[0..size) that
 * reads after the directive's name ("has the host name ...").
 */
ngx_int_t ngx_chat_pg_check_conninfo(const char *conninfo, u_char *err,
    size_t size);

/*
 * Queues statement stmts[stmt]; parameters are copied.  Returns the query,
 * or NULL when the pool fails fast (no connection is up, or the wait queue
 * is full: max_queue queries, or NGX_CHAT_PG_QUEUE_BYTES of them and
 * more): the handler is then not called.
 *
 * Parameters are text: values[i] == NULL is SQL NULL; lengths may be NULL
 * (then each value is NUL-terminated), else lengths[i] bytes are copied.
 * nparams must equal stmts[stmt].nparams.  The query is valid until its
 * handler returns; handlers may call ngx_chat_pg_query(), not
 * ngx_chat_pg_destroy().
 */
ngx_chat_pg_query_t *ngx_chat_pg_query(ngx_chat_pg_t *pg, ngx_uint_t stmt,
    int nparams, const char *const *values, const int *lengths,
    ngx_chat_pg_handler_pt handler, void *data);


/* brings the query's deadline closer: ms from now, if that is sooner */
void ngx_chat_pg_query_expire(ngx_chat_pg_query_t *q, ngx_msec_t ms);

/* 1 when at least one connection is established */
ngx_uint_t ngx_chat_pg_up(ngx_chat_pg_t *pg);

/*
 * The same for a request that needs the pool now: when nothing is up, the
 * next reconnect comes within 100 ms whatever the backoff (an idle pool,
 * asked only by ngx_chat_pg_up(), keeps its backoff).
 */
ngx_uint_t ngx_chat_pg_want(ngx_chat_pg_t *pg);

/*
 * For exit_process: closes every connection and frees the pool; pending
 * handlers get NGX_DECLINED, synchronously (ngx_chat_pg_query() returns
 * NULL from inside them).  pg may be NULL.
 */
void ngx_chat_pg_destroy(ngx_chat_pg_t *pg);


#endif /* _NGX_CHAT_PG_H_INCLUDED_ */
