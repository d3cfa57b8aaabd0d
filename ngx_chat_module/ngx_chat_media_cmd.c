
/*
 * ngx_chat_media_cmd.c: the media commands of the WebSocket protocol
 * (createAttachment, getAttachmentUrl, ackAttachment), the sendMessage
 * hook that checks an attachment list (and, with S3, confirms pending
 * uploads with HEAD requests before the message goes on), and the URLs
 * added to events for each receiving device.
 *
 * Queries run for the worker (cc NULL in ngx_chat_store_query) while this
 * file holds the connection itself (cc->pending, released with
 * ngx_chat_ws_release()), so every callback runs and frees its state even
 * when the connection closed meanwhile.
 */


#include "ngx_chat.h"
#include "ngx_chat_metrics.h"
#include "ngx_chat_media.h"
#include "ngx_chat_media_event.h"
#include "ngx_chat_urlsign.h"
#include "ngx_chat_store.h"
#include "ngx_chat_session.h"
#include "ngx_chat_cmd.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_cmdq.h"


/* a sendMessage waiting for its S3 uploads to be confirmed */
typedef struct {
    ngx_chat_conn_t         *cc;
    u_char                  *text;         /* the command, re-serialized */
    size_t                   len;
    ngx_uint_t               waiting;      /* HEADs and updates out */
    ngx_str_t                user;
} ngx_chat_media_check_t;


typedef struct {
    ngx_chat_media_check_t  *check;
    ngx_str_t                id;
    off_t                    size;
    u_char                   data[NGX_CHAT_MEDIA_ID_LEN];
} ngx_chat_media_head_t;


static ngx_int_t ngx_chat_media_attachments(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd, ngx_str_t *json);
static ngx_int_t ngx_chat_media_create(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static void ngx_chat_media_created(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_chat_media_need_id(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static ngx_int_t ngx_chat_media_get_url(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static void ngx_chat_media_got(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_chat_media_ack(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd);
static void ngx_chat_media_acked(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_chat_media_download_url(ngx_chat_media_main_conf_t *mc,
    ngx_str_t *id, ngx_str_t *type, off_t size, ngx_str_t *sha256,
    ngx_str_t *user, ngx_str_t *device, time_t expires, u_char *buf,
    size_t size_buf, size_t *len);
static ngx_int_t ngx_chat_media_query(ngx_chat_conn_t *cc,
    ngx_chat_cmd_t *cmd, ngx_uint_t stmt, int n, const char **values,
    ngx_chat_store_done_pt done);
static void ngx_chat_media_pending_done(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_media_head_done(void *data, ngx_uint_t status,
    off_t length);
static void ngx_chat_media_mark_done(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_media_check_step(ngx_chat_media_check_t *ck);
static void ngx_chat_media_req_free(ngx_chat_media_req_t *req);
static ngx_int_t ngx_chat_media_open_ok(ngx_chat_json_out_t *o,
    ngx_chat_media_req_t *req);
static ngx_int_t ngx_chat_media_error(ngx_chat_conn_t *cc,
    ngx_chat_media_req_t *req, ngx_chat_cmd_t *cmd, const char *code,
    const char *message);
static ngx_int_t ngx_chat_media_flush(ngx_chat_conn_t *cc,
    ngx_chat_json_out_t *o);
static ngx_uint_t ngx_chat_media_type_ok(ngx_chat_media_main_conf_t *mc,
    ngx_chat_json_str_t *type, u_char *lower);


/* what an event with attachments contains (ngx_strlcasestrn: len - 1) */
#define NGX_CHAT_MEDIA_ATT_KEY  "\"attachmentId\""


#if (NGX_CHAT_MEDIA_LIST_MAX > NGX_CHAT_CMD_ATTACH_ROOM)
#error "the attachment list does not fit NGX_CHAT_CMD_ATTACH_ROOM"
#endif


/* the media commands, plugged into the core's (ngx_chat_cmd.h) */
static ngx_chat_cmd_def_t  ngx_chat_media_cmds[] = {
    { ngx_string("createAttachment"), ngx_chat_media_create,
      NGX_CHAT_CMDQ_FREE },
    { ngx_string("getAttachmentUrl"), ngx_chat_media_get_url,
      NGX_CHAT_CMDQ_FREE },
    { ngx_string("ackAttachment"), ngx_chat_media_ack, NGX_CHAT_CMDQ_FREE },
    { ngx_null_string, NULL, NGX_CHAT_CMDQ_FREE }
};


const ngx_chat_cmd_plugin_t  ngx_chat_media_plugin = {
    ngx_chat_media_cmds,
    ngx_chat_media_attachments
};


/* createAttachment {"contentType","size","sha256"} */
static ngx_int_t
ngx_chat_media_create(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    size_t                       i;
    const char                  *values[7];
    ngx_chat_media_main_conf_t  *mc;
    u_char                       rate[NGX_INT_T_LEN + 1];
    u_char                       burst[NGX_INT_T_LEN + 1];
    u_char                       user[NGX_CHAT_ID_MAX + 1];
    u_char                       device[NGX_CHAT_ID_MAX + 1];
    u_char                       type[NGX_CHAT_JSON_CONTENT_TYPE_MAX + 1];
    u_char                       size[NGX_OFF_T_LEN + 1];
    u_char                       sha[65];

    mc = ngx_chat_media_conf();

    if (mc == NULL) {
        return ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "attachments are not enabled on this "
                                    "server");
    }

    if ((cmd->present & (NGX_CHAT_F_CONTENT_TYPE|NGX_CHAT_F_SIZE
                         |NGX_CHAT_F_SHA256))
        != (NGX_CHAT_F_CONTENT_TYPE|NGX_CHAT_F_SIZE|NGX_CHAT_F_SHA256))
    {
        return ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "contentType, size and sha256 required");
    }

    if (cmd->size < 0 || (uint64_t) cmd->size > mc->max_size) {
        return ngx_chat_media_error(cc, NULL, cmd, "limit_exceeded",
                                    "size over chat_media_max_size");
    }

    if (!ngx_chat_media_type_ok(mc, &cmd->content_type, type)) {
        return ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "contentType is not an allowed media "
                                    "type");
    }

    if (cmd->sha256.len != 64) {
        return ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "sha256 must be 64 hex digits");
    }

    for (i = 0; i < 64; i++) {
        sha[i] = ngx_tolower((u_char) cmd->sha256.data[i]);

        if (!((sha[i] >= '0' && sha[i] <= '9')
              || (sha[i] >= 'a' && sha[i] <= 'f')))
        {
            return ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                        "sha256 must be 64 hex digits");
        }
    }

    sha[64] = '\0';

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';
    *ngx_cpymem(device, cc->device.data, cc->device.len) = '\0';
    *ngx_sprintf(size, "%L", cmd->size) = '\0';

    values[0] = (const char *) user;
    values[1] = (const char *) device;
    values[2] = (const char *) type;
    values[3] = (const char *) size;
    values[4] = (const char *) sha;
    values[5] = (const char *) rate;
    values[6] = (const char *) burst;

    ngx_chat_cmd_user_rate(NGX_CHAT_RATE_ATTACH, rate, burst);

    return ngx_chat_media_query(cc, cmd, NGX_CHAT_STMT_MEDIA_CREATE, 7,
                                values, ngx_chat_media_created);
}


static void
ngx_chat_media_created(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_media_req_t  *req = data;

    off_t                        size;
    size_t                       len, hlen;
    time_t                       expires;
    ngx_str_t                    id, type, sha, user, device;
    ngx_chat_conn_t             *cc;
    ngx_chat_json_out_t          o;
    ngx_chat_urlsign_t           u;
    ngx_chat_media_main_conf_t  *mc;
    u_char                       url[NGX_CHAT_MEDIA_URL_MAX];
    u_char                       num[NGX_OFF_T_LEN];
    u_char                       b64[48];

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_ATTACH_CREATE;

    cc = req->cc;
    mc = ngx_chat_media_conf();

    if (!ngx_chat_conn_active(cc) || mc == NULL) {
        goto done;
    }

    if (rc == NGX_OK && PQntuples(res) == 1
        && ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0))
           == NGX_CHAT_ST_RATE)
    {
        if (cc->connection) {
            (void) ngx_chat_cmd_user_limited(cc, req->has_id ? req->id.data
                                                             : NULL,
                                             req->id.len, req->id_is_number,
                                             NGX_CHAT_RATE_ATTACH);
        }

        goto done;
    }

    if (rc != NGX_OK || PQntuples(res) != 1
        || ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                    PQgetlength(res, 0, 0)) != 0)
    {
        (void) ngx_chat_media_error(cc, req, NULL,
                                    rc == NGX_DECLINED ? "unavailable"
                                                       : "internal_error",
                                    rc == NGX_DECLINED
                                    ? "database unavailable, retry later"
                                    : "could not create the attachment");
        goto done;
    }

    /* the values the statement was given, echoed by the request itself */

    id.data = (u_char *) PQgetvalue(res, 0, 1);
    id.len = PQgetlength(res, 0, 1);

    type.data = req->data + req->id.len;
    type.len = ngx_strlen(type.data);
    sha.data = type.data + type.len + 1;
    sha.len = 64;
    size = ngx_atoof(sha.data + 65, ngx_strlen(sha.data + 65));

    expires = ngx_time() + mc->url_ttl;

    if (mc->store == NGX_CHAT_MEDIA_LOCAL) {
        user = cc->uid;
        device = cc->device;

        ngx_memzero(&u, sizeof(u));
        u.op = NGX_CHAT_URLSIGN_PUT;
        u.id = (const char *) id.data;
        u.id_len = id.len;
        u.type = (const char *) type.data;
        u.type_len = type.len;
        u.size = size;
        u.sha256 = (const char *) sha.data;
        u.sha256_len = 64;
        u.user = (const char *) user.data;
        u.user_len = user.len;
        u.device = (const char *) device.data;
        u.device_len = device.len;
        u.expires = expires;

        len = mc->url.len + id.len + 1;

        if (len + NGX_CHAT_URLSIGN_QUERY_MAX > sizeof(url)
            || ngx_chat_urlsign_sign(mc->key, 32, &u,
                                     (char *) url + len,
                                     sizeof(url) - len, &hlen)
               != NGX_CHAT_URLSIGN_OK)
        {
            (void) ngx_chat_media_error(cc, req, NULL, "internal_error",
                                        "could not sign the upload URL");
            goto done;
        }

        ngx_sprintf(url, "%V%V?", &mc->url, &id);
        len += hlen;

    } else {
        if (ngx_chat_media_s3_url(mc, "PUT", &id, &type, size, &sha,
                                  expires, url, sizeof(url), &len)
            != NGX_OK)
        {
            (void) ngx_chat_media_error(cc, req, NULL, "internal_error",
                                        "could not sign the upload URL");
            goto done;
        }
    }

    if (ngx_chat_media_open_ok(&o, req) != NGX_OK) {
        goto done;
    }

    ngx_chat_json_out_key(&o, ngx_chat_json_sl("attachmentId"));
    ngx_chat_json_out_str(&o, (const char *) id.data, id.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("uploadUrl"));
    ngx_chat_json_out_str(&o, (const char *) url, len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("method"));
    ngx_chat_json_out_str(&o, ngx_chat_json_sl("PUT"));
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("headers"));
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("Content-Type"));
    ngx_chat_json_out_str(&o, (const char *) type.data, type.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("Content-Length"));
    ngx_chat_json_out_str(&o, (const char *) num,
                          ngx_sprintf(num, "%O", size) - num);

    if (mc->store == NGX_CHAT_MEDIA_S3
        && ngx_chat_media_sha256_b64(&sha, b64, &hlen) == NGX_OK)
    {
        ngx_chat_json_out_key(&o, ngx_chat_json_sl("x-amz-checksum-sha256"));
        ngx_chat_json_out_str(&o, (const char *) b64, hlen);
    }

    ngx_chat_json_out_map_close(&o);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("expiresAt"));
    ngx_chat_json_out_int(&o, (int64_t) expires * 1000);
    ngx_chat_json_out_map_close(&o);

    (void) ngx_chat_media_flush(cc, &o);

done:

    ngx_chat_media_req_free(req);
}


/*
 * getAttachmentUrl and ackAttachment need media enabled and a valid
 * attachmentId; NGX_DECLINED when the error response was sent.
 */
static ngx_int_t
ngx_chat_media_need_id(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    if (ngx_chat_media_conf() == NULL) {
        (void) ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "attachments are not enabled on this "
                                    "server");
        return NGX_DECLINED;
    }

    if (!(cmd->present & NGX_CHAT_F_ATTACHMENT_ID)
        || !ngx_chat_media_id_valid((u_char *) cmd->attachment_id.data,
                                    cmd->attachment_id.len))
    {
        (void) ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "attachmentId required (32 lowercase "
                                    "hex digits)");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* getAttachmentUrl {"attachmentId"} */
static ngx_int_t
ngx_chat_media_get_url(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    const char  *values[2];
    u_char       user[NGX_CHAT_ID_MAX + 1];

    if (ngx_chat_media_need_id(cc, cmd) != NGX_OK) {
        return NGX_OK;
    }

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';

    values[0] = (const char *) user;
    values[1] = cmd->attachment_id.data;

    return ngx_chat_media_query(cc, cmd, NGX_CHAT_STMT_MEDIA_GET, 2, values,
                                ngx_chat_media_got);
}


static void
ngx_chat_media_got(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_media_req_t  *req = data;

    size_t                       len;
    time_t                       expires;
    ngx_int_t                    status;
    ngx_str_t                    id, type, sha;
    ngx_chat_conn_t             *cc;
    ngx_chat_json_out_t          o;
    ngx_chat_media_main_conf_t  *mc;
    off_t                        size;
    u_char                       url[NGX_CHAT_MEDIA_URL_MAX];

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_ATTACH_URL;

    cc = req->cc;
    mc = ngx_chat_media_conf();

    if (!ngx_chat_conn_active(cc) || mc == NULL) {
        goto done;
    }

    status = (rc == NGX_OK && PQntuples(res) == 1)
             ? ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0))
             : NGX_ERROR;

    if (status != 0) {
        (void) ngx_chat_media_error(cc, req, NULL,
                   rc == NGX_DECLINED ? "unavailable"
                   : status == 1 ? "not_found"
                   : status == 2 ? "forbidden" : "internal_error",
                   rc == NGX_DECLINED ? "database unavailable, retry later"
                   : status == 1 ? "no such attachment (or it is gone)"
                   : status == 2 ? "not a participant of a chat where the "
                                   "attachment was sent"
                   : "internal error");
        goto done;
    }

    id.data = req->data + req->id.len;
    id.len = NGX_CHAT_MEDIA_ID_LEN;
    type.data = (u_char *) PQgetvalue(res, 0, 1);
    type.len = PQgetlength(res, 0, 1);
    size = ngx_atoof((u_char *) PQgetvalue(res, 0, 2),
                     PQgetlength(res, 0, 2));
    sha.data = (u_char *) PQgetvalue(res, 0, 3);
    sha.len = PQgetlength(res, 0, 3);

    expires = ngx_time() + mc->url_ttl;

    if (ngx_chat_media_download_url(mc, &id, &type, size, &sha,
                                    &cc->uid, &cc->device, expires,
                                    url, sizeof(url), &len)
        != NGX_OK)
    {
        (void) ngx_chat_media_error(cc, req, NULL, "internal_error",
                                    "could not sign the URL");
        goto done;
    }

    if (ngx_chat_media_open_ok(&o, req) != NGX_OK) {
        goto done;
    }

    ngx_chat_json_out_key(&o, ngx_chat_json_sl("attachmentId"));
    ngx_chat_json_out_str(&o, (const char *) id.data, id.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("contentType"));
    ngx_chat_json_out_str(&o, (const char *) type.data, type.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("size"));
    ngx_chat_json_out_int(&o, size);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("sha256"));
    ngx_chat_json_out_str(&o, (const char *) sha.data, sha.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("url"));
    ngx_chat_json_out_str(&o, (const char *) url, len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("urlExpiresAt"));
    ngx_chat_json_out_int(&o, (int64_t) expires * 1000);
    ngx_chat_json_out_map_close(&o);

    (void) ngx_chat_media_flush(cc, &o);

done:

    ngx_chat_media_req_free(req);
}


/* ackAttachment {"attachmentId"}: the device has the blob */
static ngx_int_t
ngx_chat_media_ack(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd)
{
    const char  *values[3];
    u_char       user[NGX_CHAT_ID_MAX + 1];
    u_char       device[NGX_CHAT_ID_MAX + 1];

    if (ngx_chat_media_need_id(cc, cmd) != NGX_OK) {
        return NGX_OK;
    }

    *ngx_cpymem(user, cc->uid.data, cc->uid.len) = '\0';
    *ngx_cpymem(device, cc->device.data, cc->device.len) = '\0';

    values[0] = cmd->attachment_id.data;
    values[1] = (const char *) user;
    values[2] = (const char *) device;

    return ngx_chat_media_query(cc, cmd, NGX_CHAT_STMT_MEDIA_RECEIVED, 3,
                                values, ngx_chat_media_acked);
}


static void
ngx_chat_media_acked(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_media_req_t  *req = data;

    ngx_str_t             id;
    ngx_chat_conn_t      *cc;
    ngx_chat_json_out_t   o;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_ATTACH_ACK;

    cc = req->cc;

    if (rc == NGX_OK && PQntuples(res) == 1
        && PQgetvalue(res, 0, 1)[0] == 't')
    {
        /* the last recipient device: the blob goes */
        id.data = req->data + req->id.len;
        id.len = NGX_CHAT_MEDIA_ID_LEN;
        ngx_chat_media_purge(&id, 1);
    }

    if (!ngx_chat_conn_active(cc)) {
        goto done;
    }

    if (rc != NGX_OK || PQntuples(res) != 1) {
        (void) ngx_chat_media_error(cc, req, NULL,
                                    rc == NGX_DECLINED ? "unavailable"
                                                       : "internal_error",
                                    rc == NGX_DECLINED
                                    ? "database unavailable, retry later"
                                    : "internal error");
        goto done;
    }

    if (req->has_id && ngx_chat_media_open_ok(&o, req) == NGX_OK) {
        ngx_chat_json_out_map_close(&o);
        (void) ngx_chat_media_flush(cc, &o);
    }

done:

    ngx_chat_media_req_free(req);
}


/*
 * The download URL of an object for a device: local, signed with the
 * device (nginx records who completed the download); S3, presigned GET.
 */
static ngx_int_t
ngx_chat_media_download_url(ngx_chat_media_main_conf_t *mc, ngx_str_t *id,
    ngx_str_t *type, off_t size, ngx_str_t *sha256, ngx_str_t *user,
    ngx_str_t *device, time_t expires, u_char *buf, size_t size_buf,
    size_t *len)
{
    size_t              n, qlen;
    ngx_chat_urlsign_t  u;

    if (mc->store == NGX_CHAT_MEDIA_S3) {
        return ngx_chat_media_s3_url(mc, "GET", id, type, size, sha256,
                                     expires, buf, size_buf, len);
    }

    ngx_memzero(&u, sizeof(u));
    u.op = NGX_CHAT_URLSIGN_GET;
    u.id = (const char *) id->data;
    u.id_len = id->len;
    u.type = (const char *) type->data;
    u.type_len = type->len;
    u.size = size;
    u.sha256 = (const char *) sha256->data;
    u.sha256_len = sha256->len;
    u.user = (const char *) user->data;
    u.user_len = user->len;
    u.device = (const char *) device->data;
    u.device_len = device->len;
    u.expires = expires;

    n = mc->url.len + id->len + 1;

    if (n >= size_buf
        || ngx_chat_urlsign_sign(mc->key, 32, &u, (char *) buf + n,
                                 size_buf - n, &qlen)
           != NGX_CHAT_URLSIGN_OK)
    {
        return NGX_ERROR;
    }

    ngx_sprintf(buf, "%V%V?", &mc->url, id);
    *len = n + qlen;

    return NGX_OK;
}


/* ---- sendMessage ---------------------------------------------------- */

/*
 * For sendMessage, before the message is queued (ngx_chat_cmd_plugin_t):
 * json->data has json->len bytes of room (NGX_CHAT_CMD_ATTACH_ROOM) and
 * gets the JSON array of the attachment ids.  An S3 check holds cc and
 * runs the same text again, marked NGX_CHAT_CMD_CHECKED.
 */
static ngx_int_t
ngx_chat_media_attachments(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_str_t *json)
{
    u_char                      *p;
    size_t                       room;
    ngx_uint_t                   i;
    ngx_chat_pg_array_t               arr;
    const char                  *values[2];
    ngx_chat_json_out_t          o;
    ngx_chat_media_check_t      *ck;
    ngx_chat_media_main_conf_t  *mc;
    ngx_chat_json_str_t         *a;
    u_char                       msg[128];

    if (json->len < NGX_CHAT_MEDIA_LIST_MAX) {
        /* the caller's room: NGX_CHAT_CMD_ATTACH_ROOM, checked at build */
        return NGX_ERROR;
    }


    if (cmd->nattachments == 0) {
        json->len = 2;
        ngx_memcpy(json->data, "[]", 2);
        return NGX_OK;
    }

    mc = ngx_chat_media_conf();

    if (mc == NULL) {
        (void) ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                    "attachments are not enabled on this "
                                    "server");
        return cc->connection ? NGX_DECLINED : NGX_ERROR;
    }

    if (cmd->nattachments > NGX_CHAT_MEDIA_MAX_ATTACH) {
        (void) ngx_chat_media_error(cc, NULL, cmd, "limit_exceeded",
                                    "at most 10 attachments per message");
        return cc->connection ? NGX_DECLINED : NGX_ERROR;
    }

    p = json->data;
    *p++ = '[';

    for (i = 0; i < cmd->nattachments; i++) {
        a = &cmd->attachments[i];

        if (!ngx_chat_media_id_valid((u_char *) a->data, a->len)) {
            *ngx_snprintf(msg, sizeof(msg) - 1,
                          "attachment \"%*s\" is not an attachment id",
                          ngx_min(a->len, (size_t) 64), a->data) = '\0';
            (void) ngx_chat_media_error(cc, NULL, cmd, "bad_request",
                                        (const char *) msg);
            return cc->connection ? NGX_DECLINED : NGX_ERROR;
        }

        if (i) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_cpymem(p, a->data, a->len);
        *p++ = '"';
    }

    *p++ = ']';
    json->len = p - json->data;

    if (mc->store != NGX_CHAT_MEDIA_S3 || (cmd->flags & NGX_CHAT_CMD_CHECKED)) {
        return NGX_OK;
    }

    /*
     * S3: the uploads of this user still pending among these ids are
     * confirmed by HEAD first; the command is kept as JSON to run again.
     */

    if (ngx_chat_session_ready(cc) != NGX_OK) {
        (void) ngx_chat_media_error(cc, NULL, cmd, "unavailable",
                                    "database unavailable, retry later");
        return cc->connection ? NGX_DECLINED : NGX_ERROR;
    }

    if (ngx_chat_json_out_init(&o, 0) != NGX_CHAT_JSON_OK) {
        return NGX_DECLINED;
    }

    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("type"));
    ngx_chat_json_out_str(&o, ngx_chat_json_sl("sendMessage"));

    if (cmd->present & NGX_CHAT_F_ID) {
        ngx_chat_json_out_key(&o, ngx_chat_json_sl("id"));

        if (cmd->id_is_number) {
            ngx_chat_json_out_raw(&o, cmd->id.data, cmd->id.len);

        } else {
            ngx_chat_json_out_str(&o, cmd->id.data, cmd->id.len);
        }
    }

    ngx_chat_json_out_key(&o, ngx_chat_json_sl("chatId"));
    ngx_chat_json_out_str(&o, cmd->chat_id.data, cmd->chat_id.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("clientMessageId"));
    ngx_chat_json_out_str(&o, cmd->client_message_id.data,
                          cmd->client_message_id.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("message"));
    ngx_chat_json_out_str(&o, cmd->message.data, cmd->message.len);
    ngx_chat_json_out_key(&o, ngx_chat_json_sl("attachments"));
    ngx_chat_json_out_raw(&o, (const char *) json->data, json->len);
    ngx_chat_json_out_map_close(&o);

    ck = o.failed ? NULL
                  : ngx_calloc(sizeof(ngx_chat_media_check_t)
                               + cc->uid.len, ngx_cycle->log);

    if (ck == NULL) {
        ngx_chat_json_out_free(&o);
        (void) ngx_chat_media_error(cc, NULL, cmd, "internal_error",
                                    "out of memory");
        return cc->connection ? NGX_DECLINED : NGX_ERROR;
    }

    ck->cc = cc;
    ck->text = o.buf;
    ck->len = o.len;
    o.buf = NULL;
    ngx_chat_json_out_free(&o);

    ck->user.data = (u_char *) (ck + 1);
    ck->user.len = cc->uid.len;
    ngx_memcpy(ck->user.data, cc->uid.data, ck->user.len);

    room = 0;

    for (i = 0; i < cmd->nattachments; i++) {
        room += ngx_chat_pg_array_room(cmd->attachments[i].len);
    }

    if (ngx_chat_pg_array_init(&arr, room) != NGX_OK) {
        ngx_free(ck->text);
        ngx_free(ck);
        return NGX_DECLINED;
    }

    for (i = 0; i < cmd->nattachments; i++) {
        ngx_chat_pg_array_add(&arr, (u_char *) cmd->attachments[i].data,
                               cmd->attachments[i].len);
    }

    ngx_chat_pg_array_close(&arr);

    *ngx_cpymem(msg, cc->uid.data, cc->uid.len) = '\0';
    values[0] = (const char *) msg;
    values[1] = (const char *) arr.start;

    cc->pending++;
    ck->waiting = 1;

    if (ngx_chat_store_query(NULL, NGX_CHAT_STMT_MEDIA_PENDING, 2, values,
                             ngx_chat_media_pending_done, ck)
        != NGX_OK)
    {
        ngx_free(arr.start);
        ngx_free(ck->text);
        ngx_free(ck);
        ngx_chat_ws_release(cc);
        (void) ngx_chat_media_error(cc, NULL, cmd, "unavailable",
                                    "database unavailable, retry later");
        return cc->connection ? NGX_DECLINED : NGX_ERROR;
    }

    ngx_free(arr.start);

    return NGX_AGAIN;
}


static void
ngx_chat_media_pending_done(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc)
{
    ngx_chat_media_check_t  *ck = data;

    int                          row, rows;
    ngx_chat_media_head_t       *h;
    ngx_chat_media_main_conf_t  *mc;

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_SEND;

    mc = ngx_chat_media_conf();

    if (rc == NGX_OK && mc && ngx_chat_conn_active(ck->cc)) {
        rows = PQntuples(res);

        for (row = 0; row < rows; row++) {
            if (PQgetlength(res, row, 0) != NGX_CHAT_MEDIA_ID_LEN) {
                continue;
            }

            h = ngx_alloc(sizeof(ngx_chat_media_head_t), ngx_cycle->log);
            if (h == NULL) {
                break;
            }

            h->check = ck;
            h->id.data = h->data;
            h->id.len = NGX_CHAT_MEDIA_ID_LEN;
            ngx_memcpy(h->data, PQgetvalue(res, row, 0),
                       NGX_CHAT_MEDIA_ID_LEN);
            h->size = ngx_atoof((u_char *) PQgetvalue(res, row, 1),
                                PQgetlength(res, row, 1));

            if (ngx_chat_media_s3_request(mc, "HEAD", &h->id,
                                          ngx_chat_media_head_done, h)
                != NGX_OK)
            {
                ngx_free(h);
                continue;
            }

            ck->waiting++;
        }
    }

    ngx_chat_media_check_step(ck);
}


static void
ngx_chat_media_head_done(void *data, ngx_uint_t status, off_t length)
{
    ngx_chat_media_head_t  *h = data;

    const char              *values[3];
    ngx_chat_media_check_t  *ck;
    u_char                   id[NGX_CHAT_MEDIA_ID_LEN + 1];
    u_char                   size[NGX_OFF_T_LEN + 1];

    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_SEND;

    ck = h->check;

    if (status == NGX_HTTP_OK && length == h->size
        && ngx_chat_conn_active(ck->cc))
    {
        *ngx_cpymem(id, h->id.data, h->id.len) = '\0';
        *ngx_sprintf(size, "%O", h->size) = '\0';

        values[0] = (const char *) id;
        values[1] = (const char *) size;
        values[2] = NULL;

        if (ngx_chat_store_query(NULL, NGX_CHAT_STMT_MEDIA_UPLOADED, 3,
                                 values, ngx_chat_media_mark_done, ck)
            == NGX_OK)
        {
            ck->waiting++;
        }

    } else {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "chat media: S3 HEAD of \"%V\": status %ui, length "
                      "%O, expected %O", &h->id, status, length, h->size);
    }

    ngx_free(h);
    ngx_chat_media_check_step(ck);
}


static void
ngx_chat_media_mark_done(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_worker->cmd_type = NGX_CHAT_CMD_T_SEND;

    ngx_chat_media_check_step(data);
}


/* one step of a check is over: the last one runs the command again */
static void
ngx_chat_media_check_step(ngx_chat_media_check_t *ck)
{
    ngx_chat_conn_t  *cc;

    if (--ck->waiting) {
        return;
    }

    cc = ck->cc;

    if (ngx_chat_conn_active(cc)) {
        (void) ngx_chat_cmd_handle_ex(cc, ck->text, ck->len,
                                      NGX_CHAT_CMD_ADMITTED
                                      |NGX_CHAT_CMD_CHECKED);
    }

    ngx_free(ck->text);
    ngx_free(ck);

    /* the connection's later commands may run now (ngx_chat_cmdq.c) */
    ngx_chat_cmdq_done(cc);

    ngx_chat_ws_release(cc);
}


/* ---- events --------------------------------------------------------- */

ngx_int_t
ngx_chat_media_render(ngx_chat_conn_t *cc, u_char *json, size_t len,
    u_char **out, size_t *out_len)
{
    int                          n, i;
    u_char                      *buf, *p;
    size_t                       ulen, size, prev;
    time_t                       expires;
    ngx_str_t                    id, type, sha;
    ngx_chat_media_main_conf_t  *mc;
    ngx_chat_media_event_att_t   a[NGX_CHAT_MEDIA_EVENT_MAX];
    u_char                       url[NGX_CHAT_MEDIA_URL_MAX];

    mc = ngx_chat_media_conf();

    if (mc == NULL || !ngx_chat_conn_active(cc)
        || ngx_strlcasestrn(json, json + len,
                            (u_char *) NGX_CHAT_MEDIA_ATT_KEY,
                            sizeof(NGX_CHAT_MEDIA_ATT_KEY) - 2)
           == NULL)
    {
        return NGX_DECLINED;
    }

    n = ngx_chat_media_event_scan((const char *) json, len, a,
                                  NGX_CHAT_MEDIA_EVENT_MAX);
    if (n <= 0) {
        if (n < 0) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "chat media: an event could not be scanned");
        }

        return NGX_DECLINED;
    }

    /* room for each url twice (JSON needs no escape) and the fields */

    size = len + n * (sizeof(url) + 64);

    buf = ngx_alloc(size, ngx_cycle->log);
    if (buf == NULL) {
        return NGX_DECLINED;
    }

    expires = ngx_time() + mc->url_ttl;

    p = buf;
    prev = 0;

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, json + prev, a[i].close - prev);
        prev = a[i].close;

        if (a[i].id == NULL || a[i].type == NULL || a[i].sha256 == NULL
            || a[i].size < 0)
        {
            continue;
        }

        id.data = (u_char *) a[i].id;
        id.len = a[i].id_len;
        type.data = (u_char *) a[i].type;
        type.len = a[i].type_len;
        sha.data = (u_char *) a[i].sha256;
        sha.len = a[i].sha256_len;

        if (!ngx_chat_media_id_valid(id.data, id.len)
            || ngx_chat_media_download_url(mc, &id, &type, a[i].size, &sha,
                                           &cc->uid, &cc->device,
                                           expires, url, sizeof(url), &ulen)
               != NGX_OK)
        {
            continue;
        }

        p = ngx_sprintf(p, "%s\"url\":\"%*s\",\"urlExpiresAt\":%T000",
                        a[i].empty ? "" : ",", ulen, url, expires);
    }

    p = ngx_cpymem(p, json + prev, len - prev);

    *out = buf;
    *out_len = p - buf;

    return NGX_OK;
}


/* ---- helpers -------------------------------------------------------- */

/* a content type in the allow-list, lowercased into lower (NUL-ended) */
static ngx_uint_t
ngx_chat_media_type_ok(ngx_chat_media_main_conf_t *mc,
    ngx_chat_json_str_t *type, u_char *lower)
{
    size_t      i;
    ngx_str_t  *t;
    ngx_uint_t  k;

    if (type->len == 0 || type->len > 127) {
        return 0;
    }

    for (i = 0; i < type->len; i++) {
        lower[i] = ngx_tolower((u_char) type->data[i]);
    }

    lower[i] = '\0';

    t = mc->types->elts;

    for (k = 0; k < mc->types->nelts; k++) {
        if (t[k].len == type->len
            && ngx_strncmp(t[k].data, lower, type->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Runs a statement for a command; the request keeps the client's id and,
 * after it, the statement's parameters 2.. (NUL-separated), which the
 * callbacks read back: createAttachment (type, sha256, size),
 * getAttachmentUrl and ackAttachment (the attachment id).
 */
static ngx_int_t
ngx_chat_media_query(ngx_chat_conn_t *cc, ngx_chat_cmd_t *cmd,
    ngx_uint_t stmt, int n, const char **values, ngx_chat_store_done_pt done)
{
    u_char                *p;
    size_t                 extra;
    ngx_chat_media_req_t  *req;

    if (ngx_chat_session_ready(cc) != NGX_OK) {
        return ngx_chat_media_error(cc, NULL, cmd, "unavailable",
                                    "database unavailable, retry later");
    }

    switch (stmt) {

    case NGX_CHAT_STMT_MEDIA_CREATE:
        extra = ngx_strlen(values[2]) + 1 + 65 + ngx_strlen(values[3]) + 1;
        break;

    case NGX_CHAT_STMT_MEDIA_GET:
        extra = ngx_strlen(values[1]) + 1;
        break;

    default: /* NGX_CHAT_STMT_MEDIA_RECEIVED */
        extra = ngx_strlen(values[0]) + 1;
        break;
    }

    req = ngx_alloc(sizeof(ngx_chat_media_req_t) + cmd->id.len + extra,
                    ngx_cycle->log);
    if (req == NULL) {
        return ngx_chat_media_error(cc, NULL, cmd, "internal_error",
                                    "out of memory");
    }

    req->cc = cc;
    req->has_id = (cmd->present & NGX_CHAT_F_ID) ? 1 : 0;
    req->id_is_number = cmd->id_is_number;
    req->id.len = cmd->id.len;
    req->id.data = req->data;
    p = ngx_cpymem(req->data, cmd->id.data, cmd->id.len);

    switch (stmt) {

    case NGX_CHAT_STMT_MEDIA_CREATE:
        p = ngx_cpymem(p, values[2], ngx_strlen(values[2]) + 1);
        p = ngx_cpymem(p, values[4], 65);
        (void) ngx_cpymem(p, values[3], ngx_strlen(values[3]) + 1);
        break;

    case NGX_CHAT_STMT_MEDIA_GET:
        (void) ngx_cpymem(p, values[1], ngx_strlen(values[1]) + 1);
        break;

    default:
        (void) ngx_cpymem(p, values[0], ngx_strlen(values[0]) + 1);
        break;
    }

    cc->pending++;

    if (ngx_chat_store_query(NULL, stmt, n, values, done, req) != NGX_OK) {
        ngx_chat_media_req_free(req);
        return ngx_chat_media_error(cc, NULL, cmd, "unavailable",
                                    "database unavailable, retry later");
    }

    return NGX_OK;
}


static void
ngx_chat_media_req_free(ngx_chat_media_req_t *req)
{
    ngx_chat_conn_t  *cc;

    cc = req->cc;
    ngx_free(req);
    ngx_chat_ws_release(cc);
}


static ngx_int_t
ngx_chat_media_open_ok(ngx_chat_json_out_t *o, ngx_chat_media_req_t *req)
{
    return ngx_chat_cmd_open_id(o, req->id.data, req->id.len, req->has_id,
                                req->id_is_number);
}


/* an error response, for a command (cmd) or a waiting request (req) */
static ngx_int_t
ngx_chat_media_error(ngx_chat_conn_t *cc, ngx_chat_media_req_t *req,
    ngx_chat_cmd_t *cmd, const char *code, const char *message)
{
    if (!ngx_chat_conn_active(cc)) {
        return NGX_OK;
    }

    if (req) {
        return ngx_chat_cmd_error(cc, req->has_id ? (const char *) req->id.data
                                                  : NULL,
                                  req->id.len, req->id_is_number, code,
                                  message);
    }

    return ngx_chat_cmd_error(cc, (cmd->present & NGX_CHAT_F_ID)
                                  ? cmd->id.data : NULL,
                              cmd->id.len, cmd->id_is_number, code, message);
}


static ngx_int_t
ngx_chat_media_flush(ngx_chat_conn_t *cc, ngx_chat_json_out_t *o)
{
    if (!ngx_chat_conn_active(cc)) {
        ngx_chat_json_out_free(o);
        return NGX_OK;
    }

    return ngx_chat_cmd_flush(cc, o);
}
