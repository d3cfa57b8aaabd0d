
/*
 * chat_bench_proto.c: the pure codecs of chat-bench: base64, the
 * WebSocket accept key, HS256 JWTs (docs/tokens.md), client frames
 * (always masked, RFC 6455 5.3), server frame headers, and a small JSON
 * scanner that picks the fields chat-bench needs out of a server message
 * without copying (the server's JSON is compact and yajl-generated, but
 * the scanner accepts any valid JSON object and skips what it does not
 * need, nested values included).  No I/O here except the selftest report.
 */


#include <string.h>
#include <stdlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "chat_bench.h"


#define NGX_CHAT_BENCH_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


static const char  ngx_chat_bench_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char  ngx_chat_bench_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
ngx_chat_bench_b64(char *dst, const uint8_t *src, size_t len, int url)
{
    char        *d;
    uint32_t     v;
    const char  *tab;

    tab = url ? ngx_chat_bench_b64_url : ngx_chat_bench_b64_std;
    d = dst;

    while (len >= 3) {
        v = ((uint32_t) src[0] << 16) | ((uint32_t) src[1] << 8) | src[2];
        *d++ = tab[(v >> 18) & 63];
        *d++ = tab[(v >> 12) & 63];
        *d++ = tab[(v >> 6) & 63];
        *d++ = tab[v & 63];
        src += 3;
        len -= 3;
    }

    if (len) {
        v = (uint32_t) src[0] << 16;
        if (len == 2) {
            v |= (uint32_t) src[1] << 8;
        }

        *d++ = tab[(v >> 18) & 63];
        *d++ = tab[(v >> 12) & 63];

        if (len == 2) {
            *d++ = tab[(v >> 6) & 63];
        } else if (!url) {
            *d++ = '=';
        }

        if (!url) {
            *d++ = '=';
        }
    }

    *d = '\0';

    return (size_t) (d - dst);
}


void
ngx_chat_bench_ws_accept(char out[29], const char *key, size_t len)
{
    uint8_t  buf[128], md[SHA_DIGEST_LENGTH];

    if (len > sizeof(buf) - 36) {
        len = sizeof(buf) - 36;
    }

    memcpy(buf, key, len);
    memcpy(buf + len, NGX_CHAT_BENCH_GUID, 36);
    SHA1(buf, len + 36, md);
    ngx_chat_bench_b64(out, md, SHA_DIGEST_LENGTH, 0);
}


int
ngx_chat_bench_jwt(char *out, size_t size, const uint8_t *secret,
    size_t slen, const char *user, const char *dev, int64_t iat,
    int64_t exp)
{
    int            n;
    char           claims[256];
    size_t         len;
    uint8_t        md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen;
    static const char  hdr[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

    n = snprintf(claims, sizeof(claims),
                 "{\"sub\":\"%s\",\"dev\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
                 user, dev, (long long) iat, (long long) exp);
    if (n < 0 || (size_t) n >= sizeof(claims)) {
        return -1;
    }

    /* header + "." + claims + "." + 43 + NUL */
    if (size < sizeof(hdr) + 1 + ((size_t) n * 4 + 2) / 3 + 1 + 44) {
        return -1;
    }

    memcpy(out, hdr, sizeof(hdr) - 1);
    len = sizeof(hdr) - 1;
    out[len++] = '.';
    len += ngx_chat_bench_b64(out + len, (uint8_t *) claims, (size_t) n, 1);

    mdlen = 0;
    if (HMAC(EVP_sha256(), secret, (int) slen, (uint8_t *) out, len, md,
             &mdlen) == NULL || mdlen != 32)
    {
        return -1;
    }

    out[len++] = '.';
    len += ngx_chat_bench_b64(out + len, md, 32, 1);

    return (int) len;
}


size_t
ngx_chat_bench_ws_frame(uint8_t *dst, int opcode, const uint8_t *payload,
    size_t len, uint32_t mask)
{
    size_t    h, i;
    uint8_t   m[4];
    uint8_t  *p;

    dst[0] = (uint8_t) (0x80 | (opcode & 0x0f));

    if (len < 126) {
        dst[1] = (uint8_t) (0x80 | len);
        h = 2;

    } else if (len < 65536) {
        dst[1] = 0x80 | 126;
        dst[2] = (uint8_t) (len >> 8);
        dst[3] = (uint8_t) len;
        h = 4;

    } else {
        dst[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            dst[2 + i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
        h = 10;
    }

    m[0] = (uint8_t) (mask >> 24);
    m[1] = (uint8_t) (mask >> 16);
    m[2] = (uint8_t) (mask >> 8);
    m[3] = (uint8_t) mask;
    memcpy(dst + h, m, 4);
    h += 4;

    p = dst + h;

    for (i = 0; i < len; i++) {
        p[i] = payload[i] ^ m[i & 3];
    }

    return h + len;
}


int
ngx_chat_bench_ws_header(const uint8_t *p, size_t len,
    ngx_chat_bench_frame_t *f)
{
    size_t    i;
    uint64_t  n;

    if (len < 2) {
        return 0;
    }

    f->fin = (p[0] & 0x80) != 0;
    f->rsv = (p[0] >> 4) & 7;
    f->opcode = p[0] & 0x0f;
    f->masked = (p[1] & 0x80) != 0;
    n = p[1] & 0x7f;
    f->hlen = 2;

    if (n == 126) {
        if (len < 4) {
            return 0;
        }

        n = ((uint64_t) p[2] << 8) | p[3];
        f->hlen = 4;

    } else if (n == 127) {
        if (len < 10) {
            return 0;
        }

        n = 0;
        for (i = 0; i < 8; i++) {
            n = (n << 8) | p[2 + i];
        }

        if (n >> 62) {
            return -1;
        }

        f->hlen = 10;
    }

    if (f->masked) {
        f->hlen += 4;
        if (len < f->hlen) {
            return 0;
        }
    }

    f->plen = n;

    return 1;
}


/*
 * the JSON scanner: recursive descent over one value, recording the
 * top-level members chat-bench knows and "code" inside "error"
 */

typedef struct {
    const char  *p;
    const char  *end;
    int          depth;
} ngx_chat_bench_js_t;


static int ngx_chat_bench_js_value(ngx_chat_bench_js_t *s,
    ngx_chat_bench_jv_t *v, ngx_chat_bench_msg_t *m, int member_of);


static void
ngx_chat_bench_js_ws(ngx_chat_bench_js_t *s)
{
    while (s->p < s->end
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
    {
        s->p++;
    }
}


static int
ngx_chat_bench_js_string(ngx_chat_bench_js_t *s, ngx_chat_bench_jv_t *v)
{
    const char  *start;

    if (s->p >= s->end || *s->p != '"') {
        return -1;
    }

    start = ++s->p;

    while (s->p < s->end) {
        if (*s->p == '\\') {
            s->p += 2;
            continue;
        }

        if (*s->p == '"') {
            v->kind = NGX_CHAT_BENCH_JV_STRING;
            v->p = start;
            v->len = (size_t) (s->p - start);
            s->p++;
            return 0;
        }

        if ((unsigned char) *s->p < 0x20) {
            return -1;
        }

        s->p++;
    }

    return -1;
}


static int
ngx_chat_bench_js_literal(ngx_chat_bench_js_t *s, const char *lit, int kind,
    ngx_chat_bench_jv_t *v)
{
    size_t  n;

    n = strlen(lit);

    if ((size_t) (s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return -1;
    }

    v->kind = kind;
    v->p = s->p;
    v->len = n;
    s->p += n;

    return 0;
}


static ngx_chat_bench_jv_t *
ngx_chat_bench_js_field(ngx_chat_bench_msg_t *m, int member_of,
    const ngx_chat_bench_jv_t *k)
{
    static const struct {
        const char  *name;
        size_t       off;
    } top[] = {
        { "type", offsetof(ngx_chat_bench_msg_t, type) },
        { "id", offsetof(ngx_chat_bench_msg_t, id) },
        { "ok", offsetof(ngx_chat_bench_msg_t, ok) },
        { "chatId", offsetof(ngx_chat_bench_msg_t, chat_id) },
        { "messageId", offsetof(ngx_chat_bench_msg_t, message_id) },
        { "seq", offsetof(ngx_chat_bench_msg_t, seq) },
        { "eventId", offsetof(ngx_chat_bench_msg_t, event_id) },
        { "message", offsetof(ngx_chat_bench_msg_t, message) },
        { "name", offsetof(ngx_chat_bench_msg_t, name) },
        { "duplicate", offsetof(ngx_chat_bench_msg_t, duplicate) }
    };
    size_t  i;

    if (member_of == 2) {
        if (k->len == 4 && memcmp(k->p, "code", 4) == 0) {
            return &m->code;
        }

        return NULL;
    }

    if (member_of != 1) {
        return NULL;
    }

    for (i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        if (strlen(top[i].name) == k->len
            && memcmp(top[i].name, k->p, k->len) == 0)
        {
            return (ngx_chat_bench_jv_t *) ((char *) m + top[i].off);
        }
    }

    return NULL;
}


/* member_of: 0 ignore members, 1 the top object, 2 the "error" object */
static int
ngx_chat_bench_js_object(ngx_chat_bench_js_t *s, ngx_chat_bench_msg_t *m,
    int member_of)
{
    int                   sub;
    ngx_chat_bench_jv_t   k, tmp, *dst;

    s->p++;
    ngx_chat_bench_js_ws(s);

    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }

    for ( ;; ) {
        ngx_chat_bench_js_ws(s);

        if (ngx_chat_bench_js_string(s, &k) != 0) {
            return -1;
        }

        ngx_chat_bench_js_ws(s);

        if (s->p >= s->end || *s->p != ':') {
            return -1;
        }

        s->p++;
        ngx_chat_bench_js_ws(s);

        dst = ngx_chat_bench_js_field(m, member_of, &k);
        sub = (member_of == 1 && k.len == 5 && memcmp(k.p, "error", 5) == 0)
              ? 2 : 0;

        if (ngx_chat_bench_js_value(s, dst ? dst : &tmp, m, sub) != 0) {
            return -1;
        }

        ngx_chat_bench_js_ws(s);

        if (s->p >= s->end) {
            return -1;
        }

        if (*s->p == ',') {
            s->p++;
            continue;
        }

        if (*s->p == '}') {
            s->p++;
            return 0;
        }

        return -1;
    }
}


static int
ngx_chat_bench_js_value(ngx_chat_bench_js_t *s, ngx_chat_bench_jv_t *v,
    ngx_chat_bench_msg_t *m, int member_of)
{
    int                  rc;
    const char          *start;
    ngx_chat_bench_jv_t  tmp;

    if (s->p >= s->end || ++s->depth > 64) {
        return -1;
    }

    start = s->p;
    rc = 0;

    switch (*s->p) {

    case '"':
        rc = ngx_chat_bench_js_string(s, v);
        break;

    case '{':
        rc = ngx_chat_bench_js_object(s, m, member_of);
        v->kind = NGX_CHAT_BENCH_JV_OBJECT;
        v->p = start;
        v->len = (size_t) (s->p - start);
        break;

    case '[':
        s->p++;
        ngx_chat_bench_js_ws(s);

        if (s->p < s->end && *s->p == ']') {
            s->p++;

        } else {
            for ( ;; ) {
                ngx_chat_bench_js_ws(s);
                if (ngx_chat_bench_js_value(s, &tmp, m, 0) != 0) {
                    return -1;
                }

                ngx_chat_bench_js_ws(s);
                if (s->p >= s->end) {
                    return -1;
                }

                if (*s->p == ',') {
                    s->p++;
                    continue;
                }

                if (*s->p != ']') {
                    return -1;
                }

                s->p++;
                break;
            }
        }

        v->kind = NGX_CHAT_BENCH_JV_ARRAY;
        v->p = start;
        v->len = (size_t) (s->p - start);
        break;

    case 't':
        rc = ngx_chat_bench_js_literal(s, "true", NGX_CHAT_BENCH_JV_TRUE, v);
        break;

    case 'f':
        rc = ngx_chat_bench_js_literal(s, "false", NGX_CHAT_BENCH_JV_FALSE,
                                       v);
        break;

    case 'n':
        rc = ngx_chat_bench_js_literal(s, "null", NGX_CHAT_BENCH_JV_NULL, v);
        break;

    default:
        if (*s->p != '-' && (*s->p < '0' || *s->p > '9')) {
            return -1;
        }

        s->p++;
        while (s->p < s->end
               && ((*s->p >= '0' && *s->p <= '9') || *s->p == '.'
                   || *s->p == 'e' || *s->p == 'E' || *s->p == '+'
                   || *s->p == '-'))
        {
            s->p++;
        }

        v->kind = NGX_CHAT_BENCH_JV_NUMBER;
        v->p = start;
        v->len = (size_t) (s->p - start);
        break;
    }

    s->depth--;

    return rc;
}


int
ngx_chat_bench_json_parse(const char *p, size_t len, ngx_chat_bench_msg_t *m)
{
    ngx_chat_bench_js_t  s;
    ngx_chat_bench_jv_t  top;

    memset(m, 0, sizeof(ngx_chat_bench_msg_t));

    s.p = p;
    s.end = p + len;
    s.depth = 0;

    ngx_chat_bench_js_ws(&s);

    if (s.p >= s.end || *s.p != '{') {
        return -1;
    }

    if (ngx_chat_bench_js_value(&s, &top, m, 1) != 0) {
        return -1;
    }

    ngx_chat_bench_js_ws(&s);

    return s.p == s.end ? 0 : -1;
}


int
ngx_chat_bench_jv_u64(const ngx_chat_bench_jv_t *v, uint64_t *out)
{
    size_t    i;
    uint64_t  n;

    if ((v->kind != NGX_CHAT_BENCH_JV_NUMBER
         && v->kind != NGX_CHAT_BENCH_JV_STRING)
        || v->len == 0 || v->len > 19)
    {
        return -1;
    }

    n = 0;

    for (i = 0; i < v->len; i++) {
        if (v->p[i] < '0' || v->p[i] > '9') {
            return -1;
        }

        n = n * 10 + (uint64_t) (v->p[i] - '0');
    }

    *out = n;

    return 0;
}


int
ngx_chat_bench_jv_is(const ngx_chat_bench_jv_t *v, const char *s)
{
    size_t  n;

    n = strlen(s);

    return v->kind == NGX_CHAT_BENCH_JV_STRING && v->len == n
           && memcmp(v->p, s, n) == 0;
}


/* ---------------------------------------------------------------------- */

#define NGX_CHAT_BENCH_CHECK(cond, what)                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(out, "selftest: FAIL %s\n", what);                      \
            fails++;                                                        \
        } else {                                                            \
            checks++;                                                       \
        }                                                                   \
    } while (0)


int
ngx_chat_bench_selftest(FILE *out)
{
    int                    fails, checks, n;
    char                   buf[1024], acc[29];
    uint8_t                fr[64];
    uint64_t               u, i;
    ngx_chat_bench_msg_t   m;
    ngx_chat_bench_hist_t  *h;
    ngx_chat_bench_frame_t  f;
    static const char      *secret =
        "ngx_chat unit-test secret: 32+ bytes, not for prod";
    static const char      *want =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImRldiI6"
        "InBob25lLTEiLCJpYXQiOjE2OTk5OTkwMDAsImV4cCI6MTcwMDAwMzYwMH0.XM4OgL"
        "JS9DiKqS09Soa_TGmCR7RfoM3wDQAbe0GQ8m8";
    static const char      *js =
        "{\"type\":\"response\",\"id\":42,\"ok\":false,\"error\":"
        "{\"message\":\"x\\\"y\",\"code\":\"unavailable\"},\"chats\":[{\"a\":"
        "[1,2,{\"id\":7}]}],\"seq\":12, \"duplicate\" : true}";

    fails = 0;
    checks = 0;

    /* docs/tokens.md's worked example */
    n = ngx_chat_bench_jwt(buf, sizeof(buf), (const uint8_t *) secret,
                           strlen(secret), "alice", "phone-1", 1699999000,
                           1700003600);
    NGX_CHAT_BENCH_CHECK(n > 0 && strcmp(buf, want) == 0, "jwt");

    /* RFC 6455 1.3 */
    ngx_chat_bench_ws_accept(acc, "dGhlIHNhbXBsZSBub25jZQ==", 24);
    NGX_CHAT_BENCH_CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
                         "ws accept");

    ngx_chat_bench_b64(buf, (const uint8_t *) "ab", 2, 0);
    NGX_CHAT_BENCH_CHECK(strcmp(buf, "YWI=") == 0, "base64 padding");
    ngx_chat_bench_b64(buf, (const uint8_t *) "\xfb\xff", 2, 1);
    NGX_CHAT_BENCH_CHECK(strcmp(buf, "-_8") == 0, "base64url");

    n = (int) ngx_chat_bench_ws_frame(fr, 1, (const uint8_t *) "Hello", 5,
                                      0x37fa213d);
    NGX_CHAT_BENCH_CHECK(n == 11 && memcmp(fr, "\x81\x85\x37\xfa\x21\x3d"
                         "\x7f\x9f\x4d\x51\x58", 11) == 0,
                         "masked frame (RFC 6455 5.7)");

    NGX_CHAT_BENCH_CHECK(ngx_chat_bench_ws_header(
                         (const uint8_t *) "\x81\x7e\x01\x00", 4, &f) == 1
                         && f.plen == 256 && f.hlen == 4 && f.fin
                         && f.opcode == 1, "frame header 16-bit length");

    NGX_CHAT_BENCH_CHECK(ngx_chat_bench_json_parse(js, strlen(js), &m) == 0,
                         "json parse");
    NGX_CHAT_BENCH_CHECK(ngx_chat_bench_jv_is(&m.type, "response")
                         && ngx_chat_bench_jv_is(&m.code, "unavailable")
                         && m.ok.kind == NGX_CHAT_BENCH_JV_FALSE
                         && m.duplicate.kind == NGX_CHAT_BENCH_JV_TRUE
                         && ngx_chat_bench_jv_u64(&m.id, &u) == 0 && u == 42
                         && ngx_chat_bench_jv_u64(&m.seq, &u) == 0
                         && u == 12, "json fields");
    NGX_CHAT_BENCH_CHECK(ngx_chat_bench_json_parse("{\"a\":1", 6, &m) != 0
                         && ngx_chat_bench_json_parse("[1]", 3, &m) != 0
                         && ngx_chat_bench_json_parse("{}x", 3, &m) != 0,
                         "json rejects");

    h = malloc(sizeof(ngx_chat_bench_hist_t));
    if (h == NULL) {
        return -1;
    }

    ngx_chat_bench_hist_reset(h);

    for (i = 1; i <= 100000; i++) {
        ngx_chat_bench_hist_add(h, i * 1000);
    }

    u = ngx_chat_bench_hist_pct(h, 50);
    NGX_CHAT_BENCH_CHECK(u >= 50000000 && u <= 50000000 / 128 * 129,
                         "histogram p50");
    u = ngx_chat_bench_hist_pct(h, 99.9);
    NGX_CHAT_BENCH_CHECK(u >= 99900000 && u <= 99900000 / 128 * 129,
                         "histogram p99.9");
    NGX_CHAT_BENCH_CHECK(ngx_chat_bench_hist_pct(h, 100) == 100000000
                         && h->min == 1000, "histogram max/min");

    for (i = 0; i < 64; i++) {
        u = (uint64_t) 1 << i;
        n = (int) ngx_chat_bench_hist_index(u);
        if (ngx_chat_bench_hist_high((uint32_t) n) < u
            || n >= NGX_CHAT_BENCH_HIST_BUCKETS)
        {
            break;
        }
    }

    NGX_CHAT_BENCH_CHECK(i == 64, "histogram covers uint64");

    free(h);

    fprintf(out, "selftest: %d checks passed, %d failed\n", checks, fails);

    return fails ? -1 : 0;
}
