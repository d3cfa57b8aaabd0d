
/*
 * ngx_chat_admin.c: POST {"user":"...","device":"...","ttl":N} to a
 * location with chat_admin_token answers {"token":"<jwt>"}, signed with
 * chat_jwt_secret_file: a token for any user, to whoever reaches it.  It
 * is meant for development and for operators' tooling, and is off unless
 * the directive is in a location.  It answers 403 to a request that came
 * through a proxy (a header a proxy adds, or the PROXY protocol), and,
 * unless "chat_admin_token any", to a peer that is not loopback or a unix
 * socket.  A local TCP proxy that adds nothing cannot be told from a local
 * client: never let one forward to a server that has this location.
 */


#include "ngx_chat.h"
#include "ngx_chat_admin.h"
#include "ngx_chat_http.h"
#include "ngx_chat_json.h"
#include "ngx_chat_jwt.h"


#define NGX_CHAT_ADMIN_BODY_MAX  4096


static ngx_int_t ngx_chat_admin_access(ngx_http_request_t *r,
    ngx_chat_loc_conf_t *clcf);
static ngx_uint_t ngx_chat_admin_loopback(ngx_connection_t *c);
static void ngx_chat_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_chat_admin_mint(ngx_http_request_t *r, u_char *p,
    size_t len);


/* request headers that a proxy adds: their presence means "proxied" */
static ngx_str_t  ngx_chat_admin_proxy_headers[] = {
    ngx_string("X-Forwarded-For"),
    ngx_string("Forwarded"),
    ngx_string("X-Real-IP"),
    ngx_string("Via"),
    ngx_null_string
};


ngx_int_t
ngx_chat_admin_token_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_chat_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_chat_module);

    if (ngx_chat_admin_access(r, clcf) != NGX_OK) {
        return ngx_chat_http_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                   "the token endpoint answers local "
                                   "clients only, never through a proxy");
    }

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


/* NGX_OK: the peer may mint; NGX_DECLINED: 403 (logged at info) */
static ngx_int_t
ngx_chat_admin_access(ngx_http_request_t *r, ngx_chat_loc_conf_t *clcf)
{
    ngx_str_t         *name;
    ngx_uint_t         i;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h;
    ngx_connection_t  *c;

    c = r->connection;

    if (c->proxy_protocol) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "chat: admin token request through the PROXY "
                      "protocol refused");
        return NGX_DECLINED;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (name = ngx_chat_admin_proxy_headers; name->len; name++) {
            if (h[i].key.len == name->len
                && ngx_strncasecmp(h[i].key.data, name->data, name->len)
                   == 0)
            {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "chat: admin token request with \"%V\" "
                              "(through a proxy) refused", &h[i].key);
                return NGX_DECLINED;
            }
        }
    }

    if (clcf->admin_token != NGX_CHAT_ADMIN_ANY
        && !ngx_chat_admin_loopback(c))
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "chat: admin token request from a peer that is not "
                      "loopback refused");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 or a unix socket */
static ngx_uint_t
ngx_chat_admin_loopback(ngx_connection_t *c)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char               *p;
    struct sockaddr_in6  *sin6;
#endif

    switch (c->sockaddr->sa_family) {

#if (NGX_HAVE_UNIX_DOMAIN)
    case AF_UNIX:
        return 1;
#endif

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) c->sockaddr;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            return 1;
        }

        p = sin6->sin6_addr.s6_addr;

        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && p[12] == 127;
#endif

    case AF_INET:
        sin = (struct sockaddr_in *) c->sockaddr;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;

    default:
        return 0;
    }
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
