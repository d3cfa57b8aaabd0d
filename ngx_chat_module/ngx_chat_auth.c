
/*
 * ngx_chat_auth.c: takes the JWT from an upgrade request and checks it
 * with ngx_chat_jwt.c.  Browsers cannot set headers on a WebSocket, so the
 * token may also come as the access_token query argument; that one is
 * taken out of the request line, URI and arguments nginx logs.
 */


#include "ngx_chat.h"
#include "ngx_chat_auth.h"
#include "ngx_chat_jwt.h"


#define NGX_CHAT_AUTH_ARG      "access_token="
#define NGX_CHAT_AUTH_ARG_LEN  (sizeof(NGX_CHAT_AUTH_ARG) - 1)


static ngx_int_t ngx_chat_auth_token(ngx_http_request_t *r,
    ngx_str_t *query_token, ngx_str_t *token);
static ngx_int_t ngx_chat_auth_redact(ngx_pool_t *pool, ngx_str_t *s);


ngx_int_t
ngx_chat_auth_hide_token(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_str_t  v;

    ngx_str_null(token);

    if (r->args.len == 0) {
        return NGX_OK;
    }

    if (ngx_http_arg(r, (u_char *) "access_token", 12, &v) == NGX_OK) {
        *token = v;
    }

    if (ngx_chat_auth_redact(r->pool, &r->args) != NGX_OK
        || ngx_chat_auth_redact(r->pool, &r->unparsed_uri) != NGX_OK
        || ngx_chat_auth_redact(r->pool, &r->request_line) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Replaces the value of every access_token argument in s (after "?" or
 * "&", or at the start; the name in any case, as ngx_http_arg() finds it;
 * the value up to "&", " ", "#" or the end) by "-", in a copy from pool.
 * s is left alone when it has no such argument.
 */
static ngx_int_t
ngx_chat_auth_redact(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char      *p, *last, *d, *start;
    ngx_uint_t   n;

    last = s->data + s->len;
    n = 0;

    for (p = s->data; p + NGX_CHAT_AUTH_ARG_LEN <= last; p++) {
        if ((p == s->data || p[-1] == '?' || p[-1] == '&')
            && ngx_strncasecmp(p, (u_char *) NGX_CHAT_AUTH_ARG,
                               NGX_CHAT_AUTH_ARG_LEN) == 0)
        {
            n++;
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    /* each value becomes "-": at most one byte longer */

    start = ngx_pnalloc(pool, s->len + n);
    if (start == NULL) {
        return NGX_ERROR;
    }

    d = start;
    p = s->data;

    while (p < last) {
        if ((p == s->data || p[-1] == '?' || p[-1] == '&')
            && p + NGX_CHAT_AUTH_ARG_LEN <= last
            && ngx_strncasecmp(p, (u_char *) NGX_CHAT_AUTH_ARG,
                               NGX_CHAT_AUTH_ARG_LEN) == 0)
        {
            d = ngx_cpymem(d, p, NGX_CHAT_AUTH_ARG_LEN);
            *d++ = '-';

            for (p += NGX_CHAT_AUTH_ARG_LEN;
                 p < last && *p != '&' && *p != ' ' && *p != '#';
                 p++)
            {
                /* void */
            }

            continue;
        }

        *d++ = *p++;
    }

    s->data = start;
    s->len = d - start;

    return NGX_OK;
}


ngx_int_t
ngx_chat_auth_request(ngx_http_request_t *r, ngx_str_t *query_token,
    ngx_str_t *secret, ngx_str_t *user, ngx_str_t *device, int64_t *iat)
{
    int                     rc;
    ngx_str_t               token;
    ngx_chat_jwt_claims_t  *claims;

    if (ngx_chat_auth_token(r, query_token, &token) != NGX_OK) {
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
ngx_chat_auth_token(ngx_http_request_t *r, ngx_str_t *query_token,
    ngx_str_t *token)
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

    if (query_token->len) {
        *token = *query_token;
        return NGX_OK;
    }

    return NGX_DECLINED;
}
