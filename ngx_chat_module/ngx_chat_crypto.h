
/*
 * ngx_chat_crypto.h: the two primitives the token, URL and SigV4 signers
 * share: strict base64url without padding (RFC 4648 section 5) and
 * HMAC-SHA256 into a fixed 32-byte buffer.  Pure code: no nginx headers,
 * links alone with libcrypto, so unit tests and fuzzers can use it.
 */


#ifndef _NGX_CHAT_CRYPTO_H_INCLUDED_
#define _NGX_CHAT_CRYPTO_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* output sizes of the base64url codec (no padding) */
#define NGX_CHAT_BASE64URL_ENCODED_LEN(n)  (((n) * 4 + 2) / 3)
#define NGX_CHAT_BASE64URL_DECODED_MAX(n)  (((n) / 4) * 3 + ((n) % 4) * 3 / 4)

/* HMAC-SHA256 output, in bytes */
#define NGX_CHAT_HMAC_SHA256_LEN           32


/*
 * base64url without padding.  dst must hold
 * NGX_CHAT_BASE64URL_ENCODED_LEN(len) bytes; returns the length written
 * (no NUL is added).
 */
size_t ngx_chat_base64url_encode(uint8_t *dst, const uint8_t *src,
    size_t len);

/*
 * Strict base64url decoding: only [A-Za-z0-9_-]; rejects '=', '+', '/',
 * whitespace, len % 4 == 1 and non-zero unused bits in the last character,
 * so every byte string has exactly one accepted encoding.  dst must hold
 * NGX_CHAT_BASE64URL_DECODED_MAX(len) bytes.  Returns 0 and sets *dst_len,
 * or -1 (then *dst_len is unchanged and dst may be partly written).
 */
int ngx_chat_base64url_decode(uint8_t *dst, size_t *dst_len,
    const uint8_t *src, size_t len);

/*
 * out = HMAC-SHA256(key, msg), NGX_CHAT_HMAC_SHA256_LEN bytes.  out may
 * be the key: the key is read before out is written.  Returns 0, or -1
 * when libcrypto fails (out unchanged).  No copy of the MAC is left on the
 * stack.
 */
int ngx_chat_hmac_sha256(const void *key, size_t key_len, const void *msg,
    size_t msg_len, uint8_t *out);


#endif /* _NGX_CHAT_CRYPTO_H_INCLUDED_ */
