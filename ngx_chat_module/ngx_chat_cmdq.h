
/*
 * ngx_chat_cmdq.h: commands of one connection take effect in the order
 * the connection sent them (docs/protocol.md "Order of commands").
 */


#ifndef _NGX_CHAT_CMDQ_H_INCLUDED_
#define _NGX_CHAT_CMDQ_H_INCLUDED_


#include "ngx_chat.h"


/* how a command is ordered against the connection's other commands */
#define NGX_CHAT_CMDQ_FREE      0   /* no effect on others: ping, ack */
#define NGX_CHAT_CMDQ_SEND      1   /* sendMessage: batched, in order */
#define NGX_CHAT_CMDQ_BARRIER   2   /* alone: after the earlier ones are
                                       committed, before the later ones */


/* runs a kept command's text again, in its turn (the commands' layer) */
typedef ngx_int_t (*ngx_chat_cmdq_run_pt)(ngx_chat_conn_t *cc, u_char *p,
    size_t len);

/*
 * Before a command of kind runs (its text is p, len): NGX_DECLINED, run
 * it now; NGX_OK, it was kept and runs later, in its turn, through again
 * (it holds cc->pending meanwhile, so it counts against
 * chat_max_inflight); NGX_ERROR: no memory for that.
 */
ngx_int_t ngx_chat_cmdq_admit(ngx_chat_conn_t *cc, ngx_uint_t kind,
    u_char *p, size_t len, ngx_chat_cmdq_run_pt again);

/*
 * A barrier's statement is about to go out: later commands wait for
 * ngx_chat_cmdq_done().  NGX_ERROR: no memory (then nothing waits).
 */
ngx_int_t ngx_chat_cmdq_start(ngx_chat_conn_t *cc,
    ngx_chat_cmdq_run_pt again);

/* the barrier's statement returned (or did not go out after all) */
void ngx_chat_cmdq_done(ngx_chat_conn_t *cc);

/* the last send of cc in the store was answered (cc->nsends is 0) */
void ngx_chat_cmdq_sent(ngx_chat_conn_t *cc);


#endif /* _NGX_CHAT_CMDQ_H_INCLUDED_ */
