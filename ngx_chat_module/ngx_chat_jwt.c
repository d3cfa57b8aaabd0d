
/*
 * ngx_chat_jwt.c: HS256 JWT verification and minting, and the id syntax.
 * Pure code: no nginx headers, no I/O, no logging; links alone with
 * ngx_chat_crypto.c (base64url, HMAC-SHA256), libcrypto (CRYPTO_memcmp)
 * and libyajl (streaming parser, so JSON values arrive as (ptr, len) and
 * duplicate keys are seen).
 *
 * A token is at most NGX_CHAT_JWT_MAX_LEN bytes; the three parts are
 * decoded into one stack buffer of 3/4 of that.  The claims JSON is only
 * parsed after the signature has matched, so an unauthenticated client
 * reaches the JSON parser with the header alone.  The only heap memory is
 * yajl's (its handle and lexer buffers), freed before return.
 */


#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include <yajl/yajl_parse.h>

#include "ngx_chat_crypto.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_json.h"


#define NGX_CHAT_JWT_SIG_LEN        32   /* SHA-256 output */
#define NGX_CHAT_JWT_SIG_B64_LEN    43
#define NGX_CHAT_JWT_JSON_DEPTH     8    /* nesting allowed in ignored keys */
#define NGX_CHAT_JWT_CLAIMS_JSON    256  /* room for the claims we mint */

/* what a top-level member is */
#define NGX_CHAT_JWT_KEY_NONE       0    /* between members */
#define NGX_CHAT_JWT_KEY_OTHER      1    /* a key we ignore */
#define NGX_CHAT_JWT_KEY_ALG        2
#define NGX_CHAT_JWT_KEY_TYP        3
#define NGX_CHAT_JWT_KEY_CRIT       4
#define NGX_CHAT_JWT_KEY_SUB        5
#define NGX_CHAT_JWT_KEY_DEV        6
#define NGX_CHAT_JWT_KEY_EXP        7
#define NGX_CHAT_JWT_KEY_IAT        8
#define NGX_CHAT_JWT_KEY_NBF        9

#define NGX_CHAT_JWT_SEEN(key)      (1u << (key))

/* kinds of JSON value passed to ngx_chat_jwt_json_value() */
#define NGX_CHAT_JWT_JSON_STRING    0
#define NGX_CHAT_JWT_JSON_NUMBER    1
#define NGX_CHAT_JWT_JSON_LITERAL   2    /* null, true, false */
#define NGX_CHAT_JWT_JSON_CONTAINER 3    /* object or array */


typedef struct {
    const char                 *name;
    size_t                      len;
    int                         key;
} ngx_chat_jwt_key_t;


/* a token's parts, decoded */
typedef struct {
    const uint8_t              *hdr;
    size_t                      hdr_len;
    const uint8_t              *claims;
    size_t                      claims_len;
    const uint8_t              *sig;
    size_t                      sig_len;
    size_t                      signed_len;  /* of "header.claims" text */
} ngx_chat_jwt_parts_t;


/* state of one header or claims parse, the yajl callback context */
typedef struct {
    const ngx_chat_jwt_key_t   *keys;    /* top-level keys we read */
    ngx_chat_jwt_claims_t      *claims;  /* filled from claims keys */
    int                         bad;     /* code for a wrong key or value */
    int                         rc;      /* why a callback cancelled */
    int                         key;     /* current top-level member */
    unsigned                    seen;    /* NGX_CHAT_JWT_SEEN() bits */
    unsigned                    depth;   /* 1 inside the top-level object */
    unsigned                    done;    /* top-level object closed */
} ngx_chat_jwt_json_t;


static int ngx_chat_jwt_split(const uint8_t *token, size_t len, uint8_t *buf,
    ngx_chat_jwt_parts_t *t);
static int ngx_chat_jwt_check_sig(const uint8_t *token, size_t signed_len,
    const uint8_t *sig, size_t sig_len, const uint8_t *secret,
    size_t secret_len);
static int ngx_chat_jwt_json_parse(ngx_chat_jwt_json_t *j, const uint8_t *p,
    size_t len);
static int ngx_chat_jwt_json_value(ngx_chat_jwt_json_t *j, int type,
    const unsigned char *p, size_t len);
static int ngx_chat_jwt_json_null(void *ctx);
static int ngx_chat_jwt_json_boolean(void *ctx, int v);
static int ngx_chat_jwt_json_number(void *ctx, const char *p, size_t len);
static int ngx_chat_jwt_json_string(void *ctx, const unsigned char *p,
    size_t len);
static int ngx_chat_jwt_json_start(void *ctx);
static int ngx_chat_jwt_json_start_array(void *ctx);
static int ngx_chat_jwt_json_map_key(void *ctx, const unsigned char *p,
    size_t len);
static int ngx_chat_jwt_json_end(void *ctx);
static int ngx_chat_jwt_parse_int(const unsigned char *p, size_t len,
    int64_t *v);
static uint8_t *ngx_chat_jwt_put_str(uint8_t *d, const char *s, size_t len);
static uint8_t *ngx_chat_jwt_put_int(uint8_t *d, int64_t v);


static const ngx_chat_jwt_key_t  ngx_chat_jwt_header_keys[] = {
    { ngx_chat_json_sl("alg"), NGX_CHAT_JWT_KEY_ALG },
    { ngx_chat_json_sl("typ"), NGX_CHAT_JWT_KEY_TYP },
    { ngx_chat_json_sl("crit"), NGX_CHAT_JWT_KEY_CRIT },
    { NULL, 0, 0 }
};


static const ngx_chat_jwt_key_t  ngx_chat_jwt_claim_keys[] = {
    { ngx_chat_json_sl("sub"), NGX_CHAT_JWT_KEY_SUB },
    { ngx_chat_json_sl("dev"), NGX_CHAT_JWT_KEY_DEV },
    { ngx_chat_json_sl("exp"), NGX_CHAT_JWT_KEY_EXP },
    { ngx_chat_json_sl("iat"), NGX_CHAT_JWT_KEY_IAT },
    { ngx_chat_json_sl("nbf"), NGX_CHAT_JWT_KEY_NBF },
    { NULL, 0, 0 }
};


/*
 * yajl_number is set, so yajl hands every number over as text and never
 * calls yajl_integer/yajl_double: floats and overflow are ours to reject
 */
static const yajl_callbacks  ngx_chat_jwt_json_callbacks = {
    ngx_chat_jwt_json_null,
    ngx_chat_jwt_json_boolean,
    NULL,
    NULL,
    ngx_chat_jwt_json_number,
    ngx_chat_jwt_json_string,
    ngx_chat_jwt_json_start,
    ngx_chat_jwt_json_map_key,
    ngx_chat_jwt_json_end,
    ngx_chat_jwt_json_start_array,
    ngx_chat_jwt_json_end
};


static const char  ngx_chat_jwt_header_json[] =
    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

const char *
ngx_chat_jwt_strerror(int rc)
{
    switch (rc) {

    case NGX_CHAT_JWT_OK:
        return "ok";

    case NGX_CHAT_JWT_EFORMAT:
        return "malformed token";

    case NGX_CHAT_JWT_EALG:
        return "unsupported token header or algorithm";

    case NGX_CHAT_JWT_ESIG:
        return "bad token signature";

    case NGX_CHAT_JWT_EEXPIRED:
        return "token expired";

    case NGX_CHAT_JWT_ENOTYET:
        return "token not yet valid";

    case NGX_CHAT_JWT_ECLAIMS:
        return "missing or invalid token claims";

    case NGX_CHAT_JWT_ENOSPACE:
        return "token buffer too small";

    case NGX_CHAT_JWT_ESECRET:
        return "token secret too short";

    case NGX_CHAT_JWT_EINTERNAL:
        return "internal error";

    default:
        return "unknown token error";
    }
}


int
ngx_chat_jwt_verify(const uint8_t *token, size_t len, const uint8_t *secret,
    size_t secret_len, int64_t now, int64_t leeway,
    ngx_chat_jwt_claims_t *claims)
{
    int                     rc;
    ngx_chat_jwt_json_t     j;
    ngx_chat_jwt_parts_t    t;
    ngx_chat_jwt_claims_t   c;
    uint8_t                 buf[NGX_CHAT_BASE64URL_DECODED_MAX(
                                NGX_CHAT_JWT_MAX_LEN)];

    memset(claims, 0, sizeof(ngx_chat_jwt_claims_t));

    if (secret_len < NGX_CHAT_JWT_SECRET_MIN || secret_len > 0x7fffffff) {
        return NGX_CHAT_JWT_ESECRET;
    }

    rc = ngx_chat_jwt_split(token, len, buf, &t);
    if (rc != NGX_CHAT_JWT_OK) {
        return rc;
    }

    memset(&j, 0, sizeof(ngx_chat_jwt_json_t));
    j.keys = ngx_chat_jwt_header_keys;
    j.bad = NGX_CHAT_JWT_EALG;

    rc = ngx_chat_jwt_json_parse(&j, t.hdr, t.hdr_len);
    if (rc != NGX_CHAT_JWT_OK) {
        return rc;
    }

    if (!(j.seen & NGX_CHAT_JWT_SEEN(NGX_CHAT_JWT_KEY_ALG))) {
        return NGX_CHAT_JWT_EALG;
    }

    rc = ngx_chat_jwt_check_sig(token, t.signed_len, t.sig, t.sig_len,
                                secret, secret_len);
    if (rc != NGX_CHAT_JWT_OK) {
        return rc;
    }

    /* only now are the claims worth parsing */

    memset(&c, 0, sizeof(ngx_chat_jwt_claims_t));
    memset(&j, 0, sizeof(ngx_chat_jwt_json_t));
    j.keys = ngx_chat_jwt_claim_keys;
    j.claims = &c;
    j.bad = NGX_CHAT_JWT_ECLAIMS;

    rc = ngx_chat_jwt_json_parse(&j, t.claims, t.claims_len);
    if (rc != NGX_CHAT_JWT_OK) {
        return rc;
    }

    if ((j.seen & NGX_CHAT_JWT_SEEN(NGX_CHAT_JWT_KEY_SUB)) == 0
        || (j.seen & NGX_CHAT_JWT_SEEN(NGX_CHAT_JWT_KEY_DEV)) == 0
        || (j.seen & NGX_CHAT_JWT_SEEN(NGX_CHAT_JWT_KEY_EXP)) == 0)
    {
        return NGX_CHAT_JWT_ECLAIMS;
    }

    *claims = c;

    if (leeway < 0) {
        leeway = 0;
    }

    /*
     * expired when now >= exp + leeway, not yet valid when
     * now + leeway < nbf; differences are taken unsigned so that
     * no sum can overflow
     */

    if (now >= c.exp
        && (uint64_t) now - (uint64_t) c.exp >= (uint64_t) leeway)
    {
        return NGX_CHAT_JWT_EEXPIRED;
    }

    if ((j.seen & NGX_CHAT_JWT_SEEN(NGX_CHAT_JWT_KEY_NBF))
        && c.nbf > now
        && (uint64_t) c.nbf - (uint64_t) now > (uint64_t) leeway)
    {
        return NGX_CHAT_JWT_ENOTYET;
    }

    return NGX_CHAT_JWT_OK;
}


/*
 * Splits a token into exactly three non-empty parts and decodes each into
 * buf, which holds NGX_CHAT_BASE64URL_DECODED_MAX(NGX_CHAT_JWT_MAX_LEN)
 * bytes: the decoded parts together are at most 3/4 of the token.
 */

static int
ngx_chat_jwt_split(const uint8_t *token, size_t len, uint8_t *buf,
    ngx_chat_jwt_parts_t *t)
{
    uint8_t        *p;
    const uint8_t  *dot1, *dot2, *end;

    if (len == 0 || len > NGX_CHAT_JWT_MAX_LEN) {
        return NGX_CHAT_JWT_EFORMAT;
    }

    end = token + len;

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL || dot1 == token) {
        return NGX_CHAT_JWT_EFORMAT;
    }

    dot2 = memchr(dot1 + 1, '.', end - (dot1 + 1));
    if (dot2 == NULL || dot2 == dot1 + 1 || dot2 + 1 == end
        || memchr(dot2 + 1, '.', end - (dot2 + 1)) != NULL)
    {
        return NGX_CHAT_JWT_EFORMAT;
    }

    p = buf;
    t->hdr = p;
    if (ngx_chat_base64url_decode(p, &t->hdr_len, token, dot1 - token)
        != NGX_CHAT_JWT_OK)
    {
        return NGX_CHAT_JWT_EFORMAT;
    }

    p += t->hdr_len;
    t->claims = p;
    if (ngx_chat_base64url_decode(p, &t->claims_len, dot1 + 1,
                                  dot2 - (dot1 + 1))
        != NGX_CHAT_JWT_OK)
    {
        return NGX_CHAT_JWT_EFORMAT;
    }

    p += t->claims_len;
    t->sig = p;
    if (ngx_chat_base64url_decode(p, &t->sig_len, dot2 + 1, end - (dot2 + 1))
        != NGX_CHAT_JWT_OK)
    {
        return NGX_CHAT_JWT_EFORMAT;
    }

    t->signed_len = dot2 - token;

    return NGX_CHAT_JWT_OK;
}


/* HMAC-SHA256 of the first signed_len bytes of token against sig */

static int
ngx_chat_jwt_check_sig(const uint8_t *token, size_t signed_len,
    const uint8_t *sig, size_t sig_len, const uint8_t *secret,
    size_t secret_len)
{
    int      rc;
    uint8_t  md[NGX_CHAT_JWT_SIG_LEN];

    if (ngx_chat_hmac_sha256(secret, secret_len, token, signed_len, md) != 0)
    {
        return NGX_CHAT_JWT_EINTERNAL;
    }

    rc = NGX_CHAT_JWT_OK;

    if (sig_len != NGX_CHAT_JWT_SIG_LEN
        || CRYPTO_memcmp(md, sig, NGX_CHAT_JWT_SIG_LEN) != 0)
    {
        rc = NGX_CHAT_JWT_ESIG;
    }

    /* md is a valid signature for attacker-chosen input: do not leave it */
    OPENSSL_cleanse(md, sizeof(md));

    return rc;
}


int
ngx_chat_jwt_sign(const char *sub, size_t sub_len, const char *dev,
    size_t dev_len, int64_t exp, int64_t iat, const uint8_t *secret,
    size_t secret_len, char *out, size_t out_size, size_t *out_len)
{
    size_t    jlen, n;
    uint8_t  *p;
    uint8_t   md[NGX_CHAT_JWT_SIG_LEN];
    uint8_t   json[NGX_CHAT_JWT_CLAIMS_JSON];

    if (secret_len < NGX_CHAT_JWT_SECRET_MIN || secret_len > 0x7fffffff) {
        return NGX_CHAT_JWT_ESECRET;
    }

    if (!ngx_chat_id_valid((const uint8_t *) sub, sub_len)
        || !ngx_chat_id_valid((const uint8_t *) dev, dev_len)
        || exp <= 0 || iat < 0)
    {
        return NGX_CHAT_JWT_ECLAIMS;
    }

    /* ids need no JSON escaping: their alphabet has no '"' or '\' */

    p = json;
    p = ngx_chat_jwt_put_str(p, ngx_chat_json_sl("{\"sub\":\""));
    p = ngx_chat_jwt_put_str(p, sub, sub_len);
    p = ngx_chat_jwt_put_str(p, ngx_chat_json_sl("\",\"dev\":\""));
    p = ngx_chat_jwt_put_str(p, dev, dev_len);
    p = ngx_chat_jwt_put_str(p, ngx_chat_json_sl("\",\"iat\":"));
    p = ngx_chat_jwt_put_int(p, iat);
    p = ngx_chat_jwt_put_str(p, ngx_chat_json_sl(",\"exp\":"));
    p = ngx_chat_jwt_put_int(p, exp);
    p = ngx_chat_jwt_put_str(p, ngx_chat_json_sl("}"));
    jlen = p - json;

    n = NGX_CHAT_BASE64URL_ENCODED_LEN(sizeof(ngx_chat_jwt_header_json) - 1)
        + 1 + NGX_CHAT_BASE64URL_ENCODED_LEN(jlen)
        + 1 + NGX_CHAT_JWT_SIG_B64_LEN;

    if (out_size < n + 1) {
        return NGX_CHAT_JWT_ENOSPACE;
    }

    p = (uint8_t *) out;
    p += ngx_chat_base64url_encode(p,
                                   (const uint8_t *) ngx_chat_jwt_header_json,
                                   sizeof(ngx_chat_jwt_header_json) - 1);
    *p++ = '.';
    p += ngx_chat_base64url_encode(p, json, jlen);

    if (ngx_chat_hmac_sha256(secret, secret_len, out, p - (uint8_t *) out,
                             md)
        != 0)
    {
        out[0] = '\0';
        return NGX_CHAT_JWT_EINTERNAL;
    }

    *p++ = '.';
    p += ngx_chat_base64url_encode(p, md, NGX_CHAT_JWT_SIG_LEN);
    *p = '\0';

    *out_len = p - (uint8_t *) out;

    return NGX_CHAT_JWT_OK;
}


int
ngx_chat_id_valid(const uint8_t *p, size_t len)
{
    size_t   i;
    uint8_t  c;

    if (len == 0 || len > NGX_CHAT_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == '.' || c == '_' || c == '@' || c == '-')
        {
            continue;
        }

        return 0;
    }

    return 1;
}


/*
 * Parses one JSON text that must be an object; returns NGX_CHAT_JWT_OK,
 * j->rc when a callback refused a key or value, NGX_CHAT_JWT_EFORMAT for
 * bad JSON or NGX_CHAT_JWT_EINTERNAL when yajl could not allocate.
 */

static int
ngx_chat_jwt_json_parse(ngx_chat_jwt_json_t *j, const uint8_t *p, size_t len)
{
    yajl_handle  h;
    yajl_status  st;

    h = yajl_alloc(&ngx_chat_jwt_json_callbacks, NULL, j);
    if (h == NULL) {
        return NGX_CHAT_JWT_EINTERNAL;
    }

    /* defaults: no comments, UTF-8 checked, no trailing garbage */

    st = yajl_parse(h, p, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (st == yajl_status_client_canceled) {
        return j->rc;
    }

    if (st != yajl_status_ok || !j->done) {
        return NGX_CHAT_JWT_EFORMAT;
    }

    return NGX_CHAT_JWT_OK;
}


/*
 * A scalar, or the start of a container, was parsed.  Only members of the
 * top-level object with a key from j->keys are looked at; anything else,
 * at any depth, is skipped.  Returns 1 to go on, 0 (with j->rc set) to
 * stop the parse.
 */

static int
ngx_chat_jwt_json_value(ngx_chat_jwt_json_t *j, int type,
    const unsigned char *p, size_t len)
{
    int                     key, ok;
    int64_t                 v;
    ngx_chat_jwt_claims_t  *c;

    if (j->depth == 0) {
        /* the text is a scalar or array, not an object */
        j->rc = NGX_CHAT_JWT_EFORMAT;
        return 0;
    }

    if (j->depth > 1) {
        return 1;
    }

    key = j->key;
    j->key = NGX_CHAT_JWT_KEY_NONE;
    c = j->claims;
    ok = 0;

    switch (key) {

    case NGX_CHAT_JWT_KEY_ALG:
        ok = (type == NGX_CHAT_JWT_JSON_STRING && len == sizeof("HS256") - 1
              && memcmp(p, "HS256", len) == 0);
        break;

    case NGX_CHAT_JWT_KEY_TYP:
        ok = (type == NGX_CHAT_JWT_JSON_STRING && len == sizeof("JWT") - 1
              && memcmp(p, "JWT", len) == 0);
        break;

    case NGX_CHAT_JWT_KEY_CRIT:
        /* we understand no header extension, so any "crit" is fatal */
        ok = 0;
        break;

    case NGX_CHAT_JWT_KEY_SUB:
        ok = (type == NGX_CHAT_JWT_JSON_STRING && ngx_chat_id_valid(p, len));
        if (ok) {
            memcpy(c->sub, p, len);
            c->sub[len] = '\0';
            c->sub_len = len;
        }
        break;

    case NGX_CHAT_JWT_KEY_DEV:
        ok = (type == NGX_CHAT_JWT_JSON_STRING && ngx_chat_id_valid(p, len));
        if (ok) {
            memcpy(c->dev, p, len);
            c->dev[len] = '\0';
            c->dev_len = len;
        }
        break;

    case NGX_CHAT_JWT_KEY_EXP:
    case NGX_CHAT_JWT_KEY_IAT:
    case NGX_CHAT_JWT_KEY_NBF:
        ok = (type == NGX_CHAT_JWT_JSON_NUMBER
              && ngx_chat_jwt_parse_int(p, len, &v));
        if (!ok) {
            break;
        }

        if (key == NGX_CHAT_JWT_KEY_EXP) {
            ok = (v > 0);
            c->exp = v;

        } else if (key == NGX_CHAT_JWT_KEY_IAT) {
            c->iat = v;

        } else {
            c->nbf = v;
        }
        break;

    default: /* NGX_CHAT_JWT_KEY_OTHER */
        ok = 1;
    }

    if (!ok) {
        j->rc = j->bad;
        return 0;
    }

    return 1;
}


static int
ngx_chat_jwt_json_null(void *ctx)
{
    return ngx_chat_jwt_json_value(ctx, NGX_CHAT_JWT_JSON_LITERAL, NULL, 0);
}


static int
ngx_chat_jwt_json_boolean(void *ctx, int v)
{
    (void) v;

    return ngx_chat_jwt_json_value(ctx, NGX_CHAT_JWT_JSON_LITERAL, NULL, 0);
}


static int
ngx_chat_jwt_json_number(void *ctx, const char *p, size_t len)
{
    return ngx_chat_jwt_json_value(ctx, NGX_CHAT_JWT_JSON_NUMBER,
                                   (const unsigned char *) p, len);
}


static int
ngx_chat_jwt_json_string(void *ctx, const unsigned char *p, size_t len)
{
    return ngx_chat_jwt_json_value(ctx, NGX_CHAT_JWT_JSON_STRING, p, len);
}


static int
ngx_chat_jwt_json_start(void *ctx)
{
    ngx_chat_jwt_json_t  *j = ctx;

    if (j->depth > 0
        && !ngx_chat_jwt_json_value(j, NGX_CHAT_JWT_JSON_CONTAINER, NULL, 0))
    {
        return 0;
    }

    if (++j->depth > NGX_CHAT_JWT_JSON_DEPTH) {
        j->rc = NGX_CHAT_JWT_EFORMAT;
        return 0;
    }

    return 1;
}


static int
ngx_chat_jwt_json_start_array(void *ctx)
{
    ngx_chat_jwt_json_t  *j = ctx;

    if (j->depth == 0) {
        /* a top-level array is not an object */
        j->rc = NGX_CHAT_JWT_EFORMAT;
        return 0;
    }

    return ngx_chat_jwt_json_start(ctx);
}


static int
ngx_chat_jwt_json_map_key(void *ctx, const unsigned char *p, size_t len)
{
    ngx_chat_jwt_json_t       *j = ctx;
    const ngx_chat_jwt_key_t  *k;

    if (j->depth != 1) {
        return 1;
    }

    for (k = j->keys; k->name; k++) {
        if (k->len == len && memcmp(k->name, p, len) == 0) {
            break;
        }
    }

    if (k->name == NULL) {
        j->key = NGX_CHAT_JWT_KEY_OTHER;
        return 1;
    }

    /*
     * a repeated key would make the token mean different things to
     * different parsers
     */

    if (j->seen & NGX_CHAT_JWT_SEEN(k->key)) {
        j->rc = j->bad;
        return 0;
    }

    j->seen |= NGX_CHAT_JWT_SEEN(k->key);
    j->key = k->key;

    return 1;
}


static int
ngx_chat_jwt_json_end(void *ctx)
{
    ngx_chat_jwt_json_t  *j = ctx;

    if (--j->depth == 0) {
        j->done = 1;
    }

    return 1;
}


/* a JSON number that is a non-negative integer fitting int64_t */

static int
ngx_chat_jwt_parse_int(const unsigned char *p, size_t len, int64_t *v)
{
    size_t    i;
    uint64_t  n, d;

    if (len == 0) {
        return 0;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            /* '-', '.', 'e', 'E', '+' */
            return 0;
        }

        d = p[i] - '0';

        if (n > ((uint64_t) INT64_MAX - d) / 10) {
            return 0;
        }

        n = n * 10 + d;
    }

    *v = (int64_t) n;

    return 1;
}


static uint8_t *
ngx_chat_jwt_put_str(uint8_t *d, const char *s, size_t len)
{
    memcpy(d, s, len);

    return d + len;
}


/* v >= 0 */

static uint8_t *
ngx_chat_jwt_put_int(uint8_t *d, int64_t v)
{
    size_t    n;
    uint64_t  u;
    uint8_t   tmp[20];

    u = (uint64_t) v;
    n = 0;

    do {
        tmp[n++] = (uint8_t) ('0' + u % 10);
        u /= 10;
    } while (u);

    while (n) {
        *d++ = tmp[--n];
    }

    return d;
}
