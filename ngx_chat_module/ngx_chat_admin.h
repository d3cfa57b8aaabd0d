
/*
 * ngx_chat_admin.h: the development token endpoint (chat_admin_token).
 */


#ifndef _NGX_CHAT_ADMIN_H_INCLUDED_
#define _NGX_CHAT_ADMIN_H_INCLUDED_


#include "ngx_chat.h"


/* ngx_chat_loc_conf_t.admin_token: "chat_admin_token [loopback|any]" */
#define NGX_CHAT_ADMIN_OFF       0
#define NGX_CHAT_ADMIN_LOOPBACK  1      /* the default */
#define NGX_CHAT_ADMIN_ANY       2      /* any peer, still never proxied */


ngx_int_t ngx_chat_admin_token_handler(ngx_http_request_t *r);


#endif /* _NGX_CHAT_ADMIN_H_INCLUDED_ */
