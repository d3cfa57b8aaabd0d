
/*
 * ngx_chat_cmd.c: the commands of the JSON protocol (docs/protocol.md),
 * from a parsed text message to the response frame.  Commands that need
 * PostgreSQL keep the client's request id in a small ngx_chat_cmd_req_t
 * until their statement returns; sendMessage and ack go through the
 * batching of ngx_chat_store.c.
 */


#include "ngx_chat.h"
#include "ngx_chat_metrics.h"
#include "ngx_chat_cmd.h"
#include "ngx_chat_json.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_store.h"
#include "ngx_chat_session.h"
#include "ngx_chat_bus.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_limit.h"
#include "ngx_chat_cmdq.h"


/* getChats: chats per page by default, and the most a client may ask */
#define NGX_CHAT_CMD_CHATS_PAGE      50
#define NGX_CHAT_CMD_CHATS_PAGE_MAX  100


/* a command waiting for PostgreSQL: the request id, and what it needs */
typedef struct {
    ngx_str_t                id;
    unsigned                 id_is_number:1;
    unsigned                 has_id:1;
    ngx_str_t                arg;           /* e.g. the removed device */
    ngx_chat_store_done_pt   done;          /* of a barrier (cmdq) */
    u_char                   data[1];
} ngx_chat_cmd_req_t;


static ngx_int_t ngx_chat_cmd_ping(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_cmd_create_chat(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_cmd_modify(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_cmd_send_message(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_cmd_ack(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_cmd_get_chats(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_cmd_remove_device(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);

static void ngx_chat_cmd_created(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_cmd_modified(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_cmd_acked(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_cmd_listed(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_cmd_removed(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_cmd_barrier_done(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);

static ngx_chat_cmd_req_t *ngx_chat_cmd_req(ngx_chat_cmd_t *cmd,
    ngx_str_t *arg);
static ngx_int_t ngx_chat_cmd_query(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_uint_t stmt, int n, const char **values,
    ngx_chat_store_done_pt done, ngx_str_t *arg);
static ngx_int_t ngx_chat_cmd_need(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    uint32_t fields, const char *names);
static ngx_int_t ngx_chat_cmd_id_ok(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_chat_json_str_t *s, const char *field);
static void ngx_chat_cmd_publish(PGresult *res, int json_col, int users_col);
static void ngx_chat_cmd_status_error(ngx_chat_conn_t *cc,
    ngx_chat_cmd_req_t *req, ngx_int_t status, ngx_int_t rc);
static ngx_int_t ngx_chat_cmd_ok(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd);
static void ngx_chat_cmd_count(const char *code);
static void ngx_chat_cmd_log_error(ngx_chat_conn_t *cc, const char *id,
    size_t id_len, const char *code, const char *message);
static ngx_int_t ngx_chat_cmd_req_error(ngx_chat_conn_t *cc,
    ngx_chat_cmd_req_t *req, const char *code, const char *message);
static ngx_int_t ngx_chat_cmd_open_ok(ngx_chat_json_out_t *o,
    ngx_chat_cmd_req_t *req);
static ngx_int_t ngx_chat_cmd_limit(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_int_t limited, uint32_t retry);


/* the order of commands: see ngx_chat_cmdq.c */
static ngx_chat_cmd_def_t  ngx_chat_cmds[] = {
    { ngx_string("ping"), ngx_chat_cmd_ping, NGX_CHAT_CMDQ_FREE },
    { ngx_string("sendMessage"), ngx_chat_cmd_send_message,
      NGX_CHAT_CMDQ_SEND },
    { ngx_string("ack"), ngx_chat_cmd_ack, NGX_CHAT_CMDQ_FREE },
    { ngx_string("createChat"), ngx_chat_cmd_create_chat,
      NGX_CHAT_CMDQ_BARRIER },
    { ngx_string("modifyChatParticipants"), ngx_chat_cmd_modify,
      NGX_CHAT_CMDQ_BARRIER },
    { ngx_string("getChats"), ngx_chat_cmd_get_chats,
      NGX_CHAT_CMDQ_BARRIER },
    { ngx_string("removeDevice"), ngx_chat_cmd_remove_device,
      NGX_CHAT_CMDQ_BARRIER },
    { ngx_null_string, NULL, NGX_CHAT_CMDQ_FREE }
};


/* the command of that type in a table, or NULL */
static ngx_chat_cmd_def_t *
ngx_chat_cmd_find(ngx_chat_cmd_def_t *def, ngx_chat_json_str_t *type)
{
    for ( /* void */ ; def->handler; def++) {
        if (def->name.len == type->len
            && ngx_strncmp(def->name.data, type->data, type->len) == 0)
        {
            return def;
        }
    }

    return NULL;
}


ngx_int_t
ngx_chat_cmd_handle(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    return ngx_chat_cmd_handle_ex(cc, p, len, 0);
}


ngx_int_t
ngx_chat_cmd_handle_again(ngx_chat_conn_t *cc, u_char *p, size_t len)
{
    return ngx_chat_cmd_handle_ex(cc, p, len, NGX_CHAT_CMD_ADMITTED);
}


ngx_int_t
ngx_chat_cmd_handle_ex(ngx_chat_conn_t *cc, u_char *p, size_t len,
    uint32_t flags)
{
    int                  rc;
    void                *arena;
    size_t               size;
    uint32_t             retry;
    ngx_int_t            n, limited;
    ngx_chat_cmd_t       cmd;
    ngx_chat_cmd_def_t  *def;
    char                 err[128];

    /* chat_command_rate: every message costs, even one that fails */

    limited = NGX_CHAT_LIMIT_OK;
    retry = 0;

    if (!(flags & NGX_CHAT_CMD_ADMITTED)) {
        limited = ngx_chat_limit_take(&cc->limit,
                                      &ngx_chat_worker->cmcf->command_rate,
                                      (uint32_t) ngx_current_msec, &retry);

        if (limited == NGX_CHAT_LIMIT_CLOSE) {
            ngx_log_error(NGX_LOG_INFO, cc->connection->log, 0,
                          "chat: client keeps exceeding chat_command_rate, "
                          "closing");
            ngx_chat_ws_close(cc, NGX_CHAT_CLOSE_RATE_LIMITED,
                              "rate limit exceeded");
            return NGX_ERROR;
        }
    }

    size = ngx_chat_json_arena_size(len);

    arena = size ? ngx_alloc(size, cc->connection->log) : NULL;
    if (arena == NULL) {
        return ngx_chat_cmd_error(cc, NULL, 0, 0, "internal_error",
                                  "out of memory");
    }

    rc = ngx_chat_json_parse_cmd(p, len, &cmd, arena, size, err, sizeof(err));

    /* what the answer counts under (ngx_chat_cmd_count) */
    ngx_chat_worker->cmd_type = (rc == NGX_CHAT_JSON_OK
                                 && (cmd.present & NGX_CHAT_F_TYPE))
                                ? ngx_chat_metrics_cmd_type(
                                      (u_char *) cmd.type.data, cmd.type.len)
                                : NGX_CHAT_CMD_T_INVALID;

    if (limited != NGX_CHAT_LIMIT_OK
        || (!(flags & NGX_CHAT_CMD_ADMITTED) && rc == NGX_CHAT_JSON_OK
            && (cmd.present & NGX_CHAT_F_TYPE)))
    {
        /* refused by the rate, or too many commands in flight */

        n = ngx_chat_cmd_limit(cc, &cmd, limited, retry);
        if (n != NGX_DECLINED) {
            ngx_free(arena);
            return n;
        }
    }

    if (rc != NGX_CHAT_JSON_OK) {
        n = ngx_chat_cmd_error(cc, cmd.present & NGX_CHAT_F_ID
                                   ? cmd.id.data : NULL,
                               cmd.id.len, cmd.id_is_number, "bad_request",
                               rc == NGX_CHAT_JSON_ERROR ? "internal error"
                                                         : err);
        ngx_free(arena);
        return n;
    }

    if (!(cmd.present & NGX_CHAT_F_TYPE)) {
        n = ngx_chat_cmd_error(cc, cmd.present & NGX_CHAT_F_ID
                                   ? cmd.id.data : NULL,
                               cmd.id.len, cmd.id_is_number, "bad_request",
                               "field \"type\" is required");
        ngx_free(arena);
        return n;
    }

    cmd.flags = flags;

    def = ngx_chat_cmd_find(ngx_chat_cmds, &cmd.type);

    if (def == NULL && ngx_chat_worker->cmd_plugin) {
        def = ngx_chat_cmd_find(ngx_chat_worker->cmd_plugin->cmds,
                                &cmd.type);
    }

    if (def == NULL) {
        n = ngx_chat_cmd_error(cc, cmd.present & NGX_CHAT_F_ID
                                   ? cmd.id.data : NULL,
                               cmd.id.len, cmd.id_is_number, "unknown_type",
                               "unknown command type");
        ngx_free(arena);
        return n;
    }

    /* in the order the connection sent it, or kept for later */

    n = (flags & NGX_CHAT_CMD_ADMITTED)
        ? NGX_DECLINED
        : ngx_chat_cmdq_admit(cc, def->order, p, len,
                              ngx_chat_cmd_handle_again);

    if (n != NGX_DECLINED) {
        ngx_free(arena);

        return n == NGX_OK ? NGX_OK
                           : ngx_chat_cmd_error(cc, cmd.present & NGX_CHAT_F_ID
                                                    ? cmd.id.data : NULL,
                                                cmd.id.len, cmd.id_is_number,
                                                "internal_error",
                                                "out of memory");
    }

    n = def->handler(cc, &cmd);

    ngx_free(arena);

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_NONE;

    return n;
}


/*
 * Answers rate_limited for a command refused by chat_command_rate
 * (limited; cmd may then be a message that did not parse, whose id is
 * used if it was found) or by chat_max_inflight; NGX_DECLINED: go on.
 */
static ngx_int_t
ngx_chat_cmd_limit(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_int_t limited, uint32_t retry)
{
    const char  *id;

    id = (cmd->present & NGX_CHAT_F_ID) ? cmd->id.data : NULL;

    if (limited != NGX_CHAT_LIMIT_OK) {
        return ngx_chat_cmd_error_retry(cc, id, id ? cmd->id.len : 0,
                                        id ? cmd->id_is_number : 0,
                                        "rate_limited",
                                        "too many commands "
                                        "(chat_command_rate)", retry);
    }

    /*
     * chat_max_inflight: cc->pending counts the callbacks that hold the
     * connection, which are its commands waiting for PostgreSQL (or S3),
     * plus this read (one) and at most an inbox page and the device
     * registration of its own.  A ping needs nothing.
     */

    if (cc->pending <= ngx_chat_worker->cmcf->max_inflight
        || (cmd->type.len == 4 && ngx_strncmp(cmd->type.data, "ping", 4) == 0))
    {
        return NGX_DECLINED;
    }

    return ngx_chat_cmd_error_retry(cc, id, id ? cmd->id.len : 0,
                                    id ? cmd->id_is_number : 0,
                                    "rate_limited",
                                    "too many commands in flight "
                                    "(chat_max_inflight): wait for answers",
                                    NGX_CHAT_CMD_RETRY_BUSY);
}


static ngx_int_t
ngx_chat_cmd_ping(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    return ngx_chat_cmd_ok(cc, cmd);
}


static ngx_int_t
ngx_chat_cmd_create_chat(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    size_t           room;
    ngx_int_t        rc;
    ngx_uint_t       i;
    ngx_chat_pg_array_t   arr;
    const char      *values[6];
    u_char           user[NGX_CHAT_ID_MAX + 1];
    u_char           max[NGX_INT_T_LEN + 1];
    u_char           rate[NGX_INT_T_LEN + 1];
    u_char           burst[NGX_INT_T_LEN + 1];

    if (ngx_chat_cmd_need(cc, cmd, NGX_CHAT_F_PARTICIPANTS, "participants")
        != NGX_DECLINED)
    {
        return NGX_OK;
    }

    if (cmd->nparticipants + 1 > ngx_chat_worker->cmcf->max_participants
        && cmd->nparticipants > ngx_chat_worker->cmcf->max_participants)
    {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "limit_exceeded",
                                  "too many participants");
    }

    room = 0;

    for (i = 0; i < cmd->nparticipants; i++) {
        if (!ngx_chat_id_valid((u_char *) cmd->participants[i].data,
                               cmd->participants[i].len))
        {
            return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                      cmd->id_is_number, "bad_request",
                                      "participants must be user ids "
                                      "(1-64 of A-Z a-z 0-9 . _ @ -)");
        }

        room += ngx_chat_pg_array_room(cmd->participants[i].len);
    }

    if (ngx_chat_pg_array_init(&arr, room) != NGX_OK) {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "internal_error",
                                  "out of memory");
    }

    for (i = 0; i < cmd->nparticipants; i++) {
        ngx_chat_pg_array_add(&arr, (u_char *) cmd->participants[i].data,
                               cmd->participants[i].len);
    }

    ngx_chat_pg_array_close(&arr);

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';
    *ngx_sprintf(max, "%ui", ngx_chat_worker->cmcf->max_participants) = '\0';

    values[0] = (const char *) user;
    values[1] = (const char *) arr.start;
    values[2] = cmd->name.data ? cmd->name.data : "";
    values[3] = (const char *) max;
    values[4] = (const char *) rate;
    values[5] = (const char *) burst;

    ngx_chat_cmd_user_rate(NGX_CHAT_RATE_CREATE, rate, burst);

    rc = ngx_chat_cmd_query(cc, cmd, NGX_CHAT_STMT_CREATE, 6, values,
                            ngx_chat_cmd_created, NULL);

    ngx_free(arr.start);

    return rc;
}


static void
ngx_chat_cmd_created(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_cmd_req_t  *req = data;

    ngx_int_t            status;
    ngx_chat_json_out_t  o;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_CREATE;

    status = (rc == NGX_OK && PQntuples(res) == 1)
             ? ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0))
             : NGX_ERROR;

    if (status == NGX_CHAT_ST_RATE) {
        (void) ngx_chat_cmd_user_limited(cc, req->has_id ? req->id.data : NULL,
                                         req->id.len, req->id_is_number,
                                         NGX_CHAT_RATE_CREATE);
        ngx_free(req);
        return;
    }

    if (status != NGX_CHAT_ST_OK) {
        ngx_chat_cmd_status_error(cc, req, status, rc);
        ngx_free(req);
        return;
    }

    ngx_chat_cmd_publish(res, 2, 3);

    if (ngx_chat_cmd_open_ok(&o, req) == NGX_OK) {
        ngx_chat_json_out_key(&o, ngx_chat_json_sl("chatId"));
        ngx_chat_json_out_str(&o, PQgetvalue(res, 0, 1),
                              PQgetlength(res, 0, 1));
        ngx_chat_json_out_map_close(&o);
        (void) ngx_chat_cmd_flush(cc, &o);
    }

    ngx_free(req);
}


static ngx_int_t
ngx_chat_cmd_modify(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    const char  *values[7];
    u_char       user[NGX_CHAT_ID_MAX + 1];
    u_char       max[NGX_INT_T_LEN + 1];
    u_char       rate[NGX_INT_T_LEN + 1];
    u_char       burst[NGX_INT_T_LEN + 1];

    if (ngx_chat_cmd_need(cc, cmd, NGX_CHAT_F_CHAT_ID|NGX_CHAT_F_USER_ID
                                   |NGX_CHAT_F_OPERATION,
                          "chatId, userId and operation")
        != NGX_DECLINED)
    {
        return NGX_OK;
    }

    if (ngx_chat_cmd_id_ok(cc, cmd, &cmd->user_id, "userId") != NGX_OK) {
        return NGX_OK;
    }

    if (!(cmd->operation.len == 3
          && ngx_strncmp(cmd->operation.data, "ADD", 3) == 0)
        && !(cmd->operation.len == 6
             && ngx_strncmp(cmd->operation.data, "REMOVE", 6) == 0))
    {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "bad_request",
                                  "operation must be \"ADD\" or \"REMOVE\"");
    }

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';
    *ngx_sprintf(max, "%ui", ngx_chat_worker->cmcf->max_participants) = '\0';

    values[0] = (const char *) user;
    values[1] = cmd->chat_id.data;
    values[2] = cmd->user_id.data;
    values[3] = cmd->operation.data;
    values[4] = (const char *) max;
    values[5] = (const char *) rate;
    values[6] = (const char *) burst;

    ngx_chat_cmd_user_rate(NGX_CHAT_RATE_MODIFY, rate, burst);

    return ngx_chat_cmd_query(cc, cmd, NGX_CHAT_STMT_MODIFY, 7, values,
                              ngx_chat_cmd_modified, NULL);
}


static void
ngx_chat_cmd_modified(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_cmd_req_t  *req = data;

    ngx_int_t            status;
    ngx_chat_json_out_t  o;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_MODIFY;

    status = (rc == NGX_OK && PQntuples(res) == 1)
             ? ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0))
             : NGX_ERROR;

    if (status == NGX_CHAT_ST_RATE) {
        (void) ngx_chat_cmd_user_limited(cc, req->has_id ? req->id.data : NULL,
                                         req->id.len, req->id_is_number,
                                         NGX_CHAT_RATE_MODIFY);
        ngx_free(req);
        return;
    }

    if (status != NGX_CHAT_ST_OK) {
        ngx_chat_cmd_status_error(cc, req, status, rc);
        ngx_free(req);
        return;
    }

    ngx_chat_cmd_publish(res, 1, 2);

    if (ngx_chat_cmd_open_ok(&o, req) == NGX_OK) {
        ngx_chat_json_out_map_close(&o);
        (void) ngx_chat_cmd_flush(cc, &o);
    }

    ngx_free(req);
}


static ngx_int_t
ngx_chat_cmd_send_message(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    ngx_int_t  rc;
    ngx_str_t  attachments;
    u_char     list[NGX_CHAT_CMD_ATTACH_ROOM];

    if (ngx_chat_cmd_need(cc, cmd, NGX_CHAT_F_CHAT_ID|NGX_CHAT_F_MESSAGE
                                   |NGX_CHAT_F_CLIENT_MESSAGE_ID,
                          "chatId, clientMessageId and message")
        != NGX_DECLINED)
    {
        return NGX_OK;
    }

    if (cmd->client_message_id.len == 0) {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "bad_request",
                                  "clientMessageId must not be empty");
    }

    if (cmd->message.len > ngx_chat_worker->cmcf->max_message_size) {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "limit_exceeded",
                                  "message longer than chat_max_message_size");
    }

    attachments.data = list;
    attachments.len = sizeof(list);

    if (ngx_chat_worker->cmd_plugin
        && ngx_chat_worker->cmd_plugin->attachments)
    {
        rc = ngx_chat_worker->cmd_plugin->attachments(cc, cmd, &attachments);

    } else if (cmd->present & NGX_CHAT_F_ATTACHMENTS) {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "bad_request",
                                  "attachments are not enabled on this "
                                  "server");

    } else {
        ngx_str_set(&attachments, "[]");
        rc = NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        /*
         * run again once its attachments are confirmed: the connection's
         * later commands wait for it (ngx_chat_media_check_step() ends
         * the turn); without memory for that, they do not
         */
        (void) ngx_chat_cmdq_start(cc, ngx_chat_cmd_handle_again);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        /* answered */
        return NGX_OK;
    }

    rc = ngx_chat_store_send(cc, cmd, &attachments);

    if (rc == NGX_BUSY) {
        return ngx_chat_cmd_error_retry(cc, cmd->id.data, cmd->id.len,
                                        cmd->id_is_number, "unavailable",
                                        "the server is overloaded, retry "
                                        "with the same clientMessageId",
                                        NGX_CHAT_CMD_RETRY_BUSY);
    }

    if (rc != NGX_OK) {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "unavailable",
                                  "database unavailable or overloaded, "
                                  "retry with the same clientMessageId");
    }

    return NGX_OK;
}


void
ngx_chat_cmd_send_done(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
    ngx_int_t status, PGresult *res, int row)
{
    ngx_chat_json_out_t  o;
    ngx_chat_cmd_req_t   req;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_SEND;

    req.id = s->req_id;
    req.id_is_number = s->req_id_number;
    req.has_id = (s->req_id.data != NULL && s->req_id.len);

    if (status == NGX_CHAT_ST_BAD_REQUEST && !PQgetisnull(res, row, 6)) {
        u_char  msg[160];

        *ngx_snprintf(msg, sizeof(msg) - 1,
                      "attachment \"%*s\" is not an uploaded attachment "
                      "of yours", (size_t) ngx_min(PQgetlength(res, row, 6),
                                                   64),
                      PQgetvalue(res, row, 6)) = '\0';
        (void) ngx_chat_cmd_req_error(cc, &req, "bad_request",
                                      (const char *) msg);
        return;
    }

    if (status != NGX_CHAT_ST_OK) {
        ngx_chat_cmd_status_error(cc, &req, status, NGX_OK);
        return;
    }

    if (ngx_chat_cmd_open_ok(&o, &req) != NGX_OK) {
        return;
    }

    ngx_chat_json_out_key(&o, ngx_chat_json_sl("messageId"));
    ngx_chat_json_out_str(&o, PQgetvalue(res, row, 2),
                          PQgetlength(res, row, 2));
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("seq"));
    ngx_chat_json_out_int(&o, ngx_atoof((u_char *) PQgetvalue(res, row, 3),
                                        PQgetlength(res, row, 3)));
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("sentAt"));
    ngx_chat_json_out_int(&o, ngx_atoof((u_char *) PQgetvalue(res, row, 4),
                                        PQgetlength(res, row, 4)));
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("duplicate"));
    ngx_chat_json_out_bool(&o, PQgetvalue(res, row, 5)[0] == 't');
    ngx_chat_json_out_map_close(&o);

    (void) ngx_chat_cmd_flush(cc, &o);
}


void
ngx_chat_cmd_send_failed(ngx_chat_conn_t *cc, ngx_chat_send_t *s)
{
    ngx_chat_cmd_req_t  req;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_SEND;

    req.id = s->req_id;
    req.id_is_number = s->req_id_number;
    req.has_id = (s->req_id.len != 0);

    if (s->shed) {
        /* the queue ahead of it would have made it late: overloaded */
        (void) ngx_chat_cmd_error_retry(cc, req.has_id
                                            ? (const char *) req.id.data
                                            : NULL,
                                        req.id.len, req.id_is_number,
                                        "unavailable",
                                        "the server is overloaded, retry "
                                        "with the same clientMessageId",
                                        NGX_CHAT_CMD_RETRY_BUSY);
        return;
    }

    (void) ngx_chat_cmd_req_error(cc, &req, "unavailable",
                                  "the message was not stored: retry with "
                                  "the same clientMessageId");
}


void
ngx_chat_cmd_send_refused(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
    ngx_uint_t bad)
{
    ngx_chat_cmd_req_t  req;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_SEND;

    req.id = s->req_id;
    req.id_is_number = s->req_id_number;
    req.has_id = (s->req_id.len != 0);

    (void) ngx_chat_cmd_req_error(cc, &req,
                                  bad ? "bad_request" : "internal_error",
                                  bad ? "a field was refused by the database"
                                      : "the message could not be stored");
}


static ngx_int_t
ngx_chat_cmd_ack(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    ngx_chat_cmd_req_t  *req;

    if (!(cmd->present & NGX_CHAT_F_EVENT_IDS)) {
        return ngx_chat_cmd_error(cc, cmd->present & NGX_CHAT_F_ID
                                      ? cmd->id.data : NULL,
                                  cmd->id.len, cmd->id_is_number,
                                  "bad_request",
                                  "field \"eventIds\" is required");
    }

    if (cmd->nevent_ids) {
        ngx_chat_session_acked(cc, cmd->event_ids, cmd->nevent_ids);

        if (cc->connection == NULL) {
            return NGX_ERROR;
        }

        req = NULL;

        if (cmd->present & NGX_CHAT_F_ID) {
            /* answered once the inbox rows are really deleted */
            req = ngx_chat_cmd_req(cmd, NULL);
            if (req == NULL) {
                return ngx_chat_cmd_error(cc, NULL, 0, 0, "internal_error",
                                          "out of memory");
            }
        }

        if (!ngx_chat_conn_active(cc)
            || ngx_chat_store_ack(cc, cmd->event_ids, cmd->nevent_ids,
                                  req ? ngx_chat_cmd_acked : NULL, req)
               != NGX_OK)
        {
            if (req) {
                ngx_free(req);
            }

            return ngx_chat_cmd_error_retry(cc, cmd->present & NGX_CHAT_F_ID
                                                ? cmd->id.data : NULL,
                                            cmd->id.len, cmd->id_is_number,
                                            "unavailable",
                                            "too many acks pending, retry "
                                            "later", NGX_CHAT_CMD_RETRY_BUSY);
        }

        return NGX_OK;
    }

    if (cmd->present & NGX_CHAT_F_ID) {
        return ngx_chat_cmd_ok(cc, cmd);
    }

    return NGX_OK;
}


static void
ngx_chat_cmd_acked(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_cmd_req_t  *req = data;

    ngx_chat_json_out_t  o;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_ACK;

    if (cc && (rc == NGX_ABORT || rc == NGX_ERROR)) {
        /* an ack PostgreSQL refused alone: sending it again is no use */
        (void) ngx_chat_cmd_req_error(cc, req,
                                      rc == NGX_ABORT ? "bad_request"
                                                      : "internal_error",
                                      "an event id was refused by the "
                                      "database; the others are stored");

    } else if (cc && rc != NGX_OK) {
        (void) ngx_chat_cmd_req_error(cc, req, "unavailable",
                                      "acks not stored yet, send them again");

    } else if (cc && ngx_chat_cmd_open_ok(&o, req) == NGX_OK) {
        ngx_chat_json_out_map_close(&o);
        (void) ngx_chat_cmd_flush(cc, &o);
    }

    ngx_free(req);
}


/*
 * getChats answers one page: at most "limit" chats (default 50, 1 to 100)
 * with an id above "cursor", in chat id order.  One more row than the
 * limit is asked for, to know whether another page follows.
 */
static ngx_int_t
ngx_chat_cmd_get_chats(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    ngx_str_t    arg;
    ngx_int_t    limit;
    const char  *values[3];
    u_char       user[NGX_CHAT_ID_MAX + 1];
    u_char       rows[NGX_INT_T_LEN + 1];

    limit = NGX_CHAT_CMD_CHATS_PAGE;

    if (cmd->present & NGX_CHAT_F_LIMIT) {
        if (cmd->limit < 1 || cmd->limit > NGX_CHAT_CMD_CHATS_PAGE_MAX) {
            return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                      cmd->id_is_number, "bad_request",
                                      "limit must be 1 to 100");
        }

        limit = (ngx_int_t) cmd->limit;
    }

    /* a cursor is a chat id: it must fit a bigint */

    if ((cmd->present & NGX_CHAT_F_CURSOR)
        && ngx_atoof((u_char *) cmd->cursor.data, cmd->cursor.len)
           == NGX_ERROR)
    {
        return ngx_chat_cmd_error(cc, cmd->id.data, cmd->id.len,
                                  cmd->id_is_number, "bad_request",
                                  "cursor must be the nextCursor of a page");
    }

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';
    *ngx_sprintf(rows, "%i", limit + 1) = '\0';

    values[0] = (const char *) user;
    values[1] = (cmd->present & NGX_CHAT_F_CURSOR) ? cmd->cursor.data : "0";
    values[2] = (const char *) rows;

    /* the callback gets the limit as the request's argument */

    arg.data = rows;
    arg.len = ngx_strlen(rows);

    return ngx_chat_cmd_query(cc, cmd, NGX_CHAT_STMT_LIST, 3, values,
                              ngx_chat_cmd_listed, &arg);
}


/*
 * The page is also cut by bytes: at most a quarter of chat_output_limit of
 * chat objects (but always the first one), so that a page fits the output
 * queue beside a drain backlog, which fills at most half of it.  A chat is
 * at most 67 bytes per participant plus ~1.9 KB (a name of control
 * characters); one larger than the whole queue would drop the connection,
 * as its chatUpdate event would.
 */
static void
ngx_chat_cmd_listed(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_cmd_req_t  *req = data;

    int                  row, rows, limit;
    size_t               len, used, budget;
    ngx_chat_json_out_t  o;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_GET_CHATS;

    if (rc != NGX_OK || PQnfields(res) != 2) {
        ngx_chat_cmd_status_error(cc, req, NGX_ERROR, rc);
        ngx_free(req);
        return;
    }

    /* the statement was asked for limit + 1 rows */
    limit = ngx_atoi(req->arg.data, req->arg.len) - 1;
    rows = PQntuples(res);
    budget = ngx_chat_worker->cmcf->output_limit / 4;

    if (ngx_chat_cmd_open_ok(&o, req) != NGX_OK) {
        ngx_free(req);
        return;
    }

    ngx_chat_json_out_key(&o, ngx_chat_json_sl("chats"));
    ngx_chat_json_out_array_open(&o);

    used = 0;

    for (row = 0; row < rows && row < limit; row++) {
        if (PQgetisnull(res, row, 1)) {
            continue;
        }

        len = PQgetlength(res, row, 1);

        if (used && used + len + 1 > budget) {
            break;
        }

        ngx_chat_json_out_raw(&o, PQgetvalue(res, row, 1), len);
        used += len + 1;
    }

    ngx_chat_json_out_array_close(&o);

    if (row < rows) {
        /* more follow: the cursor is the id of the last chat sent */
        ngx_chat_json_out_key(&o, ngx_chat_json_sl("nextCursor"));
        ngx_chat_json_out_str(&o, PQgetvalue(res, row - 1, 0),
                              PQgetlength(res, row - 1, 0));
    }

    ngx_chat_json_out_map_close(&o);
    (void) ngx_chat_cmd_flush(cc, &o);

    ngx_free(req);
}


static ngx_int_t
ngx_chat_cmd_remove_device(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    ngx_str_t    device;
    const char  *values[2];
    u_char       user[NGX_CHAT_ID_MAX + 1];

    if (ngx_chat_cmd_need(cc, cmd, NGX_CHAT_F_DEVICE_ID, "deviceId")
        != NGX_DECLINED)
    {
        return NGX_OK;
    }

    if (ngx_chat_cmd_id_ok(cc, cmd, &cmd->device_id, "deviceId") != NGX_OK) {
        return NGX_OK;
    }

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';
    values[0] = (const char *) user;
    values[1] = cmd->device_id.data;

    device.data = (u_char *) cmd->device_id.data;
    device.len = cmd->device_id.len;

    return ngx_chat_cmd_query(cc, cmd, NGX_CHAT_STMT_REMOVE_DEVICE, 2, values,
                              ngx_chat_cmd_removed, &device);
}


static void
ngx_chat_cmd_removed(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_cmd_req_t  *req = data;

    ngx_int_t            status;
    ngx_chat_json_out_t  o;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_REMOVE;

    status = (rc == NGX_OK && PQntuples(res) == 1)
             ? ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0))
             : NGX_ERROR;

    if (status != NGX_CHAT_ST_OK) {
        ngx_chat_cmd_status_error(cc, req, status, rc);
        ngx_free(req);
        return;
    }

    if (ngx_chat_cmd_open_ok(&o, req) == NGX_OK) {
        ngx_chat_json_out_map_close(&o);
        (void) ngx_chat_cmd_flush(cc, &o);
    }

    /* the removed device's connections, wherever they are, close */

    ngx_chat_bus_kick(&cc->uid, &req->arg, NGX_CHAT_CLOSE_REMOVED, NULL);

    ngx_free(req);
}


/* a missing field answers bad_request: NGX_OK, else NGX_DECLINED */
static ngx_int_t
ngx_chat_cmd_need(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd, uint32_t fields,
    const char *names)
{
    u_char  msg[160];

    if ((cmd->present & fields) == fields) {
        return NGX_DECLINED;
    }

    *ngx_snprintf(msg, sizeof(msg) - 1, "%s required", names) = '\0';

    (void) ngx_chat_cmd_error(cc, cmd->present & NGX_CHAT_F_ID
                                  ? cmd->id.data : NULL,
                              cmd->id.len, cmd->id_is_number, "bad_request",
                              (const char *) msg);
    return NGX_OK;
}


static ngx_int_t
ngx_chat_cmd_id_ok(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_chat_json_str_t *s, const char *field)
{
    u_char  msg[160];

    if (ngx_chat_id_valid((u_char *) s->data, s->len)) {
        return NGX_OK;
    }

    *ngx_snprintf(msg, sizeof(msg) - 1,
                  "%s must be 1-64 of A-Z a-z 0-9 . _ @ -", field) = '\0';

    (void) ngx_chat_cmd_error(cc, cmd->present & NGX_CHAT_F_ID
                                  ? cmd->id.data : NULL,
                              cmd->id.len, cmd->id_is_number, "bad_request",
                              (const char *) msg);
    return NGX_DECLINED;
}


/* runs stmt for a command; answers unavailable itself when it cannot */
static ngx_int_t
ngx_chat_cmd_query(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd, ngx_uint_t stmt,
    int n, const char **values, ngx_chat_store_done_pt done, ngx_str_t *arg)
{
    ngx_chat_cmd_req_t  *req;

    if (ngx_chat_session_ready(cc) != NGX_OK) {
        return ngx_chat_cmd_error(cc, cmd->present & NGX_CHAT_F_ID
                                      ? cmd->id.data : NULL,
                                  cmd->id.len, cmd->id_is_number,
                                  "unavailable",
                                  "database unavailable, retry later");
    }

    req = ngx_chat_cmd_req(cmd, arg);
    if (req == NULL) {
        return ngx_chat_cmd_error(cc, NULL, 0, 0, "internal_error",
                                  "out of memory");
    }

    /*
     * Every command that runs a statement here is a barrier: the
     * connection's later commands wait until it returns (ngx_chat_cmdq.c)
     */

    req->done = done;

    if (ngx_chat_cmdq_start(cc, ngx_chat_cmd_handle_again) != NGX_OK) {
        ngx_free(req);
        return ngx_chat_cmd_error(cc, NULL, 0, 0, "internal_error",
                                  "out of memory");
    }

    if (ngx_chat_store_query(cc, stmt, n, values, ngx_chat_cmd_barrier_done,
                             req)
        != NGX_OK)
    {
        ngx_chat_cmdq_done(cc);
        ngx_free(req);
        return ngx_chat_cmd_error(cc, cmd->present & NGX_CHAT_F_ID
                                      ? cmd->id.data : NULL,
                                  cmd->id.len, cmd->id_is_number,
                                  "unavailable",
                                  "database unavailable, retry later");
    }

    return NGX_OK;
}


/* a barrier's statement returned: its own callback, then the next ones */
static void
ngx_chat_cmd_barrier_done(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_cmd_req_t  *req = data;

    req->done(cc, data, res, rc);

    ngx_chat_cmdq_done(cc);
}


static ngx_chat_cmd_req_t *
ngx_chat_cmd_req(ngx_chat_cmd_t *cmd, ngx_str_t *arg)
{
    u_char              *p;
    size_t               alen;
    ngx_chat_cmd_req_t  *req;

    alen = arg ? arg->len : 0;

    req = ngx_alloc(sizeof(ngx_chat_cmd_req_t) + cmd->id.len + alen,
                    ngx_cycle->log);
    if (req == NULL) {
        return NULL;
    }

    p = req->data;

    req->has_id = (cmd->present & NGX_CHAT_F_ID) ? 1 : 0;
    req->id_is_number = cmd->id_is_number;
    req->id.len = cmd->id.len;
    req->id.data = p;
    p = ngx_cpymem(p, cmd->id.data, cmd->id.len);

    req->arg.len = alen;
    req->arg.data = p;

    if (alen) {
        ngx_memcpy(p, arg->data, alen);
    }

    return req;
}


/* publishes the event a statement returned (json_col) to users_col */
static void
ngx_chat_cmd_publish(PGresult *res, int json_col, int users_col)
{
    u_char      *json, *p, *last;
    uint64_t     id;
    ngx_str_t    none;

    if (PQgetisnull(res, 0, json_col) || PQgetisnull(res, 0, users_col)) {
        return;
    }

    json = (u_char *) PQgetvalue(res, 0, json_col);
    last = json + PQgetlength(res, 0, json_col);

    /* the event id, for the receivers' dedup: "eventId" : "123" */

#define NGX_CHAT_CMD_EVENT_ID  "\"eventId\""

    p = ngx_strlcasestrn(json, last, (u_char *) NGX_CHAT_CMD_EVENT_ID,
                         sizeof(NGX_CHAT_CMD_EVENT_ID) - 2);
    if (p == NULL) {
        return;
    }

    for (p += sizeof(NGX_CHAT_CMD_EVENT_ID) - 1;
         p < last && (*p < '0' || *p > '9');
         p++)
    {
        /* void */
    }

    for (id = 0; p < last && *p >= '0' && *p <= '9'; p++) {
        id = id * 10 + (*p - '0');
    }

    ngx_str_null(&none);

    (void) ngx_chat_bus_fanout((u_char *) PQgetvalue(res, 0, users_col),
                               PQgetlength(res, 0, users_col), id, &none,
                               &none, &none, json,
                               PQgetlength(res, 0, json_col));
}


static void
ngx_chat_cmd_status_error(ngx_chat_conn_t *cc, ngx_chat_cmd_req_t *req,
    ngx_int_t status, ngx_int_t rc)
{
    if (rc == NGX_DECLINED) {
        (void) ngx_chat_cmd_req_error(cc, req, "unavailable",
                                      "database unavailable, retry later");
        return;
    }

    switch (status) {

    case NGX_CHAT_ST_NOT_FOUND:
        (void) ngx_chat_cmd_req_error(cc, req, "not_found",
                                      "no such chat or device");
        return;

    case NGX_CHAT_ST_FORBIDDEN:
        (void) ngx_chat_cmd_req_error(cc, req, "forbidden",
                                      "not allowed for this user");
        return;

    case NGX_CHAT_ST_LIMIT:
        (void) ngx_chat_cmd_req_error(cc, req, "limit_exceeded",
                                      "a limit was exceeded (participants)");
        return;

    case NGX_CHAT_ST_BAD_REQUEST:
        (void) ngx_chat_cmd_req_error(cc, req, "bad_request",
                                      "invalid arguments");
        return;

    default:
        (void) ngx_chat_cmd_req_error(cc, req, "internal_error",
                                      "internal error");
    }
}


static ngx_int_t
ngx_chat_cmd_ok(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    ngx_chat_json_out_t  o;

    if (ngx_chat_json_out_init(&o, NGX_CHAT_WS_HEADER_MAX) != NGX_CHAT_JSON_OK)
    {
        return NGX_OK;
    }

    ngx_chat_json_response_ok_open(&o, cmd);
    ngx_chat_json_out_map_close(&o);
    ngx_chat_cmd_count("ok");

    return ngx_chat_cmd_flush(cc, &o);
}


static ngx_int_t
ngx_chat_cmd_open_ok(ngx_chat_json_out_t *o, ngx_chat_cmd_req_t *req)
{
    return ngx_chat_cmd_open_id(o, req->id.data, req->id.len, req->has_id,
                                req->id_is_number);
}


ngx_int_t
ngx_chat_cmd_open_id(ngx_chat_json_out_t *o, const u_char *id,
    size_t id_len, ngx_uint_t has_id, ngx_uint_t id_is_number)
{
    ngx_chat_cmd_t  cmd;

    if (ngx_chat_json_out_init(o, NGX_CHAT_WS_HEADER_MAX) != NGX_CHAT_JSON_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&cmd, sizeof(ngx_chat_cmd_t));

    if (has_id) {
        cmd.present = NGX_CHAT_F_ID;
        cmd.id.data = (const char *) id;
        cmd.id.len = id_len;
        cmd.id_is_number = id_is_number;
    }

    ngx_chat_json_response_ok_open(o, &cmd);
    ngx_chat_cmd_count("ok");

    return NGX_OK;
}


static ngx_int_t
ngx_chat_cmd_req_error(ngx_chat_conn_t *cc, ngx_chat_cmd_req_t *req,
    const char *code, const char *message)
{
    return ngx_chat_cmd_error(cc, req->has_id ? (const char *) req->id.data
                                              : NULL,
                              req->id.len, req->id_is_number, code, message);
}


ngx_int_t
ngx_chat_cmd_error(ngx_chat_conn_t *cc, const char *id, size_t id_len,
    ngx_uint_t id_is_number, const char *code, const char *message)
{
    ngx_chat_json_out_t  o;

    if (ngx_chat_json_out_init(&o, NGX_CHAT_WS_HEADER_MAX) != NGX_CHAT_JSON_OK)
    {
        return NGX_OK;
    }

    ngx_chat_json_response_error(&o, id, id_len, (int) id_is_number, code,
                                 message);
    ngx_chat_cmd_count(code);
    ngx_chat_cmd_log_error(cc, id, id_len, code, message);

    return ngx_chat_cmd_flush(cc, &o);
}


ngx_int_t
ngx_chat_cmd_error_retry(ngx_chat_conn_t *cc, const char *id, size_t id_len,
    ngx_uint_t id_is_number, const char *code, const char *message,
    ngx_msec_t retry)
{
    ngx_chat_json_out_t  o;

    if (ngx_chat_json_out_init(&o, NGX_CHAT_WS_HEADER_MAX) != NGX_CHAT_JSON_OK)
    {
        return NGX_OK;
    }

    ngx_chat_json_response_error_retry(&o, id, id_len, (int) id_is_number,
                                       code, message, (uint64_t) retry);
    ngx_chat_cmd_count(code);
    ngx_chat_cmd_log_error(cc, id, id_len, code, message);

    return ngx_chat_cmd_flush(cc, &o);
}


void
ngx_chat_cmd_user_rate(ngx_uint_t kind, u_char *rate, u_char *burst)
{
    ngx_chat_limit_conf_t  *lc;

    lc = &ngx_chat_worker->cmcf->user_rate[kind];

    *ngx_sprintf(rate, "%uD", lc->rate) = '\0';
    *ngx_sprintf(burst, "%uD", lc->burst) = '\0';
}


ngx_int_t
ngx_chat_cmd_user_limited(ngx_chat_conn_t *cc, const u_char *id,
    size_t id_len, ngx_uint_t id_is_number, ngx_uint_t kind)
{
    uint32_t  rate;

    /* one request's refill: the wait is at most that (refusals are free) */

    rate = ngx_chat_worker->cmcf->user_rate[kind].rate;

    return ngx_chat_cmd_error_retry(cc, (const char *) id, id_len,
                                    id_is_number, "rate_limited",
                                    "too many of these commands for this "
                                    "user (chat_user_rate)",
                                    rate ? (60000 + rate - 1) / rate : 1000);
}


/* sends the frame built in o and frees o; NGX_ERROR if cc was closed */
ngx_int_t
ngx_chat_cmd_flush(ngx_chat_conn_t *cc, ngx_chat_json_out_t *o)
{
    ngx_int_t  rc;

    rc = NGX_OK;

    if (!o->failed && o->done && cc->connection) {
        rc = ngx_chat_ws_send_text(cc, o->buf + NGX_CHAT_WS_HEADER_MAX,
                                   o->len - NGX_CHAT_WS_HEADER_MAX);
    }

    ngx_chat_json_out_free(o);

    return cc->connection ? NGX_OK : rc;
}


/*
 * commands_total{type,result}: the type is the command being answered
 * (set when it is parsed, and by each callback that answers later)
 */
static void
ngx_chat_cmd_count(const char *code)
{
    ngx_uint_t  type;

    type = ngx_chat_worker->cmd_type;

    if (type >= NGX_CHAT_CMD_T_N) {
        type = NGX_CHAT_CMD_T_UNKNOWN;
    }

    ngx_chat_metrics_add(commands[type][ngx_chat_metrics_cmd_result(code)],
                         1);
}


/*
 * A command that failed on our side (internal_error) is logged with the
 * user, the device (the connection's log adds them) and the request id;
 * the client's own mistakes and load refusals are only answered.
 */
static void
ngx_chat_cmd_log_error(ngx_chat_conn_t *cc, const char *id, size_t id_len,
    const char *code, const char *message)
{
    if (ngx_strcmp(code, "internal_error") != 0) {
        return;
    }

    if (id == NULL) {
        id = "";
        id_len = 0;
    }

    if (cc->connection) {
        ngx_log_error(NGX_LOG_ERR, cc->connection->log, 0,
                      "chat: %s request \"%*s\" failed: %s",
                      ngx_chat_metrics_cmd_name(ngx_chat_worker->cmd_type),
                      id_len, id, message);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "chat: %s request \"%*s\" failed: %s, user: %V, "
                  "device: %V",
                  ngx_chat_metrics_cmd_name(ngx_chat_worker->cmd_type),
                  id_len, id, message, &cc->uid, &cc->device);
}
