
/*
 * chat_bench_hist.c: the latency histogram of chat-bench.
 *
 * Log-linear, in the manner of HdrHistogram: values below 128 ns have a
 * bucket each; above, every power of two [2^e, 2^(e+1)) is cut into 128
 * equal buckets, so a bucket is never wider than 1/128 of its values
 * (0.8%).  58 octaves cover all of uint64_t in 7424 buckets (58 KiB).
 * Percentiles report the highest value of their bucket (never above the
 * exact maximum), so they err on the slow side.
 */


#include <string.h>

#include "chat_bench.h"


void
ngx_chat_bench_hist_reset(ngx_chat_bench_hist_t *h)
{
    memset(h, 0, sizeof(ngx_chat_bench_hist_t));
    h->min = UINT64_MAX;
}


uint32_t
ngx_chat_bench_hist_index(uint64_t v)
{
    uint32_t  e, shift;

    if (v < NGX_CHAT_BENCH_HIST_SUB) {
        return (uint32_t) v;
    }

    e = 63 - (uint32_t) __builtin_clzll(v);
    shift = e - NGX_CHAT_BENCH_HIST_SUB_BITS;

    return (e - NGX_CHAT_BENCH_HIST_SUB_BITS + 1) * NGX_CHAT_BENCH_HIST_SUB
           + (uint32_t) ((v >> shift) & (NGX_CHAT_BENCH_HIST_SUB - 1));
}


uint64_t
ngx_chat_bench_hist_high(uint32_t idx)
{
    uint32_t  oct, mant, shift;
    uint64_t  low;

    if (idx < NGX_CHAT_BENCH_HIST_SUB) {
        return idx;
    }

    oct = idx / NGX_CHAT_BENCH_HIST_SUB;
    mant = idx % NGX_CHAT_BENCH_HIST_SUB;
    shift = oct - 1;
    low = ((uint64_t) (NGX_CHAT_BENCH_HIST_SUB + mant)) << shift;

    return low + ((uint64_t) 1 << shift) - 1;
}


void
ngx_chat_bench_hist_add(ngx_chat_bench_hist_t *h, uint64_t v)
{
    h->b[ngx_chat_bench_hist_index(v)]++;
    h->count++;
    h->sum += v;

    if (v < h->min) {
        h->min = v;
    }

    if (v > h->max) {
        h->max = v;
    }
}


void
ngx_chat_bench_hist_merge(ngx_chat_bench_hist_t *dst,
    const ngx_chat_bench_hist_t *src)
{
    uint32_t  i;

    if (src->count == 0) {
        return;
    }

    for (i = 0; i < NGX_CHAT_BENCH_HIST_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }

    dst->count += src->count;
    dst->sum += src->sum;

    if (src->min < dst->min) {
        dst->min = src->min;
    }

    if (src->max > dst->max) {
        dst->max = src->max;
    }
}


uint64_t
ngx_chat_bench_hist_pct(const ngx_chat_bench_hist_t *h, double p)
{
    uint32_t  i;
    uint64_t  rank, seen, v;

    if (h->count == 0) {
        return 0;
    }

    rank = (uint64_t) ((p / 100.0) * (double) h->count + 0.999999);
    if (rank < 1) {
        rank = 1;
    }

    if (rank >= h->count) {
        return h->max;
    }

    seen = 0;

    for (i = 0; i < NGX_CHAT_BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];

        if (seen >= rank) {
            v = ngx_chat_bench_hist_high(i);
            return v > h->max ? h->max : v;
        }
    }

    return h->max;
}


/*
 * encoding: count, min, max, sum, npairs (uint64 each), then npairs of
 * (uint32 index, uint64 count), native byte order (same host)
 */

size_t
ngx_chat_bench_hist_encode(const ngx_chat_bench_hist_t *h, uint8_t *out,
    size_t size)
{
    uint8_t   *p;
    uint32_t   i;
    uint64_t   hdr[5], n;

    n = 0;

    for (i = 0; i < NGX_CHAT_BENCH_HIST_BUCKETS; i++) {
        if (h->b[i]) {
            n++;
        }
    }

    if (sizeof(hdr) + n * 12 > size) {
        return 0;
    }

    hdr[0] = h->count;
    hdr[1] = h->min;
    hdr[2] = h->max;
    hdr[3] = h->sum;
    hdr[4] = n;
    memcpy(out, hdr, sizeof(hdr));
    p = out + sizeof(hdr);

    for (i = 0; i < NGX_CHAT_BENCH_HIST_BUCKETS; i++) {
        if (h->b[i]) {
            memcpy(p, &i, 4);
            memcpy(p + 4, &h->b[i], 8);
            p += 12;
        }
    }

    return (size_t) (p - out);
}


size_t
ngx_chat_bench_hist_decode_merge(ngx_chat_bench_hist_t *h,
    const uint8_t *in, size_t len)
{
    uint32_t        idx;
    uint64_t        hdr[5], i, c;
    const uint8_t  *p;

    if (len < sizeof(hdr)) {
        return 0;
    }

    memcpy(hdr, in, sizeof(hdr));

    if (hdr[4] > NGX_CHAT_BENCH_HIST_BUCKETS
        || len < sizeof(hdr) + hdr[4] * 12)
    {
        return 0;
    }

    p = in + sizeof(hdr);

    for (i = 0; i < hdr[4]; i++) {
        memcpy(&idx, p, 4);
        memcpy(&c, p + 4, 8);
        p += 12;

        if (idx >= NGX_CHAT_BENCH_HIST_BUCKETS) {
            return 0;
        }

        h->b[idx] += c;
    }

    if (hdr[0]) {
        h->count += hdr[0];
        h->sum += hdr[3];

        if (hdr[1] < h->min) {
            h->min = hdr[1];
        }

        if (hdr[2] > h->max) {
            h->max = hdr[2];
        }
    }

    return (size_t) (p - in);
}
