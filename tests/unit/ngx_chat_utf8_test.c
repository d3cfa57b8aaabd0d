
/*
 * ngx_chat_utf8_test.c: unit tests of the strict incremental UTF-8
 * validator (ngx_chat_module/ngx_chat_utf8.c).
 *
 * Three kinds of check: hand-written cases (Markus Kuhn's "UTF-8 decoder
 * capability and stress test" sections, the byte-range edges of Unicode
 * table 3-7), chunking (every split of a text gives the same state), and
 * agreement with a slow reference decoder that works on code points, over
 * every 1-, 2- and 3-byte input, a slice of 4-byte inputs and random texts
 * from a fixed seed.  Prints "N passed, M failed" and exits non-zero on any
 * failure.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_chat_utf8.h"


#include "ngx_chat_check.h"


/* results of the reference decoder */
#define NGX_CHAT_REF_VALID       0   /* complete and valid */
#define NGX_CHAT_REF_INCOMPLETE  1   /* valid so far, ends inside a char */
#define NGX_CHAT_REF_INVALID    -1   /* no continuation can make it valid */


typedef struct {
    const char  *bytes;
    int          valid;
    const char  *what;
} ngx_chat_test_case_t;


static uint64_t ngx_chat_test_rand(void);
static int ngx_chat_test_ref(const uint8_t *p, size_t len);
static uint32_t ngx_chat_test_bytewise(const uint8_t *p, size_t len);
static int ngx_chat_test_agrees(const uint8_t *p, size_t len);
static size_t ngx_chat_test_encode(uint8_t *out, uint32_t cp);
static void ngx_chat_test_cases(void);
static void ngx_chat_test_chars(void);
static void ngx_chat_test_splits(void);
static void ngx_chat_test_fast_path(void);
static void ngx_chat_test_exhaustive(void);
static void ngx_chat_test_random(void);
static void ngx_chat_test_states(void);


static uint64_t
ngx_chat_test_rand(void)
{
    static uint64_t  x = 0x2545f4914f6cdd1dULL;

    /* xorshift64*: a fixed seed keeps every run identical */

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;

    return x * 0x2545f4914f6cdd1dULL;
}


/*
 * The reference: decodes each character from its lead byte's bit pattern
 * and checks the code point against the definition (shortest form, not a
 * surrogate, at most U+10FFFF).  For a character cut off by the end of the
 * input it asks whether any continuation could still give a valid code
 * point: the possible code points form the interval [lo, hi].
 */

static int
ngx_chat_test_ref(const uint8_t *p, size_t len)
{
    size_t    i, k, n;
    uint32_t  cp, lo, hi, min;

    i = 0;

    while (i < len) {

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
            return NGX_CHAT_REF_INVALID;
        }

        for (k = 1; k < n && i + k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return NGX_CHAT_REF_INVALID;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        lo = cp;
        hi = cp;

        for (i += k; k < n; k++) {
            lo = lo << 6;
            hi = (hi << 6) | 0x3f;
        }

        if (lo < min) {
            lo = min;
        }

        if (hi > 0x10ffff) {
            hi = 0x10ffff;
        }

        if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) {
            return NGX_CHAT_REF_INVALID;
        }

        if (i == len && lo != hi) {
            return NGX_CHAT_REF_INCOMPLETE;
        }
    }

    return NGX_CHAT_REF_VALID;
}


static uint32_t
ngx_chat_test_bytewise(const uint8_t *p, size_t len)
{
    size_t    i;
    uint32_t  state;

    state = NGX_CHAT_UTF8_ACCEPT;

    for (i = 0; i < len; i++) {
        state = ngx_chat_utf8_validate(state, p + i, 1);
    }

    return state;
}


/*
 * 1 if the validator, fed whole, byte by byte, and in random chunks,
 * always ends in the same state and that state matches the reference.
 */

static int
ngx_chat_test_agrees(const uint8_t *p, size_t len)
{
    int       ref;
    size_t    i, n;
    uint32_t  whole, state;

    whole = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, p, len);

    if (ngx_chat_test_bytewise(p, len) != whole) {
        return 0;
    }

    state = NGX_CHAT_UTF8_ACCEPT;

    for (i = 0; i < len; i += n) {
        n = (size_t) (ngx_chat_test_rand() % 20);
        n = (n > len - i) ? len - i : n;
        state = ngx_chat_utf8_validate(state, p + i, n);
    }

    if (state != whole) {
        return 0;
    }

    ref = ngx_chat_test_ref(p, len);

    switch (ref) {

    case NGX_CHAT_REF_VALID:
        return whole == NGX_CHAT_UTF8_ACCEPT;

    case NGX_CHAT_REF_INVALID:
        return whole == NGX_CHAT_UTF8_REJECT;

    default:
        return whole != NGX_CHAT_UTF8_ACCEPT
               && whole != NGX_CHAT_UTF8_REJECT;
    }
}


/* encodes any value below 2^21 with the UTF-8 bit patterns, unchecked */

static size_t
ngx_chat_test_encode(uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t) cp;
        return 1;
    }

    if (cp < 0x800) {
        out[0] = (uint8_t) (0xc0 | (cp >> 6));
        out[1] = (uint8_t) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        out[0] = (uint8_t) (0xe0 | (cp >> 12));
        out[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t) (0x80 | (cp & 0x3f));
        return 3;
    }

    out[0] = (uint8_t) (0xf0 | (cp >> 18));
    out[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t) (0x80 | (cp & 0x3f));
    return 4;
}


static const ngx_chat_test_case_t  ngx_chat_test_cases_table[] = {

    /* correct texts */
    { "", 1, "empty" },
    { "hello", 1, "ascii" },
    { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1, "kosme" },
    { "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1"
      "-UTF-8!!", 1, "latin-1 letters" },
    { "\xf0\x9f\x98\x80 \xe2\x82\xac \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 1,
      "emoji, euro, hebrew" },

    /* Kuhn 2.1: first possible sequence of a certain length */
    { "\x01", 1, "U+0001 (U+0000 is tested apart)" },
    { "\xc2\x80", 1, "U+0080" },
    { "\xe0\xa0\x80", 1, "U+0800" },
    { "\xf0\x90\x80\x80", 1, "U+10000" },
    { "\xf8\x88\x80\x80\x80", 0, "U+200000 (5 bytes)" },
    { "\xfc\x84\x80\x80\x80\x80", 0, "U+4000000 (6 bytes)" },

    /* Kuhn 2.2: last possible sequence of a certain length */
    { "\x7f", 1, "U+007F" },
    { "\xdf\xbf", 1, "U+07FF" },
    { "\xef\xbf\xbf", 1, "U+FFFF" },
    { "\xf7\xbf\xbf\xbf", 0, "U+1FFFFF" },
    { "\xfb\xbf\xbf\xbf\xbf", 0, "U+3FFFFFF" },
    { "\xfd\xbf\xbf\xbf\xbf\xbf", 0, "U+7FFFFFFF" },

    /* Kuhn 2.3: other boundary conditions */
    { "\xed\x9f\xbf", 1, "U+D7FF" },
    { "\xee\x80\x80", 1, "U+E000" },
    { "\xef\xbf\xbd", 1, "U+FFFD" },
    { "\xf4\x8f\xbf\xbf", 1, "U+10FFFF" },
    { "\xf4\x90\x80\x80", 0, "U+110000" },

    /* Kuhn 3.1: unexpected continuation bytes */
    { "\x80", 0, "80" },
    { "\xbf", 0, "BF" },
    { "\x80\xbf", 0, "80 BF" },
    { "\x80\xbf\x80", 0, "80 BF 80" },
    { "\x80\xbf\x80\xbf", 0, "80 BF 80 BF" },
    { "a\x80", 0, "a 80" },
    { "\xc3\xa9\xa9", 0, "2-byte char and a stray continuation" },

    /* Kuhn 3.2: lonely start characters */
    { "\xc0 ", 0, "C0 space" },
    { "\xc2 ", 0, "C2 space" },
    { "\xdf ", 0, "DF space" },
    { "\xe0 ", 0, "E0 space" },
    { "\xef ", 0, "EF space" },
    { "\xf0 ", 0, "F0 space" },
    { "\xf4 ", 0, "F4 space" },
    { "\xf8 ", 0, "F8 space" },
    { "\xfc ", 0, "FC space" },

    /* Kuhn 3.3: sequences with the last continuation byte missing */
    { "\xc2", 0, "C2" },
    { "\xe0\xa0", 0, "E0 A0" },
    { "\xf0\x90\x80", 0, "F0 90 80" },
    { "\xdf", 0, "DF" },
    { "\xef\xbf", 0, "EF BF" },
    { "\xf4\x8f\xbf", 0, "F4 8F BF" },
    { "\xe2\x82 ", 0, "E2 82 space" },

    /* Kuhn 3.4: concatenation of incomplete sequences */
    { "\xc2\xe0\xa0\xf0\x90\x80\xdf\xef\xbf\xf4\x8f\xbf", 0,
      "incomplete sequences back to back" },

    /* Kuhn 3.5: impossible bytes */
    { "\xfe", 0, "FE" },
    { "\xff", 0, "FF" },
    { "\xfe\xfe\xff\xff", 0, "FE FE FF FF" },
    { "\xf5\x80\x80\x80", 0, "F5" },
    { "\xf6\x80\x80\x80", 0, "F6" },
    { "\xf7\x80\x80\x80", 0, "F7" },

    /* Kuhn 4.1: overlong "/" */
    { "\xc0\xaf", 0, "overlong / (2)" },
    { "\xe0\x80\xaf", 0, "overlong / (3)" },
    { "\xf0\x80\x80\xaf", 0, "overlong / (4)" },
    { "\xf8\x80\x80\x80\xaf", 0, "overlong / (5)" },
    { "\xfc\x80\x80\x80\x80\xaf", 0, "overlong / (6)" },

    /* Kuhn 4.2: maximum overlong sequences */
    { "\xc1\xbf", 0, "overlong U+007F" },
    { "\xe0\x9f\xbf", 0, "overlong U+07FF" },
    { "\xf0\x8f\xbf\xbf", 0, "overlong U+FFFF" },

    /* Kuhn 4.3: overlong NUL */
    { "\xc0\x80", 0, "overlong NUL (2)" },
    { "\xe0\x80\x80", 0, "overlong NUL (3)" },
    { "\xf0\x80\x80\x80", 0, "overlong NUL (4)" },

    /* Kuhn 5.1: single UTF-16 surrogates */
    { "\xed\xa0\x80", 0, "U+D800" },
    { "\xed\xad\xbf", 0, "U+DB7F" },
    { "\xed\xae\x80", 0, "U+DB80" },
    { "\xed\xaf\xbf", 0, "U+DBFF" },
    { "\xed\xb0\x80", 0, "U+DC00" },
    { "\xed\xbe\x80", 0, "U+DF80" },
    { "\xed\xbf\xbf", 0, "U+DFFF" },

    /* Kuhn 5.2: paired UTF-16 surrogates */
    { "\xed\xa0\x80\xed\xb0\x80", 0, "U+D800 U+DC00" },
    { "\xed\xaf\xbf\xed\xbf\xbf", 0, "U+DBFF U+DFFF" },

    /* Kuhn 5.3: noncharacters are valid UTF-8 */
    { "\xef\xbf\xbe", 1, "U+FFFE" },
    { "\xef\xb7\x90", 1, "U+FDD0" },
    { "\xf0\x9f\xbf\xbf", 1, "U+1FFFF" },
    { "\xf4\x8f\xbf\xbe", 1, "U+10FFFE" },

    /* lead bytes beside the restricted second-byte ranges */
    { "\xe0\xbf\xbf", 1, "E0 BF BF" },
    { "\xe1\x80\x80", 1, "E1 80 80" },
    { "\xec\xbf\xbf", 1, "EC BF BF" },
    { "\xed\x80\x80", 1, "ED 80 80" },
    { "\xf0\xbf\xbf\xbf", 1, "F0 BF BF BF" },
    { "\xf1\x80\x80\x80", 1, "F1 80 80 80" },
    { "\xf3\xbf\xbf\xbf", 1, "F3 BF BF BF" },
    { "\xf4\x80\x80\x80", 1, "F4 80 80 80" },
    { "\xf4\xbf\xbf\xbf", 0, "F4 BF BF BF" },

    /* a bad byte after valid text, past the 8-byte fast path */
    { "0123456789abcdef\xc0", 0, "ascii then C0" },
    { "0123456789abcdef\xc3\xa9 ok", 1, "ascii then e-acute" },
    { "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xed\xbf\xbf", 0,
      "two-byte chars then a surrogate" }
};


static void
ngx_chat_test_cases(void)
{
    size_t                       i, len;
    uint8_t                      nul[3];
    uint32_t                     state;
    const ngx_chat_test_case_t  *c;

    for (i = 0; i < sizeof(ngx_chat_test_cases_table)
                    / sizeof(ngx_chat_test_cases_table[0]); i++)
    {
        c = &ngx_chat_test_cases_table[i];

        len = strlen(c->bytes);

        state = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT,
                                       (const uint8_t *) c->bytes, len);

        if ((state == NGX_CHAT_UTF8_ACCEPT) != c->valid) {
            fprintf(stderr, "case \"%s\": state %u\n", c->what,
                    (unsigned) state);
        }

        NGX_CHAT_CHECK((state == NGX_CHAT_UTF8_ACCEPT) == c->valid);
        NGX_CHAT_CHECK((ngx_chat_utf8_check((const uint8_t *) c->bytes, len)
                        == 0) == c->valid);
        NGX_CHAT_CHECK(ngx_chat_test_agrees((const uint8_t *) c->bytes,
                                            len));
    }

    /* U+0000 is valid, alone and between characters */

    memcpy(nul, "\0\xc3\xa9", 3);
    NGX_CHAT_CHECK(ngx_chat_utf8_check(nul, 1) == 0);
    NGX_CHAT_CHECK(ngx_chat_utf8_check(nul, 3) == 0);
}


/*
 * Every valid character fed byte by byte: the state is neither ACCEPT nor
 * REJECT until its last byte, ACCEPT after it.  Sampled densely near
 * every range boundary and sparsely elsewhere.
 */

static void
ngx_chat_test_chars(void)
{
    int       bad;
    size_t    n, i;
    uint8_t   buf[4];
    uint32_t  cp, state;

    bad = 0;

    for (cp = 0; cp <= 0x10ffff; cp++) {

        if (cp >= 0xd800 && cp <= 0xdfff) {
            continue;
        }

        n = ngx_chat_test_encode(buf, cp);
        state = NGX_CHAT_UTF8_ACCEPT;

        for (i = 0; i < n; i++) {
            state = ngx_chat_utf8_validate(state, buf + i, 1);

            if (i + 1 < n) {
                bad += (state == NGX_CHAT_UTF8_ACCEPT
                        || state == NGX_CHAT_UTF8_REJECT);
            }
        }

        bad += (state != NGX_CHAT_UTF8_ACCEPT);
    }

    NGX_CHAT_CHECK(bad == 0);

    /* every surrogate and every value above U+10FFFF up to 2^21 */

    bad = 0;

    for (cp = 0xd800; cp <= 0xdfff; cp++) {
        n = ngx_chat_test_encode(buf, cp);
        bad += (ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, buf, n)
                != NGX_CHAT_UTF8_REJECT);
    }

    for (cp = 0x110000; cp < 0x200000; cp++) {
        n = ngx_chat_test_encode(buf, cp);
        bad += (ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, buf, n)
                != NGX_CHAT_UTF8_REJECT);
    }

    NGX_CHAT_CHECK(bad == 0);

    /* every overlong 2-, 3- and 4-byte form */

    bad = 0;

    for (cp = 0; cp < 0x10000; cp++) {

        if (cp < 0x80) {
            buf[0] = (uint8_t) (0xc0 | (cp >> 6));
            buf[1] = (uint8_t) (0x80 | (cp & 0x3f));
            bad += (ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, buf, 2)
                    != NGX_CHAT_UTF8_REJECT);
        }

        if (cp < 0x800) {
            buf[0] = 0xe0;
            buf[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
            buf[2] = (uint8_t) (0x80 | (cp & 0x3f));
            bad += (ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, buf, 3)
                    != NGX_CHAT_UTF8_REJECT);
        }

        buf[0] = 0xf0;
        buf[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        buf[3] = (uint8_t) (0x80 | (cp & 0x3f));
        bad += (ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, buf, 4)
                != NGX_CHAT_UTF8_REJECT);
    }

    NGX_CHAT_CHECK(bad == 0);
}


/*
 * A text with characters of every length, split into 2 and 3 chunks at
 * every pair of points: the final state is always ACCEPT, and the state
 * at every cut is the one of the byte-by-byte feed.
 */

static void
ngx_chat_test_splits(void)
{
    int             bad;
    size_t          len, i, j;
    uint32_t        s1, s2, s3;
    const uint8_t  *p;

    static const char  text[] =
        "a\xc3\xa9" "b\xe2\x82\xac" "c\xf0\x9f\x98\x80" "d\xed\x9f\xbf"
        "\xf4\x8f\xbf\xbf" "\xe0\xa0\x80" "\xf0\x90\x80\x80" "e";

    p = (const uint8_t *) text;
    len = sizeof(text) - 1;
    bad = 0;

    for (i = 0; i <= len; i++) {
        s1 = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, p, i);
        bad += (s1 != ngx_chat_test_bytewise(p, i));
        bad += (s1 == NGX_CHAT_UTF8_REJECT);

        for (j = i; j <= len; j++) {
            s2 = ngx_chat_utf8_validate(s1, p + i, j - i);
            s3 = ngx_chat_utf8_validate(s2, p + j, len - j);
            bad += (s3 != NGX_CHAT_UTF8_ACCEPT);
        }
    }

    NGX_CHAT_CHECK(bad == 0);

    /* every proper prefix of a character is "inside", never ACCEPT */

    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0, (const uint8_t *) "\xf0", 1)
                   > NGX_CHAT_UTF8_REJECT);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0, (const uint8_t *) "\xf0\x9f", 2)
                   > NGX_CHAT_UTF8_REJECT);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0,
                                          (const uint8_t *) "\xf0\x9f\x98", 3)
                   > NGX_CHAT_UTF8_REJECT);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0, (const uint8_t *) "\xe2", 1)
                   > NGX_CHAT_UTF8_REJECT);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0, (const uint8_t *) "\xe2\x82", 2)
                   > NGX_CHAT_UTF8_REJECT);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0, (const uint8_t *) "\xc3", 1)
                   > NGX_CHAT_UTF8_REJECT);
}


/*
 * The ASCII fast path: a bad byte or a character at every offset of a long
 * ASCII run, at every alignment of the buffer.
 */

static void
ngx_chat_test_fast_path(void)
{
    int       bad;
    size_t    align, pos, len;
    uint8_t   buf[64 + 8];
    uint32_t  state;

    bad = 0;

    for (align = 0; align < 8; align++) {
        for (len = 0; len <= 64; len++) {
            for (pos = 0; pos <= len; pos++) {
                memset(buf, 'x', sizeof(buf));

                if (pos < len) {
                    buf[align + pos] = 0xff;
                }

                state = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT,
                                               buf + align, len);

                bad += (state != (pos < len ? NGX_CHAT_UTF8_REJECT
                                            : NGX_CHAT_UTF8_ACCEPT));

                if (pos + 2 <= len) {
                    buf[align + pos] = 0xc3;
                    buf[align + pos + 1] = 0xa9;
                    state = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT,
                                                   buf + align, len);
                    bad += (state != NGX_CHAT_UTF8_ACCEPT);

                    /* cut after the lead byte */
                    state = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT,
                                                   buf + align, pos + 1);
                    bad += (state == NGX_CHAT_UTF8_ACCEPT
                            || state == NGX_CHAT_UTF8_REJECT);
                }
            }
        }
    }

    NGX_CHAT_CHECK(bad == 0);
}


/*
 * Every input of 1, 2 and 3 bytes, and every 4-byte input that starts with
 * F0..F7 and has a third byte from an edge set, against the reference.
 */

static void
ngx_chat_test_exhaustive(void)
{
    int       bad;
    size_t    t;
    uint8_t   buf[4];
    uint32_t  v, b, d;

    static const uint8_t  thirds[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                       0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0,
                                       0xf0, 0xff };

    bad = 0;

    for (v = 0; v < 0x1000000; v++) {
        buf[0] = (uint8_t) (v >> 16);
        buf[1] = (uint8_t) (v >> 8);
        buf[2] = (uint8_t) v;

        if (v < 0x10000) {
            bad += (ngx_chat_utf8_validate(0, buf, 2)
                    != ngx_chat_test_bytewise(buf, 2));
        }

        if (v < 0x100) {
            bad += !ngx_chat_test_agrees(buf, 1);
            bad += !ngx_chat_test_agrees(buf, 2);
        }

        b = ngx_chat_utf8_validate(0, buf, 3);

        switch (ngx_chat_test_ref(buf, 3)) {

        case NGX_CHAT_REF_VALID:
            bad += (b != NGX_CHAT_UTF8_ACCEPT);
            break;

        case NGX_CHAT_REF_INVALID:
            bad += (b != NGX_CHAT_UTF8_REJECT);
            break;

        default:
            bad += (b == NGX_CHAT_UTF8_ACCEPT || b == NGX_CHAT_UTF8_REJECT);
        }
    }

    NGX_CHAT_CHECK(bad == 0);

    bad = 0;

    for (v = 0xf0; v <= 0xf7; v++) {
        for (b = 0; b < 256; b++) {
            for (t = 0; t < sizeof(thirds); t++) {
                for (d = 0; d < 256; d++) {
                    buf[0] = (uint8_t) v;
                    buf[1] = (uint8_t) b;
                    buf[2] = thirds[t];
                    buf[3] = (uint8_t) d;
                    bad += !ngx_chat_test_agrees(buf, 4);
                }
            }
        }
    }

    NGX_CHAT_CHECK(bad == 0);
}


/*
 * Random texts built from ASCII runs, valid characters of every length,
 * edge bytes and random bytes, so that both long valid texts and errors
 * at every depth occur.
 */

static void
ngx_chat_test_random(void)
{
    int       bad, valid;
    size_t    len, n, i;
    uint8_t   buf[512];
    uint32_t  cp;
    unsigned  iter, kind;

    static const uint8_t  edges[] = {
        0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
        0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5,
        0xf7, 0xf8, 0xfe, 0xff
    };

    bad = 0;
    valid = 0;

    for (iter = 0; iter < 200000; iter++) {
        len = 0;

        while (len < sizeof(buf) - 32 && ngx_chat_test_rand() % 16 != 0) {
            kind = (unsigned) (ngx_chat_test_rand() % 100);

            if (kind < 30) {
                n = (size_t) (ngx_chat_test_rand() % 24);

                for (i = 0; i < n; i++) {
                    buf[len++] = (uint8_t) (ngx_chat_test_rand() % 128);
                }

            } else if (kind < 97) {
                do {
                    switch (ngx_chat_test_rand() % 4) {
                    case 0:
                        cp = (uint32_t) (ngx_chat_test_rand() % 0x800);
                        break;
                    case 1:
                        cp = (uint32_t) (ngx_chat_test_rand() % 0x10000);
                        break;
                    default:
                        cp = (uint32_t) (ngx_chat_test_rand() % 0x110000);
                    }
                } while (cp >= 0xd800 && cp <= 0xdfff
                         && iter % 2 == 0);

                len += ngx_chat_test_encode(buf + len, cp);

            } else if (kind < 99) {
                buf[len++] = edges[ngx_chat_test_rand() % sizeof(edges)];

            } else {
                buf[len++] = (uint8_t) ngx_chat_test_rand();
            }
        }

        /* sometimes cut the text anywhere */

        if (len && ngx_chat_test_rand() % 4 == 0) {
            len = (size_t) (ngx_chat_test_rand() % len);
        }

        bad += !ngx_chat_test_agrees(buf, len);
        valid += (ngx_chat_test_ref(buf, len) == NGX_CHAT_REF_VALID);
    }

    NGX_CHAT_CHECK(bad == 0);

    /* the generator must produce both outcomes in quantity */
    NGX_CHAT_CHECK(valid > 20000 && valid < 180000);
}


static void
ngx_chat_test_states(void)
{
    uint32_t  state;

    /* REJECT is sticky, even across ASCII and valid characters */

    state = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT,
                                   (const uint8_t *) "\xff", 1);
    NGX_CHAT_CHECK(state == NGX_CHAT_UTF8_REJECT);
    state = ngx_chat_utf8_validate(state, (const uint8_t *) "abcdefghij", 10);
    NGX_CHAT_CHECK(state == NGX_CHAT_UTF8_REJECT);
    state = ngx_chat_utf8_validate(state, (const uint8_t *) "\xc3\xa9", 2);
    NGX_CHAT_CHECK(state == NGX_CHAT_UTF8_REJECT);

    /* an empty chunk keeps the state */

    state = ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT,
                                   (const uint8_t *) "\xe2", 1);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(state, NULL, 0) == state);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(NGX_CHAT_UTF8_ACCEPT, NULL, 0)
                   == NGX_CHAT_UTF8_ACCEPT);

    /* a state the validator never returns is refused */

    NGX_CHAT_CHECK(ngx_chat_utf8_validate(9, (const uint8_t *) "a", 1)
                   == NGX_CHAT_UTF8_REJECT);
    NGX_CHAT_CHECK(ngx_chat_utf8_validate(0xffffffff, NULL, 0)
                   == NGX_CHAT_UTF8_REJECT);

    NGX_CHAT_CHECK(ngx_chat_utf8_check(NULL, 0) == 0);
    NGX_CHAT_CHECK(ngx_chat_utf8_check((const uint8_t *) "\xe2\x82", 2)
                   == -1);
}


int
main(void)
{
    ngx_chat_test_cases();
    ngx_chat_test_chars();
    ngx_chat_test_splits();
    ngx_chat_test_fast_path();
    ngx_chat_test_exhaustive();
    ngx_chat_test_random();
    ngx_chat_test_states();

    printf("%u passed, %u failed\n", ngx_chat_test_passed,
           ngx_chat_test_failed);

    return ngx_chat_test_failed ? 1 : 0;
}
