
/*
 * ngx_chat_backoff.h: the reconnect delay of the backend connections
 * (PostgreSQL slots in ngx_chat_pg.c, Redis contexts in ngx_chat_redis.c).
 * The delay starts at NGX_CHAT_BACKOFF_MIN, doubles after every failed
 * attempt up to NGX_CHAT_BACKOFF_MAX, and each wait is jittered by +-25%
 * so that the workers do not reconnect in step.  A connection that comes
 * up resets its backoff to NGX_CHAT_BACKOFF_MIN.
 */


#ifndef _NGX_CHAT_BACKOFF_H_INCLUDED_
#define _NGX_CHAT_BACKOFF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_CHAT_BACKOFF_MIN  100        /* ms */
#define NGX_CHAT_BACKOFF_MAX  5000       /* ms */


/* the next wait, *backoff +-25%; doubles *backoff, up to the maximum */

static ngx_inline ngx_msec_t
ngx_chat_backoff_next(ngx_msec_t *backoff)
{
    ngx_msec_t  delay;

    delay = *backoff - *backoff / 4
            + (ngx_msec_t) ngx_random() % (*backoff / 2 + 1);

    *backoff *= 2;

    if (*backoff > NGX_CHAT_BACKOFF_MAX) {
        *backoff = NGX_CHAT_BACKOFF_MAX;
    }

    return delay;
}


#endif /* _NGX_CHAT_BACKOFF_H_INCLUDED_ */
