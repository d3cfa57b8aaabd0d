
/*
 * ngx_chat_status.h: the metrics and health endpoints and the metrics
 * zone's set-up (ngx_chat_status.c).
 */


#ifndef _NGX_CHAT_STATUS_H_INCLUDED_
#define _NGX_CHAT_STATUS_H_INCLUDED_


#include "ngx_chat.h"


/* postconfiguration: the zone (and the log phase counter) when needed */
ngx_int_t ngx_chat_status_conf(ngx_conf_t *cf, ngx_chat_main_conf_t *cmcf);

/* init_process, exit_process: the worker's slot of the zone */
void ngx_chat_status_worker_init(ngx_chat_worker_t *w);
void ngx_chat_status_worker_exit(ngx_chat_worker_t *w);

/* chat_metrics; and chat_health; */
ngx_int_t ngx_chat_status_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_chat_status_health_handler(ngx_http_request_t *r);


#endif /* _NGX_CHAT_STATUS_H_INCLUDED_ */
