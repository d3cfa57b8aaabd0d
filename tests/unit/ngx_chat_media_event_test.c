
/*
 * ngx_chat_media_event_test.c: unit tests of ngx_chat_media_event.c, the
 * scanner that finds where "url" fields go in a newMessage event.
 */


#include <stdio.h>
#include <string.h>

#include "ngx_chat_media_event.h"


static int  failures;
static int  checks;


#define CHECK(cond, what)                                                    \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("not ok %d - %s (%s:%d)\n", checks, what, __FILE__,       \
                   __LINE__);                                                \
        } else {                                                             \
            printf("ok %d - %s\n", checks, what);                            \
        }                                                                    \
    } while (0)


static int
scan(const char *j, ngx_chat_media_event_att_t *a, int max)
{
    return ngx_chat_media_event_scan(j, strlen(j), a, max);
}


int
main(void)
{
    int                          n;
    const char                  *j;
    ngx_chat_media_event_att_t   a[NGX_CHAT_MEDIA_EVENT_MAX];

    /* as PostgreSQL's json_build_object writes it */

    j = "{\"type\" : \"newMessage\", \"eventId\" : \"7\", \"message\" : "
        "\"a \\\"quoted\\\" [attachments] {x}\", \"attachments\" : "
        "[{\"size\": 10485760, \"sha256\": \"ab\", \"contentType\": "
        "\"image/png\", \"attachmentId\": \"0123\"}, {\"attachmentId\": "
        "\"4567\", \"size\": 0, \"contentType\": \"application/pdf\"}], "
        "\"sentAt\" : 1764300000123}";

    n = scan(j, a, NGX_CHAT_MEDIA_EVENT_MAX);
    CHECK(n == 2, "two attachments");
    CHECK(a[0].id_len == 4 && memcmp(a[0].id, "0123", 4) == 0
          && a[0].size == 10485760 && a[0].type_len == 9
          && a[0].sha256_len == 2 && j[a[0].close] == '}'
          && j[a[0].close + 1] == ',', "first: fields and closing brace");
    CHECK(a[1].id_len == 4 && memcmp(a[1].id, "4567", 4) == 0
          && a[1].size == 0 && a[1].sha256 == NULL
          && j[a[1].close] == '}' && j[a[1].close + 1] == ']',
          "second: fields and closing brace");

    CHECK(scan("{\"attachments\":[]}", a, 16) == 0, "empty array");
    CHECK(scan("{\"message\":\"hi\"}", a, 16) == 0, "no attachments");
    CHECK(scan("{\"attachments\":null}", a, 16) == 0, "null attachments");
    CHECK(scan("{\"attachments\":[\"a\",{}, 1]}", a, 16) == 1 && a[0].empty
          && a[0].id == NULL, "non-objects skipped, {} found");
    CHECK(scan("{\"x\":{\"attachments\":[{\"attachmentId\":\"1\"}]}}", a, 16)
          == 0, "nested attachments are not the event's");
    CHECK(scan("{\"attachments\":[{\"attachmentId\":\"a\\u0041\"}]}", a, 16)
          == 1 && a[0].id == NULL, "escaped id reported absent");
    CHECK(scan("{\"attachments\":[{\"size\":-5}]}", a, 16) == 1
          && a[0].size == -1, "negative size is absent");
    CHECK(scan("{\"attachments\":[{\"size\":1.5}]}", a, 16) == 1
          && a[0].size == -1, "fractional size is absent");
    CHECK(scan("{\"attachments\":[{},{}]}", a, 1) == -1, "over max");
    CHECK(scan("{\"attachments\":[{}]", a, 16) == -1, "truncated");
    CHECK(scan("{\"attachments\":[{}]} x", a, 16) == -1, "trailing text");
    CHECK(scan("[1]", a, 16) == -1, "not an object");
    CHECK(scan("{\"a\" 1}", a, 16) == -1, "missing colon");
    CHECK(scan("{\"a\":1 \"b\":2}", a, 16) == -1, "missing comma");
    CHECK(scan("{\"a\":\"x", a, 16) == -1, "open string");
    CHECK(scan("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]"
               "]]]]]]]]]]]]]]]]]]]]]}", a, 16) == -1, "too deep");
    CHECK(scan("", a, 16) == -1, "empty");

    printf("1..%d\n", checks);
    printf("%d passed, %d failed\n", checks - failures, failures);

    return failures ? 1 : 0;
}
