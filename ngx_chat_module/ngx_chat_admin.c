
/*
 * ngx_chat_admin.c: POST {"user":"...","device":"...","ttl":N} to a
 * location with chat_admin_token answers {"token":"<jwt>"}, signed with
 * chat_jwt_secret_file.  It is meant for development and for operators'
 * tooling: restrict the location (allow 127.0.0.1; deny all;).
 */


#include "ngx_chat.h"
#include "ngx_chat_admin.h"
#include "ngx_chat_http.h"
#include "ngx_chat_json.h"
#include "ngx_chat_jwt.h"


#define NGX_CHAT_ADMIN_BODY_MAX  4096


static void ngx_chat_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_chat_admin_mint(ngx_http_request_t *r, u_char *p,
    size_t len);


ngx_int_t
ngx_chat_admin_token_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > NGX_CHAT_ADMIN_BODY_MAX) {
        return ngx_chat_http_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "bad_request", "body too large");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_chat_admin_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_chat_admin_body(ngx_http_request_t *r)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;
    u_char        body[NGX_CHAT_ADMIN_BODY_MAX];

    len = 0;

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r,
            ngx_chat_http_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                "body too large"));
        return;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || len + (b->last - b->pos) > NGX_CHAT_ADMIN_BODY_MAX)
        {
            ngx_http_finalize_request(r,
                ngx_chat_http_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                    "body too large"));
            return;
        }

        p = ngx_cpymem(body + len, b->pos, b->last - b->pos);
        len = p - body;
    }

    ngx_http_finalize_request(r, ngx_chat_admin_mint(r, body, len));
}


static ngx_int_t
ngx_chat_admin_mint(ngx_http_request_t *r, u_char *p, size_t len)
{
    int                    rc;
    void                  *arena;
    size_t                 size, tlen;
    time_t                 ttl, now;
    u_char                *body, *q;
    ngx_chat_cmd_t         cmd;
    ngx_chat_loc_conf_t   *clcf;
    ngx_chat_main_conf_t  *cmcf;
    char                   err[128];
    char                   token[NGX_CHAT_JWT_SIGN_MAX];

    cmcf = ngx_http_get_module_main_conf(r, ngx_chat_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_chat_module);

    if (cmcf->jwt_secret.len == 0) {
        return ngx_chat_http_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "internal_error",
                                   "chat_jwt_secret_file is not set");
    }

    size = ngx_chat_json_arena_size(len);

    arena = ngx_palloc(r->pool, size ? size : 1);
    if (arena == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_chat_json_parse_cmd(p, len, &cmd, arena, size, err, sizeof(err));

    if (rc != NGX_CHAT_JSON_OK
        || (cmd.present & (NGX_CHAT_F_USER|NGX_CHAT_F_DEVICE))
           != (NGX_CHAT_F_USER|NGX_CHAT_F_DEVICE)
        || !ngx_chat_id_valid((u_char *) cmd.user.data, cmd.user.len)
        || !ngx_chat_id_valid((u_char *) cmd.device.data, cmd.device.len))
    {
        return ngx_chat_http_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                   "expected {\"user\":\"<id>\","
                                   "\"device\":\"<id>\"[,\"ttl\":<seconds>]}"
                                   " with ids of 1-64 A-Z a-z 0-9 . _ @ -");
    }

    ttl = clcf->token_ttl;

    if (cmd.present & NGX_CHAT_F_TTL) {
        if (cmd.ttl < 1 || cmd.ttl > 366 * 86400) {
            return ngx_chat_http_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                       "ttl must be 1 to 31622400 seconds");
        }

        ttl = (time_t) cmd.ttl;
    }

    now = ngx_time();

    rc = ngx_chat_jwt_sign(cmd.user.data, cmd.user.len, cmd.device.data,
                           cmd.device.len, (int64_t) (now + ttl),
                           (int64_t) now, cmcf->jwt_secret.data,
                           cmcf->jwt_secret.len, token, sizeof(token), &tlen);

    if (rc != NGX_CHAT_JWT_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "chat: minting a token failed: %s",
                      ngx_chat_jwt_strerror(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = ngx_pnalloc(r->pool, tlen + 64);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_sprintf(body, "{\"token\":\"%*s\",\"expiresAt\":%T}\n", tlen,
                    token, now + ttl);

    return ngx_chat_http_json(r, NGX_HTTP_OK, body, q - body);
}
