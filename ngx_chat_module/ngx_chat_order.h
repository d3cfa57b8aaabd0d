
/*
 * ngx_chat_order.h: live newMessage events of one chat in seq order, per
 * user entry of a worker.
 */


#ifndef _NGX_CHAT_ORDER_H_INCLUDED_
#define _NGX_CHAT_ORDER_H_INCLUDED_


#include "ngx_chat.h"


#define NGX_CHAT_ORDER_HOLD     50      /* ms an event waits for a gap */
#define NGX_CHAT_ORDER_CHATS    8       /* chats followed per user */
#define NGX_CHAT_ORDER_HELD     256     /* events held per user */
#define NGX_CHAT_ORDER_IDLE     2000    /* ms: then the state is freed */


/* delivers one event to the user's connections but the skip device */
typedef void (*ngx_chat_order_deliver_pt)(ngx_chat_user_t *u,
    uint64_t event_id, ngx_str_t *skip, u_char *json, size_t len,
    ngx_uint_t replay);


/*
 * A live event of (chat, seq) for user u: delivered now if it is the next
 * seq of its chat (or the first or an old one), else held until the
 * missing ones come or NGX_CHAT_ORDER_HOLD ms pass.  Anything delivered,
 * now or later (the timer uses the deliver its last caller gave), goes
 * through deliver, which must not free u (closes are posted).
 */
void ngx_chat_order_event(ngx_chat_user_t *u, uint64_t chat, uint64_t seq,
    uint64_t event_id, ngx_str_t *skip, u_char *json, size_t len,
    ngx_uint_t replay, ngx_chat_order_deliver_pt deliver);

/*
 * (chat, seq) reached u another way (its own send, a replay): it counts
 * as delivered, and what waited for it is released.
 */
void ngx_chat_order_seen(ngx_chat_user_t *u, uint64_t chat, uint64_t seq,
    ngx_chat_order_deliver_pt deliver);

/* drops u's state and what it holds (the user entry is being freed) */
void ngx_chat_order_free(ngx_chat_user_t *u);

/* "chat:seq" as published on the bus; NGX_DECLINED if it is not one */
ngx_int_t ngx_chat_order_parse(u_char *p, size_t len, uint64_t *chat,
    uint64_t *seq);


#endif /* _NGX_CHAT_ORDER_H_INCLUDED_ */
