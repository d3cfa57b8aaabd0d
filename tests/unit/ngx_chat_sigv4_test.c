
/*
 * ngx_chat_sigv4_test.c: unit tests of ngx_chat_sigv4.c.
 *
 *   ngx_chat_sigv4_test            AWS's published presigning example,
 *                                  encoding, dates, refusals
 *   ngx_chat_sigv4_test --presign  a filter for the oracle comparison
 *                                  (tests/node/sigv4-oracle.js): one case
 *                                  per input line, tab-separated fields,
 *                                  each hex-encoded so any byte can pass:
 *       method host path region access secret date expires
 *       nquery [name value]... nheaders [name value]...
 *     and for each case one output line: the presigned path?query, or
 *     "ERROR <rc>".
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_chat_sigv4.h"


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


static void
test_aws_example(void)
{
    int                   rc;
    size_t                len;
    char                  out[2048];
    const char           *sig;
    ngx_chat_sigv4_req_t  r;

    /*
     * AWS, "Authenticating Requests: Using Query Parameters (AWS Signature
     * Version 4)", section "An example".
     */

    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.host = "examplebucket.s3.amazonaws.com";
    r.host_len = strlen(r.host);
    r.path = "/test.txt";
    r.path_len = 9;
    r.region = "us-east-1";
    r.service = "s3";
    r.access_key = "AKIAIOSFODNN7EXAMPLE";
    r.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    r.amz_date = "20130524T000000Z";
    r.expires = 86400;

    rc = ngx_chat_sigv4_debug(&r, 0, out, sizeof(out), &len);
    CHECK(rc == NGX_CHAT_SIGV4_OK, "aws example: canonical request");
    CHECK(strcmp(out,
                 "GET\n"
                 "/test.txt\n"
                 "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                 "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                 "us-east-1%2Fs3%2Faws4_request"
                 "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                 "&X-Amz-SignedHeaders=host\n"
                 "host:examplebucket.s3.amazonaws.com\n"
                 "\n"
                 "host\n"
                 "UNSIGNED-PAYLOAD") == 0,
          "aws example: canonical request text");

    rc = ngx_chat_sigv4_debug(&r, 1, out, sizeof(out), &len);
    CHECK(rc == NGX_CHAT_SIGV4_OK
          && strcmp(out,
                    "AWS4-HMAC-SHA256\n"
                    "20130524T000000Z\n"
                    "20130524/us-east-1/s3/aws4_request\n"
                    "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a91"
                    "21cf58ad04") == 0,
          "aws example: string to sign (canonical request sha256)");

    rc = ngx_chat_sigv4_presign(&r, out, sizeof(out), &len);
    CHECK(rc == NGX_CHAT_SIGV4_OK, "aws example: presign");

    sig = strstr(out, "&X-Amz-Signature=");
    CHECK(sig && strcmp(sig + 17, "aeeed9bbccd4d02ee5c0109b86d86835f995330da"
                                  "4c265957d157751f604d404") == 0,
          "aws example: signature aeeed9bb...");
    CHECK(len == strlen(out), "aws example: length");
    CHECK(strncmp(out, "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&", 43)
          == 0, "aws example: url starts with the path and sorted query");

    /* too small a buffer */

    rc = ngx_chat_sigv4_presign(&r, out, len, &len);
    CHECK(rc == NGX_CHAT_SIGV4_ENOSPC, "output buffer one byte short");
}


static void
test_encoding(void)
{
    char    out[256];
    size_t  n;

    n = ngx_chat_sigv4_uri_encode("aZ09-_.~", 8, 0, out);
    CHECK(n == 8 && memcmp(out, "aZ09-_.~", 8) == 0, "unreserved kept");

    n = ngx_chat_sigv4_uri_encode("a b/c+d*", 8, 0, out);
    out[n] = '\0';
    CHECK(strcmp(out, "a%20b%2Fc%2Bd%2A") == 0, "query value encoding");

    n = ngx_chat_sigv4_uri_encode("/a b//c", 7, 1, out);
    out[n] = '\0';
    CHECK(strcmp(out, "/a%20b//c") == 0, "path keeps slashes, no collapse");

    n = ngx_chat_sigv4_uri_encode("\xc3\xa9\xe2\x82\xac", 5, 1, out);
    out[n] = '\0';
    CHECK(strcmp(out, "%C3%A9%E2%82%AC") == 0, "utf-8 bytes, uppercase hex");

    CHECK(ngx_chat_sigv4_uri_encode("!'()", 4, 0, NULL) == 12,
          "!'() are encoded (unlike encodeURIComponent)");
}


static void
test_dates(void)
{
    char  d[17];

    ngx_chat_sigv4_amz_date(0, d);
    CHECK(strcmp(d, "19700101T000000Z") == 0, "epoch");

    ngx_chat_sigv4_amz_date(1369353600, d);
    CHECK(strcmp(d, "20130524T000000Z") == 0, "2013-05-24");

    ngx_chat_sigv4_amz_date(951782400 + 86399, d);
    CHECK(strcmp(d, "20000229T235959Z") == 0, "leap day 2000");

    ngx_chat_sigv4_amz_date(4102444799LL, d);
    CHECK(strcmp(d, "20991231T235959Z") == 0, "2099-12-31");

    ngx_chat_sigv4_amz_date(1764300000LL, d);
    CHECK(strcmp(d, "20251128T032000Z") == 0, "2025-11-28");
}


static void
test_headers_and_refusals(void)
{
    int                     rc;
    size_t                  len;
    char                    out[4096];
    ngx_chat_sigv4_req_t    r;
    ngx_chat_sigv4_pair_t   h[3], q[1];

    memset(&r, 0, sizeof(r));
    r.method = "PUT";
    r.host = "127.0.0.1:4569";
    r.host_len = strlen(r.host);
    r.path = "/bucket/a b";
    r.path_len = strlen(r.path);
    r.region = "us-east-1";
    r.service = "s3";
    r.access_key = "AK";
    r.secret_key = "SK";
    r.amz_date = "20240101T000000Z";
    r.expires = 3600;

    h[0].name = "Content-Type";
    h[0].name_len = 12;
    h[0].value = "  image/png  ";
    h[0].value_len = 13;
    h[1].name = "content-length";
    h[1].name_len = 14;
    h[1].value = "10";
    h[1].value_len = 2;
    h[2].name = "X-Amz-Meta-A";
    h[2].name_len = 12;
    h[2].value = "a   b\t c";
    h[2].value_len = 8;

    r.headers = h;
    r.nheaders = 3;

    rc = ngx_chat_sigv4_debug(&r, 0, out, sizeof(out), &len);
    CHECK(rc == NGX_CHAT_SIGV4_OK
          && strstr(out, "\ncontent-length:10\ncontent-type:image/png\n"
                         "host:127.0.0.1:4569\nx-amz-meta-a:a b c\n\n"
                         "content-length;content-type;host;x-amz-meta-a\n")
          && strstr(out, "X-Amz-SignedHeaders=content-length%3Bcontent-type"
                         "%3Bhost%3Bx-amz-meta-a")
          && strncmp(out, "PUT\n/bucket/a%20b\n", 18) == 0,
          "headers lowercased, trimmed, sorted; port kept in host");

    q[0].name = "x-id";
    q[0].name_len = 4;
    q[0].value = "Put Object";
    q[0].value_len = 10;
    r.query = q;
    r.nquery = 1;

    rc = ngx_chat_sigv4_presign(&r, out, sizeof(out), &len);
    CHECK(rc == NGX_CHAT_SIGV4_OK && strstr(out, "&x-id=Put%20Object&")
          && strstr(out, "?X-Amz-Algorithm"),
          "extra query parameter sorted after X-Amz-* (bytewise)");

    h[1].name = "Host";
    h[1].name_len = 4;
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "a header named Host is refused");

    h[1].name = "content-TYPE";
    h[1].name_len = 12;
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "a repeated header is refused");

    h[1].name = "content-length";
    h[1].name_len = 14;
    h[1].value = "1\n0";
    h[1].value_len = 3;
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "a newline in a header is refused");

    h[1].value = "10";
    h[1].value_len = 2;

    r.expires = 0;
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "expires 0 refused");

    r.expires = 604801;
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "expires over 7 days refused");

    r.expires = 604800;
    r.amz_date = "20240101T00000Z";
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "short date refused");

    r.amz_date = "20240101T000000Z";
    r.path = "bucket/x";
    r.path_len = 8;
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_EINVAL, "relative path refused");

    r.path = "/bucket/x";
    r.session_token = "TOKEN/+=";
    CHECK(ngx_chat_sigv4_presign(&r, out, sizeof(out), &len)
          == NGX_CHAT_SIGV4_OK
          && strstr(out, "&X-Amz-Security-Token=TOKEN%2F%2B%3D&"),
          "session token is a signed parameter");
}


/* --presign: the oracle filter */

static int
unhex(const char *s, size_t n, char *out, size_t *len)
{
    size_t  i;
    int     hi, lo;

    if (n % 2) {
        return -1;
    }

    for (i = 0; i < n / 2; i++) {
        hi = s[2 * i];
        lo = s[2 * i + 1];
        hi = hi <= '9' ? hi - '0' : (hi | 0x20) - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : (lo | 0x20) - 'a' + 10;
        out[i] = (char) (hi << 4 | lo);
    }

    out[n / 2] = '\0';
    *len = n / 2;

    return 0;
}


static int
presign_filter(void)
{
    int                     rc;
    char                   *line, *f[256], *p, *out, *dec[256];
    size_t                  cap, nf, i, len, dlen[256];
    ssize_t                 n;
    ngx_chat_sigv4_req_t    r;
    ngx_chat_sigv4_pair_t   q[NGX_CHAT_SIGV4_MAX_PARAMS];
    ngx_chat_sigv4_pair_t   h[NGX_CHAT_SIGV4_MAX_HEADERS];
    size_t                  nq, nh, k;

    line = NULL;
    cap = 0;
    out = malloc(65536);

    if (out == NULL) {
        return 2;
    }

    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n') {
            line[--n] = '\0';
        }

        nf = 0;
        memset(dec, 0, sizeof(dec));

        for (p = line; nf < 256; ) {
            f[nf++] = p;
            p = strchr(p, '\t');
            if (p == NULL) {
                break;
            }
            *p++ = '\0';
        }

        for (i = 0; i < nf; i++) {
            dec[i] = malloc(strlen(f[i]) / 2 + 1);
            if (dec[i] == NULL
                || unhex(f[i], strlen(f[i]), dec[i], &dlen[i]) != 0)
            {
                printf("ERROR input\n");
                goto next;
            }
        }

        if (nf < 9) {
            printf("ERROR fields\n");
            goto next;
        }

        memset(&r, 0, sizeof(r));
        r.method = dec[0];
        r.host = dec[1];
        r.host_len = dlen[1];
        r.path = dec[2];
        r.path_len = dlen[2];
        r.region = dec[3];
        r.service = "s3";
        r.access_key = dec[4];
        r.secret_key = dec[5];
        r.amz_date = dec[6];
        r.expires = (uint32_t) strtoul(dec[7], NULL, 10);

        nq = strtoul(dec[8], NULL, 10);
        k = 9;

        for (i = 0; i < nq && i < NGX_CHAT_SIGV4_MAX_PARAMS && k + 1 < nf;
             i++, k += 2)
        {
            q[i].name = dec[k];
            q[i].name_len = dlen[k];
            q[i].value = dec[k + 1];
            q[i].value_len = dlen[k + 1];
        }

        nh = k < nf ? strtoul(dec[k], NULL, 10) : 0;
        k++;

        for (i = 0; i < nh && i < NGX_CHAT_SIGV4_MAX_HEADERS && k + 1 < nf;
             i++, k += 2)
        {
            h[i].name = dec[k];
            h[i].name_len = dlen[k];
            h[i].value = dec[k + 1];
            h[i].value_len = dlen[k + 1];
        }

        r.query = q;
        r.nquery = nq;
        r.headers = h;
        r.nheaders = nh;

        rc = ngx_chat_sigv4_presign(&r, out, 65536, &len);

        if (rc == NGX_CHAT_SIGV4_OK) {
            printf("%s\n", out);

        } else {
            printf("ERROR %d\n", rc);
        }

    next:

        for (k = 0; k < nf; k++) {
            free(dec[k]);
            dec[k] = NULL;
        }

        fflush(stdout);
    }

    free(line);
    free(out);

    return 0;
}


int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--presign") == 0) {
        return presign_filter();
    }

    test_aws_example();
    test_encoding();
    test_dates();
    test_headers_and_refusals();

    printf("1..%d\n", checks);
    printf("%d passed, %d failed\n", checks - failures, failures);

    return failures ? 1 : 0;
}
