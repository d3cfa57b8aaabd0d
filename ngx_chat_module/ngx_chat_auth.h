
/*
 * ngx_chat_auth.h: who is connecting: the JWT of an upgrade request.
 */


#ifndef _NGX_CHAT_AUTH_H_INCLUDED_
#define _NGX_CHAT_AUTH_H_INCLUDED_


#include "ngx_chat.h"


/*
 * Takes ?access_token= out of what nginx logs, before anything is logged:
 * r->request_line ($request, and the "request:" of every error.log line),
 * r->unparsed_uri ($request_uri) and r->args ($args, $arg_*) become copies
 * in r->pool where each access_token value reads "-".  token gets the
 * first value (empty if none), still in the request's own buffer, which
 * is not changed.  NGX_ERROR: out of memory.
 */
ngx_int_t ngx_chat_auth_hide_token(ngx_http_request_t *r, ngx_str_t *token);

/*
 * Finds the token ("Authorization: Bearer", else query_token, the value
 * that ngx_chat_auth_hide_token() took) and verifies it.  On NGX_OK user
 * and device point into r->pool and *iat is the token's issue time (0 when
 * it has none); NGX_DECLINED means 401 (the reason is logged at info
 * level).
 */
ngx_int_t ngx_chat_auth_request(ngx_http_request_t *r, ngx_str_t *query_token,
    ngx_str_t *secret, ngx_str_t *user, ngx_str_t *device, int64_t *iat);


#endif /* _NGX_CHAT_AUTH_H_INCLUDED_ */
