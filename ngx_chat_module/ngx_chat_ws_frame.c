
/*
 * ngx_chat_ws_frame.c: the WebSocket (RFC 6455) frame codec
 * (see ngx_chat_ws_frame.h for the contracts).
 *
 * A client frame header is 2 fixed bytes, 0, 2 or 8 bytes of extended
 * length and a 4-byte masking key:
 *
 *   byte 0: FIN | RSV1 | RSV2 | RSV3 | opcode (4 bits)
 *   byte 1: MASK | length (7 bits: 0..125, 126 = 16-bit, 127 = 64-bit)
 *
 * The parser checks each byte as soon as it is present, so a hostile
 * header is refused after at most 10 bytes and an oversized frame before
 * any of its payload is read or buffered.
 */


#include <string.h>

#include "ngx_chat_ws_frame.h"
#include "ngx_chat_utf8.h"


/* opcodes 0, 1, 2, 8, 9 and A as a bit set */
#define NGX_CHAT_WS_OP_KNOWN(op)  ((0x0707u >> (op)) & 1)


static size_t ngx_chat_ws_utf8_cut(const uint8_t *p, size_t len,
    size_t max);


int
ngx_chat_ws_frame_parse(const uint8_t *p, size_t len, uint64_t max_payload,
    ngx_chat_ws_frame_t *f)
{
    size_t    ext, i;
    uint64_t  n;
    unsigned  op, fin, control;

    if (len < 1) {
        return NGX_CHAT_WS_FRAME_AGAIN;
    }

    /* no extension is negotiated, so RSV1..3 must be 0 */

    if (p[0] & 0x70) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    op = p[0] & 0x0f;
    fin = (p[0] >> 7) & 1;
    control = NGX_CHAT_WS_OP_IS_CONTROL(op);

    if (!NGX_CHAT_WS_OP_KNOWN(op)) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    if (control && !fin) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    if (len < 2) {
        return NGX_CHAT_WS_FRAME_AGAIN;
    }

    /* section 5.1: a server must close on an unmasked client frame */

    if (!(p[1] & 0x80)) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    n = p[1] & 0x7f;

    if (n == 126) {
        ext = 2;

    } else if (n == 127) {
        ext = 8;

    } else {
        ext = 0;
    }

    if (control && n > NGX_CHAT_WS_CONTROL_MAX_PAYLOAD) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    if (ext == 8 && len > 2 && (p[2] & 0x80)) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    if (len < 2 + ext) {
        return NGX_CHAT_WS_FRAME_AGAIN;
    }

    if (ext) {
        n = 0;

        for (i = 0; i < ext; i++) {
            n = (n << 8) | p[2 + i];
        }

        /* section 5.2: "the minimal number of bytes MUST be used" */

        if ((ext == 2 && n < 126) || (ext == 8 && n <= 0xffff)) {
            return NGX_CHAT_WS_FRAME_EPROTO;
        }
    }

    if (!control && n > max_payload) {
        f->opcode = op;
        f->fin = fin;
        f->payload_len = n;
        return NGX_CHAT_WS_FRAME_ETOOBIG;
    }

    if (len < 2 + ext + 4) {
        return NGX_CHAT_WS_FRAME_AGAIN;
    }

    f->payload_len = n;
    memcpy(f->mask, p + 2 + ext, 4);
    f->opcode = op;
    f->fin = fin;
    f->masked = 1;
    f->header_len = 2 + ext + 4;

    return NGX_CHAT_WS_FRAME_OK;
}


void
ngx_chat_ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4],
    uint64_t offset)
{
    size_t    i;
    uint8_t   m[8];
    uint64_t  w, k;
    unsigned  s;

    /*
     * m is the key rotated to start at p[0] and repeated to 8 bytes; the
     * word k holds the same bytes in memory order, so XOR-ing a word
     * loaded with memcpy needs no byte order conversion
     */

    s = (unsigned) (offset & 3);

    for (i = 0; i < 8; i++) {
        m[i] = mask[(s + i) & 3];
    }

    memcpy(&k, m, 8);

    for (i = 0; len - i >= 8; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }

    /* i is a multiple of 8 here, so the key phase is i & 3 */

    for ( /* void */ ; i < len; i++) {
        p[i] ^= m[i & 3];
    }
}


size_t
ngx_chat_ws_frame_header_size(uint64_t payload_len)
{
    if (payload_len < 126) {
        return 2;
    }

    if (payload_len <= 0xffff) {
        return 4;
    }

    return 10;
}


size_t
ngx_chat_ws_frame_write_header(uint8_t *out, int opcode, int fin,
    uint64_t payload_len)
{
    size_t  i;

    out[0] = (uint8_t) ((fin ? 0x80 : 0x00) | (opcode & 0x0f));

    if (payload_len < 126) {
        out[1] = (uint8_t) payload_len;
        return 2;
    }

    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t) (payload_len >> 8);
        out[3] = (uint8_t) payload_len;
        return 4;
    }

    out[1] = 127;

    for (i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t) (payload_len >> (56 - 8 * i));
    }

    return 10;
}


size_t
ngx_chat_ws_close_payload(uint8_t *out, unsigned code, const char *reason,
    size_t reason_len)
{
    if (code == 0) {
        return 0;
    }

    out[0] = (uint8_t) (code >> 8);
    out[1] = (uint8_t) code;

    reason_len = ngx_chat_ws_utf8_cut((const uint8_t *) reason, reason_len,
                                      NGX_CHAT_WS_CLOSE_REASON_MAX);

    if (reason_len) {
        memcpy(out + 2, reason, reason_len);
    }

    return 2 + reason_len;
}


/*
 * Returns the longest length <= max at which p[0..len) can be cut without
 * splitting a character: backs off over continuation bytes (at most 3;
 * further back the text was not UTF-8 anyway).
 */

static size_t
ngx_chat_ws_utf8_cut(const uint8_t *p, size_t len, size_t max)
{
    size_t  cut;

    if (len <= max) {
        return len;
    }

    for (cut = max; cut > 0 && max - cut < 3; cut--) {
        if ((p[cut] & 0xc0) != 0x80) {
            break;
        }
    }

    return cut;
}


int
ngx_chat_ws_close_code_valid(unsigned code)
{
    return (code >= NGX_CHAT_CLOSE_NORMAL
            && code <= NGX_CHAT_CLOSE_UNSUPPORTED)
           || (code >= NGX_CHAT_CLOSE_BAD_DATA
               && code <= NGX_CHAT_CLOSE_INTERNAL)
           || (code >= NGX_CHAT_CLOSE_APP_MIN
               && code <= NGX_CHAT_CLOSE_APP_MAX);
}


int
ngx_chat_ws_parse_close(const uint8_t *p, size_t len, unsigned *code)
{
    unsigned  c;

    if (len == 0) {
        *code = NGX_CHAT_CLOSE_NO_STATUS;
        return NGX_CHAT_WS_FRAME_OK;
    }

    if (len == 1 || len > NGX_CHAT_WS_CONTROL_MAX_PAYLOAD) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    c = ((unsigned) p[0] << 8) | p[1];

    if (!ngx_chat_ws_close_code_valid(c)) {
        return NGX_CHAT_WS_FRAME_EPROTO;
    }

    if (ngx_chat_utf8_check(p + 2, len - 2) != 0) {
        return NGX_CHAT_WS_FRAME_EUTF8;
    }

    *code = c;

    return NGX_CHAT_WS_FRAME_OK;
}
