
/*
 * ngx_chat_cmd.h: the client commands of the JSON protocol.
 */


#ifndef _NGX_CHAT_CMD_H_INCLUDED_
#define _NGX_CHAT_CMD_H_INCLUDED_


#include "ngx_chat.h"
#include "ngx_chat_store.h"


/* one text message of cc; NGX_OK unless the connection was closed */
ngx_int_t ngx_chat_cmd_handle(ngx_chat_conn_t *cc, u_char *p, size_t len);

/* the outcome of a sendMessage, from its batch */
void ngx_chat_cmd_send_done(ngx_chat_conn_t *cc, ngx_chat_send_t *s,
    ngx_int_t status, PGresult *res, int row);
void ngx_chat_cmd_send_failed(ngx_chat_conn_t *cc, ngx_chat_send_t *s);


#endif /* _NGX_CHAT_CMD_H_INCLUDED_ */
