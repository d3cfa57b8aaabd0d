
/*
 * ngx_chat_auth.h: who is connecting: the JWT of an upgrade request.
 */


#ifndef _NGX_CHAT_AUTH_H_INCLUDED_
#define _NGX_CHAT_AUTH_H_INCLUDED_


#include "ngx_chat.h"


/*
 * Finds the token ("Authorization: Bearer" or ?access_token=) and verifies
 * it.  On NGX_OK user and device point into r->pool and *iat is the
 * token's issue time (0 when it has none); NGX_DECLINED means 401 (the
 * reason is logged at info level).
 */
ngx_int_t ngx_chat_auth_request(ngx_http_request_t *r, ngx_str_t *secret,
    ngx_str_t *user, ngx_str_t *device, int64_t *iat);


#endif /* _NGX_CHAT_AUTH_H_INCLUDED_ */
