
/*
 * ngx_chat_sigv4.c: SigV4 query presigning (see ngx_chat_sigv4.h).
 *
 * The canonical request is built in a growable malloc()ed string:
 *   METHOD \n encoded-path \n sorted-query \n canonical-headers \n
 *   signed-header-names \n UNSIGNED-PAYLOAD
 * then the string to sign, the derived key (HMAC chain over "AWS4"+secret,
 * date, region, service, "aws4_request") and the signature.  Everything is
 * freed before returning; secrets are wiped from the stack.
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>

#include "ngx_chat_crypto.h"
#include "ngx_chat_sigv4.h"


typedef struct {
    char                    *p;
    size_t                   len;
    size_t                   cap;
    int                      failed;
} ngx_chat_sigv4_buf_t;


/* an encoded query parameter, for sorting */
typedef struct {
    char                    *name;
    size_t                   name_len;
    char                    *value;
    size_t                   value_len;
} ngx_chat_sigv4_param_t;


/* a header, lowercased and trimmed */
typedef struct {
    char                    *name;
    size_t                   name_len;
    char                    *value;
    size_t                   value_len;
} ngx_chat_sigv4_hdr_t;


static void ngx_chat_sigv4_add(ngx_chat_sigv4_buf_t *b, const char *s,
    size_t len);
static void ngx_chat_sigv4_adds(ngx_chat_sigv4_buf_t *b, const char *s);
static void ngx_chat_sigv4_add_encoded(ngx_chat_sigv4_buf_t *b,
    const char *s, size_t len, int keep_slash);
static int ngx_chat_sigv4_param_cmp(const void *a, const void *b);
static int ngx_chat_sigv4_hdr_cmp(const void *a, const void *b);
static int ngx_chat_sigv4_bytes_cmp(const char *a, size_t alen,
    const char *b, size_t blen);
static int ngx_chat_sigv4_valid(const ngx_chat_sigv4_req_t *r);
static int ngx_chat_sigv4_build(const ngx_chat_sigv4_req_t *r,
    ngx_chat_sigv4_buf_t *query, ngx_chat_sigv4_buf_t *creq,
    ngx_chat_sigv4_buf_t *sts);
static void ngx_chat_sigv4_hex(const unsigned char *in, size_t n, char *out);
static int ngx_chat_sigv4_output(const char *s, size_t n, char *out,
    size_t size, size_t *len);


static const char  ngx_chat_sigv4_hexdigits[] = "0123456789ABCDEF";


size_t
ngx_chat_sigv4_uri_encode(const char *s, size_t len, int keep_slash,
    char *out)
{
    size_t         i, n;
    unsigned char  c;

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~' || (keep_slash && c == '/'))
        {
            if (out) {
                out[n] = (char) c;
            }

            n++;
            continue;
        }

        if (out) {
            out[n] = '%';
            out[n + 1] = ngx_chat_sigv4_hexdigits[c >> 4];
            out[n + 2] = ngx_chat_sigv4_hexdigits[c & 0x0f];
        }

        n += 3;
    }

    return n;
}


void
ngx_chat_sigv4_amz_date(int64_t t, char *out)
{
    int64_t  days, secs, z, era, doe, yoe, y, doy, mp, d, m;

    days = t / 86400;
    secs = t % 86400;

    if (secs < 0) {
        secs += 86400;
        days--;
    }

    /* civil date from days since 1970-01-01 (proleptic Gregorian) */

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += (m <= 2);

    if (y < 0) {
        y = 0;
    }

    out[0] = (char) ('0' + (y / 1000) % 10);
    out[1] = (char) ('0' + (y / 100) % 10);
    out[2] = (char) ('0' + (y / 10) % 10);
    out[3] = (char) ('0' + y % 10);
    out[4] = (char) ('0' + m / 10);
    out[5] = (char) ('0' + m % 10);
    out[6] = (char) ('0' + d / 10);
    out[7] = (char) ('0' + d % 10);
    out[8] = 'T';
    out[9] = (char) ('0' + secs / 36000);
    out[10] = (char) ('0' + (secs / 3600) % 10);
    out[11] = (char) ('0' + (secs % 3600) / 600);
    out[12] = (char) ('0' + ((secs % 3600) / 60) % 10);
    out[13] = (char) ('0' + (secs % 60) / 10);
    out[14] = (char) ('0' + secs % 10);
    out[15] = 'Z';
    out[16] = '\0';
}


int
ngx_chat_sigv4_presign(const ngx_chat_sigv4_req_t *r, char *out,
    size_t size, size_t *len)
{
    int                   rc;
    unsigned char         key[32], sig[32];
    char                  date[9], hex[65];
    ngx_chat_sigv4_buf_t  query, creq, sts, url, k;

    memset(&query, 0, sizeof(query));
    memset(&creq, 0, sizeof(creq));
    memset(&sts, 0, sizeof(sts));
    memset(&url, 0, sizeof(url));
    memset(&k, 0, sizeof(k));

    rc = ngx_chat_sigv4_build(r, &query, &creq, &sts);
    if (rc != NGX_CHAT_SIGV4_OK) {
        goto done;
    }

    /* kDate = HMAC("AWS4" + secret, date), then region, service, request */

    memcpy(date, r->amz_date, 8);
    date[8] = '\0';

    ngx_chat_sigv4_adds(&k, "AWS4");
    ngx_chat_sigv4_adds(&k, r->secret_key);

    rc = NGX_CHAT_SIGV4_ERROR;

    if (k.failed
        || ngx_chat_hmac_sha256((unsigned char *) k.p, k.len, date, 8, key)
        || ngx_chat_hmac_sha256(key, 32, r->region, strlen(r->region), key)
        || ngx_chat_hmac_sha256(key, 32, r->service, strlen(r->service), key)
        || ngx_chat_hmac_sha256(key, 32, "aws4_request", 12, key)
        || ngx_chat_hmac_sha256(key, 32, sts.p, sts.len, sig))
    {
        goto done;
    }

    ngx_chat_sigv4_hex(sig, 32, hex);

    ngx_chat_sigv4_add_encoded(&url, r->path, r->path_len, 1);
    ngx_chat_sigv4_add(&url, "?", 1);
    ngx_chat_sigv4_add(&url, query.p, query.len);
    ngx_chat_sigv4_adds(&url, "&X-Amz-Signature=");
    ngx_chat_sigv4_add(&url, hex, 64);

    if (url.failed) {
        goto done;
    }

    rc = ngx_chat_sigv4_output(url.p, url.len, out, size, len);

done:

    OPENSSL_cleanse(key, sizeof(key));

    if (k.p) {
        OPENSSL_cleanse(k.p, k.cap);
    }

    free(k.p);
    free(query.p);
    free(creq.p);
    free(sts.p);
    free(url.p);

    return rc;
}


int
ngx_chat_sigv4_debug(const ngx_chat_sigv4_req_t *r, int what, char *out,
    size_t size, size_t *len)
{
    int                   rc;
    ngx_chat_sigv4_buf_t  query, creq, sts;

    memset(&query, 0, sizeof(query));
    memset(&creq, 0, sizeof(creq));
    memset(&sts, 0, sizeof(sts));

    rc = ngx_chat_sigv4_build(r, &query, &creq, &sts);

    if (rc == NGX_CHAT_SIGV4_OK) {
        rc = what == 0 ? ngx_chat_sigv4_output(creq.p, creq.len, out, size,
                                               len)
                       : ngx_chat_sigv4_output(sts.p, sts.len, out, size,
                                               len);
    }

    free(query.p);
    free(creq.p);
    free(sts.p);

    return rc;
}


/* the query (without signature), canonical request and string to sign */
static int
ngx_chat_sigv4_build(const ngx_chat_sigv4_req_t *r,
    ngx_chat_sigv4_buf_t *query, ngx_chat_sigv4_buf_t *creq,
    ngx_chat_sigv4_buf_t *sts)
{
    int                      rc;
    char                    *q;
    size_t                   i, j, np, nh, vlen;
    unsigned char            hash[32];
    char                     hex[65], expires[16], *e;
    uint32_t                 x;
    ngx_chat_sigv4_buf_t     cred, names, strings;
    ngx_chat_sigv4_hdr_t     hdrs[NGX_CHAT_SIGV4_MAX_HEADERS + 1];
    ngx_chat_sigv4_param_t   params[NGX_CHAT_SIGV4_MAX_PARAMS + 7];

    if (!ngx_chat_sigv4_valid(r)) {
        return NGX_CHAT_SIGV4_EINVAL;
    }

    memset(&cred, 0, sizeof(cred));
    memset(&names, 0, sizeof(names));
    memset(&strings, 0, sizeof(strings));

    rc = NGX_CHAT_SIGV4_ERROR;

    /* headers: host first, then the extra ones, lowercased and trimmed */

    nh = 0;
    ngx_chat_sigv4_add(&strings, "", 0);

    /*
     * Header names and values are copied into one buffer whose address
     * may move while it grows, so offsets are kept first and turned into
     * pointers at the end.
     */

    hdrs[nh].name = (char *) 0;
    hdrs[nh].name_len = 4;
    ngx_chat_sigv4_add(&strings, "host", 4);
    hdrs[nh].value = (char *) (uintptr_t) strings.len;
    ngx_chat_sigv4_add(&strings, r->host, r->host_len);
    hdrs[nh].value_len = r->host_len;
    nh++;

    for (i = 0; i < r->nheaders; i++) {
        const ngx_chat_sigv4_pair_t  *h = &r->headers[i];
        size_t                        start, k;
        int                           space;

        hdrs[nh].name = (char *) (uintptr_t) strings.len;
        hdrs[nh].name_len = h->name_len;

        for (k = 0; k < h->name_len; k++) {
            char c = h->name[k];

            if (c >= 'A' && c <= 'Z') {
                c = (char) (c - 'A' + 'a');
            }

            ngx_chat_sigv4_add(&strings, &c, 1);
        }

        /* trim, and collapse runs of spaces into one */

        start = strings.len;
        space = 0;

        for (k = 0; k < h->value_len; k++) {
            char c = h->value[k];

            if (c == ' ' || c == '\t') {
                space = 1;
                continue;
            }

            if (space && strings.len > start) {
                ngx_chat_sigv4_add(&strings, " ", 1);
            }

            space = 0;
            ngx_chat_sigv4_add(&strings, &c, 1);
        }

        hdrs[nh].value = (char *) (uintptr_t) start;
        hdrs[nh].value_len = strings.len - start;
        nh++;
    }

    if (strings.failed) {
        goto done;
    }

    for (i = 0; i < nh; i++) {
        hdrs[i].name = strings.p + (uintptr_t) hdrs[i].name;
        hdrs[i].value = strings.p + (uintptr_t) hdrs[i].value;
    }

    qsort(hdrs, nh, sizeof(ngx_chat_sigv4_hdr_t), ngx_chat_sigv4_hdr_cmp);

    for (i = 1; i < nh; i++) {
        if (hdrs[i].name_len == hdrs[i - 1].name_len
            && memcmp(hdrs[i].name, hdrs[i - 1].name, hdrs[i].name_len) == 0)
        {
            rc = NGX_CHAT_SIGV4_EINVAL;
            goto done;
        }
    }

    for (i = 0; i < nh; i++) {
        if (i) {
            ngx_chat_sigv4_add(&names, ";", 1);
        }

        ngx_chat_sigv4_add(&names, hdrs[i].name, hdrs[i].name_len);
    }

    /* the credential scope and the X-Amz-* parameters */

    ngx_chat_sigv4_adds(&cred, r->access_key);
    ngx_chat_sigv4_add(&cred, "/", 1);
    ngx_chat_sigv4_add(&cred, r->amz_date, 8);
    ngx_chat_sigv4_add(&cred, "/", 1);
    ngx_chat_sigv4_adds(&cred, r->region);
    ngx_chat_sigv4_add(&cred, "/", 1);
    ngx_chat_sigv4_adds(&cred, r->service);
    ngx_chat_sigv4_adds(&cred, "/aws4_request");

    e = expires + sizeof(expires);
    *--e = '\0';
    x = r->expires;

    do {
        *--e = (char) ('0' + x % 10);
        x /= 10;
    } while (x);

    if (cred.failed || names.failed) {
        goto done;
    }

    np = 0;

#define ngx_chat_sigv4_param(n, nl, val, vl)                                 \
    params[np].name_len = ngx_chat_sigv4_uri_encode(n, nl, 0, NULL);        \
    params[np].value_len = ngx_chat_sigv4_uri_encode(val, vl, 0, NULL);     \
    params[np].name = malloc(params[np].name_len                            \
                             + params[np].value_len + 1);                   \
    if (params[np].name == NULL) {                                          \
        goto free_params;                                                   \
    }                                                                       \
    params[np].value = params[np].name + params[np].name_len;               \
    (void) ngx_chat_sigv4_uri_encode(n, nl, 0, params[np].name);            \
    (void) ngx_chat_sigv4_uri_encode(val, vl, 0, params[np].value);         \
    np++

    ngx_chat_sigv4_param("X-Amz-Algorithm", 15, "AWS4-HMAC-SHA256", 16);
    ngx_chat_sigv4_param("X-Amz-Credential", 16, cred.p, cred.len);
    ngx_chat_sigv4_param("X-Amz-Date", 10, r->amz_date,
                         NGX_CHAT_SIGV4_DATE_LEN);
    ngx_chat_sigv4_param("X-Amz-Expires", 13, e, strlen(e));
    ngx_chat_sigv4_param("X-Amz-SignedHeaders", 19, names.p, names.len);

    if (r->session_token) {
        ngx_chat_sigv4_param("X-Amz-Security-Token", 20, r->session_token,
                             strlen(r->session_token));
    }

    for (i = 0; i < r->nquery; i++) {
        ngx_chat_sigv4_param(r->query[i].name, r->query[i].name_len,
                             r->query[i].value, r->query[i].value_len);
    }

#undef ngx_chat_sigv4_param

    qsort(params, np, sizeof(ngx_chat_sigv4_param_t),
          ngx_chat_sigv4_param_cmp);

    for (i = 0; i < np; i++) {
        if (i) {
            ngx_chat_sigv4_add(query, "&", 1);
        }

        ngx_chat_sigv4_add(query, params[i].name, params[i].name_len);
        ngx_chat_sigv4_add(query, "=", 1);
        ngx_chat_sigv4_add(query, params[i].value, params[i].value_len);
    }

    /* the canonical request */

    ngx_chat_sigv4_adds(creq, r->method);
    ngx_chat_sigv4_add(creq, "\n", 1);
    ngx_chat_sigv4_add_encoded(creq, r->path, r->path_len, 1);
    ngx_chat_sigv4_add(creq, "\n", 1);
    ngx_chat_sigv4_add(creq, query->p ? query->p : "", query->len);
    ngx_chat_sigv4_add(creq, "\n", 1);

    for (i = 0; i < nh; i++) {
        ngx_chat_sigv4_add(creq, hdrs[i].name, hdrs[i].name_len);
        ngx_chat_sigv4_add(creq, ":", 1);
        ngx_chat_sigv4_add(creq, hdrs[i].value, hdrs[i].value_len);
        ngx_chat_sigv4_add(creq, "\n", 1);
    }

    ngx_chat_sigv4_add(creq, "\n", 1);
    ngx_chat_sigv4_add(creq, names.p, names.len);
    ngx_chat_sigv4_adds(creq, "\nUNSIGNED-PAYLOAD");

    if (query->failed || creq->failed) {
        goto free_params;
    }

    if (EVP_Digest(creq->p, creq->len, hash, NULL, EVP_sha256(), NULL) != 1)
    {
        goto free_params;
    }

    ngx_chat_sigv4_hex(hash, 32, hex);

    /* the string to sign */

    ngx_chat_sigv4_adds(sts, "AWS4-HMAC-SHA256\n");
    ngx_chat_sigv4_add(sts, r->amz_date, NGX_CHAT_SIGV4_DATE_LEN);
    ngx_chat_sigv4_add(sts, "\n", 1);
    /* the scope is the credential without the access key */
    q = memchr(cred.p, '/', cred.len);
    vlen = cred.len - (size_t) (q + 1 - cred.p);
    ngx_chat_sigv4_add(sts, q + 1, vlen);
    ngx_chat_sigv4_add(sts, "\n", 1);
    ngx_chat_sigv4_add(sts, hex, 64);

    if (!sts->failed) {
        rc = NGX_CHAT_SIGV4_OK;
    }

free_params:

    for (j = 0; j < np; j++) {
        free(params[j].name);
    }

done:

    free(cred.p);
    free(names.p);
    free(strings.p);

    return rc;
}


static int
ngx_chat_sigv4_valid(const ngx_chat_sigv4_req_t *r)
{
    size_t  i, k;

    if (r->method == NULL || r->method[0] == '\0' || r->host == NULL
        || r->host_len == 0 || r->path == NULL || r->path_len == 0
        || r->path[0] != '/' || r->region == NULL || r->region[0] == '\0'
        || r->service == NULL || r->service[0] == '\0'
        || r->access_key == NULL || r->access_key[0] == '\0'
        || r->secret_key == NULL || r->amz_date == NULL
        || r->expires < 1 || r->expires > NGX_CHAT_SIGV4_EXPIRES_MAX
        || r->nquery > NGX_CHAT_SIGV4_MAX_PARAMS
        || r->nheaders > NGX_CHAT_SIGV4_MAX_HEADERS
        || (r->nquery && r->query == NULL)
        || (r->nheaders && r->headers == NULL))
    {
        return 0;
    }

    /* the date: 8 digits, 'T', 6 digits, 'Z' */

    for (i = 0; i < NGX_CHAT_SIGV4_DATE_LEN; i++) {
        char c = r->amz_date[i];

        if (i == 8 ? c != 'T'
            : i == 15 ? c != 'Z' : (c < '0' || c > '9'))
        {
            return 0;
        }
    }

    if (r->amz_date[NGX_CHAT_SIGV4_DATE_LEN] != '\0') {
        return 0;
    }

    for (i = 0; i < r->host_len; i++) {
        if ((unsigned char) r->host[i] <= ' ' || r->host[i] == 0x7f) {
            return 0;
        }
    }

    for (i = 0; i < r->nheaders; i++) {
        const ngx_chat_sigv4_pair_t  *h = &r->headers[i];

        if (h->name_len == 0 || h->name == NULL
            || (h->value_len && h->value == NULL))
        {
            return 0;
        }

        if (h->name_len == 4
            && (h->name[0] | 0x20) == 'h' && (h->name[1] | 0x20) == 'o'
            && (h->name[2] | 0x20) == 's' && (h->name[3] | 0x20) == 't')
        {
            return 0;
        }

        for (k = 0; k < h->name_len; k++) {
            unsigned char c = (unsigned char) h->name[k];

            if (c <= ' ' || c >= 0x7f || c == ':') {
                return 0;
            }
        }

        for (k = 0; k < h->value_len; k++) {
            unsigned char c = (unsigned char) h->value[k];

            if ((c < ' ' && c != '\t') || c == 0x7f) {
                return 0;
            }
        }
    }

    return 1;
}


static void
ngx_chat_sigv4_add(ngx_chat_sigv4_buf_t *b, const char *s, size_t len)
{
    char    *p;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + len + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;

        while (cap < b->len + len + 1) {
            cap *= 2;
        }

        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->p = p;
        b->cap = cap;
    }

    if (len) {
        memcpy(b->p + b->len, s, len);
    }

    b->len += len;
    b->p[b->len] = '\0';
}


static void
ngx_chat_sigv4_adds(ngx_chat_sigv4_buf_t *b, const char *s)
{
    ngx_chat_sigv4_add(b, s, strlen(s));
}


static void
ngx_chat_sigv4_add_encoded(ngx_chat_sigv4_buf_t *b, const char *s,
    size_t len, int keep_slash)
{
    char    *tmp;
    size_t   n;

    n = ngx_chat_sigv4_uri_encode(s, len, keep_slash, NULL);

    tmp = malloc(n + 1);
    if (tmp == NULL) {
        b->failed = 1;
        return;
    }

    (void) ngx_chat_sigv4_uri_encode(s, len, keep_slash, tmp);
    ngx_chat_sigv4_add(b, tmp, n);
    free(tmp);
}


static int
ngx_chat_sigv4_bytes_cmp(const char *a, size_t alen, const char *b,
    size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    if (rc) {
        return rc;
    }

    return alen < blen ? -1 : (alen > blen);
}


static int
ngx_chat_sigv4_param_cmp(const void *a, const void *b)
{
    int                            rc;
    const ngx_chat_sigv4_param_t  *x = a, *y = b;

    rc = ngx_chat_sigv4_bytes_cmp(x->name, x->name_len, y->name,
                                  y->name_len);
    if (rc) {
        return rc;
    }

    return ngx_chat_sigv4_bytes_cmp(x->value, x->value_len, y->value,
                                    y->value_len);
}


static int
ngx_chat_sigv4_hdr_cmp(const void *a, const void *b)
{
    const ngx_chat_sigv4_hdr_t  *x = a, *y = b;

    return ngx_chat_sigv4_bytes_cmp(x->name, x->name_len, y->name,
                                    y->name_len);
}


static void
ngx_chat_sigv4_hex(const unsigned char *in, size_t n, char *out)
{
    static const char  digits[] = "0123456789abcdef";

    size_t  i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }

    out[2 * n] = '\0';
}


static int
ngx_chat_sigv4_output(const char *s, size_t n, char *out, size_t size,
    size_t *len)
{
    if (n + 1 > size) {
        return NGX_CHAT_SIGV4_ENOSPC;
    }

    memcpy(out, s, n);
    out[n] = '\0';

    if (len) {
        *len = n;
    }

    return NGX_CHAT_SIGV4_OK;
}
