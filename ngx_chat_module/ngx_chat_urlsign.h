
/*
 * ngx_chat_urlsign: the HMAC-SHA256 signed URLs of the local media store.
 *
 * An upload (PUT) or download (GET) URL is /<location>/<id>?<query> where
 * the query carries every fact nginx needs to serve the request without
 * asking PostgreSQL, and a signature over all of them and the object id:
 *
 *   op=put|get&type=<content type>&size=<bytes>&sha256=<64 hex>
 *   &user=<user id>&dev=<device id>&exp=<unix seconds>&sig=<43 base64url>
 *
 * The signed string is, with "\n" between the fields (none may contain a
 * control character, so it is unambiguous):
 *
 *   "ngx_chat-media-v1", op, id, type, size, sha256, user, dev, exp
 *
 * so a URL cannot be replayed for another object, another operation,
 * another size, hash, type or device, or after exp.  For a download the
 * device is who the URL was issued to: nginx records that device as having
 * received the object once the download completes.
 *
 * Pure code: no nginx header, no clock (the caller passes "now"), libcrypto
 * for HMAC only.
 */


#ifndef _NGX_CHAT_URLSIGN_H_INCLUDED_
#define _NGX_CHAT_URLSIGN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* return codes */
#define NGX_CHAT_URLSIGN_OK           0
#define NGX_CHAT_URLSIGN_EMALFORMED   1   /* a parameter is missing,
                                             repeated or invalid */
#define NGX_CHAT_URLSIGN_ESIG         2   /* the signature does not match */
#define NGX_CHAT_URLSIGN_EEXPIRED     3   /* valid, but now > exp */
#define NGX_CHAT_URLSIGN_ENOSPC       4   /* output buffer too small */
#define NGX_CHAT_URLSIGN_ERROR       -1   /* libcrypto failed */

#define NGX_CHAT_URLSIGN_PUT          1
#define NGX_CHAT_URLSIGN_GET          2

#define NGX_CHAT_URLSIGN_ID_MAX       64
#define NGX_CHAT_URLSIGN_TYPE_MAX     127
#define NGX_CHAT_URLSIGN_SIG_LEN      43

/* a buffer this large always holds a signed query */
#define NGX_CHAT_URLSIGN_QUERY_MAX    1024


typedef struct {
    int                      op;            /* NGX_CHAT_URLSIGN_PUT/GET */
    const char              *id;            /* 1-64 of A-Z a-z 0-9 . _ - */
    size_t                   id_len;
    const char              *type;          /* 1-127 of a-z 0-9 / + . -
                                               and the rest of RFC 6838's
                                               restricted-name chars */
    size_t                   type_len;
    int64_t                  size;          /* 0..2^53 */
    const char              *sha256;        /* 64 lowercase hex */
    size_t                   sha256_len;
    const char              *user;          /* 1-64 of A-Z a-z 0-9 . _ @ - */
    size_t                   user_len;
    const char              *device;        /* likewise */
    size_t                   device_len;
    int64_t                  expires;       /* unix seconds, >= 0 */
} ngx_chat_urlsign_t;


/*
 * Writes the signed query of u (no leading '?') to out, NUL-terminated,
 * and its length to *len.  Returns OK, EMALFORMED (a field is invalid),
 * ENOSPC or ERROR.
 */
int ngx_chat_urlsign_sign(const unsigned char *key, size_t key_len,
    const ngx_chat_urlsign_t *u, char *out, size_t size, size_t *len);

/*
 * Checks the query of a request for object id.  The parameters above must
 * each be present once (others are ignored); their decoded values are
 * copied into buf (buf_size >= query_len suffices) and u points into it.
 * The signature is compared in constant time, then exp with now.
 * Returns OK, EMALFORMED, ESIG, EEXPIRED (u is filled: the caller may log
 * it) or ERROR.
 */
int ngx_chat_urlsign_verify(const unsigned char *key, size_t key_len,
    const char *id, size_t id_len, const char *query, size_t query_len,
    int64_t now, ngx_chat_urlsign_t *u, char *buf, size_t buf_size);


#endif /* _NGX_CHAT_URLSIGN_H_INCLUDED_ */
