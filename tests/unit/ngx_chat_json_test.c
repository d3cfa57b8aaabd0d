
/*
 * Unit tests of ngx_chat_json (the JSON protocol codec): every field kind,
 * wrong types, limits, duplicates, skipped unknown keys, depth, malformed
 * input, escapes and UTF-8, the id kept on errors, the writer's exact
 * output and its misuse checks, and round trips through the parser.
 *
 * Prints one line per failed check and ends with "N passed, M failed";
 * exits non-zero when anything failed.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <yajl/yajl_parse.h>

#include "ngx_chat_json.h"


#define check(expr)  ngx_chat_test_check((expr) != 0, #expr, __LINE__)

#define check_rc(json, rc)                                                   \
    ngx_chat_test_check(ngx_chat_test_parse(json) == (rc), json, __LINE__)

#define check_err(json, rc, msg)                                             \
    do {                                                                     \
        check_rc(json, rc);                                                  \
        ngx_chat_test_check(strcmp(err, msg) == 0, err, __LINE__);           \
    } while (0)

#define S(s)  s, sizeof(s) - 1


typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
} ngx_chat_test_buf_t;


static unsigned         passed, failed;
static ngx_chat_cmd_t   cmd;
static void            *arena;
static char             err[256];


static void
ngx_chat_test_check(int ok, const char *what, int line)
{
    if (ok) {
        passed++;
        return;
    }

    failed++;
    fprintf(stderr, "line %d: check failed: %s\n", line, what);
}


/* parses len bytes copied to an exactly sized buffer (no NUL after it) */

static int
ngx_chat_test_parse_n(const char *json, size_t len)
{
    int       rc;
    size_t    size;
    uint8_t  *in;

    free(arena);

    size = ngx_chat_json_arena_size(len);
    arena = malloc(size);
    in = malloc(len ? len : 1);

    if (arena == NULL || in == NULL) {
        abort();
    }

    memcpy(in, json, len);
    rc = ngx_chat_json_parse_cmd(in, len, &cmd, arena, size, err,
                                 sizeof(err));
    free(in);

    return rc;
}


static int
ngx_chat_test_parse(const char *json)
{
    return ngx_chat_test_parse_n(json, strlen(json));
}


static int
ngx_chat_test_str_eq(ngx_chat_json_str_t *s, const char *v)
{
    return s->data != NULL && s->len == strlen(v)
           && memcmp(s->data, v, s->len) == 0 && s->data[s->len] == '\0';
}


static void
ngx_chat_test_add(ngx_chat_test_buf_t *b, const char *s, size_t len)
{
    if (b->cap - b->len < len + 1) {
        b->cap = (b->len + len + 1) * 2;
        b->data = realloc(b->data, b->cap);
        if (b->data == NULL) {
            abort();
        }
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}


static void
ngx_chat_test_adds(ngx_chat_test_buf_t *b, const char *s)
{
    ngx_chat_test_add(b, s, strlen(s));
}


static void
ngx_chat_test_addc(ngx_chat_test_buf_t *b, char c, size_t n)
{
    while (n--) {
        ngx_chat_test_add(b, &c, 1);
    }
}


static void
ngx_chat_test_reset(ngx_chat_test_buf_t *b)
{
    b->len = 0;
    ngx_chat_test_add(b, "", 0);
}


/* is p[0..len) one valid JSON text according to yajl */

static int
ngx_chat_test_valid_json(const uint8_t *p, size_t len)
{
    yajl_status  st;
    yajl_handle  h;

    h = yajl_alloc(NULL, NULL, NULL);
    st = yajl_parse(h, p, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }
    yajl_free(h);

    return st == yajl_status_ok;
}


/* the JSON text of a writer, NUL-terminated in a static buffer */

static const char *
ngx_chat_test_out_text(ngx_chat_json_out_t *o, size_t reserve)
{
    static char  text[65536];
    size_t       n;

    n = o->len - reserve;
    if (n >= sizeof(text)) {
        n = sizeof(text) - 1;
    }

    memcpy(text, o->buf + reserve, n);
    text[n] = '\0';

    return text;
}


static void
ngx_chat_test_full(void)
{
    const char  *json;

    json = "{\"type\":\"send\",\"id\":\"r-1\",\"chatId\":\"42\","
           "\"name\":\"Team\",\"userId\":\"u1\",\"deviceId\":\"d1\","
           "\"attachmentId\":\"a1\",\"operation\":\"add\","
           "\"clientMessageId\":\"c1\",\"message\":\"hi\","
           "\"contentType\":\"image/png\",\"sha256\":\"abcd\","
           "\"size\":1234,\"participants\":[\"u2\",\"u3\"],"
           "\"attachments\":[\"x\"],\"eventIds\":[\"7\",8],"
           "\"user\":\"u9\",\"device\":\"d9\",\"ttl\":60}";

    check_rc(json, NGX_CHAT_JSON_OK);
    check(err[0] == '\0');
    check(cmd.present == 0x7ffff);
    check(ngx_chat_test_str_eq(&cmd.type, "send"));
    check(ngx_chat_test_str_eq(&cmd.id, "r-1"));
    check(!cmd.id_is_number);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "42"));
    check(ngx_chat_test_str_eq(&cmd.name, "Team"));
    check(ngx_chat_test_str_eq(&cmd.user_id, "u1"));
    check(ngx_chat_test_str_eq(&cmd.device_id, "d1"));
    check(ngx_chat_test_str_eq(&cmd.attachment_id, "a1"));
    check(ngx_chat_test_str_eq(&cmd.operation, "add"));
    check(ngx_chat_test_str_eq(&cmd.client_message_id, "c1"));
    check(ngx_chat_test_str_eq(&cmd.message, "hi"));
    check(ngx_chat_test_str_eq(&cmd.content_type, "image/png"));
    check(ngx_chat_test_str_eq(&cmd.sha256, "abcd"));
    check(cmd.size == 1234);
    check(cmd.nparticipants == 2);
    check(ngx_chat_test_str_eq(&cmd.participants[0], "u2"));
    check(ngx_chat_test_str_eq(&cmd.participants[1], "u3"));
    check(cmd.nattachments == 1);
    check(ngx_chat_test_str_eq(&cmd.attachments[0], "x"));
    check(cmd.nevent_ids == 2);
    check(cmd.event_ids[0] == 7 && cmd.event_ids[1] == 8);
    check(ngx_chat_test_str_eq(&cmd.user, "u9"));
    check(ngx_chat_test_str_eq(&cmd.device, "d9"));
    check(cmd.ttl == 60);

    /* only what is there is present; whitespace everywhere */
    check_rc(" \t\r\n{ \"type\" : \"ping\" } \n", NGX_CHAT_JSON_OK);
    check(cmd.present == NGX_CHAT_F_TYPE);
    check(cmd.id.data == NULL && cmd.chat_id.data == NULL);
    check(cmd.participants == NULL && cmd.nparticipants == 0);

    check_rc("{}", NGX_CHAT_JSON_OK);
    check(cmd.present == 0);

    /* keys are case-sensitive; empty strings are allowed */
    check_rc("{\"Type\":1,\"type\":\"\",\"id\":\"\"}", NGX_CHAT_JSON_OK);
    check(cmd.present == (NGX_CHAT_F_TYPE | NGX_CHAT_F_ID));
    check(ngx_chat_test_str_eq(&cmd.type, ""));
    check(ngx_chat_test_str_eq(&cmd.id, ""));

    /* an escaped key is the same key */
    check_rc("{\"ty\\u0070e\":\"x\"}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.type, "x"));
}


typedef struct {
    const char  *name;
    size_t       max;
    size_t       offset;
    uint32_t     flag;
} ngx_chat_test_field_t;


static void
ngx_chat_test_strings(void)
{
    size_t                  i, j;
    char                    msg[128];
    ngx_chat_json_str_t    *s;
    ngx_chat_test_buf_t     b;
    static const char      *bad[] = {
        "1", "-1", "1.5", "true", "false", "null", "{}", "[]", "[\"a\"]",
        "{\"a\":\"b\"}"
    };
    static ngx_chat_test_field_t  fields[] = {
        { "type", 32, offsetof(ngx_chat_cmd_t, type), NGX_CHAT_F_TYPE },
        { "name", 256, offsetof(ngx_chat_cmd_t, name), NGX_CHAT_F_NAME },
        { "userId", 64, offsetof(ngx_chat_cmd_t, user_id),
          NGX_CHAT_F_USER_ID },
        { "deviceId", 64, offsetof(ngx_chat_cmd_t, device_id),
          NGX_CHAT_F_DEVICE_ID },
        { "attachmentId", 64, offsetof(ngx_chat_cmd_t, attachment_id),
          NGX_CHAT_F_ATTACHMENT_ID },
        { "operation", 16, offsetof(ngx_chat_cmd_t, operation),
          NGX_CHAT_F_OPERATION },
        { "clientMessageId", 64, offsetof(ngx_chat_cmd_t, client_message_id),
          NGX_CHAT_F_CLIENT_MESSAGE_ID },
        { "message", 1024 * 1024, offsetof(ngx_chat_cmd_t, message),
          NGX_CHAT_F_MESSAGE },
        { "contentType", 128, offsetof(ngx_chat_cmd_t, content_type),
          NGX_CHAT_F_CONTENT_TYPE },
        { "sha256", 64, offsetof(ngx_chat_cmd_t, sha256), NGX_CHAT_F_SHA256 },
        { "id", 64, offsetof(ngx_chat_cmd_t, id), NGX_CHAT_F_ID },
        { "user", 64, offsetof(ngx_chat_cmd_t, user), NGX_CHAT_F_USER },
        { "device", 64, offsetof(ngx_chat_cmd_t, device),
          NGX_CHAT_F_DEVICE },
    };

    memset(&b, 0, sizeof(b));

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {

        /* exactly the limit */
        ngx_chat_test_reset(&b);
        ngx_chat_test_adds(&b, "{\"");
        ngx_chat_test_adds(&b, fields[i].name);
        ngx_chat_test_adds(&b, "\":\"");
        ngx_chat_test_addc(&b, 'a', fields[i].max);
        ngx_chat_test_adds(&b, "\"}");

        check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
        s = (ngx_chat_json_str_t *) ((char *) &cmd + fields[i].offset);
        check(cmd.present == fields[i].flag);
        check(s->len == fields[i].max && s->data[s->len] == '\0');

        /* one byte more, counted after decoding: "\u00e9" is 2 bytes */
        ngx_chat_test_reset(&b);
        ngx_chat_test_adds(&b, "{\"");
        ngx_chat_test_adds(&b, fields[i].name);
        ngx_chat_test_adds(&b, "\":\"");
        ngx_chat_test_addc(&b, 'a', fields[i].max - 1);
        ngx_chat_test_adds(&b, "\\u00e9\"}");

        check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_ETYPE);
        snprintf(msg, sizeof(msg), "field \"%s\" is too long (max %u bytes)",
                 fields[i].name, (unsigned) fields[i].max);
        check(strcmp(err, msg) == 0);
        check(cmd.present == 0);

        /* wrong types */
        for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            if (strcmp(fields[i].name, "id") == 0 && bad[j][0] != 't'
                && bad[j][0] != 'f' && bad[j][0] != 'n' && bad[j][0] != '{'
                && bad[j][0] != '[' && strcmp(bad[j], "1.5") != 0)
            {
                continue;       /* id takes integers */
            }

            ngx_chat_test_reset(&b);
            ngx_chat_test_adds(&b, "{\"");
            ngx_chat_test_adds(&b, fields[i].name);
            ngx_chat_test_adds(&b, "\":");
            ngx_chat_test_adds(&b, bad[j]);
            ngx_chat_test_adds(&b, "}");

            check(ngx_chat_test_parse_n(b.data, b.len)
                  == NGX_CHAT_JSON_ETYPE);
            snprintf(msg, sizeof(msg), "field \"%s\" must be a string%s",
                     fields[i].name,
                     strcmp(fields[i].name, "id") == 0 ? " or an integer"
                                                       : "");
            check(strcmp(err, msg) == 0);
            check(cmd.present == 0);
        }
    }

    free(b.data);
}


static void
ngx_chat_test_ids(void)
{
    ngx_chat_test_buf_t  b;

    check_rc("{\"id\":42}", NGX_CHAT_JSON_OK);
    check(cmd.present == NGX_CHAT_F_ID && cmd.id_is_number);
    check(ngx_chat_test_str_eq(&cmd.id, "42"));

    check_rc("{\"id\":-7}", NGX_CHAT_JSON_OK);
    check(cmd.id_is_number && ngx_chat_test_str_eq(&cmd.id, "-7"));

    check_rc("{\"id\":0}", NGX_CHAT_JSON_OK);
    check(cmd.id_is_number && ngx_chat_test_str_eq(&cmd.id, "0"));

    /* big integers are kept as text, not converted */
    check_rc("{\"id\":123456789012345678901234567890}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.id, "123456789012345678901234567890"));

    check_rc("{\"id\":\"42\"}", NGX_CHAT_JSON_OK);
    check(!cmd.id_is_number && ngx_chat_test_str_eq(&cmd.id, "42"));

    check_err("{\"id\":1.0}", NGX_CHAT_JSON_ETYPE,
              "field \"id\" must be a string or an integer");
    check(!cmd.id_is_number && cmd.present == 0);
    check_err("{\"id\":1e5}", NGX_CHAT_JSON_ETYPE,
              "field \"id\" must be a string or an integer");

    memset(&b, 0, sizeof(b));
    ngx_chat_test_adds(&b, "{\"id\":");
    ngx_chat_test_addc(&b, '9', 64);
    ngx_chat_test_adds(&b, "}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
    check(cmd.id.len == 64 && cmd.id_is_number);

    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"id\":");
    ngx_chat_test_addc(&b, '9', 65);
    ngx_chat_test_adds(&b, "}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_ETYPE);
    check(strcmp(err, "field \"id\" is too long (max 64 bytes)") == 0);
    check(cmd.present == 0 && !cmd.id_is_number);

    free(b.data);
}


static void
ngx_chat_test_chat_id(void)
{
    static const char  *msg =
        "field \"chatId\" must be a string of digits or an integer";
    static const char  *range =
        "field \"chatId\" must be an id from 1 to 9223372036854775807 "
        "without leading zeros";

    check_rc("{\"chatId\":\"123\"}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "123"));
    check(cmd.present == NGX_CHAT_F_CHAT_ID);

    check_rc("{\"chatId\":123}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "123"));

    /* the bounds of a PostgreSQL bigint id: 1 .. 2^63-1 */
    check_rc("{\"chatId\":1}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "1"));
    check_rc("{\"chatId\":\"1\"}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "1"));
    check_rc("{\"chatId\":9223372036854775807}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "9223372036854775807"));
    check_rc("{\"chatId\":\"9223372036854775807\"}", NGX_CHAT_JSON_OK);
    check(cmd.chat_id.len == 19);

    check_err("{\"chatId\":0}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"chatId\":\"0\"}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"chatId\":9223372036854775808}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"chatId\":\"9223372036854775808\"}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"chatId\":9999999999999999999}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"chatId\":18446744073709551615}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"chatId\":18446744073709551616}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"chatId\":99999999999999999999}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"chatId\":\"99999999999999999999\"}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"chatId\":\"123456789012345678901\"}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"chatId\":123456789012345678901234567890123456789012345}",
              NGX_CHAT_JSON_ETYPE, range);
    check(cmd.present == 0);

    /* leading zeros: "007" and "7" would be the same chat */
    check_err("{\"chatId\":\"007\"}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"chatId\":\"00\"}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"chatId\":\"09223372036854775807\"}", NGX_CHAT_JSON_ETYPE,
              range);
    check_rc("{\"chatId\":007}", NGX_CHAT_JSON_EMALFORMED);
    check(cmd.present == 0);

    /* signs, fractions, exponents, blanks, other types */
    check_err("{\"chatId\":\"\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":\"12a\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":\"-1\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":\"+1\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":\" 1\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":\"1 \"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":\"0x10\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":-1}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":-0}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":-9223372036854775808}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":1.5}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":1.0}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":1e2}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":true}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":null}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":[1]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"chatId\":{}}", NGX_CHAT_JSON_ETYPE, msg);
    check(cmd.present == 0);

    /* a bad chatId is an error of this command only: its id is kept */
    check_err("{\"id\":\"r1\",\"chatId\":99999999999999999999,"
              "\"type\":\"sendMessage\"}", NGX_CHAT_JSON_ETYPE, range);
    check(ngx_chat_test_str_eq(&cmd.id, "r1"));
}


static void
ngx_chat_test_size(void)
{
    static const char  *msg = "field \"size\" must be a non-negative integer";
    static const char  *range = "field \"size\" is out of range";

    check_rc("{\"size\":0}", NGX_CHAT_JSON_OK);
    check(cmd.size == 0 && cmd.present == NGX_CHAT_F_SIZE);

    check_rc("{\"size\":1048576}", NGX_CHAT_JSON_OK);
    check(cmd.size == 1048576);

    check_rc("{\"size\":9223372036854775807}", NGX_CHAT_JSON_OK);
    check(cmd.size == INT64_MAX);

    check_err("{\"size\":9223372036854775808}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"size\":18446744073709551616}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"size\":99999999999999999999999999999999}",
              NGX_CHAT_JSON_ETYPE, range);
    check(cmd.present == 0 && cmd.size == 0);

    check_err("{\"size\":-1}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":-0}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":1.0}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":1e3}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":\"5\"}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":null}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":false}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":[]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"size\":{}}", NGX_CHAT_JSON_ETYPE, msg);

    /* "ttl" (admin token requests) is the same kind of field */
    check_rc("{\"ttl\":3600,\"user\":\"u\",\"device\":\"d\"}",
             NGX_CHAT_JSON_OK);
    check(cmd.ttl == 3600);
    check(cmd.present == (NGX_CHAT_F_TTL | NGX_CHAT_F_USER
                          | NGX_CHAT_F_DEVICE));
    check(ngx_chat_test_str_eq(&cmd.user, "u"));
    check(ngx_chat_test_str_eq(&cmd.device, "d"));
    check_err("{\"ttl\":-1}", NGX_CHAT_JSON_ETYPE,
              "field \"ttl\" must be a non-negative integer");
    check_err("{\"ttl\":\"60\"}", NGX_CHAT_JSON_ETYPE,
              "field \"ttl\" must be a non-negative integer");
    check_err("{\"ttl\":9223372036854775808}", NGX_CHAT_JSON_ETYPE,
              "field \"ttl\" is out of range");
    check_err("{\"ttl\":1,\"ttl\":2}", NGX_CHAT_JSON_ETYPE,
              "duplicate field \"ttl\"");
    check(cmd.ttl == 1);

    /* getChats: "limit" is such an integer, "cursor" a string of digits */
    check_rc("{\"type\":\"getChats\",\"limit\":100,\"cursor\":\"42\"}",
             NGX_CHAT_JSON_OK);
    check(cmd.limit == 100);
    check(ngx_chat_test_str_eq(&cmd.cursor, "42"));
    check(cmd.present == (NGX_CHAT_F_TYPE | NGX_CHAT_F_LIMIT
                          | NGX_CHAT_F_CURSOR));
    check_rc("{\"cursor\":17}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.cursor, "17"));
    check_err("{\"limit\":-1}", NGX_CHAT_JSON_ETYPE,
              "field \"limit\" must be a non-negative integer");
    check_err("{\"limit\":\"5\"}", NGX_CHAT_JSON_ETYPE,
              "field \"limit\" must be a non-negative integer");
    check_err("{\"limit\":1.5}", NGX_CHAT_JSON_ETYPE,
              "field \"limit\" must be a non-negative integer");
    check_err("{\"cursor\":\"\"}", NGX_CHAT_JSON_ETYPE,
              "field \"cursor\" must be a string of digits "
              "or an integer");
    check_err("{\"cursor\":\"12a\"}", NGX_CHAT_JSON_ETYPE,
              "field \"cursor\" must be a string of digits "
              "or an integer");
    check_err("{\"cursor\":null}", NGX_CHAT_JSON_ETYPE,
              "field \"cursor\" must be a string of digits "
              "or an integer");
    check_err("{\"cursor\":\"123456789012345678901\"}",
              NGX_CHAT_JSON_ETYPE,
              "field \"cursor\" must be an id from 1 to "
              "9223372036854775807 without leading zeros");
}


static void
ngx_chat_test_string_arrays(void)
{
    size_t               i;
    char                 item[32];
    ngx_chat_test_buf_t  b;

    check_rc("{\"participants\":[]}", NGX_CHAT_JSON_OK);
    check(cmd.present == NGX_CHAT_F_PARTICIPANTS);
    check(cmd.participants == NULL && cmd.nparticipants == 0);

    check_rc("{\"participants\":[\"a\",\"\",\"\\u00e9\"],"
             "\"attachments\":[\"k1\",\"k2\"]}", NGX_CHAT_JSON_OK);
    check(cmd.nparticipants == 3);
    check(ngx_chat_test_str_eq(&cmd.participants[0], "a"));
    check(ngx_chat_test_str_eq(&cmd.participants[1], ""));
    check(ngx_chat_test_str_eq(&cmd.participants[2], "\xc3\xa9"));
    check(cmd.nattachments == 2);
    check(ngx_chat_test_str_eq(&cmd.attachments[1], "k2"));

    /* 1000 participants is the limit, 1001 too many */
    memset(&b, 0, sizeof(b));
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"participants\":[");
    for (i = 0; i < 1000; i++) {
        snprintf(item, sizeof(item), "%s\"user%u\"", i ? "," : "",
                 (unsigned) i);
        ngx_chat_test_adds(&b, item);
    }
    ngx_chat_test_adds(&b, "]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
    check(cmd.nparticipants == 1000);
    check(ngx_chat_test_str_eq(&cmd.participants[0], "user0"));
    check(ngx_chat_test_str_eq(&cmd.participants[999], "user999"));

    b.len -= 2;
    ngx_chat_test_adds(&b, ",\"x\"]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_ETYPE);
    check(strcmp(err, "field \"participants\" has too many items (max 1000)")
          == 0);
    check(cmd.present == 0 && cmd.nparticipants == 0);

    /* 64 attachments, then 65 */
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"attachments\":[");
    for (i = 0; i < 64; i++) {
        ngx_chat_test_adds(&b, i ? ",\"k\"" : "\"k\"");
    }
    ngx_chat_test_adds(&b, "]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
    check(cmd.nattachments == 64);
    b.len -= 2;
    ngx_chat_test_adds(&b, ",\"k\"]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_ETYPE);
    check(strcmp(err, "field \"attachments\" has too many items (max 64)")
          == 0);

    /* item length: 64 bytes fine, 65 too long */
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"participants\":[\"");
    ngx_chat_test_addc(&b, 'u', 64);
    ngx_chat_test_adds(&b, "\"]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
    check(cmd.participants[0].len == 64);
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"attachments\":[\"a\",\"");
    ngx_chat_test_addc(&b, 'u', 65);
    ngx_chat_test_adds(&b, "\"]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_ETYPE);
    check(strcmp(err, "field \"attachments\" item is too long (max 64 bytes)")
          == 0);
    check(cmd.present == 0);

    /* wrong item types, wrong field types */
    check_err("{\"participants\":[\"a\",1]}", NGX_CHAT_JSON_ETYPE,
              "field \"participants\" items must be strings");
    check_err("{\"participants\":[null]}", NGX_CHAT_JSON_ETYPE,
              "field \"participants\" items must be strings");
    check_err("{\"participants\":[[\"a\"]]}", NGX_CHAT_JSON_ETYPE,
              "field \"participants\" items must be strings");
    check_err("{\"attachments\":[{\"a\":\"b\"}],\"type\":\"t\"}",
              NGX_CHAT_JSON_ETYPE,
              "field \"attachments\" items must be strings");
    check(cmd.present == NGX_CHAT_F_TYPE);
    check_err("{\"participants\":\"a\"}", NGX_CHAT_JSON_ETYPE,
              "field \"participants\" must be an array of strings");
    check_err("{\"participants\":{\"a\":[]}}", NGX_CHAT_JSON_ETYPE,
              "field \"participants\" must be an array of strings");
    check_err("{\"attachments\":null}", NGX_CHAT_JSON_ETYPE,
              "field \"attachments\" must be an array of strings");
    check(cmd.present == 0);

    free(b.data);
}


static void
ngx_chat_test_event_ids(void)
{
    size_t               i;
    ngx_chat_test_buf_t  b;
    static const char   *msg = "field \"eventIds\" items must be strings of "
                               "digits or integers";
    static const char   *range = "field \"eventIds\" items must be ids from "
                                 "1 to 9223372036854775807 without leading "
                                 "zeros";

    check_rc("{\"eventIds\":[\"1\",2,\"9223372036854775807\","
             "9223372036854775807,1042]}", NGX_CHAT_JSON_OK);
    check(cmd.present == NGX_CHAT_F_EVENT_IDS);
    check(cmd.nevent_ids == 5);
    check(cmd.event_ids[0] == 1 && cmd.event_ids[1] == 2);
    check(cmd.event_ids[2] == INT64_MAX && cmd.event_ids[3] == INT64_MAX);
    check(cmd.event_ids[4] == 1042);

    check_rc("{\"eventIds\":[]}", NGX_CHAT_JSON_OK);
    check(cmd.present == NGX_CHAT_F_EVENT_IDS && cmd.nevent_ids == 0);
    check(cmd.event_ids == NULL);

    check_err("{\"eventIds\":[0]}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[\"0\"]}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[1,\"007\"]}", NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[9223372036854775808]}", NGX_CHAT_JSON_ETYPE,
              range);
    check_err("{\"eventIds\":[\"9223372036854775808\"]}",
              NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[\"18446744073709551615\"]}",
              NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[18446744073709551615]}",
              NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[\"18446744073709551616\"]}",
              NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[18446744073709551616]}",
              NGX_CHAT_JSON_ETYPE, range);
    check_err("{\"eventIds\":[1,99999999999999999999999999]}",
              NGX_CHAT_JSON_ETYPE, range);
    check(cmd.present == 0);

    check_err("{\"eventIds\":[-1]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[\"\"]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[\"1a\"]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[\"-1\"]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[\"+1\"]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[\"aaaaaaaaaaaaaaaaaaaaaaaaa\"]}",
              NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[1.5]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[true]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[null]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[[1]]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":[{}]}", NGX_CHAT_JSON_ETYPE, msg);
    check_err("{\"eventIds\":1}", NGX_CHAT_JSON_ETYPE,
              "field \"eventIds\" must be an array");
    check_err("{\"eventIds\":\"1\"}", NGX_CHAT_JSON_ETYPE,
              "field \"eventIds\" must be an array");

    memset(&b, 0, sizeof(b));
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"eventIds\":[");
    for (i = 0; i < 1000; i++) {
        ngx_chat_test_adds(&b, (i & 1) ? ",\"5\"" : (i ? ",5" : "5"));
    }
    ngx_chat_test_adds(&b, "]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
    check(cmd.nevent_ids == 1000 && cmd.event_ids[999] == 5);
    b.len -= 2;
    ngx_chat_test_adds(&b, ",6]}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_ETYPE);
    check(strcmp(err, "field \"eventIds\" has too many items (max 1000)")
          == 0);

    free(b.data);
}


static void
ngx_chat_test_duplicates(void)
{
    check_err("{\"type\":\"a\",\"type\":\"b\"}", NGX_CHAT_JSON_ETYPE,
              "duplicate field \"type\"");
    check(ngx_chat_test_str_eq(&cmd.type, "a"));

    check_err("{\"id\":1,\"id\":\"x\"}", NGX_CHAT_JSON_ETYPE,
              "duplicate field \"id\"");
    check(ngx_chat_test_str_eq(&cmd.id, "1") && cmd.id_is_number);

    /* a repeated key is a duplicate even if the first value was bad */
    check_err("{\"chatId\":true,\"chatId\":\"1\"}", NGX_CHAT_JSON_ETYPE,
              "field \"chatId\" must be a string of digits or an integer");
    check(cmd.present == 0);

    check_err("{\"eventIds\":[1],\"eventIds\":[2]}", NGX_CHAT_JSON_ETYPE,
              "duplicate field \"eventIds\"");
    check(cmd.nevent_ids == 1 && cmd.event_ids[0] == 1);

    check_err("{\"size\":1,\"size\":1}", NGX_CHAT_JSON_ETYPE,
              "duplicate field \"size\"");

    /* unknown keys may repeat; nested known names are not fields */
    check_rc("{\"x\":1,\"x\":2,\"a\":{\"type\":1,\"type\":2}}",
             NGX_CHAT_JSON_OK);
    check(cmd.present == 0);
}


static void
ngx_chat_test_unknown(void)
{
    check_rc("{\"x\":{\"a\":[1,{\"b\":null,\"type\":\"zzz\"}],"
             "\"type\":\"nested\"},\"type\":\"t\",\"y\":[[[\"type\"]]],"
             "\"z\":true,\"w\":null,\"v\":-1.5e-3,\"u\":\"s\","
             "\"participants\":[\"p\"],\"q\":[{\"eventIds\":\"x\"}]}",
             NGX_CHAT_JSON_OK);
    check(cmd.present == (NGX_CHAT_F_TYPE | NGX_CHAT_F_PARTICIPANTS));
    check(ngx_chat_test_str_eq(&cmd.type, "t"));
    check(cmd.nparticipants == 1);

    /* the value of an unknown key may be anything, even huge numbers */
    check_rc("{\"n\":1e999999,\"m\":-123456789012345678901234567890,"
             "\"type\":\"t\"}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.type, "t"));
}


static void
ngx_chat_test_depth(void)
{
    size_t               i, n;
    ngx_chat_test_buf_t  b;

    memset(&b, 0, sizeof(b));

    /* the top-level object is depth 1: 31 more levels are allowed */
    for (n = 31; n <= 32; n++) {
        ngx_chat_test_reset(&b);
        ngx_chat_test_adds(&b, "{\"id\":\"d\",\"x\":");
        for (i = 0; i < n; i++) {
            ngx_chat_test_adds(&b, (i & 1) ? "{\"k\":" : "[");
        }
        ngx_chat_test_adds(&b, "1");
        for (i = n; i > 0; i--) {
            ngx_chat_test_adds(&b, ((i - 1) & 1) ? "}" : "]");
        }
        ngx_chat_test_adds(&b, ",\"type\":\"t\"}");

        if (n == 31) {
            check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
            check(ngx_chat_test_str_eq(&cmd.type, "t"));

        } else {
            check(ngx_chat_test_parse_n(b.data, b.len)
                  == NGX_CHAT_JSON_EMALFORMED);
            check(strcmp(err, "nesting too deep (max 32)") == 0);
            /* the id before the bomb is still there */
            check(ngx_chat_test_str_eq(&cmd.id, "d"));
        }
    }

    /* a bomb: a million opening brackets */
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"x\":");
    ngx_chat_test_addc(&b, '[', 1000000);
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_EMALFORMED);
    check(strcmp(err, "nesting too deep (max 32)") == 0);

    ngx_chat_test_reset(&b);
    ngx_chat_test_addc(&b, '[', 100000);
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_EMALFORMED);
    check(strcmp(err, "top-level value must be an object") == 0);

    /* deep inside a known array */
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"participants\":");
    ngx_chat_test_addc(&b, '[', 40);
    ngx_chat_test_addc(&b, ']', 40);
    ngx_chat_test_adds(&b, "}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_EMALFORMED);

    free(b.data);
}


static void
ngx_chat_test_malformed(void)
{
    static const char  *top = "top-level value must be an object";

    check_err("", NGX_CHAT_JSON_EMALFORMED,
              "malformed JSON: parse error: premature EOF");
    check_rc("   ", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"type\"", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"type\":", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"type\":\"ab", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"type\":\"ab\"", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"type\":\"ab\",", NGX_CHAT_JSON_EMALFORMED);
    check_err("{}x", NGX_CHAT_JSON_EMALFORMED,
              "malformed JSON: parse error: trailing garbage");
    check_rc("{}{}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{} 1", NGX_CHAT_JSON_EMALFORMED);
    check_err("[]", NGX_CHAT_JSON_EMALFORMED, top);
    check_err("1", NGX_CHAT_JSON_EMALFORMED, top);
    check_err("-1.5", NGX_CHAT_JSON_EMALFORMED, top);
    check_err("\"s\"", NGX_CHAT_JSON_EMALFORMED, top);
    check_err("null", NGX_CHAT_JSON_EMALFORMED, top);
    check_err("true", NGX_CHAT_JSON_EMALFORMED, top);
    check_rc("{\"a\":}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\" 1}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":1,}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":[1,]}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{'a':1}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{a:1}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":01}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":.5}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":tru}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":NaN}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("/* c */{}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":\"\\x\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":\"\\u12\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":\"\\u12g4\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":\"tab\there\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"a\":\"nl\nhere\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("\xef\xbb\xbf{}", NGX_CHAT_JSON_EMALFORMED);

    /* raw NUL bytes: inside a string, between tokens, after the object */
    check(ngx_chat_test_parse_n(S("{\"type\":\"a\0b\"}"))
          == NGX_CHAT_JSON_EMALFORMED);
    check(cmd.present == 0);
    check(ngx_chat_test_parse_n(S("{\"type\":\0\"a\"}"))
          == NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_parse_n(S("{}\0")) == NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_parse_n(S("\0{}")) == NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_parse_n(S("{\"\0\":1}")) == NGX_CHAT_JSON_EMALFORMED);
}


static void
ngx_chat_test_escapes(void)
{
    check_rc("{\"message\":\"a\\nb\\tc\\r\\\\\\\"\\/\\b\\f\"}",
             NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.message, "a\nb\tc\r\\\"/\b\f"));

    check_rc("{\"message\":\"caf\\u00e9 \\u00E9\"}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.message, "caf\xc3\xa9 \xc3\xa9"));

    check_rc("{\"message\":\"\\u20ac\\u0041\\u07ff\\uffff\"}",
             NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.message,
                               "\xe2\x82\xac" "A" "\xdf\xbf" "\xef\xbf\xbf"));

    /* surrogate pairs become 4-byte UTF-8 */
    check_rc("{\"message\":\"\\ud83d\\ude00|\\uD800\\uDC00|\\udbff\\udfff\"}",
             NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.message, "\xf0\x9f\x98\x80|"
                               "\xf0\x90\x80\x80|\xf4\x8f\xbf\xbf"));

    /* raw UTF-8 passes through */
    check_rc("{\"message\":\"\xf0\x9f\x98\x80 \xe2\x80\xa8 \xc3\xa9\"}",
             NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.message,
                               "\xf0\x9f\x98\x80 \xe2\x80\xa8 \xc3\xa9"));

    /* \u0000 and lone or badly paired surrogates */
    check_err("{\"message\":\"a\\u0000b\"}", NGX_CHAT_JSON_EMALFORMED,
              "\\u0000 in string");
    check(cmd.present == 0);
    check_err("{\"message\":\"\\ud800\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check_err("{\"message\":\"\\ud800x\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check_err("{\"message\":\"\\udc00\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check_err("{\"message\":\"\\ud800\\u0041\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check_err("{\"message\":\"\\ud800\\ud800\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check_err("{\"message\":\"\\udc00\\ud800\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check_err("{\"message\":\"\\ud800\\n\"}", NGX_CHAT_JSON_EMALFORMED,
              "lone surrogate in string");
    check(cmd.present == 0);

    /* in keys and in skipped values too */
    check_rc("{\"\\ud800\":1}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"x\":[{\"y\":\"\\u0000\"}]}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"participants\":[\"\\udfff\"]}", NGX_CHAT_JSON_EMALFORMED);
    check(cmd.present == 0);

    /* raw bytes that are not strict UTF-8 */
    check_err("{\"message\":\"\xc0\x80\"}", NGX_CHAT_JSON_EMALFORMED,
              "invalid UTF-8 in string");
    check_rc("{\"message\":\"\xe0\x80\x80\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xed\xa0\x80\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xf0\x80\x80\x80\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xf4\x90\x80\x80\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xf5\x80\x80\x80\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\x80\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xc3\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xff\"}", NGX_CHAT_JSON_EMALFORMED);
    check_rc("{\"message\":\"\xe2\x82\"}", NGX_CHAT_JSON_EMALFORMED);
    check(cmd.present == 0);

    /* the scanner stays on the right string after escaped quotes */
    check_rc("{\"x\":[\"\\\\\",\"\\\"\\\\\"],\"\\\\\":{\"\\\"\":1},"
             "\"message\":\"\\ud800\"}", NGX_CHAT_JSON_EMALFORMED);
    check(strcmp(err, "lone surrogate in string") == 0);
    check_rc("{\"x\":[\"\\\\\",\"\\\"\\\\\"],\"\\\\\":{\"\\\"\":1},"
             "\"message\":\"\\\\ud800\"}", NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.message, "\\ud800"));

    /* a bad string does not shift later strings */
    check_rc("{\"a\":\"\\ud800\",\"type\":\"\\\"t\\\"\"}",
             NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.type, "\"t\""));
}


/* "id" must survive errors so that the error response can echo it */

static void
ngx_chat_test_id_on_error(void)
{
    check_rc("{\"id\":\"x\",\"chatId\":true}", NGX_CHAT_JSON_ETYPE);
    check(ngx_chat_test_str_eq(&cmd.id, "x") && (cmd.present & NGX_CHAT_F_ID));

    check_rc("{\"chatId\":true,\"participants\":[1],\"id\":7}",
             NGX_CHAT_JSON_ETYPE);
    check(strcmp(err, "field \"chatId\" must be a string of digits or an "
                 "integer") == 0);
    check(ngx_chat_test_str_eq(&cmd.id, "7") && cmd.id_is_number);

    check_rc("{\"id\":\"x\",\"message\":\"\\ud800\"}",
             NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "x"));

    check_rc("{\"message\":\"\\u0000\",\"id\":\"y\"}",
             NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "y"));

    check_rc("{\"type\":\"a\",\"id\":\"x\",", NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "x"));

    check_rc("{\"id\":\"x\"}garbage", NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "x"));

    check_rc("{\"id\":\"x\",\"a\":[}", NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "x"));

    /* a number at the very end of a truncated input is still complete */
    check_rc("{\"id\":12", NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "12") && cmd.id_is_number);

    /* malformed wins over a type error met first */
    check_rc("{\"chatId\":true,\"message\":\"\\u0000\",\"id\":1}",
             NGX_CHAT_JSON_EMALFORMED);
    check(strcmp(err, "\\u0000 in string") == 0);
    check(ngx_chat_test_str_eq(&cmd.id, "1"));

    check_rc("{\"chatId\":true,\"id\":1} x", NGX_CHAT_JSON_EMALFORMED);
    check(ngx_chat_test_str_eq(&cmd.id, "1"));

    /* an invalid id is not kept */
    check_rc("{\"message\":\"\\ud800\",\"id\":\"\\udc00\"}",
             NGX_CHAT_JSON_EMALFORMED);
    check(!(cmd.present & NGX_CHAT_F_ID) && cmd.id.data == NULL);
    check_rc("{\"id\":true,\"chatId\":1}", NGX_CHAT_JSON_ETYPE);
    check(!(cmd.present & NGX_CHAT_F_ID));

    /* the id after a syntax error cannot be known */
    check_rc("{\"a\":x,\"id\":\"z\"}", NGX_CHAT_JSON_EMALFORMED);
    check(!(cmd.present & NGX_CHAT_F_ID));
}


static void
ngx_chat_test_arena(void)
{
    int                  rc;
    char                 small[128];
    size_t               i;
    uint64_t             big[64];
    ngx_chat_cmd_t       c;
    const char          *json;
    ngx_chat_test_buf_t  b;

    check(ngx_chat_json_arena_size(0) == 64);
    check(ngx_chat_json_arena_size(100) == 664);
    check(ngx_chat_json_arena_size(SIZE_MAX) == 0);
    check(ngx_chat_json_arena_size(5004) == 30024 + 64);
    check(ngx_chat_json_arena_size(5005) == 5005 + 25024 + 64);
    check(ngx_chat_json_arena_size(1048576) == 1048576 + 25024 + 64);

    /* every array full of the shortest items, with an exact arena */
    memset(&b, 0, sizeof(b));
    ngx_chat_test_reset(&b);
    ngx_chat_test_adds(&b, "{\"participants\":[\"\"");
    for (i = 1; i < 1000; i++) {
        ngx_chat_test_adds(&b, ",\"\"");
    }
    ngx_chat_test_adds(&b, "],\"attachments\":[\"\"");
    for (i = 1; i < 64; i++) {
        ngx_chat_test_adds(&b, ",\"\"");
    }
    ngx_chat_test_adds(&b, "],\"eventIds\":[1");
    for (i = 1; i < 1000; i++) {
        ngx_chat_test_adds(&b, ",1");
    }
    ngx_chat_test_adds(&b, "],\"id\":0}");
    check(ngx_chat_test_parse_n(b.data, b.len) == NGX_CHAT_JSON_OK);
    check(cmd.nparticipants == 1000 && cmd.nattachments == 64
          && cmd.nevent_ids == 1000);
    free(b.data);

    json = "{\"message\":\"0123456789012345678901234567890123456789"
           "01234567890123456789012345678901234567890123456789\"}";

    rc = ngx_chat_json_parse_cmd((const uint8_t *) json, strlen(json), &c,
                                 big, 64, small, sizeof(small));
    check(rc == NGX_CHAT_JSON_ERROR);
    check(strcmp(small, "arena too small") == 0);

    rc = ngx_chat_json_parse_cmd((const uint8_t *) json, strlen(json), &c,
                                 big, sizeof(big), small, sizeof(small));
    check(rc == NGX_CHAT_JSON_OK && c.message.len == 90);

    rc = ngx_chat_json_parse_cmd((const uint8_t *) json, strlen(json), &c,
                                 NULL, 0, small, sizeof(small));
    check(rc == NGX_CHAT_JSON_ERROR);

    /* err may be missing or tiny */
    rc = ngx_chat_json_parse_cmd((const uint8_t *) "[]", 2, &c, big,
                                 sizeof(big), NULL, 0);
    check(rc == NGX_CHAT_JSON_EMALFORMED);
    small[0] = 'x';
    rc = ngx_chat_json_parse_cmd((const uint8_t *) "[]", 2, &c, big,
                                 sizeof(big), small, 1);
    check(rc == NGX_CHAT_JSON_EMALFORMED && small[0] == '\0');
    rc = ngx_chat_json_parse_cmd((const uint8_t *) "[]", 2, &c, big,
                                 sizeof(big), small, 4);
    check(rc == NGX_CHAT_JSON_EMALFORMED && strcmp(small, "top") == 0);

    /* NULL input of length 0 */
    rc = ngx_chat_json_parse_cmd(NULL, 0, &c, big, sizeof(big), small,
                                 sizeof(small));
    check(rc == NGX_CHAT_JSON_EMALFORMED);
}


/* the writer */

static void
ngx_chat_test_out_basic(void)
{
    ngx_chat_json_out_t  o;

    check(ngx_chat_json_out_init(&o, 14) == NGX_CHAT_JSON_OK);
    check(o.len == 14);
    check(ngx_chat_json_out_map_open(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_key(&o, S("s")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_str(&o, S("a\"b\\c\n\t\x01/")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_key(&o, S("i")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_int(&o, INT64_MIN) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_key(&o, S("u")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_uint(&o, UINT64_MAX) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_key(&o, S("z")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_uint(&o, 0) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_key(&o, S("a")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_array_open(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_bool(&o, 1) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_bool(&o, 0) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_null(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_map_open(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_map_close(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_array_open(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_array_close(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_int(&o, -5) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_array_close(&o) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_key(&o, S("e")) == NGX_CHAT_JSON_OK);
    check(ngx_chat_json_out_str(&o, S("")) == NGX_CHAT_JSON_OK);
    check(!o.done);
    check(ngx_chat_json_out_map_close(&o) == NGX_CHAT_JSON_OK);
    check(!o.failed && o.done);

    check(strcmp(ngx_chat_test_out_text(&o, 14),
                 "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001/\","
                 "\"i\":-9223372036854775808,\"u\":18446744073709551615,"
                 "\"z\":0,\"a\":[true,false,null,{},[],-5],\"e\":\"\"}")
          == 0);
    check(ngx_chat_test_valid_json(o.buf + 14, o.len - 14));

    /* nothing after the top-level value */
    check(ngx_chat_json_out_map_open(&o) == NGX_CHAT_JSON_ERROR);
    check(o.failed);

    ngx_chat_json_out_free(&o);
    check(o.buf == NULL && o.g == NULL);
    ngx_chat_json_out_free(&o);

    /* a failed init leaves nothing to free */
    check(ngx_chat_json_out_init(&o, SIZE_MAX) == NGX_CHAT_JSON_ERROR);
    check(o.failed && o.buf == NULL && o.g == NULL);
    check(ngx_chat_json_out_null(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);
}


static void
ngx_chat_test_out_separators(void)
{
    ngx_chat_json_out_t  o;

    /* U+2028 and U+2029 are escaped; other characters are not */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    ngx_chat_json_out_str(&o, S("a\xe2\x80\xa8" "b\xe2\x80\xa9\n"
                                "\xe2\x80\xa8\xe2\x80\xa8\xe2\x82\xac"
                                "\xe2\x80\xa7\xe2\x80\xaa\xc3\xa9"));
    ngx_chat_json_out_str(&o, S("\xe2\x80\xa9"));
    ngx_chat_json_out_array_close(&o);
    check(!o.failed);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "[\"a\\u2028b\\u2029\\n\\u2028\\u2028\xe2\x82\xac"
                 "\xe2\x80\xa7\xe2\x80\xaa\xc3\xa9\",\"\\u2029\"]") == 0);
    check(ngx_chat_test_valid_json(o.buf, o.len));
    ngx_chat_json_out_free(&o);

    /* in keys and in raw values too */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, S("k\xe2\x80\xa8"));
    ngx_chat_json_out_raw(&o, S("[\"\xe2\x80\xa9\"]"));
    ngx_chat_json_out_map_close(&o);
    check(!o.failed);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"k\\u2028\":[\"\\u2029\"]}") == 0);
    ngx_chat_json_out_free(&o);
}


static void
ngx_chat_test_out_raw(void)
{
    const char           *raw;
    ngx_chat_json_out_t   o;

    raw = "{\"x\":[1,2],\"y\":\"z\"}";

    ngx_chat_json_out_init(&o, 10);
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, S("a"));
    ngx_chat_json_out_raw(&o, raw, strlen(raw));
    ngx_chat_json_out_key(&o, S("b"));
    ngx_chat_json_out_array_open(&o);
    ngx_chat_json_out_raw(&o, raw, strlen(raw));
    ngx_chat_json_out_raw(&o, S("17"));
    ngx_chat_json_out_raw(&o, raw, strlen(raw));
    ngx_chat_json_out_array_close(&o);
    ngx_chat_json_out_key(&o, S("c"));
    ngx_chat_json_out_raw(&o, S("[]"));
    ngx_chat_json_out_key(&o, S("d"));
    ngx_chat_json_out_int(&o, 1);
    ngx_chat_json_out_map_close(&o);
    check(!o.failed);
    check(strcmp(ngx_chat_test_out_text(&o, 10),
                 "{\"a\":{\"x\":[1,2],\"y\":\"z\"},\"b\":[{\"x\":[1,2],"
                 "\"y\":\"z\"},17,{\"x\":[1,2],\"y\":\"z\"}],\"c\":[],"
                 "\"d\":1}") == 0);
    check(ngx_chat_test_valid_json(o.buf + 10, o.len - 10));
    ngx_chat_json_out_free(&o);

    /* raw at the top and as the first array item */
    ngx_chat_json_out_init(&o, 0);
    check(ngx_chat_json_out_raw(&o, raw, strlen(raw)) == NGX_CHAT_JSON_OK);
    check(strcmp(ngx_chat_test_out_text(&o, 0), raw) == 0);
    check(ngx_chat_json_out_raw(&o, raw, strlen(raw)) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    ngx_chat_json_out_raw(&o, S("null"));
    ngx_chat_json_out_array_close(&o);
    check(!o.failed && strcmp(ngx_chat_test_out_text(&o, 0), "[null]") == 0);
    ngx_chat_json_out_free(&o);

    /* raw cannot be a key, and cannot be empty */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    check(ngx_chat_json_out_raw(&o, S("\"k\"")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_raw(&o, "", 0) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);
}


static void
ngx_chat_test_out_misuse(void)
{
    int                  i;
    ngx_chat_json_out_t  o;

    /* a key inside an array */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_key(&o, S("k")) == NGX_CHAT_JSON_ERROR);
    /* and everything fails afterwards */
    check(ngx_chat_json_out_array_close(&o) == NGX_CHAT_JSON_ERROR);
    check(ngx_chat_json_out_null(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    /* a value where a key is expected */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    check(ngx_chat_json_out_str(&o, S("v")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, S("k"));
    ngx_chat_json_out_int(&o, 1);
    check(ngx_chat_json_out_int(&o, 2) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    /* two keys in a row; a map closed after a key */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, S("k"));
    check(ngx_chat_json_out_key(&o, S("l")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, S("k"));
    check(ngx_chat_json_out_map_close(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    /* mismatched or extra closes */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    check(ngx_chat_json_out_array_close(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_map_close(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    check(ngx_chat_json_out_map_close(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    check(ngx_chat_json_out_key(&o, S("k")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    /* strings must be strictly valid UTF-8 */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_str(&o, S("\xc0\x80")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_str(&o, S("\xed\xa0\x80")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_str(&o, S("\xe2\x80")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_map_open(&o);
    check(ngx_chat_json_out_key(&o, S("\xff")) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    /* a NUL byte is fine: it is escaped */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_out_array_open(&o);
    check(ngx_chat_json_out_str(&o, S("a\0b")) == NGX_CHAT_JSON_OK);
    ngx_chat_json_out_array_close(&o);
    check(strcmp(ngx_chat_test_out_text(&o, 0), "[\"a\\u0000b\"]") == 0);
    ngx_chat_json_out_free(&o);

    /* nesting: 64 levels, not 65 */
    ngx_chat_json_out_init(&o, 0);
    for (i = 0; i < 64; i++) {
        check(ngx_chat_json_out_array_open(&o) == NGX_CHAT_JSON_OK);
    }
    check(ngx_chat_json_out_array_open(&o) == NGX_CHAT_JSON_ERROR);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    for (i = 0; i < 64; i++) {
        ngx_chat_json_out_map_open(&o);
        ngx_chat_json_out_key(&o, S("k"));
    }
    ngx_chat_json_out_int(&o, 1);
    for (i = 0; i < 64; i++) {
        ngx_chat_json_out_map_close(&o);
    }
    check(!o.failed);
    check(ngx_chat_test_valid_json(o.buf, o.len));
    ngx_chat_json_out_free(&o);
}


static void
ngx_chat_test_responses(void)
{
    ngx_chat_json_out_t  o;

    /* ok, id as a string */
    check_rc("{\"type\":\"create\",\"id\":\"abc\"}", NGX_CHAT_JSON_OK);
    ngx_chat_json_out_init(&o, 10);
    check(ngx_chat_json_response_ok_open(&o, &cmd) == NGX_CHAT_JSON_OK);
    check(strcmp(ngx_chat_test_out_text(&o, 10),
                 "{\"type\":\"response\",\"id\":\"abc\",\"ok\":true") == 0);
    ngx_chat_json_out_key(&o, S("chatId"));
    ngx_chat_json_out_str(&o, S("5"));
    check(ngx_chat_json_out_map_close(&o) == NGX_CHAT_JSON_OK);
    check(strcmp(ngx_chat_test_out_text(&o, 10),
                 "{\"type\":\"response\",\"id\":\"abc\",\"ok\":true,"
                 "\"chatId\":\"5\"}") == 0);
    check(ngx_chat_test_valid_json(o.buf + 10, o.len - 10));
    ngx_chat_json_out_free(&o);

    /* ok, id as a number, echoed as a number */
    check_rc("{\"type\":\"create\",\"id\":-42}", NGX_CHAT_JSON_OK);
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_response_ok_open(&o, &cmd);
    ngx_chat_json_out_map_close(&o);
    check(!o.failed);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"type\":\"response\",\"id\":-42,\"ok\":true}") == 0);
    ngx_chat_json_out_free(&o);

    /* ok, no id */
    check_rc("{\"type\":\"ping\"}", NGX_CHAT_JSON_OK);
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_response_ok_open(&o, &cmd);
    ngx_chat_json_out_map_close(&o);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"type\":\"response\",\"ok\":true}") == 0);
    ngx_chat_json_out_free(&o);

    /* the id needing escapes goes back escaped */
    check_rc("{\"id\":\"a\\\"\\u2028\\u00e9\"}", NGX_CHAT_JSON_OK);
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_response_ok_open(&o, &cmd);
    ngx_chat_json_out_map_close(&o);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"type\":\"response\",\"id\":\"a\\\"\\u2028\xc3\xa9\","
                 "\"ok\":true}") == 0);
    ngx_chat_json_out_free(&o);

    /* errors */
    check_rc("{\"id\":\"r1\",\"chatId\":1.5}", NGX_CHAT_JSON_ETYPE);
    ngx_chat_json_out_init(&o, 4);
    check(ngx_chat_json_response_error(&o, cmd.id.data, cmd.id.len,
                                       cmd.id_is_number, "bad_request", err)
          == NGX_CHAT_JSON_OK);
    check(strcmp(ngx_chat_test_out_text(&o, 4),
                 "{\"type\":\"response\",\"id\":\"r1\",\"ok\":false,"
                 "\"error\":{\"code\":\"bad_request\",\"message\":"
                 "\"field \\\"chatId\\\" must be a string of digits or an "
                 "integer\"}}") == 0);
    check(ngx_chat_test_valid_json(o.buf + 4, o.len - 4));
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    check(ngx_chat_json_response_error(&o, "17", 2, 1, "forbidden", "no")
          == NGX_CHAT_JSON_OK);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"type\":\"response\",\"id\":17,\"ok\":false,"
                 "\"error\":{\"code\":\"forbidden\",\"message\":\"no\"}}")
          == 0);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    check(ngx_chat_json_response_error(&o, NULL, 0, 0, "malformed", "x")
          == NGX_CHAT_JSON_OK);
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"type\":\"response\",\"ok\":false,"
                 "\"error\":{\"code\":\"malformed\",\"message\":\"x\"}}")
          == 0);
    ngx_chat_json_out_free(&o);

    /* a "number" id that is not a JSON integer is written as a string */
    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_response_error(&o, "1,2", 3, 1, "c", "m");
    check(strcmp(ngx_chat_test_out_text(&o, 0),
                 "{\"type\":\"response\",\"id\":\"1,2\",\"ok\":false,"
                 "\"error\":{\"code\":\"c\",\"message\":\"m\"}}") == 0);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_response_error(&o, "007", 3, 1, "c", "m");
    check(strstr(ngx_chat_test_out_text(&o, 0), "\"id\":\"007\"") != NULL);
    ngx_chat_json_out_free(&o);

    ngx_chat_json_out_init(&o, 0);
    ngx_chat_json_response_error(&o, "", 0, 1, "c", "m");
    check(strstr(ngx_chat_test_out_text(&o, 0), "\"id\":\"\"") != NULL);
    check(ngx_chat_test_valid_json(o.buf, o.len));
    ngx_chat_json_out_free(&o);
}


/* build a command with the writer, parse it back */

static void
ngx_chat_test_round_trip(void)
{
    size_t               i;
    char                *big;
    ngx_chat_json_out_t  o;
    static const char    msg[] = "line1\nline2 \"q\" \\ \xe2\x80\xa8 "
                                 "\xe2\x80\xa9 \xf0\x9f\x98\x80 \xc3\xa9 "
                                 "\x01 /";

    big = malloc(200000);
    for (i = 0; i < 200000; i++) {
        big[i] = (char) ('a' + i % 26);
    }

    ngx_chat_json_out_init(&o, 14);
    ngx_chat_json_out_map_open(&o);
    ngx_chat_json_out_key(&o, S("type"));
    ngx_chat_json_out_str(&o, S("send"));
    ngx_chat_json_out_key(&o, S("id"));
    ngx_chat_json_out_uint(&o, 99);
    ngx_chat_json_out_key(&o, S("message"));
    ngx_chat_json_out_str(&o, msg, sizeof(msg) - 1);
    ngx_chat_json_out_key(&o, S("name"));
    ngx_chat_json_out_str(&o, big, 256);
    ngx_chat_json_out_key(&o, S("chatId"));
    ngx_chat_json_out_uint(&o, INT64_MAX);
    ngx_chat_json_out_key(&o, S("size"));
    ngx_chat_json_out_int(&o, INT64_MAX);
    ngx_chat_json_out_key(&o, S("participants"));
    ngx_chat_json_out_array_open(&o);
    ngx_chat_json_out_str(&o, S("p\xe2\x80\xa8"));
    ngx_chat_json_out_str(&o, S("q"));
    ngx_chat_json_out_array_close(&o);
    ngx_chat_json_out_key(&o, S("eventIds"));
    ngx_chat_json_out_array_open(&o);
    ngx_chat_json_out_uint(&o, INT64_MAX);
    ngx_chat_json_out_str(&o, S("3"));
    ngx_chat_json_out_array_close(&o);
    ngx_chat_json_out_key(&o, S("extra"));
    ngx_chat_json_out_str(&o, big, 200000);
    ngx_chat_json_out_map_close(&o);
    check(!o.failed);
    check(o.len > 200000 + 14);
    check(ngx_chat_test_valid_json(o.buf + 14, o.len - 14));

    /* the escaped text has no raw U+2028 / U+2029 left */
    for (i = 14; i + 2 < o.len; i++) {
        if (o.buf[i] == 0xe2 && o.buf[i + 1] == 0x80
            && (o.buf[i + 2] == 0xa8 || o.buf[i + 2] == 0xa9))
        {
            break;
        }
    }
    check(i + 2 >= o.len);

    check(ngx_chat_test_parse_n((char *) o.buf + 14, o.len - 14)
          == NGX_CHAT_JSON_OK);
    check(ngx_chat_test_str_eq(&cmd.type, "send"));
    check(ngx_chat_test_str_eq(&cmd.id, "99") && cmd.id_is_number);
    check(cmd.message.len == sizeof(msg) - 1
          && memcmp(cmd.message.data, msg, sizeof(msg) - 1) == 0);
    check(cmd.name.len == 256 && memcmp(cmd.name.data, big, 256) == 0);
    check(ngx_chat_test_str_eq(&cmd.chat_id, "9223372036854775807"));
    check(cmd.size == INT64_MAX);
    check(cmd.nparticipants == 2);
    check(ngx_chat_test_str_eq(&cmd.participants[0], "p\xe2\x80\xa8"));
    check(cmd.nevent_ids == 2 && cmd.event_ids[0] == INT64_MAX
          && cmd.event_ids[1] == 3);

    ngx_chat_json_out_free(&o);
    free(big);
}


int
main(void)
{
    ngx_chat_test_full();
    ngx_chat_test_strings();
    ngx_chat_test_ids();
    ngx_chat_test_chat_id();
    ngx_chat_test_size();
    ngx_chat_test_string_arrays();
    ngx_chat_test_event_ids();
    ngx_chat_test_duplicates();
    ngx_chat_test_unknown();
    ngx_chat_test_depth();
    ngx_chat_test_malformed();
    ngx_chat_test_escapes();
    ngx_chat_test_id_on_error();
    ngx_chat_test_arena();
    ngx_chat_test_out_basic();
    ngx_chat_test_out_separators();
    ngx_chat_test_out_raw();
    ngx_chat_test_out_misuse();
    ngx_chat_test_responses();
    ngx_chat_test_round_trip();

    free(arena);

    printf("%u passed, %u failed\n", passed, failed);

    return failed ? 1 : 0;
}
