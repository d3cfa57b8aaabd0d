
/*
 * ngx_chat_crc16.c: Redis Cluster hash slots (see ngx_chat_crc16.h).
 * Computed bit by bit: channel names are short (a prefix and a user id),
 * and one slot per publish or subscription costs well under a
 * microsecond, so a 512-byte table would buy nothing measurable.
 */


#include "ngx_chat_crc16.h"


uint16_t
ngx_chat_crc16(const unsigned char *p, size_t len)
{
    size_t    i;
    unsigned  bit;
    uint16_t  crc;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t) (p[i] << 8);

        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc;
}


unsigned
ngx_chat_crc16_slot(const unsigned char *key, size_t len)
{
    size_t  open, close;

    for (open = 0; open < len && key[open] != '{'; open++) {
        /* void */
    }

    /* the first '}' after the first '{'; an empty tag "{}" does not count */

    for (close = open + 1; close < len && key[close] != '}'; close++) {
        /* void */
    }

    if (open < len && close < len && close > open + 1) {
        key += open + 1;
        len = close - open - 1;
    }

    return ngx_chat_crc16(key, len) & (NGX_CHAT_CRC16_SLOTS - 1);
}
