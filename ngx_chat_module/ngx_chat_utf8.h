
/*
 * ngx_chat_utf8.h: strict, incremental UTF-8 validation.
 *
 * Owns the validator that RFC 6455 needs for text messages and close
 * reasons (section 8.1): a message may be split across any number of
 * frames and reads, so the validator is a small state machine whose state
 * the caller keeps between chunks.  It accepts exactly the well-formed
 * byte sequences of Unicode 15 table 3-7: no overlong forms, no encoded
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray or missing
 * continuation bytes, no bytes C0, C1 or F5..FF.
 *
 * Pure code: no nginx headers, no allocation, no globals but constant
 * tables.
 */


#ifndef _NGX_CHAT_UTF8_H_INCLUDED_
#define _NGX_CHAT_UTF8_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * States returned by ngx_chat_utf8_validate().  ACCEPT means "between
 * characters"; REJECT is sticky.  Any other value (2..8) means "inside a
 * multi-byte character" and is opaque: only pass it back in.
 */
#define NGX_CHAT_UTF8_ACCEPT  0
#define NGX_CHAT_UTF8_REJECT  1


/*
 * Feeds len bytes at p to the validator in the given state (start with
 * NGX_CHAT_UTF8_ACCEPT) and returns the new state.  Returns REJECT as soon
 * as an invalid byte is seen, and for an unknown state.  A whole text is
 * valid if and only if the state after its last chunk is ACCEPT; chunk
 * boundaries may fall anywhere, even inside a character.  p may be NULL
 * if len is 0.
 */
uint32_t ngx_chat_utf8_validate(uint32_t state, const uint8_t *p,
    size_t len);

/* one-shot check of a complete text: 0 if valid, -1 if not */
int ngx_chat_utf8_check(const uint8_t *p, size_t len);


#endif /* _NGX_CHAT_UTF8_H_INCLUDED_ */
