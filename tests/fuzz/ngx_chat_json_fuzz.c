
/*
 * libFuzzer harness of ngx_chat_json (the JSON protocol codec).
 *
 * Parses arbitrary bytes as a client command with an arena of exactly
 * ngx_chat_json_arena_size() bytes (so ASan sees any overrun and the size
 * bound is checked: NGX_CHAT_JSON_ERROR must never happen), checks the
 * decoded strings (NUL-terminated, no embedded NUL, valid UTF-8, within
 * their limits), then writes a response: on success one that echoes every
 * field under the same keys, which must be valid JSON for yajl and must
 * parse back to the same command; on failure the error response, which
 * must be valid JSON.
 *
 * This is the whole parse path of a client command: ngx_chat_cmd_handle()
 * and the admin token endpoint call ngx_chat_json_parse_cmd() and nothing
 * else to turn bytes into an ngx_chat_cmd_t, and every field check that
 * does not need the connection (types, lengths, item counts, id bounds)
 * is in it.  So the harness also checks the contract with PostgreSQL:
 * whatever parses, a statement can take as is: chatId and every eventIds
 * item are canonical ids of 1 to 9223372036854775807 (checked here with
 * strtoll(), so a ::bigint cast cannot fail), size and ttl fit a bigint,
 * and every string is valid UTF-8 without NUL (the echo would fail
 * otherwise).  The seeds (Makefile.json) hold one command of each type,
 * media and admin ones included, and ids at and beyond the bounds.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -I../../ngx_chat_module \
 *     ngx_chat_json_fuzz.c ../../ngx_chat_module/ngx_chat_json.c \
 *     ../../ngx_chat_module/ngx_chat_utf8.c -lyajl
 */


#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "ngx_chat_json.h"


#define ngx_chat_fuzz_assert(expr)  if (!(expr)) abort()

#define S(s)  s, sizeof(s) - 1


typedef struct {
    const char  *key;
    size_t       offset;
    uint32_t     flag;
    size_t       max;
} ngx_chat_fuzz_field_t;


static const ngx_chat_fuzz_field_t  ngx_chat_fuzz_fields[] = {
    { "type", offsetof(ngx_chat_cmd_t, type), NGX_CHAT_F_TYPE, 32 },
    { "chatId", offsetof(ngx_chat_cmd_t, chat_id), NGX_CHAT_F_CHAT_ID, 19 },
    { "name", offsetof(ngx_chat_cmd_t, name), NGX_CHAT_F_NAME, 256 },
    { "userId", offsetof(ngx_chat_cmd_t, user_id), NGX_CHAT_F_USER_ID, 64 },
    { "deviceId", offsetof(ngx_chat_cmd_t, device_id), NGX_CHAT_F_DEVICE_ID,
      64 },
    { "attachmentId", offsetof(ngx_chat_cmd_t, attachment_id),
      NGX_CHAT_F_ATTACHMENT_ID, 64 },
    { "operation", offsetof(ngx_chat_cmd_t, operation), NGX_CHAT_F_OPERATION,
      16 },
    { "clientMessageId", offsetof(ngx_chat_cmd_t, client_message_id),
      NGX_CHAT_F_CLIENT_MESSAGE_ID, 64 },
    { "message", offsetof(ngx_chat_cmd_t, message), NGX_CHAT_F_MESSAGE,
      1024 * 1024 },
    { "contentType", offsetof(ngx_chat_cmd_t, content_type),
      NGX_CHAT_F_CONTENT_TYPE, 128 },
    { "sha256", offsetof(ngx_chat_cmd_t, sha256), NGX_CHAT_F_SHA256, 64 },
    { "user", offsetof(ngx_chat_cmd_t, user), NGX_CHAT_F_USER, 64 },
    { "device", offsetof(ngx_chat_cmd_t, device), NGX_CHAT_F_DEVICE, 64 },
    { "cursor", offsetof(ngx_chat_cmd_t, cursor), NGX_CHAT_F_CURSOR, 19 },
};

#define NGX_CHAT_FUZZ_NFIELDS                                                \
    (sizeof(ngx_chat_fuzz_fields) / sizeof(ngx_chat_fuzz_fields[0]))


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
ngx_chat_fuzz_valid_json(const uint8_t *p, size_t len)
{
    yajl_status  st;
    yajl_handle  h;

    h = yajl_alloc(NULL, NULL, NULL);
    ngx_chat_fuzz_assert(h != NULL);

    st = yajl_parse(h, p, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    return st == yajl_status_ok;
}


static void
ngx_chat_fuzz_check_str(const ngx_chat_json_str_t *s, size_t max)
{
    ngx_chat_fuzz_assert(s->data != NULL);
    ngx_chat_fuzz_assert(s->len <= max);
    ngx_chat_fuzz_assert(s->data[s->len] == '\0');
    ngx_chat_fuzz_assert(strlen(s->data) == s->len);
}


static int
ngx_chat_fuzz_str_eq(const ngx_chat_json_str_t *a,
    const ngx_chat_json_str_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}


/*
 * What PostgreSQL takes as a positive bigint id, written canonically:
 * checked independently of the parser, with strtoll() and printing back.
 */

static int
ngx_chat_fuzz_bigint_id(const char *s, size_t len)
{
    char       *end, back[24];
    long long   v;

    if (len == 0 || len > 19 || s[0] < '1' || s[0] > '9') {
        return 0;
    }

    errno = 0;
    v = strtoll(s, &end, 10);

    if (errno != 0 || end != s + len || v < 1) {
        return 0;
    }

    snprintf(back, sizeof(back), "%lld", v);

    return strlen(back) == len && memcmp(back, s, len) == 0;
}


static void
ngx_chat_fuzz_check_cmd(const ngx_chat_cmd_t *c)
{
    size_t                       i;
    const ngx_chat_json_str_t   *s;

    for (i = 0; i < NGX_CHAT_FUZZ_NFIELDS; i++) {
        s = (const ngx_chat_json_str_t *)
                ((const char *) c + ngx_chat_fuzz_fields[i].offset);

        if (c->present & ngx_chat_fuzz_fields[i].flag) {
            ngx_chat_fuzz_check_str(s, ngx_chat_fuzz_fields[i].max);

        } else {
            ngx_chat_fuzz_assert(s->data == NULL && s->len == 0);
        }
    }

    if (c->present & NGX_CHAT_F_ID) {
        ngx_chat_fuzz_check_str(&c->id, 64);
    }

    if (c->present & NGX_CHAT_F_CHAT_ID) {
        ngx_chat_fuzz_assert(ngx_chat_fuzz_bigint_id(c->chat_id.data,
                                                     c->chat_id.len));
    }

    for (i = 0; i < c->nevent_ids; i++) {
        ngx_chat_fuzz_assert(c->event_ids[i] >= 1
                             && c->event_ids[i] <= INT64_MAX);
    }

    ngx_chat_fuzz_assert(c->size >= 0 && c->ttl >= 0 && c->limit >= 0);
    ngx_chat_fuzz_assert(c->nparticipants <= 1000);
    ngx_chat_fuzz_assert(c->nattachments <= 64);
    ngx_chat_fuzz_assert(c->nevent_ids <= 1000);

    for (i = 0; i < c->nparticipants; i++) {
        ngx_chat_fuzz_check_str(&c->participants[i], 64);
    }

    for (i = 0; i < c->nattachments; i++) {
        ngx_chat_fuzz_check_str(&c->attachments[i], 64);
    }
}


/* writes a response echoing every field of c under its own key */

static void
ngx_chat_fuzz_echo(ngx_chat_json_out_t *o, const ngx_chat_cmd_t *c)
{
    size_t                       i;
    const ngx_chat_json_str_t   *s;

    ngx_chat_json_response_ok_open(o, c);

    for (i = 1; i < NGX_CHAT_FUZZ_NFIELDS; i++) {
        if (!(c->present & ngx_chat_fuzz_fields[i].flag)) {
            continue;
        }

        s = (const ngx_chat_json_str_t *)
                ((const char *) c + ngx_chat_fuzz_fields[i].offset);

        ngx_chat_json_out_key(o, ngx_chat_fuzz_fields[i].key,
                              strlen(ngx_chat_fuzz_fields[i].key));
        ngx_chat_json_out_str(o, s->data, s->len);
    }

    if (c->present & NGX_CHAT_F_SIZE) {
        ngx_chat_json_out_key(o, S("size"));
        ngx_chat_json_out_int(o, c->size);
    }

    if (c->present & NGX_CHAT_F_LIMIT) {
        ngx_chat_json_out_key(o, S("limit"));
        ngx_chat_json_out_int(o, c->limit);
    }

    if (c->present & NGX_CHAT_F_TTL) {
        ngx_chat_json_out_key(o, S("ttl"));
        ngx_chat_json_out_int(o, c->ttl);
    }

    if (c->present & NGX_CHAT_F_PARTICIPANTS) {
        ngx_chat_json_out_key(o, S("participants"));
        ngx_chat_json_out_array_open(o);
        for (i = 0; i < c->nparticipants; i++) {
            ngx_chat_json_out_str(o, c->participants[i].data,
                                  c->participants[i].len);
        }
        ngx_chat_json_out_array_close(o);
    }

    if (c->present & NGX_CHAT_F_ATTACHMENTS) {
        ngx_chat_json_out_key(o, S("attachments"));
        ngx_chat_json_out_array_open(o);
        for (i = 0; i < c->nattachments; i++) {
            ngx_chat_json_out_str(o, c->attachments[i].data,
                                  c->attachments[i].len);
        }
        ngx_chat_json_out_array_close(o);
    }

    if (c->present & NGX_CHAT_F_EVENT_IDS) {
        ngx_chat_json_out_key(o, S("eventIds"));
        ngx_chat_json_out_array_open(o);
        for (i = 0; i < c->nevent_ids; i++) {
            ngx_chat_json_out_uint(o, c->event_ids[i]);
        }
        ngx_chat_json_out_array_close(o);
    }

    /* a spliced value, as a handler would add a stored object */
    ngx_chat_json_out_key(o, S("raw"));
    ngx_chat_json_out_raw(o, S("{\"a\":[1,\"\xe2\x80\xa8\"]}"));

    ngx_chat_json_out_map_close(o);
}


static void
ngx_chat_fuzz_compare(const ngx_chat_cmd_t *a, const ngx_chat_cmd_t *b)
{
    size_t                       i;
    const ngx_chat_json_str_t   *sa, *sb;
    static ngx_chat_json_str_t   response = { "response", 8 };

    /* "type" is now "response"; everything else must be identical */
    ngx_chat_fuzz_assert(ngx_chat_fuzz_str_eq(&b->type, &response));
    ngx_chat_fuzz_assert((a->present | NGX_CHAT_F_TYPE) == b->present);

    for (i = 1; i < NGX_CHAT_FUZZ_NFIELDS; i++) {
        if (a->present & ngx_chat_fuzz_fields[i].flag) {
            sa = (const ngx_chat_json_str_t *)
                     ((const char *) a + ngx_chat_fuzz_fields[i].offset);
            sb = (const ngx_chat_json_str_t *)
                     ((const char *) b + ngx_chat_fuzz_fields[i].offset);
            ngx_chat_fuzz_assert(ngx_chat_fuzz_str_eq(sa, sb));
        }
    }

    if (a->present & NGX_CHAT_F_ID) {
        ngx_chat_fuzz_assert(ngx_chat_fuzz_str_eq(&a->id, &b->id));
        ngx_chat_fuzz_assert(a->id_is_number == b->id_is_number);
    }

    ngx_chat_fuzz_assert(a->size == b->size);
    ngx_chat_fuzz_assert(a->ttl == b->ttl);
    ngx_chat_fuzz_assert(a->limit == b->limit);
    ngx_chat_fuzz_assert(a->nparticipants == b->nparticipants);
    ngx_chat_fuzz_assert(a->nattachments == b->nattachments);
    ngx_chat_fuzz_assert(a->nevent_ids == b->nevent_ids);

    for (i = 0; i < a->nparticipants; i++) {
        ngx_chat_fuzz_assert(ngx_chat_fuzz_str_eq(&a->participants[i],
                                                  &b->participants[i]));
    }

    for (i = 0; i < a->nattachments; i++) {
        ngx_chat_fuzz_assert(ngx_chat_fuzz_str_eq(&a->attachments[i],
                                                  &b->attachments[i]));
    }

    if (a->nevent_ids > 0) {
        ngx_chat_fuzz_assert(memcmp(a->event_ids, b->event_ids,
                                    a->nevent_ids * sizeof(uint64_t)) == 0);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc;
    char                 err[256];
    void                *arena, *arena2;
    size_t               asize, asize2, n;
    ngx_chat_cmd_t       cmd, back;
    ngx_chat_json_out_t  o;

    asize = ngx_chat_json_arena_size(size);
    arena = malloc(asize);
    ngx_chat_fuzz_assert(arena != NULL);

    rc = ngx_chat_json_parse_cmd(data, size, &cmd, arena, asize, err,
                                 sizeof(err));

    ngx_chat_fuzz_assert(rc == NGX_CHAT_JSON_OK
                         || rc == NGX_CHAT_JSON_EMALFORMED
                         || rc == NGX_CHAT_JSON_ETYPE);
    ngx_chat_fuzz_assert((rc == NGX_CHAT_JSON_OK) == (err[0] == '\0'));

    ngx_chat_fuzz_check_cmd(&cmd);

    ngx_chat_fuzz_assert(ngx_chat_json_out_init(&o, 14) == NGX_CHAT_JSON_OK);

    if (rc == NGX_CHAT_JSON_OK) {
        ngx_chat_fuzz_echo(&o, &cmd);
        ngx_chat_fuzz_assert(!o.failed);

        n = o.len - 14;
        ngx_chat_fuzz_assert(ngx_chat_fuzz_valid_json(o.buf + 14, n));

        asize2 = ngx_chat_json_arena_size(n);
        arena2 = malloc(asize2);
        ngx_chat_fuzz_assert(arena2 != NULL);

        rc = ngx_chat_json_parse_cmd(o.buf + 14, n, &back, arena2, asize2,
                                     err, sizeof(err));
        ngx_chat_fuzz_assert(rc == NGX_CHAT_JSON_OK);
        ngx_chat_fuzz_compare(&cmd, &back);

        free(arena2);

    } else {
        ngx_chat_json_response_error(&o, (cmd.present & NGX_CHAT_F_ID)
                                         ? cmd.id.data : NULL,
                                     cmd.id.len, cmd.id_is_number,
                                     "bad_request", err);
        ngx_chat_fuzz_assert(!o.failed);
        ngx_chat_fuzz_assert(ngx_chat_fuzz_valid_json(o.buf + 14,
                                                      o.len - 14));
    }

    ngx_chat_json_out_free(&o);
    free(arena);

    return 0;
}
