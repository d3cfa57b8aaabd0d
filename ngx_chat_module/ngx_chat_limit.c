
/*
 * ngx_chat_limit.c: token buckets (see ngx_chat_limit.h).
 *
 * Bounds that keep the arithmetic in range: tokens stay within
 * +-burst * NGX_CHAT_LIMIT_UNIT (at most 6e8, an int32_t holds 2.1e9);
 * a refill is computed in 64 bits (2^32 ms * 6e7 per minute < 2^58).
 */


#include "ngx_chat_limit.h"


void
ngx_chat_limit_init(ngx_chat_limit_t *l, const ngx_chat_limit_conf_t *lc,
    uint32_t now)
{
    l->tokens = (int32_t) (lc->burst * NGX_CHAT_LIMIT_UNIT);
    l->stamp = now;
}


int
ngx_chat_limit_take(ngx_chat_limit_t *l, const ngx_chat_limit_conf_t *lc,
    uint32_t now, uint32_t *retry_ms)
{
    int64_t  tokens, cap, need;

    if (lc->rate == 0) {
        return NGX_CHAT_LIMIT_OK;
    }

    cap = (int64_t) lc->burst * NGX_CHAT_LIMIT_UNIT;

    /* one ms refills exactly rate units (rate is per minute) */

    tokens = (int64_t) l->tokens + (int64_t) (uint32_t) (now - l->stamp)
                                   * lc->rate;
    if (tokens > cap) {
        tokens = cap;
    }

    l->stamp = now;

    if (tokens >= NGX_CHAT_LIMIT_UNIT) {
        l->tokens = (int32_t) (tokens - NGX_CHAT_LIMIT_UNIT);
        return NGX_CHAT_LIMIT_OK;
    }

    /* refused: it costs a request all the same, down to -burst */

    tokens -= NGX_CHAT_LIMIT_UNIT;

    if (tokens < -cap) {
        tokens = -cap;
    }

    l->tokens = (int32_t) tokens;

    if (retry_ms) {
        need = NGX_CHAT_LIMIT_UNIT - tokens;
        *retry_ms = (uint32_t) ((need + lc->rate - 1) / lc->rate);
    }

    return tokens <= -cap ? NGX_CHAT_LIMIT_CLOSE : NGX_CHAT_LIMIT_REFUSED;
}


int
ngx_chat_limit_parse_rate(const unsigned char *p, size_t len,
    uint32_t *per_minute)
{
    uint64_t  n;
    size_t    i;

    n = 0;

    for (i = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        n = n * 10 + (p[i] - '0');

        if (n > NGX_CHAT_LIMIT_RATE_MAX) {
            return -1;
        }
    }

    if (i == 0 || n == 0 || len - i != 3 || p[i] != 'r' || p[i + 1] != '/') {
        return -1;
    }

    switch (p[i + 2]) {

    case 's':
        n *= 60;
        break;

    case 'm':
        break;

    default:
        return -1;
    }

    if (n > NGX_CHAT_LIMIT_RATE_MAX) {
        return -1;
    }

    *per_minute = (uint32_t) n;

    return 0;
}
