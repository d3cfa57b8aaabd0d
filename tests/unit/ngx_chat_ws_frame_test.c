
/*
 * ngx_chat_ws_frame_test.c: unit tests of the WebSocket frame codec
 * (ngx_chat_module/ngx_chat_ws_frame.c).
 *
 * Covers every length encoding, the refusals a server must make (RSV,
 * opcodes, masking, control frame rules, non-minimal lengths, the 64-bit
 * top bit), ETOOBIG before the payload arrives, AGAIN on every truncated
 * prefix, piecewise unmasking against a byte-wise XOR, server headers and
 * close payloads.  Prints "N passed, M failed" and exits non-zero on any
 * failure.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_chat_ws_frame.h"
#include "ngx_chat_utf8.h"


#include "ngx_chat_check.h"


#define NGX_CHAT_NO_LIMIT  ((uint64_t) -1)


static uint64_t ngx_chat_test_rand(void);
static size_t ngx_chat_test_client_header(uint8_t *out, unsigned b0,
    uint64_t len, const uint8_t *mask);
static void ngx_chat_test_lengths(void);
static void ngx_chat_test_minimal(void);
static void ngx_chat_test_flags(void);
static void ngx_chat_test_opcodes(void);
static void ngx_chat_test_control(void);
static void ngx_chat_test_toobig(void);
static void ngx_chat_test_prefixes(void);
static void ngx_chat_test_unmask(void);
static void ngx_chat_test_server_header(void);
static void ngx_chat_test_close(void);


static const uint8_t  ngx_chat_test_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };


static uint64_t
ngx_chat_test_rand(void)
{
    static uint64_t  x = 0x9e3779b97f4a7c15ULL;

    /* xorshift64*: a fixed seed keeps every run identical */

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;

    return x * 0x2545f4914f6cdd1dULL;
}


/*
 * Builds a masked client header with byte 0 = b0 and the shortest length
 * encoding; returns its size.
 */

static size_t
ngx_chat_test_client_header(uint8_t *out, unsigned b0, uint64_t len,
    const uint8_t *mask)
{
    size_t  n;

    n = ngx_chat_ws_frame_write_header(out, 0, 0, len);
    out[0] = (uint8_t) b0;
    out[1] |= 0x80;
    memcpy(out + n, mask, 4);

    return n + 4;
}


static void
ngx_chat_test_lengths(void)
{
    int                  rc;
    size_t               i, n;
    uint8_t              buf[32];
    ngx_chat_ws_frame_t  f;

    static const struct {
        uint64_t  len;
        size_t    header_len;
    } cases[] = {
        { 0, 6 }, { 1, 6 }, { 5, 6 }, { 125, 6 },
        { 126, 8 }, { 127, 8 }, { 256, 8 }, { 65535, 8 },
        { 65536, 14 }, { 0xffffffffULL, 14 }, { 0x100000000ULL, 14 },
        { 0x7fffffffffffffffULL, 14 }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = ngx_chat_test_client_header(buf, 0x82, cases[i].len,
                                        ngx_chat_test_mask);
        NGX_CHAT_CHECK(n == cases[i].header_len);

        memset(&f, 0, sizeof(f));
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);

        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK);
        NGX_CHAT_CHECK(f.payload_len == cases[i].len);
        NGX_CHAT_CHECK(f.header_len == cases[i].header_len);
        NGX_CHAT_CHECK(f.opcode == NGX_CHAT_WS_OP_BINARY);
        NGX_CHAT_CHECK(f.fin == 1);
        NGX_CHAT_CHECK(f.masked == 1);
        NGX_CHAT_CHECK(memcmp(f.mask, ngx_chat_test_mask, 4) == 0);

        /* trailing payload bytes do not change the result */

        memset(buf + n, 0xaa, sizeof(buf) - n);
        rc = ngx_chat_ws_frame_parse(buf, sizeof(buf), NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK);
        NGX_CHAT_CHECK(f.header_len == cases[i].header_len);
    }

    /* explicit bytes, independent of the writer */
    {
        static const uint8_t  h7[] = { 0x81, 0x85, 1, 2, 3, 4 };
        static const uint8_t  h16[] = { 0x01, 0xfe, 0x01, 0x00, 1, 2, 3, 4 };
        static const uint8_t  h64[] = { 0x80, 0xff, 0, 0, 0, 1, 0, 0, 0, 0,
                                        9, 8, 7, 6 };

        rc = ngx_chat_ws_frame_parse(h7, sizeof(h7), 1000, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.payload_len == 5
                       && f.opcode == NGX_CHAT_WS_OP_TEXT && f.fin
                       && f.header_len == 6 && f.mask[0] == 1
                       && f.mask[3] == 4);

        rc = ngx_chat_ws_frame_parse(h16, sizeof(h16), 1000, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.payload_len == 256
                       && f.opcode == NGX_CHAT_WS_OP_TEXT && !f.fin
                       && f.header_len == 8);

        rc = ngx_chat_ws_frame_parse(h64, sizeof(h64), NGX_CHAT_NO_LIMIT,
                                     &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK
                       && f.payload_len == 0x100000000ULL
                       && f.opcode == NGX_CHAT_WS_OP_CONT && f.fin
                       && f.header_len == 14 && f.mask[0] == 9
                       && f.mask[3] == 6);
    }
}


static void
ngx_chat_test_minimal(void)
{
    int                  rc;
    ngx_chat_ws_frame_t  f;

    static const uint8_t  l16_0[] = { 0x82, 0xfe, 0, 0, 1, 2, 3, 4 };
    static const uint8_t  l16_125[] = { 0x82, 0xfe, 0, 125, 1, 2, 3, 4 };
    static const uint8_t  l16_126[] = { 0x82, 0xfe, 0, 126, 1, 2, 3, 4 };
    static const uint8_t  l64_0[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
                                      1, 2, 3, 4 };
    static const uint8_t  l64_125[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 125,
                                        1, 2, 3, 4 };
    static const uint8_t  l64_ffff[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff,
                                         0xff, 1, 2, 3, 4 };
    static const uint8_t  l64_10000[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0,
                                          1, 2, 3, 4 };
    static const uint8_t  l64_top[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0,
                                        0, 1, 2, 3, 4 };
    static const uint8_t  l64_max[] = { 0x82, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4 };

    rc = ngx_chat_ws_frame_parse(l16_0, sizeof(l16_0), NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    rc = ngx_chat_ws_frame_parse(l16_125, sizeof(l16_125), NGX_CHAT_NO_LIMIT,
                                 &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    rc = ngx_chat_ws_frame_parse(l16_126, sizeof(l16_126), NGX_CHAT_NO_LIMIT,
                                 &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.payload_len == 126);

    rc = ngx_chat_ws_frame_parse(l64_0, sizeof(l64_0), NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    rc = ngx_chat_ws_frame_parse(l64_125, sizeof(l64_125), NGX_CHAT_NO_LIMIT,
                                 &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    rc = ngx_chat_ws_frame_parse(l64_ffff, sizeof(l64_ffff),
                                 NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    rc = ngx_chat_ws_frame_parse(l64_10000, sizeof(l64_10000),
                                 NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.payload_len == 65536);

    /* the most significant bit of a 64-bit length must be 0 */

    rc = ngx_chat_ws_frame_parse(l64_top, sizeof(l64_top), NGX_CHAT_NO_LIMIT,
                                 &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    rc = ngx_chat_ws_frame_parse(l64_max, sizeof(l64_max), NGX_CHAT_NO_LIMIT,
                                 &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    /* ... and that is seen on its first byte */

    rc = ngx_chat_ws_frame_parse(l64_top, 3, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
}


static void
ngx_chat_test_flags(void)
{
    int                  rc;
    size_t               n;
    unsigned             rsv;
    uint8_t              buf[16];
    ngx_chat_ws_frame_t  f;

    /* every combination of RSV1..3 other than none */

    for (rsv = 1; rsv < 8; rsv++) {
        n = ngx_chat_test_client_header(buf, 0x81 | (rsv << 4), 3,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

        /* seen from the first byte alone */
        rc = ngx_chat_ws_frame_parse(buf, 1, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

        /* also on control frames */
        n = ngx_chat_test_client_header(buf, 0x89 | (rsv << 4), 0,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
    }

    /* unmasked client frames: 7, 16 and 64-bit lengths */

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_TEXT, 1, 5);
    rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
    rc = ngx_chat_ws_frame_parse(buf, 2, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_TEXT, 1, 300);
    memset(buf + n, 0, 4);
    rc = ngx_chat_ws_frame_parse(buf, n + 4, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_BINARY, 1, 70000);
    memset(buf + n, 0, 4);
    rc = ngx_chat_ws_frame_parse(buf, n + 4, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_PING, 1, 0);
    rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    /* fin = 0 is fine for data frames */

    n = ngx_chat_test_client_header(buf, 0x01, 3, ngx_chat_test_mask);
    rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && !f.fin
                   && f.opcode == NGX_CHAT_WS_OP_TEXT);

    n = ngx_chat_test_client_header(buf, 0x00, 3, ngx_chat_test_mask);
    rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && !f.fin
                   && f.opcode == NGX_CHAT_WS_OP_CONT);
}


static void
ngx_chat_test_opcodes(void)
{
    int                  rc, known;
    size_t               n;
    unsigned             op;
    uint8_t              buf[16];
    ngx_chat_ws_frame_t  f;

    for (op = 0; op < 16; op++) {
        known = (op <= 2 || (op >= 8 && op <= 10));

        n = ngx_chat_test_client_header(buf, 0x80 | op, 4,
                                        ngx_chat_test_mask);
        memset(&f, 0, sizeof(f));
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);

        if (known) {
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.opcode == op);

        } else {
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

            rc = ngx_chat_ws_frame_parse(buf, 1, NGX_CHAT_NO_LIMIT, &f);
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
        }

        NGX_CHAT_CHECK(NGX_CHAT_WS_OP_IS_CONTROL(op) == (op >= 8));
    }
}


static void
ngx_chat_test_control(void)
{
    int                  rc;
    size_t               n;
    unsigned             op;
    uint8_t              buf[16];
    ngx_chat_ws_frame_t  f;

    for (op = 8; op <= 10; op++) {

        /* fragmented control frame */

        n = ngx_chat_test_client_header(buf, op, 0, ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
        rc = ngx_chat_ws_frame_parse(buf, 1, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

        /* 125 bytes is the largest control payload */

        n = ngx_chat_test_client_header(buf, 0x80 | op, 125,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.payload_len == 125);

        /* control frames ignore max_payload: they are bounded anyway */

        rc = ngx_chat_ws_frame_parse(buf, n, 10, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.payload_len == 125);

        n = ngx_chat_test_client_header(buf, 0x80 | op, 126,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

        /* refused from the 2 fixed bytes */
        rc = ngx_chat_ws_frame_parse(buf, 2, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

        n = ngx_chat_test_client_header(buf, 0x80 | op, 70000,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
        rc = ngx_chat_ws_frame_parse(buf, 2, NGX_CHAT_NO_LIMIT, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);
    }
}


static void
ngx_chat_test_toobig(void)
{
    int                  rc;
    size_t               n, k;
    unsigned             op;
    uint8_t              buf[16];
    ngx_chat_ws_frame_t  f;

    for (op = 0; op <= 2; op++) {

        /* exactly the limit is accepted, one more byte is not */

        n = ngx_chat_test_client_header(buf, 0x80 | op, 1000,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, 1000, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK);
        rc = ngx_chat_ws_frame_parse(buf, n, 999, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_ETOOBIG
                       && f.payload_len == 1000 && f.opcode == op);

        /* 7-bit length: known from 2 bytes, no key yet */

        n = ngx_chat_test_client_header(buf, 0x80 | op, 100,
                                        ngx_chat_test_mask);
        NGX_CHAT_CHECK(n == 6);

        for (k = 0; k < n; k++) {
            rc = ngx_chat_ws_frame_parse(buf, k, 99, &f);
            NGX_CHAT_CHECK(rc == (k < 2 ? NGX_CHAT_WS_FRAME_AGAIN
                                        : NGX_CHAT_WS_FRAME_ETOOBIG));
        }

        /* 16-bit length: known from 4 bytes */

        n = ngx_chat_test_client_header(buf, op, 40000, ngx_chat_test_mask);
        NGX_CHAT_CHECK(n == 8);

        for (k = 0; k <= n; k++) {
            rc = ngx_chat_ws_frame_parse(buf, k, 32768, &f);
            NGX_CHAT_CHECK(rc == (k < 4 ? NGX_CHAT_WS_FRAME_AGAIN
                                        : NGX_CHAT_WS_FRAME_ETOOBIG));
        }

        NGX_CHAT_CHECK(f.payload_len == 40000 && !f.fin);

        /* 64-bit length: known from 10 bytes */

        n = ngx_chat_test_client_header(buf, 0x80 | op,
                                        0x7fffffffffffffffULL,
                                        ngx_chat_test_mask);
        NGX_CHAT_CHECK(n == 14);

        for (k = 0; k <= n; k++) {
            rc = ngx_chat_ws_frame_parse(buf, k, 1 << 20, &f);
            NGX_CHAT_CHECK(rc == (k < 10 ? NGX_CHAT_WS_FRAME_AGAIN
                                         : NGX_CHAT_WS_FRAME_ETOOBIG));
        }

        NGX_CHAT_CHECK(f.payload_len == 0x7fffffffffffffffULL);

        /* a limit of 0 still lets empty frames through */

        n = ngx_chat_test_client_header(buf, 0x80 | op, 0,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, n, 0, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK);
        n = ngx_chat_test_client_header(buf, 0x80 | op, 1,
                                        ngx_chat_test_mask);
        rc = ngx_chat_ws_frame_parse(buf, 2, 0, &f);
        NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_ETOOBIG);
    }
}


static void
ngx_chat_test_prefixes(void)
{
    int                  rc;
    size_t               i, n, k;
    uint8_t              buf[32];
    ngx_chat_ws_frame_t  f, g;

    static const struct {
        unsigned  b0;
        uint64_t  len;
    } cases[] = {
        { 0x81, 0 }, { 0x81, 17 }, { 0x02, 125 }, { 0x80, 126 },
        { 0x82, 65535 }, { 0x81, 65536 }, { 0x02, 0x123456789aULL },
        { 0x89, 0 }, { 0x8a, 125 }, { 0x88, 2 }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = ngx_chat_test_client_header(buf, cases[i].b0, cases[i].len,
                                        ngx_chat_test_mask);

        for (k = 0; k < n; k++) {
            memset(&f, 0x5a, sizeof(f));
            memcpy(&g, &f, sizeof(f));

            rc = ngx_chat_ws_frame_parse(buf, k, NGX_CHAT_NO_LIMIT, &f);
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_AGAIN);

            /* AGAIN leaves *f alone */
            NGX_CHAT_CHECK(memcmp(&f, &g, sizeof(f)) == 0);
        }

        for (k = n; k < sizeof(buf); k++) {
            buf[k] = (uint8_t) ngx_chat_test_rand();
            rc = ngx_chat_ws_frame_parse(buf, k, NGX_CHAT_NO_LIMIT, &f);
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && f.header_len == n
                           && f.payload_len == cases[i].len);
        }
    }

    /* a NULL buffer of length 0 */

    rc = ngx_chat_ws_frame_parse(NULL, 0, NGX_CHAT_NO_LIMIT, &f);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_AGAIN);
}


static void
ngx_chat_test_unmask(void)
{
    int       bad;
    size_t    len, off, cut, i;
    uint8_t   mask[4], orig[300], ref[300], buf[300 + 8];
    uint64_t  base;
    unsigned  iter, align;

    static const uint64_t  bases[] = {
        0, 1, 2, 3, 5, 7, 0xfffffffdULL, 0x100000003ULL,
        0xfffffffffffffff9ULL
    };

    bad = 0;

    for (iter = 0; iter < 2000; iter++) {
        len = (size_t) (ngx_chat_test_rand() % 300);
        base = bases[iter % (sizeof(bases) / sizeof(bases[0]))];
        align = (unsigned) (ngx_chat_test_rand() % 8);

        for (i = 0; i < 4; i++) {
            mask[i] = (uint8_t) ngx_chat_test_rand();
        }

        for (i = 0; i < len; i++) {
            orig[i] = (uint8_t) ngx_chat_test_rand();
            ref[i] = orig[i] ^ mask[(base + i) % 4];
        }

        /* whole, at an arbitrary alignment */

        memcpy(buf + align, orig, len);
        ngx_chat_ws_unmask(buf + align, len, mask, base);
        bad += (len && memcmp(buf + align, ref, len) != 0);

        /* twice restores */

        ngx_chat_ws_unmask(buf + align, len, mask, base);
        bad += (len && memcmp(buf + align, orig, len) != 0);

        /* in two pieces split at any byte, the second at an odd offset */

        cut = len ? (size_t) (ngx_chat_test_rand() % (len + 1)) : 0;
        memcpy(buf + align, orig, len);
        ngx_chat_ws_unmask(buf + align, cut, mask, base);
        ngx_chat_ws_unmask(buf + align + cut, len - cut, mask, base + cut);
        bad += (len && memcmp(buf + align, ref, len) != 0);

        /* byte by byte */

        memcpy(buf, orig, len);

        for (off = 0; off < len; off++) {
            ngx_chat_ws_unmask(buf + off, 1, mask, base + off);
        }

        bad += (len && memcmp(buf, ref, len) != 0);
    }

    NGX_CHAT_CHECK(bad == 0);

    /* the RFC 6455 section 5.7 example: "Hello" with key 37 fa 21 3d */
    {
        uint8_t  hello[] = { 0x7f, 0x9f, 0x4d, 0x51, 0x58 };

        ngx_chat_ws_unmask(hello, 5, ngx_chat_test_mask, 0);
        NGX_CHAT_CHECK(memcmp(hello, "Hello", 5) == 0);
    }

    /* bytes beyond len are untouched */

    memset(buf, 0x11, sizeof(buf));
    ngx_chat_ws_unmask(buf + 1, 13, ngx_chat_test_mask, 3);
    NGX_CHAT_CHECK(buf[0] == 0x11 && buf[14] == 0x11);
    NGX_CHAT_CHECK(buf[1] == (0x11 ^ ngx_chat_test_mask[3])
                   && buf[2] == (0x11 ^ ngx_chat_test_mask[0])
                   && buf[13] == (0x11 ^ ngx_chat_test_mask[3]));

    ngx_chat_ws_unmask(NULL, 0, ngx_chat_test_mask, 0);
    NGX_CHAT_CHECK(1);
}


static void
ngx_chat_test_server_header(void)
{
    size_t   n;
    uint8_t  buf[16];

    NGX_CHAT_CHECK(ngx_chat_ws_frame_header_size(0) == 2);
    NGX_CHAT_CHECK(ngx_chat_ws_frame_header_size(125) == 2);
    NGX_CHAT_CHECK(ngx_chat_ws_frame_header_size(126) == 4);
    NGX_CHAT_CHECK(ngx_chat_ws_frame_header_size(65535) == 4);
    NGX_CHAT_CHECK(ngx_chat_ws_frame_header_size(65536) == 10);
    NGX_CHAT_CHECK(ngx_chat_ws_frame_header_size(0x7fffffffffffffffULL)
                   == 10);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_TEXT, 1, 5);
    NGX_CHAT_CHECK(n == 2 && buf[0] == 0x81 && buf[1] == 0x05);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_PONG, 1, 125);
    NGX_CHAT_CHECK(n == 2 && buf[0] == 0x8a && buf[1] == 125);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_BINARY, 0, 126);
    NGX_CHAT_CHECK(n == 4 && buf[0] == 0x02 && buf[1] == 126
                   && buf[2] == 0 && buf[3] == 126);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_CONT, 1, 65535);
    NGX_CHAT_CHECK(n == 4 && buf[0] == 0x80 && buf[1] == 126
                   && buf[2] == 0xff && buf[3] == 0xff);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_BINARY, 1,
                                       0x0102030405060708ULL);
    NGX_CHAT_CHECK(n == 10 && buf[0] == 0x82 && buf[1] == 127
                   && buf[2] == 1 && buf[5] == 4 && buf[9] == 8);

    n = ngx_chat_ws_frame_write_header(buf, NGX_CHAT_WS_OP_CLOSE, 1, 65536);
    NGX_CHAT_CHECK(n == 10 && buf[0] == 0x88 && buf[1] == 127
                   && buf[2] == 0 && buf[6] == 0 && buf[7] == 1
                   && buf[8] == 0 && buf[9] == 0);
}


static void
ngx_chat_test_close(void)
{
    int       rc, bad;
    char      reason[200];
    size_t    n, i;
    uint8_t   out[200];
    unsigned  code, c;

    /* building */

    n = ngx_chat_ws_close_payload(out, NGX_CHAT_CLOSE_NORMAL, NULL, 0);
    NGX_CHAT_CHECK(n == 2 && out[0] == 0x03 && out[1] == 0xe8);

    n = ngx_chat_ws_close_payload(out, 0, "ignored", 7);
    NGX_CHAT_CHECK(n == 0);

    n = ngx_chat_ws_close_payload(out, NGX_CHAT_CLOSE_TOO_BIG,
                                  "too big", 7);
    NGX_CHAT_CHECK(n == 9 && out[0] == 0x03 && out[1] == 0xf1
                   && memcmp(out + 2, "too big", 7) == 0);

    memset(reason, 'x', sizeof(reason));
    n = ngx_chat_ws_close_payload(out, 4000, reason, 123);
    NGX_CHAT_CHECK(n == 125);
    n = ngx_chat_ws_close_payload(out, 4000, reason, sizeof(reason));
    NGX_CHAT_CHECK(n == 125 && out[0] == 0x0f && out[1] == 0xa0);

    /*
     * a 2-, 3- or 4-byte character straddling byte 123 of the reason is
     * dropped whole; one ending exactly at 123 is kept
     */
    {
        static const char  *chars[] = {
            "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"
        };
        size_t  clen, start;

        for (i = 0; i < 3; i++) {
            clen = strlen(chars[i]);

            for (start = 123 - clen; start <= 123; start++) {
                memset(reason, 'a', sizeof(reason));
                memcpy(reason + start, chars[i], clen);

                n = ngx_chat_ws_close_payload(out, 1000, reason,
                                              sizeof(reason));

                if (start + clen <= 123) {
                    NGX_CHAT_CHECK(n == 125);

                } else {
                    NGX_CHAT_CHECK(n == 2 + start);
                }

                NGX_CHAT_CHECK(ngx_chat_utf8_check(out + 2, n - 2) == 0);
                NGX_CHAT_CHECK(ngx_chat_ws_parse_close(out, n, &code)
                               == NGX_CHAT_WS_FRAME_OK && code == 1000);
            }
        }
    }

    /* a reason of only multi-byte characters */

    for (i = 0; i + 3 <= sizeof(reason); i += 3) {
        memcpy(reason + i, "\xe2\x82\xac", 3);
    }

    n = ngx_chat_ws_close_payload(out, 1001, reason, i);
    NGX_CHAT_CHECK(n == 2 + 123);
    NGX_CHAT_CHECK(ngx_chat_ws_parse_close(out, n, &code)
                   == NGX_CHAT_WS_FRAME_OK && code == 1001);

    for (i = 0; i + 4 <= sizeof(reason); i += 4) {
        memcpy(reason + i, "\xf0\x9f\x98\x80", 4);
    }

    n = ngx_chat_ws_close_payload(out, 1001, reason, i);
    NGX_CHAT_CHECK(n == 2 + 120);
    NGX_CHAT_CHECK(ngx_chat_utf8_check(out + 2, n - 2) == 0);

    /* valid codes */

    bad = 0;

    for (c = 0; c < 70000; c++) {
        rc = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011)
             || (c >= 3000 && c <= 4999);
        bad += (ngx_chat_ws_close_code_valid(c) != rc);
    }

    NGX_CHAT_CHECK(bad == 0);

    /* parsing */

    code = 0;
    rc = ngx_chat_ws_parse_close(NULL, 0, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && code == 1005);

    out[0] = 0x03;
    rc = ngx_chat_ws_parse_close(out, 1, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    {
        static const unsigned  good[] = {
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
            3999, 4000, 4999
        };
        static const unsigned  badc[] = {
            0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016,
            1100, 2000, 2999, 5000, 65535
        };

        for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            out[0] = (uint8_t) (good[i] >> 8);
            out[1] = (uint8_t) good[i];
            code = 0;
            rc = ngx_chat_ws_parse_close(out, 2, &code);
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && code == good[i]);
        }

        for (i = 0; i < sizeof(badc) / sizeof(badc[0]); i++) {
            out[0] = (uint8_t) (badc[i] >> 8);
            out[1] = (uint8_t) badc[i];
            code = 12345;
            rc = ngx_chat_ws_parse_close(out, 2, &code);
            NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO && code == 12345);
        }
    }

    /* reasons */

    n = ngx_chat_ws_close_payload(out, 1000, "\xce\xba\xe1\xbd\xb9", 5);
    rc = ngx_chat_ws_parse_close(out, n, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_OK && code == 1000);

    memcpy(out + 2, "ok\xff", 3);
    rc = ngx_chat_ws_parse_close(out, 5, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EUTF8);

    memcpy(out + 2, "\xed\xa0\x80", 3);
    rc = ngx_chat_ws_parse_close(out, 5, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EUTF8);

    /* a character cut at the end of the payload */
    memcpy(out + 2, "a\xe2\x82", 3);
    rc = ngx_chat_ws_parse_close(out, 5, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EUTF8);

    /* a bad code is a protocol error even with a bad reason */
    out[0] = 0x03;
    out[1] = 0xed;
    rc = ngx_chat_ws_parse_close(out, 5, &code);
    NGX_CHAT_CHECK(rc == NGX_CHAT_WS_FRAME_EPROTO);

    /* over 125 bytes cannot come from a valid control frame */
    memset(out, 'a', sizeof(out));
    out[0] = 0x03;
    out[1] = 0xe8;
    NGX_CHAT_CHECK(ngx_chat_ws_parse_close(out, 125, &code)
                   == NGX_CHAT_WS_FRAME_OK);
    NGX_CHAT_CHECK(ngx_chat_ws_parse_close(out, 126, &code)
                   == NGX_CHAT_WS_FRAME_EPROTO);
}


int
main(void)
{
    ngx_chat_test_lengths();
    ngx_chat_test_minimal();
    ngx_chat_test_flags();
    ngx_chat_test_opcodes();
    ngx_chat_test_control();
    ngx_chat_test_toobig();
    ngx_chat_test_prefixes();
    ngx_chat_test_unmask();
    ngx_chat_test_server_header();
    ngx_chat_test_close();

    printf("%u passed, %u failed\n", ngx_chat_test_passed,
           ngx_chat_test_failed);

    return ngx_chat_test_failed ? 1 : 0;
}
