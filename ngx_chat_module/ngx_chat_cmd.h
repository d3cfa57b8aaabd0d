
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


typedef ngx_int_t (*ngx_chat_cmd_pt)(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);


typedef struct {
    ngx_str_t                name;
    ngx_chat_cmd_pt          handler;
    ngx_uint_t               order;         /* NGX_CHAT_CMDQ_* */
} ngx_chat_cmd_def_t;


/*
 * A feature plugged into the commands, as nginx's filters plug into its
 * chains (set once per worker, ngx_chat_worker.c): its commands (ended by
 * a NULL handler), and what it makes of a sendMessage's "attachments":
 *   NGX_OK        *json is the JSON array of attachment ids to store
 *                 ("[]" without attachments), valid until the next call;
 *   NGX_DECLINED  refused: the error response was sent;
 *   NGX_AGAIN     being checked: the feature holds cc and runs the same
 *                 text again with NGX_CHAT_CMD_ADMITTED|_CHECKED;
 *   NGX_ERROR     cc was closed.
 */
struct ngx_chat_cmd_plugin_s {
    ngx_chat_cmd_def_t      *cmds;
    ngx_int_t              (*attachments)(ngx_chat_conn_t *cc,
                                          ngx_chat_cmd_t *cmd,
                                          ngx_str_t *json);
};


/* the room a plug-in gets for a sendMessage's attachment id list */
#define NGX_CHAT_CMD_ATTACH_ROOM  512


/* how a text is run (ngx_chat_cmd_t.flags) */
#define NGX_CHAT_CMD_ADMITTED  0x1  /* in its turn, counted already */
#define NGX_CHAT_CMD_CHECKED   0x2  /* its attachments are confirmed */


/* one text message of cc; NGX_OK unless the connection was closed */
ngx_int_t ngx_chat_cmd_handle(ngx_chat_conn_t *cc, u_char *p, size_t len);

/*
 * The same with flags: a message admitted once already and run again (a
 * command kept behind others, a sendMessage after its attachment check)
 * is not counted against chat_command_rate or chat_max_inflight, nor
 * kept in the connection's order again.
 */
ngx_int_t ngx_chat_cmd_handle_ex(ngx_chat_conn_t *cc, u_char *p,
    size_t len, uint32_t flags);

/* ngx_chat_cmd_handle_ex() with NGX_CHAT_CMD_ADMITTED (ngx_chat_cmdq.c) */
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
void ngx_chat_cmd_send_refused(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
    ngx_uint_t bad);


#endif /* _NGX_CHAT_CMD_H_INCLUDED_ */
