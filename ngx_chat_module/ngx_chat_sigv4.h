
/*
 * ngx_chat_sigv4: AWS Signature Version 4 query presigning for S3 (the
 * "X-Amz-Expires" form of presigned URLs), as described in AWS's
 * "Authenticating Requests: Using Query Parameters".
 *
 * Pure code: no nginx header, no I/O, no clock; OpenSSL's libcrypto for
 * SHA-256 and HMAC only.  The caller gives the time as an X-Amz-Date
 * string (ngx_chat_sigv4_amz_date() formats one from unix time), so the
 * output is a function of the input alone and unit tests can compare it
 * with AWS's published example and with independent signers.
 *
 * S3 rules apply: the path is URI-encoded once, segment by segment ('/'
 * kept), with no normalisation of "//" or dot segments, and the payload is
 * "UNSIGNED-PAYLOAD".
 */


#ifndef _NGX_CHAT_SIGV4_H_INCLUDED_
#define _NGX_CHAT_SIGV4_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* return codes */
#define NGX_CHAT_SIGV4_OK          0
#define NGX_CHAT_SIGV4_EINVAL      1   /* an input is missing or invalid */
#define NGX_CHAT_SIGV4_ENOSPC      2   /* the output buffer is too small */
#define NGX_CHAT_SIGV4_ERROR      -1   /* out of memory, libcrypto failed */

#define NGX_CHAT_SIGV4_EXPIRES_MAX      604800  /* seven days */
#define NGX_CHAT_SIGV4_MAX_PARAMS       64
#define NGX_CHAT_SIGV4_MAX_HEADERS      32
#define NGX_CHAT_SIGV4_DATE_LEN         16      /* YYYYMMDDTHHMMSSZ */


/* a query parameter or a header, not encoded; lengths in bytes */
typedef struct {
    const char              *name;
    size_t                   name_len;
    const char              *value;
    size_t                   value_len;
} ngx_chat_sigv4_pair_t;


typedef struct {
    const char              *method;        /* "GET", "PUT", "HEAD"... */
    const char              *host;          /* the Host header as sent,
                                               with ":port" unless it is
                                               the scheme's default */
    size_t                   host_len;
    const char              *path;          /* not encoded, starts with
                                               '/': "/bucket/my key" */
    size_t                   path_len;
    const ngx_chat_sigv4_pair_t  *query;    /* more parameters, signed */
    size_t                   nquery;
    const ngx_chat_sigv4_pair_t  *headers;  /* more signed headers (the
                                               client must send them with
                                               these values) */
    size_t                   nheaders;
    const char              *region;        /* "us-east-1" */
    const char              *service;       /* "s3" */
    const char              *access_key;
    const char              *secret_key;
    const char              *session_token; /* NULL: none */
    const char              *amz_date;      /* YYYYMMDDTHHMMSSZ */
    uint32_t                 expires;       /* 1..604800 seconds */
} ngx_chat_sigv4_req_t;


/*
 * Presigns r.  On success out holds the encoded path, '?', the query
 * (sorted, with every X-Amz-* parameter) and "&X-Amz-Signature=<hex>",
 * NUL-terminated, and *len its length; prefix "scheme://host" to get the
 * URL.  Returns NGX_CHAT_SIGV4_OK, EINVAL (a required string missing, a
 * malformed date, expires out of range, a header named "host", an empty or
 * repeated header name, a control character in a header, too many
 * parameters or headers), ENOSPC or ERROR.
 */
int ngx_chat_sigv4_presign(const ngx_chat_sigv4_req_t *r, char *out,
    size_t size, size_t *len);

/*
 * The same steps, stopping early, for tests: the canonical request (what=0)
 * or the string to sign (what=1) of r, NUL-terminated in out.
 */
int ngx_chat_sigv4_debug(const ngx_chat_sigv4_req_t *r, int what, char *out,
    size_t size, size_t *len);

/*
 * RFC 3986 encoding as SigV4 wants it: A-Z a-z 0-9 - _ . ~ stay, every
 * other byte becomes %XX (uppercase hex); with keep_slash, '/' stays too.
 * Writes to out (which may be NULL) and returns the encoded length.
 */
size_t ngx_chat_sigv4_uri_encode(const char *s, size_t len, int keep_slash,
    char *out);

/* formats unix time t (UTC) as YYYYMMDDTHHMMSSZ plus a NUL in out[17] */
void ngx_chat_sigv4_amz_date(int64_t t, char *out);


#endif /* _NGX_CHAT_SIGV4_H_INCLUDED_ */
