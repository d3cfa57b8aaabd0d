
/*
 * ngx_chat_cmd.h: the client commands of the JSON protocol.
 */


#ifndef _NGX_CHAT_CMD_H_INCLUDED_
#define _NGX_CHAT_CMD_H_INCLUDED_


#include "ngx_chat.h"
#include "ngx_chat_store.h"
#include "ngx_chat_json.h"


/* the retry hint of refusals for load (ms, "retryAfterMs") */
#define NGX_CHAT_CMD_RETRY_BUSY  1000


/* one text message of cc; NGX_OK unless the connection was closed */
ngx_int_t ngx_chat_cmd_handle(ngx_chat_conn_t *cc, u_char *p, size_t len);

/*
 * The same for a message that was admitted once already and is run again
 * (a sendMessage after its attachment check): it is not counted against
 * chat_command_rate or chat_max_inflight again.
 */
ngx_int_t ngx_chat_cmd_handle_again(ngx_chat_conn_t *cc, u_char *p,
    size_t len);

/*
 * Responses, for commands answered here and in ngx_chat_media_cmd.c: an
 * error frame for a request id (id NULL: the command had none); an "ok"
 * frame opened for the caller's fields; and sending a built frame (frees
 * o; NGX_ERROR when cc was closed meanwhile).
 */
ngx_int_t ngx_chat_cmd_error(ngx_chat_conn_t *cc, const char *id,
    size_t id_len, ngx_uint_t id_is_number, const char *code,
    const char *message);
ngx_int_t ngx_chat_cmd_error_retry(ngx_chat_conn_t *cc, const char *id,
    size_t id_len, ngx_uint_t id_is_number, const char *code,
    const char *message, ngx_msec_t retry);
ngx_int_t ngx_chat_cmd_open_id(ngx_chat_json_out_t *o, const u_char *id,
    size_t id_len, ngx_uint_t has_id, ngx_uint_t id_is_number);
ngx_int_t ngx_chat_cmd_flush(ngx_chat_conn_t *cc, ngx_chat_json_out_t *o);

/*
 * The parameters of chat_user_rate for kind (NGX_CHAT_RATE_*), as text
 * for the SQL functions: NUL-terminated, each buffer NGX_INT_T_LEN + 1.
 */
void ngx_chat_cmd_user_rate(ngx_uint_t kind, u_char *rate, u_char *burst);

/*
 * The error of a command refused by its chat_user_rate (kind is one of
 * NGX_CHAT_RATE_*), with its retry hint; id NULL: the command had none.
 */
ngx_int_t ngx_chat_cmd_user_limited(ngx_chat_conn_t *cc, const u_char *id,
    size_t id_len, ngx_uint_t id_is_number, ngx_uint_t kind);

/* the outcome of a sendMessage, from its batch */
void ngx_chat_cmd_send_done(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
    ngx_int_t status, PGresult *res, int row);
void ngx_chat_cmd_send_failed(ngx_chat_conn_t *cc, ngx_chat_send_t *s);


#endif /* _NGX_CHAT_CMD_H_INCLUDED_ */
