
/*
 * ngx_chat_crc16.h: the hash slot of a Redis Cluster key or shard channel:
 * CRC16 (CCITT, XMODEM variant: polynomial 0x1021, initial value 0, no
 * reflection) of the key, modulo 16384.  When the key holds a hash tag,
 * "{...}" with at least one byte between the first '{' and the first '}'
 * after it, only the tag is hashed, so keys with one tag share a slot.
 *
 * Pure code: no nginx headers, no allocation, no globals.
 */


#ifndef _NGX_CHAT_CRC16_H_INCLUDED_
#define _NGX_CHAT_CRC16_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_CHAT_CRC16_SLOTS  16384


uint16_t ngx_chat_crc16(const unsigned char *p, size_t len);

/* 0..16383 */
unsigned ngx_chat_crc16_slot(const unsigned char *key, size_t len);


#endif /* _NGX_CHAT_CRC16_H_INCLUDED_ */
