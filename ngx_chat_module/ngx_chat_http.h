
/*
 * ngx_chat_http.h: plain HTTP answers of the module (errors before the
 * WebSocket upgrade, the admin endpoint): small JSON bodies.
 */


#ifndef _NGX_CHAT_HTTP_H_INCLUDED_
#define _NGX_CHAT_HTTP_H_INCLUDED_


#include "ngx_chat.h"


/* sends {"error":{"code":code,"message":message}} with status */
ngx_int_t ngx_chat_http_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message);

/* sends a copy of body (JSON) with status; returns what finalize wants */
ngx_int_t ngx_chat_http_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len);


#endif /* _NGX_CHAT_HTTP_H_INCLUDED_ */
