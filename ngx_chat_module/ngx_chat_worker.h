
/*
 * ngx_chat_worker.h: the per-worker state's life cycle and periodic jobs.
 */


#ifndef _NGX_CHAT_WORKER_H_INCLUDED_
#define _NGX_CHAT_WORKER_H_INCLUDED_


#include "ngx_chat.h"


ngx_int_t ngx_chat_worker_init(ngx_cycle_t *cycle,
    ngx_chat_main_conf_t *cmcf);
void ngx_chat_worker_exit(ngx_cycle_t *cycle);


#endif /* _NGX_CHAT_WORKER_H_INCLUDED_ */
