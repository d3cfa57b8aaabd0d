
/*
 * ngx_chat_auth.c: takes the JWT from an upgrade request and checks it
 * with ngx_chat_jwt.c.  Browsers cannot set headers on a WebSocket, so the
 * token may also come as the access_token query argument.
 */


#include "ngx_chat.h"
#include "ngx_chat_auth.h"
#include "ngx_chat_jwt.h"


static ngx_int_t ngx_chat_auth_token(ngx_http_request_t *r,
    ngx_str_t *token);


ngx_int_t
ngx_chat_auth_request(ngx_http_request_t *r, ngx_str_t *secret,
    ngx_str_t *user, ngx_str_t *device, int64_t *iat)
{
    int                     rc;
    ngx_str_t               token;
    ngx_chat_jwt_claims_t  *claims;

    if (ngx_chat_auth_token(r, &token) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat: no access token");
        return NGX_DECLINED;
    }

    claims = ngx_palloc(r->pool, sizeof(ngx_chat_jwt_claims_t));
    if (claims == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_chat_jwt_verify(token.data, token.len, secret->data,
                             secret->len, (int64_t) ngx_time(), 0, claims);

    if (rc != NGX_CHAT_JWT_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat: access token refused: %s",
                      ngx_chat_jwt_strerror(rc));
        return NGX_DECLINED;
    }

    user->data = (u_char *) claims->sub;
    user->len = claims->sub_len;
    device->data = (u_char *) claims->dev;
    device->len = claims->dev_len;
    *iat = claims->iat;

    return NGX_OK;
}


static ngx_int_t
ngx_chat_auth_token(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_str_t         v;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h) {
        v = h->value;

        if (v.len > 7 && ngx_strncasecmp(v.data, (u_char *) "Bearer ", 7)
                         == 0)
        {
            v.data += 7;
            v.len -= 7;

            while (v.len && v.data[0] == ' ') {
                v.data++;
                v.len--;
            }

            if (v.len) {
                *token = v;
                return NGX_OK;
            }
        }

        return NGX_DECLINED;
    }

    if (ngx_http_arg(r, (u_char *) "access_token", 12, &v) == NGX_OK
        && v.len)
    {
        *token = v;
        return NGX_OK;
    }

    return NGX_DECLINED;
}
