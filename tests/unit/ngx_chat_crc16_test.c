
/*
 * ngx_chat_crc16_test.c: unit tests of the Redis Cluster hash slot
 * (ngx_chat_module/ngx_chat_crc16.c): the CRC16 check value, slots that
 * Redis reports (CLUSTER KEYSLOT on Redis 7.0), and the hash tag rules
 * of the Redis Cluster specification.  Prints "N passed, M failed" and
 * exits non-zero on any failure.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_chat_crc16.h"


#include "ngx_chat_check.h"


static unsigned
ngx_chat_test_slot(const char *key)
{
    return ngx_chat_crc16_slot((const unsigned char *) key, strlen(key));
}


int
main(void)
{
    unsigned  i, seen[3];
    char      key[32];

    /* the CRC16/XMODEM check value, as in the Redis Cluster spec */
    NGX_CHAT_CHECK(ngx_chat_crc16((const unsigned char *) "123456789", 9)
                   == 0x31C3);
    NGX_CHAT_CHECK(ngx_chat_crc16((const unsigned char *) "", 0) == 0);

    /* CLUSTER KEYSLOT answers of Redis 7.0 */
    NGX_CHAT_CHECK(ngx_chat_test_slot("123456789") == 12739);
    NGX_CHAT_CHECK(ngx_chat_test_slot("foo") == 12182);
    NGX_CHAT_CHECK(ngx_chat_test_slot("bar") == 5061);
    NGX_CHAT_CHECK(ngx_chat_test_slot("123456789") == (0x31C3 & 16383));
    NGX_CHAT_CHECK(ngx_chat_test_slot("chat:u:alice") == 10301);
    NGX_CHAT_CHECK(ngx_chat_test_slot("chat:sweep") == 6047);

    /* hash tags */
    NGX_CHAT_CHECK(ngx_chat_test_slot("{user1000}.following")
                   == ngx_chat_test_slot("user1000"));
    NGX_CHAT_CHECK(ngx_chat_test_slot("{user1000}.followers")
                   == ngx_chat_test_slot("{user1000}.following"));
    NGX_CHAT_CHECK(ngx_chat_test_slot("foo{{bar}}zap")
                   == ngx_chat_test_slot("{bar"));
    NGX_CHAT_CHECK(ngx_chat_test_slot("foo{bar}{zap}")
                   == ngx_chat_test_slot("bar"));
    NGX_CHAT_CHECK(ngx_chat_test_slot("{}user") == 12192);
    NGX_CHAT_CHECK(ngx_chat_test_slot("{}user")
                   == (ngx_chat_crc16((const unsigned char *) "{}user", 6)
                       & 16383));
    NGX_CHAT_CHECK(ngx_chat_test_slot("user{") == 13860);
    NGX_CHAT_CHECK(ngx_chat_test_slot("user}{x") != ngx_chat_test_slot("x"));
    NGX_CHAT_CHECK(ngx_chat_test_slot("a{x}") == ngx_chat_test_slot("x"));

    /* every slot is in range, and per-user channels spread over shards */
    seen[0] = seen[1] = seen[2] = 0;

    for (i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "chat:u:user%u", i);
        NGX_CHAT_CHECK(ngx_chat_test_slot(key) < 16384);
        seen[ngx_chat_test_slot(key) * 3 / 16384]++;
    }

    NGX_CHAT_CHECK(seen[0] > 800 && seen[1] > 800 && seen[2] > 800);

    printf("crc16: %u passed, %u failed\n", ngx_chat_test_passed,
           ngx_chat_test_failed);

    return ngx_chat_test_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
