
/*
 * ngx_chat_urlsign.c: signing and checking the media URLs of the local
 * store (see ngx_chat_urlsign.h for the format).
 */


#include <string.h>

#include <openssl/crypto.h>

#include "ngx_chat_crypto.h"
#include "ngx_chat_urlsign.h"


#define NGX_CHAT_URLSIGN_MAGIC  "ngx_chat-media-v1"
#define NGX_CHAT_URLSIGN_NUM    20          /* digits of an int64 */


typedef struct {
    char                    *p;
    char                    *end;
} ngx_chat_urlsign_out_t;


static int ngx_chat_urlsign_valid(const ngx_chat_urlsign_t *u);
static int ngx_chat_urlsign_id_char(unsigned char c, int at);
static int ngx_chat_urlsign_type_char(unsigned char c);
static int ngx_chat_urlsign_mac(const unsigned char *key, size_t key_len,
    const ngx_chat_urlsign_t *u, char *sig);
static size_t ngx_chat_urlsign_num(int64_t v, char *out);
static void ngx_chat_urlsign_put(ngx_chat_urlsign_out_t *o, const char *s,
    size_t len, int encode);
static int ngx_chat_urlsign_decode(const char *s, size_t len, char *out,
    size_t *out_len);
static int ngx_chat_urlsign_parse_num(const char *s, size_t len,
    int64_t *v);


int
ngx_chat_urlsign_sign(const unsigned char *key, size_t key_len,
    const ngx_chat_urlsign_t *u, char *out, size_t size, size_t *len)
{
    char                    sig[NGX_CHAT_URLSIGN_SIG_LEN + 1];
    char                    num[NGX_CHAT_URLSIGN_NUM + 1];
    ngx_chat_urlsign_out_t  o;

    if (!ngx_chat_urlsign_valid(u)) {
        return NGX_CHAT_URLSIGN_EMALFORMED;
    }

    if (ngx_chat_urlsign_mac(key, key_len, u, sig) != 0) {
        return NGX_CHAT_URLSIGN_ERROR;
    }

    if (size == 0) {
        return NGX_CHAT_URLSIGN_ENOSPC;
    }

    o.p = out;
    o.end = out + size - 1;

    ngx_chat_urlsign_put(&o, u->op == NGX_CHAT_URLSIGN_PUT ? "op=put"
                                                           : "op=get", 6, 0);
    ngx_chat_urlsign_put(&o, "&type=", 6, 0);
    ngx_chat_urlsign_put(&o, u->type, u->type_len, 1);
    ngx_chat_urlsign_put(&o, "&size=", 6, 0);
    ngx_chat_urlsign_put(&o, num, ngx_chat_urlsign_num(u->size, num), 0);
    ngx_chat_urlsign_put(&o, "&sha256=", 8, 0);
    ngx_chat_urlsign_put(&o, u->sha256, u->sha256_len, 0);
    ngx_chat_urlsign_put(&o, "&user=", 6, 0);
    ngx_chat_urlsign_put(&o, u->user, u->user_len, 1);
    ngx_chat_urlsign_put(&o, "&dev=", 5, 0);
    ngx_chat_urlsign_put(&o, u->device, u->device_len, 1);
    ngx_chat_urlsign_put(&o, "&exp=", 5, 0);
    ngx_chat_urlsign_put(&o, num, ngx_chat_urlsign_num(u->expires, num), 0);
    ngx_chat_urlsign_put(&o, "&sig=", 5, 0);
    ngx_chat_urlsign_put(&o, sig, NGX_CHAT_URLSIGN_SIG_LEN, 0);

    if (o.p == NULL) {
        return NGX_CHAT_URLSIGN_ENOSPC;
    }

    *o.p = '\0';

    if (len) {
        *len = (size_t) (o.p - out);
    }

    return NGX_CHAT_URLSIGN_OK;
}


int
ngx_chat_urlsign_verify(const unsigned char *key, size_t key_len,
    const char *id, size_t id_len, const char *query, size_t query_len,
    int64_t now, ngx_chat_urlsign_t *u, char *buf, size_t buf_size)
{
    int          seen, bit;
    char        *b, *end;
    size_t       nlen, vlen, dlen;
    const char  *p, *last, *amp, *eq, *name, *value, *sig;
    char         expect[NGX_CHAT_URLSIGN_SIG_LEN + 1];

    memset(u, 0, sizeof(ngx_chat_urlsign_t));

    u->id = id;
    u->id_len = id_len;

    b = buf;
    end = buf + buf_size;
    seen = 0;
    sig = NULL;

    p = query;
    last = query + query_len;

    while (p < last) {
        amp = memchr(p, '&', (size_t) (last - p));
        if (amp == NULL) {
            amp = last;
        }

        eq = memchr(p, '=', (size_t) (amp - p));

        name = p;
        nlen = eq ? (size_t) (eq - p) : (size_t) (amp - p);
        value = eq ? eq + 1 : amp;
        vlen = (size_t) (amp - value);

        p = amp + 1;

#define ngx_chat_urlsign_is(s)                                               \
        (nlen == sizeof(s) - 1 && memcmp(name, s, nlen) == 0)

        bit = ngx_chat_urlsign_is("op") ? 0x01
              : ngx_chat_urlsign_is("type") ? 0x02
              : ngx_chat_urlsign_is("size") ? 0x04
              : ngx_chat_urlsign_is("sha256") ? 0x08
              : ngx_chat_urlsign_is("user") ? 0x10
              : ngx_chat_urlsign_is("dev") ? 0x20
              : ngx_chat_urlsign_is("exp") ? 0x40
              : ngx_chat_urlsign_is("sig") ? 0x80 : 0;

#undef ngx_chat_urlsign_is

        if (bit == 0) {
            continue;
        }

        if ((seen & bit) || eq == NULL) {
            return NGX_CHAT_URLSIGN_EMALFORMED;
        }

        seen |= bit;

        if ((size_t) (end - b) < vlen + 1) {
            return NGX_CHAT_URLSIGN_EMALFORMED;
        }

        if (ngx_chat_urlsign_decode(value, vlen, b, &dlen) != 0) {
            return NGX_CHAT_URLSIGN_EMALFORMED;
        }

        b[dlen] = '\0';

        switch (bit) {

        case 0x01:
            if (dlen == 3 && memcmp(b, "put", 3) == 0) {
                u->op = NGX_CHAT_URLSIGN_PUT;

            } else if (dlen == 3 && memcmp(b, "get", 3) == 0) {
                u->op = NGX_CHAT_URLSIGN_GET;

            } else {
                return NGX_CHAT_URLSIGN_EMALFORMED;
            }

            break;

        case 0x02:
            u->type = b;
            u->type_len = dlen;
            break;

        case 0x04:
            if (ngx_chat_urlsign_parse_num(b, dlen, &u->size) != 0) {
                return NGX_CHAT_URLSIGN_EMALFORMED;
            }

            break;

        case 0x08:
            u->sha256 = b;
            u->sha256_len = dlen;
            break;

        case 0x10:
            u->user = b;
            u->user_len = dlen;
            break;

        case 0x20:
            u->device = b;
            u->device_len = dlen;
            break;

        case 0x40:
            if (ngx_chat_urlsign_parse_num(b, dlen, &u->expires) != 0) {
                return NGX_CHAT_URLSIGN_EMALFORMED;
            }

            break;

        default: /* 0x80 */
            sig = b;

            if (dlen != NGX_CHAT_URLSIGN_SIG_LEN) {
                return NGX_CHAT_URLSIGN_EMALFORMED;
            }

            break;
        }

        b += dlen + 1;
    }

    if (seen != 0xff || !ngx_chat_urlsign_valid(u)) {
        return NGX_CHAT_URLSIGN_EMALFORMED;
    }

    if (ngx_chat_urlsign_mac(key, key_len, u, expect) != 0) {
        return NGX_CHAT_URLSIGN_ERROR;
    }

    if (CRYPTO_memcmp(expect, sig, NGX_CHAT_URLSIGN_SIG_LEN) != 0) {
        return NGX_CHAT_URLSIGN_ESIG;
    }

    if (now > u->expires) {
        return NGX_CHAT_URLSIGN_EEXPIRED;
    }

    return NGX_CHAT_URLSIGN_OK;
}


static int
ngx_chat_urlsign_valid(const ngx_chat_urlsign_t *u)
{
    size_t  i;

    if ((u->op != NGX_CHAT_URLSIGN_PUT && u->op != NGX_CHAT_URLSIGN_GET)
        || u->id == NULL || u->id_len == 0
        || u->id_len > NGX_CHAT_URLSIGN_ID_MAX
        || u->type == NULL || u->type_len == 0
        || u->type_len > NGX_CHAT_URLSIGN_TYPE_MAX
        || u->sha256 == NULL || u->sha256_len != 64
        || u->user == NULL || u->user_len == 0 || u->user_len > 64
        || u->device == NULL || u->device_len == 0 || u->device_len > 64
        || u->size < 0 || u->size > ((int64_t) 1 << 53)
        || u->expires < 0)
    {
        return 0;
    }

    for (i = 0; i < u->id_len; i++) {
        if (!ngx_chat_urlsign_id_char((unsigned char) u->id[i], 0)) {
            return 0;
        }
    }

    for (i = 0; i < u->type_len; i++) {
        if (!ngx_chat_urlsign_type_char((unsigned char) u->type[i])) {
            return 0;
        }
    }

    for (i = 0; i < 64; i++) {
        unsigned char c = (unsigned char) u->sha256[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }

    for (i = 0; i < u->user_len; i++) {
        if (!ngx_chat_urlsign_id_char((unsigned char) u->user[i], 1)) {
            return 0;
        }
    }

    for (i = 0; i < u->device_len; i++) {
        if (!ngx_chat_urlsign_id_char((unsigned char) u->device[i], 1)) {
            return 0;
        }
    }

    return 1;
}


/* object ids: A-Z a-z 0-9 . _ -; user and device ids also allow '@' */
static int
ngx_chat_urlsign_id_char(unsigned char c, int at)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
           || (at && c == '@');
}


/* RFC 6838 restricted-name characters, '/' and lowercase only */
static int
ngx_chat_urlsign_type_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/'
           || c == '!' || c == '#' || c == '$' || c == '&' || c == '-'
           || c == '^' || c == '_' || c == '.' || c == '+';
}


/* sig: 43 base64url characters of HMAC-SHA256(key, signed string) */
static int
ngx_chat_urlsign_mac(const unsigned char *key, size_t key_len,
    const ngx_chat_urlsign_t *u, char *sig)
{
    size_t         len;
    unsigned char  md[NGX_CHAT_HMAC_SHA256_LEN];
    char           msg[512], *p;

    /* every field is bounded (see ngx_chat_urlsign_valid): < 512 bytes */

    p = msg;

#define ngx_chat_urlsign_field(s, l)                                         \
    memcpy(p, s, l); p += l; *p++ = '\n'

    ngx_chat_urlsign_field(NGX_CHAT_URLSIGN_MAGIC,
                           sizeof(NGX_CHAT_URLSIGN_MAGIC) - 1);
    ngx_chat_urlsign_field(u->op == NGX_CHAT_URLSIGN_PUT ? "put" : "get", 3);
    ngx_chat_urlsign_field(u->id, u->id_len);
    ngx_chat_urlsign_field(u->type, u->type_len);
    p += ngx_chat_urlsign_num(u->size, p);
    *p++ = '\n';
    ngx_chat_urlsign_field(u->sha256, u->sha256_len);
    ngx_chat_urlsign_field(u->user, u->user_len);
    ngx_chat_urlsign_field(u->device, u->device_len);
    p += ngx_chat_urlsign_num(u->expires, p);

#undef ngx_chat_urlsign_field

    len = (size_t) (p - msg);

    if (ngx_chat_hmac_sha256(key, key_len, msg, len, md) != 0) {
        return -1;
    }

    /* 32 bytes are 43 characters */

    sig[ngx_chat_base64url_encode((uint8_t *) sig, md, sizeof(md))] = '\0';

    OPENSSL_cleanse(md, sizeof(md));

    return 0;
}


/* decimal of v >= 0, not terminated; returns the length */
static size_t
ngx_chat_urlsign_num(int64_t v, char *out)
{
    char      tmp[NGX_CHAT_URLSIGN_NUM];
    size_t    n, i;
    uint64_t  x;

    x = v < 0 ? 0 : (uint64_t) v;
    n = 0;

    do {
        tmp[n++] = (char) ('0' + x % 10);
        x /= 10;
    } while (x);

    for (i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }

    return n;
}


/* appends s, percent-encoding all but A-Z a-z 0-9 - _ . ~ when asked */
static void
ngx_chat_urlsign_put(ngx_chat_urlsign_out_t *o, const char *s, size_t len,
    int encode)
{
    static const char  hex[] = "0123456789ABCDEF";

    size_t         i;
    unsigned char  c;

    for (i = 0; i < len && o->p; i++) {
        c = (unsigned char) s[i];

        if (!encode || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~')
        {
            if (o->p == o->end) {
                o->p = NULL;
                return;
            }

            *o->p++ = (char) c;
            continue;
        }

        if (o->end - o->p < 3) {
            o->p = NULL;
            return;
        }

        *o->p++ = '%';
        *o->p++ = hex[c >> 4];
        *o->p++ = hex[c & 0x0f];
    }
}


/* percent-decoding; '+' is a space; a control character is refused */
static int
ngx_chat_urlsign_decode(const char *s, size_t len, char *out,
    size_t *out_len)
{
    size_t         i, n;
    unsigned char  c, h, l;

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '%') {
            if (i + 2 >= len) {
                return -1;
            }

            h = (unsigned char) s[i + 1];
            l = (unsigned char) s[i + 2];

#define ngx_chat_urlsign_hexval(x)                                           \
            ((x) >= '0' && (x) <= '9' ? (x) - '0'                            \
             : ((x) | 0x20) >= 'a' && ((x) | 0x20) <= 'f'                    \
               ? ((x) | 0x20) - 'a' + 10 : 16)

            h = (unsigned char) ngx_chat_urlsign_hexval(h);
            l = (unsigned char) ngx_chat_urlsign_hexval(l);

#undef ngx_chat_urlsign_hexval

            if (h > 15 || l > 15) {
                return -1;
            }

            c = (unsigned char) (h << 4 | l);
            i += 2;

        } else if (c == '+') {
            c = ' ';
        }

        if (c < 0x20 || c == 0x7f) {
            return -1;
        }

        out[n++] = (char) c;
    }

    *out_len = n;

    return 0;
}


/* 1 to 18 decimal digits */
static int
ngx_chat_urlsign_parse_num(const char *s, size_t len, int64_t *v)
{
    size_t   i;
    int64_t  x;

    if (len == 0 || len > 18) {
        return -1;
    }

    x = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        x = x * 10 + (s[i] - '0');
    }

    *v = x;

    return 0;
}
