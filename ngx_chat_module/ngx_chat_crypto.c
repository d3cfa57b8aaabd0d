
/*
 * ngx_chat_crypto.c: strict base64url and HMAC-SHA256, shared by the JWT
 * check (ngx_chat_jwt.c), the local media URL signer (ngx_chat_urlsign.c)
 * and SigV4 (ngx_chat_sigv4.c).  Pure code: no nginx headers, no I/O.
 */


#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_chat_crypto.h"


static int ngx_chat_base64url_value(uint8_t c);


static const char  ngx_chat_base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
ngx_chat_base64url_encode(uint8_t *dst, const uint8_t *src, size_t len)
{
    uint8_t         *d;
    const uint8_t   *s;
    const char      *a;

    a = ngx_chat_base64url_alphabet;
    d = dst;
    s = src;

    while (len >= 3) {
        *d++ = a[s[0] >> 2];
        *d++ = a[((s[0] & 0x03) << 4) | (s[1] >> 4)];
        *d++ = a[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = a[s[2] & 0x3f];
        s += 3;
        len -= 3;
    }

    if (len == 1) {
        *d++ = a[s[0] >> 2];
        *d++ = a[(s[0] & 0x03) << 4];

    } else if (len == 2) {
        *d++ = a[s[0] >> 2];
        *d++ = a[((s[0] & 0x03) << 4) | (s[1] >> 4)];
        *d++ = a[(s[1] & 0x0f) << 2];
    }

    return d - dst;
}


int
ngx_chat_base64url_decode(uint8_t *dst, size_t *dst_len, const uint8_t *src,
    size_t len)
{
    int       v0, v1, v2, v3;
    size_t    i, rest;
    uint8_t  *d;

    rest = len % 4;

    if (rest == 1) {
        return -1;
    }

    d = dst;

    for (i = 0; i < len - rest; i += 4) {
        v0 = ngx_chat_base64url_value(src[i]);
        v1 = ngx_chat_base64url_value(src[i + 1]);
        v2 = ngx_chat_base64url_value(src[i + 2]);
        v3 = ngx_chat_base64url_value(src[i + 3]);

        if ((v0 | v1 | v2 | v3) < 0) {
            return -1;
        }

        *d++ = (uint8_t) ((v0 << 2) | (v1 >> 4));
        *d++ = (uint8_t) (((v1 & 0x0f) << 4) | (v2 >> 2));
        *d++ = (uint8_t) (((v2 & 0x03) << 6) | v3);
    }

    if (rest) {
        v0 = ngx_chat_base64url_value(src[i]);
        v1 = ngx_chat_base64url_value(src[i + 1]);

        if ((v0 | v1) < 0) {
            return -1;
        }

        *d++ = (uint8_t) ((v0 << 2) | (v1 >> 4));

        if (rest == 2) {
            /* the low 4 bits of the last character are unused */
            if (v1 & 0x0f) {
                return -1;
            }

        } else {
            v2 = ngx_chat_base64url_value(src[i + 2]);

            /* the low 2 bits of the last character are unused */
            if (v2 < 0 || (v2 & 0x03)) {
                return -1;
            }

            *d++ = (uint8_t) (((v1 & 0x0f) << 4) | (v2 >> 2));
        }
    }

    *dst_len = d - dst;

    return 0;
}


static int
ngx_chat_base64url_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


int
ngx_chat_hmac_sha256(const void *key, size_t key_len, const void *msg,
    size_t msg_len, uint8_t *out)
{
    unsigned int  n;
    uint8_t       md[EVP_MAX_MD_SIZE];

    if (key_len > 0x7fffffff
        || HMAC(EVP_sha256(), key, (int) key_len, msg, msg_len, md, &n)
           == NULL
        || n != NGX_CHAT_HMAC_SHA256_LEN)
    {
        OPENSSL_cleanse(md, sizeof(md));
        return -1;
    }

    memcpy(out, md, NGX_CHAT_HMAC_SHA256_LEN);
    OPENSSL_cleanse(md, sizeof(md));

    return 0;
}
