
/*
 * ngx_chat_limit.h: token buckets for rate limits, and the parsing of
 * their rates ("50r/s", "10r/m").
 *
 * A bucket holds up to burst requests and refills at rate.  Its state is
 * 8 bytes (a signed token count and a millisecond stamp), so it fits in
 * every connection.  Tokens are counted in NGX_CHAT_LIMIT_UNIT per
 * request and rates are kept in requests per minute: one millisecond then
 * refills exactly rate units, so the arithmetic is exact integers.
 *
 * A refused request still costs a request: the count goes below zero (a
 * debt, repaid by the refill).  So a client that keeps sending while
 * refused stays refused until it slows down, and one whose debt reaches
 * burst requests (it sent about twice its burst more than it was allowed)
 * is told to go away (NGX_CHAT_LIMIT_CLOSE).
 *
 * Pure code: no nginx headers, no allocation, no globals; the caller
 * passes the clock (ngx_current_msec, truncated to 32 bits: differences
 * are taken modulo 2^32, so an idle time over 49 days may refill less).
 */


#ifndef _NGX_CHAT_LIMIT_H_INCLUDED_
#define _NGX_CHAT_LIMIT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_CHAT_LIMIT_UNIT       60000     /* tokens per request */
#define NGX_CHAT_LIMIT_RATE_MAX   60000000  /* per minute: 1 000 000r/s */
#define NGX_CHAT_LIMIT_BURST_MAX  10000

/* ngx_chat_limit_take() */
#define NGX_CHAT_LIMIT_OK         0         /* take it */
#define NGX_CHAT_LIMIT_REFUSED    1         /* refuse it, retry later */
#define NGX_CHAT_LIMIT_CLOSE      2         /* refused too often */


typedef struct {
    uint32_t                 rate;          /* requests/minute, 0: none */
    uint32_t                 burst;         /* requests, 1..BURST_MAX */
} ngx_chat_limit_conf_t;


typedef struct {
    int32_t                  tokens;        /* units; < 0: a debt */
    uint32_t                 stamp;         /* ms of the last refill */
} ngx_chat_limit_t;


/* a full bucket at now */
void ngx_chat_limit_init(ngx_chat_limit_t *l,
    const ngx_chat_limit_conf_t *lc, uint32_t now);

/*
 * Refills l up to now and takes one request.  With NGX_CHAT_LIMIT_REFUSED
 * and NGX_CHAT_LIMIT_CLOSE, *retry_ms (if not NULL) is the wait until a
 * request would be taken (at least 1).  A conf with rate 0 takes all.
 */
int ngx_chat_limit_take(ngx_chat_limit_t *l, const ngx_chat_limit_conf_t *lc,
    uint32_t now, uint32_t *retry_ms);

/*
 * Parses "<n>r/s" or "<n>r/m" into requests per minute: 0 on success, -1
 * for another syntax, n of 0 or a rate over NGX_CHAT_LIMIT_RATE_MAX.
 */
int ngx_chat_limit_parse_rate(const unsigned char *p, size_t len,
    uint32_t *per_minute);


#endif /* _NGX_CHAT_LIMIT_H_INCLUDED_ */
