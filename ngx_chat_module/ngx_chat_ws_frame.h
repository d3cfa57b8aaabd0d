
/*
 * ngx_chat_ws_frame.h: the WebSocket (RFC 6455) frame codec.
 *
 * Owns the byte-level rules of section 5: parsing client frame headers
 * (with every check a server must make before it reads a payload),
 * unmasking payloads piecewise, writing unmasked server frame headers, and
 * building and checking close payloads (section 5.5.1 and 7.4).  It knows
 * nothing of connections, buffers or messages: fragment reassembly, the
 * message size limit across fragments and UTF-8 state of a text message
 * belong to the caller (ngx_chat_utf8.h helps with the last).
 *
 * Pure code: no nginx headers, no allocation, no globals.
 */


#ifndef _NGX_CHAT_WS_FRAME_H_INCLUDED_
#define _NGX_CHAT_WS_FRAME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* opcodes */
#define NGX_CHAT_WS_OP_CONT    0x0
#define NGX_CHAT_WS_OP_TEXT    0x1
#define NGX_CHAT_WS_OP_BINARY  0x2
#define NGX_CHAT_WS_OP_CLOSE   0x8
#define NGX_CHAT_WS_OP_PING    0x9
#define NGX_CHAT_WS_OP_PONG    0xA

#define NGX_CHAT_WS_OP_IS_CONTROL(op)  (((op) & 0x8) != 0)


/* return codes of ngx_chat_ws_frame_parse() and ngx_chat_ws_parse_close() */
#define NGX_CHAT_WS_FRAME_OK        0   /* a whole header parsed */
#define NGX_CHAT_WS_FRAME_AGAIN     1   /* need more bytes */
#define NGX_CHAT_WS_FRAME_EPROTO   -1   /* protocol error -> close 1002 */
#define NGX_CHAT_WS_FRAME_ETOOBIG  -2   /* payload over limit -> close 1009 */
#define NGX_CHAT_WS_FRAME_EUTF8    -3   /* close reason not UTF-8 -> 1007 */


/* sizes */
#define NGX_CHAT_WS_FRAME_MAX_HEADER         14  /* client: 2 + 8 + 4 */
#define NGX_CHAT_WS_FRAME_MAX_SERVER_HEADER  10  /* server: 2 + 8 */
#define NGX_CHAT_WS_CONTROL_MAX_PAYLOAD      125
#define NGX_CHAT_WS_CLOSE_REASON_MAX         123 /* 125 - 2-byte code */


/*
 * close codes: RFC 6455 section 7.4.1 and ours (documented in
 * docs/protocol.md); the one set of names, used by the codec here and by
 * the transport and the layers above it
 */
#define NGX_CHAT_CLOSE_NORMAL          1000
#define NGX_CHAT_CLOSE_GOING_AWAY      1001
#define NGX_CHAT_CLOSE_PROTOCOL        1002
#define NGX_CHAT_CLOSE_UNSUPPORTED     1003
#define NGX_CHAT_CLOSE_NO_STATUS       1005  /* never sent on the wire */
#define NGX_CHAT_CLOSE_ABNORMAL        1006  /* never sent on the wire */
#define NGX_CHAT_CLOSE_BAD_DATA        1007
#define NGX_CHAT_CLOSE_POLICY          1008
#define NGX_CHAT_CLOSE_TOO_BIG         1009
#define NGX_CHAT_CLOSE_EXTENSION       1010
#define NGX_CHAT_CLOSE_INTERNAL        1011
#define NGX_CHAT_CLOSE_APP_MIN         3000  /* registered and private */
#define NGX_CHAT_CLOSE_REPLACED        4001
#define NGX_CHAT_CLOSE_REMOVED         4004
#define NGX_CHAT_CLOSE_RATE_LIMITED    4008
#define NGX_CHAT_CLOSE_APP_MAX         4999


typedef struct {
    uint64_t  payload_len;    /* declared payload length */
    uint8_t   mask[4];        /* masking key, valid if masked */
    unsigned  opcode:4;       /* NGX_CHAT_WS_OP_* */
    unsigned  fin:1;          /* last frame of a message */
    unsigned  masked:1;       /* always 1 for an accepted client frame */
    size_t    header_len;     /* 2..14: the payload starts at p + this */
} ngx_chat_ws_frame_t;


/*
 * Parses a client frame header from the start of p[0..len).  Not
 * resumable: on AGAIN the caller keeps the bytes and calls again with
 * more, from the same start.  Returns:
 *
 *   OK       the header is complete; *f is filled in and the payload
 *            starts at p + f->header_len (it may not have arrived yet);
 *   AGAIN    len is shorter than the header and nothing seen so far is
 *            wrong; *f is unchanged;
 *   EPROTO   RSV bits set, unknown opcode (3..7, B..F), unmasked frame,
 *            fragmented control frame, control payload over 125 bytes,
 *            64-bit length with the top bit set, or a length not encoded
 *            in the shortest form; *f is unchanged;
 *   ETOOBIG  a data frame (opcode 0, 1, 2) declares more than max_payload
 *            bytes; returned as soon as the length is readable, before
 *            the masking key arrives.  f->opcode, f->fin and
 *            f->payload_len are set, other fields are not.
 *
 * Errors are reported as early as the bytes allow, and a result other than
 * AGAIN for some prefix of a stream is the result for every longer prefix.
 */
int ngx_chat_ws_frame_parse(const uint8_t *p, size_t len,
    uint64_t max_payload, ngx_chat_ws_frame_t *f);

/*
 * XORs p[0..len) with the masking key in place.  offset is the position
 * of p[0] within the frame payload, so a payload may be unmasked in pieces
 * as it arrives.  Unmasking twice restores the data.
 */
void ngx_chat_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4],
    uint64_t offset);

/* size of the server (unmasked) header for a payload: 2, 4 or 10 */
size_t ngx_chat_ws_frame_header_size(uint64_t payload_len);

/*
 * Writes an unmasked server frame header to out (room for
 * NGX_CHAT_WS_FRAME_MAX_SERVER_HEADER bytes) in the shortest encoding and
 * returns its size.  payload_len must be below 2^63; the caller keeps
 * control payloads within 125 bytes.
 */
size_t ngx_chat_ws_frame_write_header(uint8_t *out, int opcode, int fin,
    uint64_t payload_len);

/*
 * Builds a close frame payload in out (room for 125 bytes): the code in
 * network order and the reason, cut to 123 bytes without splitting a
 * UTF-8 character.  Returns the payload length.  A code of 0 builds the
 * empty payload ("no status"), and the reason is then ignored.  reason
 * may be NULL if reason_len is 0.
 */
size_t ngx_chat_ws_close_payload(uint8_t *out, unsigned code,
    const char *reason, size_t reason_len);

/*
 * Returns 1 if a peer may send code in a close frame: 1000..1003,
 * 1007..1011 and 3000..4999; 0 otherwise.
 */
int ngx_chat_ws_close_code_valid(unsigned code);

/*
 * Checks a received close payload.  Returns OK with *code set (1005 for
 * an empty payload); EPROTO for a 1-byte or over-125-byte payload or a
 * code a peer must not send; EUTF8 if the reason is not valid UTF-8 (the
 * caller closes with 1007).  *code is set only on OK.
 */
int ngx_chat_ws_parse_close(const uint8_t *p, size_t len, unsigned *code);


#endif /* _NGX_CHAT_WS_FRAME_H_INCLUDED_ */
