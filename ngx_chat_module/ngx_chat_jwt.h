
/*
 * ngx_chat_jwt.h: the pure JWT (HS256) token check used at the WebSocket
 * handshake, plus the user/device id syntax and a minting function for
 * tests and tools (strict base64url is in ngx_chat_crypto.h, included
 * here).  No nginx headers: this file links alone with ngx_chat_crypto.c,
 * libcrypto and libyajl so unit tests and fuzzers can use it.  The wire
 * format is documented for backend authors in docs/tokens.md.
 */


#ifndef _NGX_CHAT_JWT_H_INCLUDED_
#define _NGX_CHAT_JWT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

/* strict base64url, used by the token codec and its callers */
#include "ngx_chat_crypto.h"


/* user and device ids: 1..64 bytes of [A-Za-z0-9._@-] */
#define NGX_CHAT_ID_MAX              64

/* tokens longer than this are rejected before any decoding */
#define NGX_CHAT_JWT_MAX_LEN         4096

/* shortest HMAC secret sign and verify accept, in bytes */
#define NGX_CHAT_JWT_SECRET_MIN      32

/* big enough for any token ngx_chat_jwt_sign() makes, with its NUL */
#define NGX_CHAT_JWT_SIGN_MAX        512

/* return codes: 0 or negative */
#define NGX_CHAT_JWT_OK              0
/* not three base64url parts, bad base64url, bad JSON, too long */
#define NGX_CHAT_JWT_EFORMAT        -1
/* header is not {"alg":"HS256"} (+ optional "typ":"JWT"), or has "crit" */
#define NGX_CHAT_JWT_EALG           -2
/* signature does not match (or is not 32 bytes) */
#define NGX_CHAT_JWT_ESIG           -3
/* now >= exp + leeway */
#define NGX_CHAT_JWT_EEXPIRED       -4
/* now + leeway < nbf */
#define NGX_CHAT_JWT_ENOTYET        -5
/* sub/dev/exp missing or invalid, bad iat/nbf, duplicate claim key */
#define NGX_CHAT_JWT_ECLAIMS        -6
/* ngx_chat_jwt_sign(): output buffer too small */
#define NGX_CHAT_JWT_ENOSPACE       -7
/* secret shorter than NGX_CHAT_JWT_SECRET_MIN */
#define NGX_CHAT_JWT_ESECRET        -8
/* out of memory or libcrypto failure */
#define NGX_CHAT_JWT_EINTERNAL      -9


typedef struct {
    char      sub[NGX_CHAT_ID_MAX + 1];  /* user id, NUL-terminated */
    size_t    sub_len;
    char      dev[NGX_CHAT_ID_MAX + 1];  /* device id, NUL-terminated */
    size_t    dev_len;
    int64_t   exp;                       /* unix seconds, > 0 */
    int64_t   iat;                       /* 0 when absent */
    int64_t   nbf;                       /* 0 when absent */
} ngx_chat_jwt_claims_t;


/* short static text for logs; never NULL */
const char *ngx_chat_jwt_strerror(int rc);

/*
 * Verifies an HS256 token of len bytes (not NUL-terminated) at time "now"
 * (unix seconds), allowing "leeway" seconds of clock skew on exp and nbf
 * (a negative leeway counts as 0).  Checks, in order: format, header,
 * signature (constant time), then claims, exp, nbf; JSON of the claims is
 * not parsed until the signature has matched.
 *
 * *claims is zeroed on entry and filled when the signature matched and the
 * claims parsed: on NGX_CHAT_JWT_OK, and also on EEXPIRED and ENOTYET so
 * the caller can log who it was.  For any other code it stays zeroed.
 */
int ngx_chat_jwt_verify(const uint8_t *token, size_t len,
    const uint8_t *secret, size_t secret_len, int64_t now, int64_t leeway,
    ngx_chat_jwt_claims_t *claims);

/*
 * Mints a token: header {"alg":"HS256","typ":"JWT"}, claims
 * {"sub":...,"dev":...,"iat":...,"exp":...}.  exp must be > 0, iat >= 0,
 * ids must pass ngx_chat_id_valid() (else NGX_CHAT_JWT_ECLAIMS).  On OK the
 * token and a NUL are written to out and *out_len is the length without
 * the NUL; out_size must hold both (NGX_CHAT_JWT_SIGN_MAX always does),
 * else NGX_CHAT_JWT_ENOSPACE and out is not touched.
 */
int ngx_chat_jwt_sign(const char *sub, size_t sub_len, const char *dev,
    size_t dev_len, int64_t exp, int64_t iat, const uint8_t *secret,
    size_t secret_len, char *out, size_t out_size, size_t *out_len);

/* 1 if p is 1..NGX_CHAT_ID_MAX bytes of [A-Za-z0-9._@-], else 0 */
int ngx_chat_id_valid(const uint8_t *p, size_t len);


#endif /* _NGX_CHAT_JWT_H_INCLUDED_ */
