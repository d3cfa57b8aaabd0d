
/*
 * ngx_chat_ws_frame_fuzz.c: libFuzzer target for the WebSocket frame codec
 * and the UTF-8 validator (ngx_chat_ws_frame.c, ngx_chat_utf8.c).
 *
 * Input layout: byte 0 picks a split point, byte 1 picks max_payload, the
 * rest is the data.  For the data it checks:
 *
 *   - the header parser on every prefix: a result other than AGAIN never
 *     changes as bytes are added (same code, same fields); AGAIN only
 *     happens below 14 bytes; OK means header_len <= len and the fields
 *     agree with the bytes and with the RFC rules; a header accepted by
 *     the parser is re-encoded byte for byte by the server header writer;
 *   - unmasking, whole against split at the split point against a
 *     byte-wise XOR, and twice is the identity;
 *   - the UTF-8 validator, whole against split at the split point against
 *     byte by byte, and against a slow reference decoder;
 *   - close payload parsing and building round trip.
 *
 * Any broken invariant aborts, which libFuzzer reports as a crash.
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_chat_ws_frame.h"
#include "ngx_chat_utf8.h"


#define NGX_CHAT_FUZZ_ASSERT(cond)                                            \
    do {                                                                      \
        if (!(cond)) {                                                        \
            abort();                                                          \
        }                                                                     \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ngx_chat_fuzz_parse(const uint8_t *p, size_t len,
    uint64_t max_payload);
static void ngx_chat_fuzz_check_ok(const uint8_t *p, size_t len,
    uint64_t max_payload, const ngx_chat_ws_frame_t *f);
static void ngx_chat_fuzz_unmask(const uint8_t *p, size_t len, size_t split);
static void ngx_chat_fuzz_utf8(const uint8_t *p, size_t len, size_t split);
static int ngx_chat_fuzz_utf8_ref(const uint8_t *p, size_t len);
static void ngx_chat_fuzz_close(const uint8_t *p, size_t len);


static const uint64_t  ngx_chat_fuzz_limits[8] = {
    0, 1, 125, 126, 65535, 65536, 1 << 20, (uint64_t) -1
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          len, split;
    uint64_t        max_payload;
    const uint8_t  *p;

    if (size < 2) {
        return 0;
    }

    p = data + 2;
    len = size - 2;
    split = len ? data[0] % (len + 1) : 0;
    max_payload = ngx_chat_fuzz_limits[data[1] & 7];

    ngx_chat_fuzz_parse(p, len, max_payload);
    ngx_chat_fuzz_unmask(p, len, split);
    ngx_chat_fuzz_utf8(p, len, split);
    ngx_chat_fuzz_close(p, len);

    return 0;
}


static void
ngx_chat_fuzz_parse(const uint8_t *p, size_t len, uint64_t max_payload)
{
    int                  rc, first;
    size_t               k, settled, top;
    ngx_chat_ws_frame_t  f, g, saved;

    first = NGX_CHAT_WS_FRAME_AGAIN;
    settled = 0;
    memset(&g, 0, sizeof(g));

    /* after 14 bytes (and a few more) nothing may change */

    top = len < 32 ? len : 32;

    for (k = 0; k <= top; k++) {
        memset(&f, 0xa5, sizeof(f));
        memcpy(&saved, &f, sizeof(f));

        rc = ngx_chat_ws_frame_parse(p, k, max_payload, &f);

        NGX_CHAT_FUZZ_ASSERT(rc == NGX_CHAT_WS_FRAME_OK
                             || rc == NGX_CHAT_WS_FRAME_AGAIN
                             || rc == NGX_CHAT_WS_FRAME_EPROTO
                             || rc == NGX_CHAT_WS_FRAME_ETOOBIG);

        if (first == NGX_CHAT_WS_FRAME_AGAIN) {

            if (rc == NGX_CHAT_WS_FRAME_AGAIN) {
                NGX_CHAT_FUZZ_ASSERT(k < NGX_CHAT_WS_FRAME_MAX_HEADER);
                NGX_CHAT_FUZZ_ASSERT(memcmp(&f, &saved, sizeof(f)) == 0);
                continue;
            }

            first = rc;
            settled = k;
            g = f;

            if (rc == NGX_CHAT_WS_FRAME_EPROTO) {
                NGX_CHAT_FUZZ_ASSERT(memcmp(&f, &saved, sizeof(f)) == 0);
            }

            if (rc == NGX_CHAT_WS_FRAME_ETOOBIG) {
                NGX_CHAT_FUZZ_ASSERT(!NGX_CHAT_WS_OP_IS_CONTROL(f.opcode));
                NGX_CHAT_FUZZ_ASSERT(f.payload_len > max_payload);
                NGX_CHAT_FUZZ_ASSERT(f.opcode == (p[0] & 0x0f));
            }

            if (rc == NGX_CHAT_WS_FRAME_OK) {
                NGX_CHAT_FUZZ_ASSERT(f.header_len == k);
                ngx_chat_fuzz_check_ok(p, k, max_payload, &f);
            }

            continue;
        }

        /* settled: the same answer for every longer prefix */

        NGX_CHAT_FUZZ_ASSERT(rc == first);

        if (rc == NGX_CHAT_WS_FRAME_OK) {
            NGX_CHAT_FUZZ_ASSERT(f.header_len == g.header_len
                                 && f.header_len <= k
                                 && f.payload_len == g.payload_len
                                 && f.opcode == g.opcode
                                 && f.fin == g.fin
                                 && memcmp(f.mask, g.mask, 4) == 0);
        }

        if (rc == NGX_CHAT_WS_FRAME_ETOOBIG) {
            NGX_CHAT_FUZZ_ASSERT(f.payload_len == g.payload_len
                                 && f.opcode == g.opcode);
        }
    }

    /* the whole input gives the settled answer too */

    rc = ngx_chat_ws_frame_parse(p, len, max_payload, &f);

    if (first == NGX_CHAT_WS_FRAME_AGAIN) {
        NGX_CHAT_FUZZ_ASSERT(rc == NGX_CHAT_WS_FRAME_AGAIN);

    } else {
        NGX_CHAT_FUZZ_ASSERT(rc == first && settled <= len);
    }
}


static void
ngx_chat_fuzz_check_ok(const uint8_t *p, size_t len, uint64_t max_payload,
    const ngx_chat_ws_frame_t *f)
{
    size_t   n;
    uint8_t  out[NGX_CHAT_WS_FRAME_MAX_SERVER_HEADER];

    NGX_CHAT_FUZZ_ASSERT(f->header_len >= 6 && f->header_len <= 14);
    NGX_CHAT_FUZZ_ASSERT(f->header_len <= len);
    NGX_CHAT_FUZZ_ASSERT(f->masked == 1);
    NGX_CHAT_FUZZ_ASSERT((p[0] & 0x70) == 0);
    NGX_CHAT_FUZZ_ASSERT(f->opcode == (p[0] & 0x0f));
    NGX_CHAT_FUZZ_ASSERT(f->fin == (p[0] >> 7));
    NGX_CHAT_FUZZ_ASSERT(memcmp(f->mask, p + f->header_len - 4, 4) == 0);
    NGX_CHAT_FUZZ_ASSERT(f->payload_len < ((uint64_t) 1 << 63));

    switch (f->opcode) {

    case NGX_CHAT_WS_OP_CLOSE:
    case NGX_CHAT_WS_OP_PING:
    case NGX_CHAT_WS_OP_PONG:
        NGX_CHAT_FUZZ_ASSERT(f->fin);
        NGX_CHAT_FUZZ_ASSERT(f->payload_len
                             <= NGX_CHAT_WS_CONTROL_MAX_PAYLOAD);
        break;

    case NGX_CHAT_WS_OP_CONT:
    case NGX_CHAT_WS_OP_TEXT:
    case NGX_CHAT_WS_OP_BINARY:
        NGX_CHAT_FUZZ_ASSERT(f->payload_len <= max_payload);
        break;

    default:
        NGX_CHAT_FUZZ_ASSERT(0);
    }

    /*
     * lengths are minimal, so the server writer produces the same bytes
     * but for the mask bit and the key
     */

    n = ngx_chat_ws_frame_write_header(out, f->opcode, f->fin,
                                       f->payload_len);

    NGX_CHAT_FUZZ_ASSERT(n == f->header_len - 4);
    NGX_CHAT_FUZZ_ASSERT(n == ngx_chat_ws_frame_header_size(f->payload_len));
    NGX_CHAT_FUZZ_ASSERT(out[0] == p[0] && (out[1] | 0x80) == p[1]);
    NGX_CHAT_FUZZ_ASSERT(memcmp(out + 2, p + 2, n - 2) == 0);
}


static void
ngx_chat_fuzz_unmask(const uint8_t *p, size_t len, size_t split)
{
    size_t    i;
    uint8_t  *a, *b;
    uint8_t   mask[4];
    uint64_t  base;

    if (len < 5) {
        return;
    }

    /* the first 4 bytes are the key, the next the base offset */

    memcpy(mask, p, 4);
    base = p[4] * 0x01000001ULL;

    a = malloc(len);
    b = malloc(len);

    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return;
    }

    memcpy(a, p, len);
    memcpy(b, p, len);

    ngx_chat_ws_unmask(a, len, mask, base);
    ngx_chat_ws_unmask(b, split, mask, base);
    ngx_chat_ws_unmask(b + split, len - split, mask, base + split);

    for (i = 0; i < len; i++) {
        NGX_CHAT_FUZZ_ASSERT(a[i] == (p[i] ^ mask[(base + i) & 3]));
    }

    NGX_CHAT_FUZZ_ASSERT(memcmp(a, b, len) == 0);

    /* odd alignment of the start */

    if (len > 1) {
        memcpy(b, p, len);
        ngx_chat_ws_unmask(b + 1, len - 1, mask, base + 1);
        NGX_CHAT_FUZZ_ASSERT(memcmp(a + 1, b + 1, len - 1) == 0);
    }

    ngx_chat_ws_unmask(a, len, mask, base);
    NGX_CHAT_FUZZ_ASSERT(memcmp(a, p, len) == 0);

    free(a);
    free(b);
}


static void
ngx_chat_fuzz_utf8(const uint8_t *p, size_t len, size_t split)
{
    int       ref;
    size_t    i;
    uint32_t  whole, chunked, bytewise;

    whole = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, p, len);

    chunked = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, p, split);
    chunked = ngx_chat_utf8_validate(chunked, p + split, len - split);

    bytewise = NGX_CHAT_UTF8_ACCEPT;

    for (i = 0; i < len; i++) {
        bytewise = ngx_chat_utf8_validate(bytewise, p + i, 1);
    }

    NGX_CHAT_FUZZ_ASSERT(whole == chunked && whole == bytewise);
    NGX_CHAT_FUZZ_ASSERT(whole <= 8);

    ref = ngx_chat_fuzz_utf8_ref(p, len);

    if (ref == 0) {
        NGX_CHAT_FUZZ_ASSERT(whole == NGX_CHAT_UTF8_ACCEPT);

    } else if (ref < 0) {
        NGX_CHAT_FUZZ_ASSERT(whole == NGX_CHAT_UTF8_REJECT);

    } else {
        NGX_CHAT_FUZZ_ASSERT(whole != NGX_CHAT_UTF8_ACCEPT
                             && whole != NGX_CHAT_UTF8_REJECT);
    }

    NGX_CHAT_FUZZ_ASSERT((ngx_chat_utf8_check(p, len) == 0)
                         == (whole == NGX_CHAT_UTF8_ACCEPT));
}


/*
 * Reference decoder on code points: 0 valid, 1 valid but cut inside a
 * character, -1 invalid (no continuation could make it valid).
 */

static int
ngx_chat_fuzz_utf8_ref(const uint8_t *p, size_t len)
{
    size_t    i, k, n;
    uint32_t  cp, lo, hi, min;

    for (i = 0; i < len; /* void */ ) {

        if (p[i] < 0x80) {
            i++;
            continue;
        }

        if ((p[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = p[i] & 0x1f;
            min = 0x80;

        } else if ((p[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = p[i] & 0x0f;
            min = 0x800;

        } else if ((p[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = p[i] & 0x07;
            min = 0x10000;

        } else {
            return -1;
        }

        for (k = 1; k < n && i + k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return -1;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        lo = cp;
        hi = cp;

        for (i += k; k < n; k++) {
            lo <<= 6;
            hi = (hi << 6) | 0x3f;
        }

        lo = lo < min ? min : lo;
        hi = hi > 0x10ffff ? 0x10ffff : hi;

        if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) {
            return -1;
        }

        if (lo != hi) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_chat_fuzz_close(const uint8_t *p, size_t len)
{
    int       rc;
    size_t    n;
    uint8_t   out[NGX_CHAT_WS_CONTROL_MAX_PAYLOAD];
    unsigned  code, c2;

    if (len >= 2) {
        c2 = ((unsigned) p[0] << 8) | p[1];
        NGX_CHAT_FUZZ_ASSERT(ngx_chat_ws_close_code_valid(c2)
                             == ((c2 >= 1000 && c2 <= 1003)
                                 || (c2 >= 1007 && c2 <= 1011)
                                 || (c2 >= 3000 && c2 <= 4999)));
    }

    code = 0;
    rc = ngx_chat_ws_parse_close(p, len, &code);

    NGX_CHAT_FUZZ_ASSERT(rc == NGX_CHAT_WS_FRAME_OK
                         || rc == NGX_CHAT_WS_FRAME_EPROTO
                         || rc == NGX_CHAT_WS_FRAME_EUTF8);

    if (rc == NGX_CHAT_WS_FRAME_OK) {

        if (len == 0) {
            NGX_CHAT_FUZZ_ASSERT(code == NGX_CHAT_CLOSE_NO_STATUS);
            return;
        }

        NGX_CHAT_FUZZ_ASSERT(len >= 2 && len <= 125);
        NGX_CHAT_FUZZ_ASSERT(ngx_chat_ws_close_code_valid(code));
        NGX_CHAT_FUZZ_ASSERT(code == (((unsigned) p[0] << 8) | p[1]));
        NGX_CHAT_FUZZ_ASSERT(ngx_chat_utf8_check(p + 2, len - 2) == 0);

        /* a valid payload is rebuilt as is */

        n = ngx_chat_ws_close_payload(out, code, (const char *) p + 2,
                                      len - 2);
        NGX_CHAT_FUZZ_ASSERT(n == len && memcmp(out, p, n) == 0);
    }

    if (rc == NGX_CHAT_WS_FRAME_EUTF8) {
        NGX_CHAT_FUZZ_ASSERT(len >= 2 && len <= 125);
        NGX_CHAT_FUZZ_ASSERT(ngx_chat_utf8_check(p + 2, len - 2) != 0);
    }

    /*
     * any valid UTF-8 as a reason, however long, builds a payload that
     * parses back with the same code
     */

    if (len >= 2 && ngx_chat_utf8_check(p + 2, len - 2) == 0) {
        c2 = ngx_chat_ws_close_code_valid(code) ? code : 4000;
        n = ngx_chat_ws_close_payload(out, c2, (const char *) p + 2,
                                      len - 2);

        NGX_CHAT_FUZZ_ASSERT(n >= 2 && n <= 125);
        NGX_CHAT_FUZZ_ASSERT(n == len || (len > 125 && n >= 122));
        NGX_CHAT_FUZZ_ASSERT(memcmp(out + 2, p + 2, n - 2) == 0);

        rc = ngx_chat_ws_parse_close(out, n, &code);
        NGX_CHAT_FUZZ_ASSERT(rc == NGX_CHAT_WS_FRAME_OK && code == c2);
    }
}
