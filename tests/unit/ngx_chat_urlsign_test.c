
/*
 * ngx_chat_urlsign_test.c: unit tests of ngx_chat_urlsign.c: round trips,
 * every kind of tampering, expiry, malformed queries, an independent
 * recomputation of the signature with libcrypto.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_chat_urlsign.h"


static int  failures;
static int  checks;


#define CHECK(cond, what)                                                    \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("not ok %d - %s (%s:%d)\n", checks, what, __FILE__,       \
                   __LINE__);                                                \
        } else {                                                             \
            printf("ok %d - %s\n", checks, what);                            \
        }                                                                    \
    } while (0)


static const unsigned char  key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN  32

#define ID      "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define SHA     "e3b0c44298fc1c149afbf4c8996fb924"                          \
                "27ae41e4649b934ca495991b7852b855"


static void
sample(ngx_chat_urlsign_t *u)
{
    memset(u, 0, sizeof(*u));
    u->op = NGX_CHAT_URLSIGN_GET;
    u->id = ID;
    u->id_len = strlen(ID);
    u->type = "image/svg+xml";
    u->type_len = strlen(u->type);
    u->size = 10485760;
    u->sha256 = SHA;
    u->sha256_len = 64;
    u->user = "bob@x";
    u->user_len = 5;
    u->device = "phone.1";
    u->device_len = 7;
    u->expires = 2000000000;
}


static int
verify(const char *id, const char *q, long long now, ngx_chat_urlsign_t *u)
{
    static char  buf[2048];

    return ngx_chat_urlsign_verify(key, KEYLEN, id, strlen(id), q,
                                   strlen(q), now, u, buf, sizeof(buf));
}


/* replaces the first occurrence of from by to in q (into out) */
static const char *
subst(const char *q, const char *from, const char *to)
{
    static char  out[2048];
    const char  *p;

    p = strstr(q, from);
    if (p == NULL) {
        return "MISSING";
    }

    snprintf(out, sizeof(out), "%.*s%s%s", (int) (p - q), q, to,
             p + strlen(from));
    return out;
}


static void
test_round_trip(void)
{
    int                  rc;
    size_t               len;
    char                 q[NGX_CHAT_URLSIGN_QUERY_MAX];
    ngx_chat_urlsign_t   u, v;

    sample(&u);

    rc = ngx_chat_urlsign_sign(key, KEYLEN, &u, q, sizeof(q), &len);
    CHECK(rc == NGX_CHAT_URLSIGN_OK && len == strlen(q), "sign");
    CHECK(strncmp(q, "op=get&type=image%2Fsvg%2Bxml&size=10485760&sha256="
                     SHA "&user=bob%40x&dev=phone.1&exp=2000000000&sig=",
                  strlen("op=get&type=image%2Fsvg%2Bxml&size=10485760"
                         "&sha256=" SHA "&user=bob%40x&dev=phone.1"
                         "&exp=2000000000&sig=")) == 0,
          "query format");

    rc = verify(ID, q, 1999999999, &v);
    CHECK(rc == NGX_CHAT_URLSIGN_OK, "verify");
    CHECK(v.op == NGX_CHAT_URLSIGN_GET && v.size == 10485760
          && v.expires == 2000000000 && v.type_len == 13
          && memcmp(v.type, "image/svg+xml", 13) == 0
          && v.user_len == 5 && memcmp(v.user, "bob@x", 5) == 0
          && v.device_len == 7 && memcmp(v.device, "phone.1", 7) == 0
          && v.sha256_len == 64 && memcmp(v.sha256, SHA, 64) == 0,
          "verify fills the fields");

    CHECK(verify(ID, q, 2000000000, &v) == NGX_CHAT_URLSIGN_OK,
          "valid at exp itself");
    CHECK(verify(ID, q, 2000000001, &v) == NGX_CHAT_URLSIGN_EEXPIRED,
          "expired one second after exp");

    /* extra parameters (cache busters) are ignored, order is free */

    {
        char  q2[2048];
        char *sig = strstr(q, "&sig=");

        snprintf(q2, sizeof(q2), "x=1&%s&y", sig + 1);
        snprintf(q2 + strlen(q2), sizeof(q2) - strlen(q2), "&%.*s",
                 (int) (sig - q), q);
        CHECK(verify(ID, q2, 0, &v) == NGX_CHAT_URLSIGN_OK,
              "reordered, with unknown parameters");
    }

    u.op = NGX_CHAT_URLSIGN_PUT;
    rc = ngx_chat_urlsign_sign(key, KEYLEN, &u, q, sizeof(q), &len);
    CHECK(rc == NGX_CHAT_URLSIGN_OK && verify(ID, q, 0, &v) == 0
          && v.op == NGX_CHAT_URLSIGN_PUT, "put round trip");

    rc = ngx_chat_urlsign_sign(key, KEYLEN, &u, q, 50, &len);
    CHECK(rc == NGX_CHAT_URLSIGN_ENOSPC, "small buffer");
}


static void
test_tampering(void)
{
    char                 q[NGX_CHAT_URLSIGN_QUERY_MAX];
    char                 sig[64];
    size_t               len;
    ngx_chat_urlsign_t   u, v;

    sample(&u);
    (void) ngx_chat_urlsign_sign(key, KEYLEN, &u, q, sizeof(q), &len);

    CHECK(verify("0f1e2d3c4b5a69788796a5b4c3d2e1f1", q, 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "another object id");
    CHECK(verify(ID, subst(q, "op=get", "op=put"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "get turned into put");
    CHECK(verify(ID, subst(q, "size=10485760", "size=10485761"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "size changed");
    CHECK(verify(ID, subst(q, "sha256=e3", "sha256=e4"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "hash changed");
    CHECK(verify(ID, subst(q, "dev=phone.1", "dev=phone.2"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "device changed");
    CHECK(verify(ID, subst(q, "user=bob%40x", "user=bob%40y"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "user changed");
    CHECK(verify(ID, subst(q, "exp=2000000000", "exp=2000000001"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "expiry extended");
    CHECK(verify(ID, subst(q, "svg%2Bxml", "png"), 0, &v)
          == NGX_CHAT_URLSIGN_ESIG, "type changed");
    CHECK(verify(ID, subst(q, "user=bob%40x", "user=bob@x"), 0, &v)
          == NGX_CHAT_URLSIGN_OK, "unencoded '@' decodes the same");

    /* one character of the signature */

    memcpy(sig, strstr(q, "&sig=") + 5, 44);
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    {
        char  s2[80];

        snprintf(s2, sizeof(s2), "&sig=%s", sig);
        CHECK(verify(ID, subst(q, strstr(q, "&sig="), s2), 0, &v)
              == NGX_CHAT_URLSIGN_ESIG, "signature changed");
    }

    /* a key of the same length */

    {
        static char  buf[2048];

        CHECK(ngx_chat_urlsign_verify((const unsigned char *)
                                      "0123456789abcdef0123456789abcdeF",
                                      KEYLEN, ID, strlen(ID), q, strlen(q),
                                      0, &v, buf, sizeof(buf))
              == NGX_CHAT_URLSIGN_ESIG, "another key");
    }
}


static void
test_malformed(void)
{
    char                 q[NGX_CHAT_URLSIGN_QUERY_MAX];
    size_t               len;
    ngx_chat_urlsign_t   u, v;
    char                 dup[2048];

    sample(&u);
    (void) ngx_chat_urlsign_sign(key, KEYLEN, &u, q, sizeof(q), &len);

    CHECK(verify(ID, "", 0, &v) == NGX_CHAT_URLSIGN_EMALFORMED, "empty");
    CHECK(verify(ID, subst(q, "op=get&", ""), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "op missing");
    CHECK(verify(ID, subst(q, "op=get", "op=del"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "unknown op");
    CHECK(verify(ID, subst(q, "size=10485760", "size=-1"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "negative size");
    CHECK(verify(ID, subst(q, "size=10485760", "size="), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "empty size");
    CHECK(verify(ID, subst(q, "size=10485760", "size=1234567890123456789"),
                 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "19-digit size");
    CHECK(verify(ID, subst(q, "sha256=e3", "sha256=E3"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "uppercase hash");
    CHECK(verify(ID, subst(q, "dev=phone.1", "dev=ph%0Aone"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "newline in device");
    CHECK(verify(ID, subst(q, "dev=phone.1", "dev=ph%2"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "truncated escape");
    CHECK(verify(ID, subst(q, "dev=phone.1", "dev=ph%zzne"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "bad escape");
    CHECK(verify(ID, subst(q, "dev=phone.1", "dev=ph/one"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "slash in device");
    CHECK(verify(ID, subst(q, "type=image%2Fsvg%2Bxml", "type=Image%2FPNG"),
                 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "uppercase type");
    CHECK(verify("../etc", q, 0, &v) == NGX_CHAT_URLSIGN_EMALFORMED,
          "object id with a slash");
    CHECK(verify("", q, 0, &v) == NGX_CHAT_URLSIGN_EMALFORMED,
          "empty object id");

    snprintf(dup, sizeof(dup), "%s&dev=phone.1", q);
    CHECK(verify(ID, dup, 0, &v) == NGX_CHAT_URLSIGN_EMALFORMED,
          "repeated parameter");

    snprintf(dup, sizeof(dup), "%s", subst(q, "&sig=", "&sig=A"));
    CHECK(verify(ID, dup, 0, &v) == NGX_CHAT_URLSIGN_EMALFORMED,
          "44-character signature");

    CHECK(verify(ID, subst(q, "&dev=phone.1", "&dev"), 0, &v)
          == NGX_CHAT_URLSIGN_EMALFORMED, "parameter without '='");

    u.user = "bad user";
    u.user_len = 8;
    CHECK(ngx_chat_urlsign_sign(key, KEYLEN, &u, q, sizeof(q), &len)
          == NGX_CHAT_URLSIGN_EMALFORMED, "sign refuses a bad user id");
}


/* an independent computation of the signature of sample() */
static void
test_independent(void)
{
    const char          *msg;
    size_t               len, i, n;
    unsigned int         mdlen;
    unsigned char        md[EVP_MAX_MD_SIZE];
    char                 q[NGX_CHAT_URLSIGN_QUERY_MAX], b64[64];
    ngx_chat_urlsign_t   u;
    EVP_ENCODE_CTX      *ctx;
    int                  outl, tmpl;

    sample(&u);
    (void) ngx_chat_urlsign_sign(key, KEYLEN, &u, q, sizeof(q), &len);

    msg = "ngx_chat-media-v1\nget\n" ID "\nimage/svg+xml\n10485760\n" SHA
          "\nbob@x\nphone.1\n2000000000";

    HMAC(EVP_sha256(), key, KEYLEN, (const unsigned char *) msg,
         strlen(msg), md, &mdlen);

    ctx = EVP_ENCODE_CTX_new();
    EVP_EncodeInit(ctx);
    EVP_EncodeUpdate(ctx, (unsigned char *) b64, &outl, md, (int) mdlen);
    EVP_EncodeFinal(ctx, (unsigned char *) b64 + outl, &tmpl);
    EVP_ENCODE_CTX_free(ctx);

    /* to base64url without padding or newline */

    for (i = 0, n = 0; b64[i] && b64[i] != '=' && b64[i] != '\n'; i++) {
        b64[n++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    }

    b64[n] = '\0';

    CHECK(n == 43 && strcmp(strstr(q, "&sig=") + 5, b64) == 0,
          "signature equals HMAC-SHA256 of the documented string");
}


int
main(void)
{
    test_round_trip();
    test_tampering();
    test_malformed();
    test_independent();

    printf("1..%d\n", checks);
    printf("%d passed, %d failed\n", checks - failures, failures);

    return failures ? 1 : 0;
}
