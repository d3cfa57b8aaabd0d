
/*
 * ngx_chat_json: the JSON protocol codec (see ngx_chat_json.h).
 *
 * Parsing runs yajl's streaming parser once over the whole message.  The
 * callbacks keep only a depth counter: depth 0 is the top-level value
 * (which must be a map), depth 1 are the members of that map, matched
 * against a static table of known fields, depth 2 are the items of a known
 * array field; anything deeper, and any value of an unknown key, is simply
 * ignored until the depth falls back, so no skip state is needed.  Depth is
 * capped at 32 by cancelling the parse.
 *
 * yajl decodes escapes but hides what it did: "\u0000" becomes a NUL byte,
 * a lone "\uD800" becomes "?", a bad pair becomes a wrong code point, and
 * its UTF-8 check lets overlongs and surrogates through.  So each string
 * callback first advances a small scanner over the raw input to the next
 * string token (strings are the only tokens that can contain '"', so the
 * n-th string callback is the n-th quoted token) and checks that token
 * strictly.  The cost is one more pass over the string bytes.
 *
 * Errors do not stop the parse (except depth, top-level type and arena
 * exhaustion): the first one is recorded and the rest of the document is
 * still read so that "id" is found wherever it is.
 *
 * Arena layout: arrays grow up from the front (only one array is open at a
 * time, so its items stay contiguous), strings grow down from the back.
 */


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>

#include "ngx_chat_json.h"
#include "ngx_chat_utf8.h"


/* how a field is decoded */
#define NGX_CHAT_JSON_K_STR         0   /* string */
#define NGX_CHAT_JSON_K_ID          1   /* string, or integer kept as text */
#define NGX_CHAT_JSON_K_DIGITS      2   /* an id: digit string or integer,
                                           1..INT64_MAX, kept as text */
#define NGX_CHAT_JSON_K_INT64       3   /* integer >= 0 */
#define NGX_CHAT_JSON_K_STR_ARRAY   4   /* array of strings */
#define NGX_CHAT_JSON_K_U64_ARRAY   5   /* array of ids, as for K_DIGITS */

/* what the parser saw */
#define NGX_CHAT_JSON_V_NULL        0
#define NGX_CHAT_JSON_V_BOOL        1
#define NGX_CHAT_JSON_V_NUMBER      2
#define NGX_CHAT_JSON_V_STRING      3
#define NGX_CHAT_JSON_V_MAP         4
#define NGX_CHAT_JSON_V_ARRAY       5
#define NGX_CHAT_JSON_V_BAD         6   /* a string that failed the scan */

#define NGX_CHAT_JSON_ALIGN         8



typedef struct {
    const char                   *name;
    size_t                        name_len;
    unsigned                      kind;
    uint32_t                      flag;
    size_t                        offset;     /* value, or array pointer */
    size_t                        count;      /* item count (arrays) */
    size_t                        max;        /* bytes of a value / item */
    size_t                        max_items;  /* arrays */
} ngx_chat_json_field_t;


typedef struct {
    ngx_chat_cmd_t               *cmd;
    const uint8_t                *in;         /* whole input */
    size_t                        in_len;
    size_t                        scan;       /* string scanner position */
    uint8_t                      *front;      /* arrays grow up from here */
    uint8_t                      *back;       /* strings grow down to here */
    const ngx_chat_json_field_t  *field;      /* member being read */
    const ngx_chat_json_field_t  *array;      /* known array being read */
    uint8_t                      *items;      /* its first item */
    size_t                        nitems;
    unsigned                      depth;      /* open containers */
    unsigned                      array_bad:1;
    uint32_t                      seen;       /* keys met, for duplicates */
    int                           rc;         /* worst error so far */
    char                         *err;
    size_t                        err_size;
} ngx_chat_json_ctx_t;


static int ngx_chat_json_hex4(const uint8_t *p, const uint8_t *end,
    unsigned *cp);
static const char *ngx_chat_json_scan_string(ngx_chat_json_ctx_t *ctx);
static int ngx_chat_json_rank(int rc);
static void ngx_chat_json_fail(ngx_chat_json_ctx_t *ctx, int rc,
    const char *fmt, const char *arg, size_t n);
static int ngx_chat_json_is_integer(const char *s, size_t len);
static int ngx_chat_json_parse_u64(const char *s, size_t len, uint64_t max,
    uint64_t *v);
static int ngx_chat_json_parse_id(unsigned v, const char *s, size_t len,
    uint64_t *n);
static const char *ngx_chat_json_store(ngx_chat_json_ctx_t *ctx,
    const char *s, size_t len);
static int ngx_chat_json_set_str(ngx_chat_json_ctx_t *ctx,
    const ngx_chat_json_field_t *f, const char *s, size_t len);
static int ngx_chat_json_member(ngx_chat_json_ctx_t *ctx, unsigned v,
    const char *s, size_t len);
static int ngx_chat_json_digits(ngx_chat_json_ctx_t *ctx,
    const ngx_chat_json_field_t *f, unsigned v, const char *s, size_t len);
static int ngx_chat_json_size(ngx_chat_json_ctx_t *ctx,
    const ngx_chat_json_field_t *f, unsigned v, const char *s, size_t len);
static int ngx_chat_json_array_start(ngx_chat_json_ctx_t *ctx,
    const ngx_chat_json_field_t *f, unsigned v);
static int ngx_chat_json_item(ngx_chat_json_ctx_t *ctx, unsigned v,
    const char *s, size_t len);
static void ngx_chat_json_array_end(ngx_chat_json_ctx_t *ctx);
static int ngx_chat_json_value(ngx_chat_json_ctx_t *ctx, unsigned v,
    const char *s, size_t len);
static int ngx_chat_json_on_null(void *data);
static int ngx_chat_json_on_bool(void *data, int b);
static int ngx_chat_json_on_number(void *data, const char *s, size_t len);
static int ngx_chat_json_on_string(void *data, const unsigned char *s,
    size_t len);
static int ngx_chat_json_on_start_map(void *data);
static int ngx_chat_json_on_key(void *data, const unsigned char *s,
    size_t len);
static int ngx_chat_json_on_end(void *data);
static int ngx_chat_json_on_start_array(void *data);
static int ngx_chat_json_open(ngx_chat_json_ctx_t *ctx, unsigned v);

static void ngx_chat_json_out_print(void *data, const char *s, size_t len);
static void ngx_chat_json_out_append(ngx_chat_json_out_t *o, const char *s,
    size_t len);
static int ngx_chat_json_out_status(ngx_chat_json_out_t *o,
    yajl_gen_status st);
static int ngx_chat_json_out_before_value(ngx_chat_json_out_t *o);
static int ngx_chat_json_out_after_value(ngx_chat_json_out_t *o,
    yajl_gen_status st);
static int ngx_chat_json_out_open(ngx_chat_json_out_t *o, int map);
static int ngx_chat_json_out_close(ngx_chat_json_out_t *o, int map);
static int ngx_chat_json_out_id(ngx_chat_json_out_t *o, const char *id,
    size_t len, int is_number);


#define ngx_chat_json_f(name, kind, flag, member, max)                       \
    { ngx_chat_json_sl(name), kind, flag, offsetof(ngx_chat_cmd_t, member),  \
      0, max, 0 }

#define ngx_chat_json_a(name, kind, flag, member, count, max, items)         \
    { ngx_chat_json_sl(name), kind, flag, offsetof(ngx_chat_cmd_t, member),  \
      offsetof(ngx_chat_cmd_t, count), max, items }

static const ngx_chat_json_field_t  ngx_chat_json_fields[] = {

    ngx_chat_json_f("type", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_TYPE,
                    type, NGX_CHAT_JSON_TYPE_MAX),
    ngx_chat_json_f("id", NGX_CHAT_JSON_K_ID, NGX_CHAT_F_ID,
                    id, NGX_CHAT_JSON_ID_MAX),
    ngx_chat_json_f("chatId", NGX_CHAT_JSON_K_DIGITS, NGX_CHAT_F_CHAT_ID,
                    chat_id, NGX_CHAT_JSON_CHAT_ID_MAX),
    ngx_chat_json_f("name", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_NAME,
                    name, NGX_CHAT_JSON_NAME_MAX),
    ngx_chat_json_f("userId", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_USER_ID,
                    user_id, NGX_CHAT_JSON_KEY_MAX),
    ngx_chat_json_f("deviceId", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_DEVICE_ID,
                    device_id, NGX_CHAT_JSON_KEY_MAX),
    ngx_chat_json_f("attachmentId", NGX_CHAT_JSON_K_STR,
                    NGX_CHAT_F_ATTACHMENT_ID, attachment_id,
                    NGX_CHAT_JSON_KEY_MAX),
    ngx_chat_json_f("operation", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_OPERATION,
                    operation, NGX_CHAT_JSON_OPERATION_MAX),
    ngx_chat_json_f("clientMessageId", NGX_CHAT_JSON_K_STR,
                    NGX_CHAT_F_CLIENT_MESSAGE_ID, client_message_id,
                    NGX_CHAT_JSON_KEY_MAX),
    ngx_chat_json_f("message", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_MESSAGE,
                    message, NGX_CHAT_JSON_MESSAGE_MAX),
    ngx_chat_json_f("contentType", NGX_CHAT_JSON_K_STR,
                    NGX_CHAT_F_CONTENT_TYPE, content_type,
                    NGX_CHAT_JSON_CONTENT_TYPE_MAX),
    ngx_chat_json_f("sha256", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_SHA256,
                    sha256, NGX_CHAT_JSON_SHA256_MAX),
    ngx_chat_json_f("size", NGX_CHAT_JSON_K_INT64, NGX_CHAT_F_SIZE,
                    size, 0),
    ngx_chat_json_f("user", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_USER,
                    user, NGX_CHAT_JSON_KEY_MAX),
    ngx_chat_json_f("device", NGX_CHAT_JSON_K_STR, NGX_CHAT_F_DEVICE,
                    device, NGX_CHAT_JSON_KEY_MAX),
    ngx_chat_json_f("ttl", NGX_CHAT_JSON_K_INT64, NGX_CHAT_F_TTL,
                    ttl, 0),
    ngx_chat_json_f("limit", NGX_CHAT_JSON_K_INT64, NGX_CHAT_F_LIMIT,
                    limit, 0),
    ngx_chat_json_f("cursor", NGX_CHAT_JSON_K_DIGITS, NGX_CHAT_F_CURSOR,
                    cursor, NGX_CHAT_JSON_CHAT_ID_MAX),
    ngx_chat_json_a("participants", NGX_CHAT_JSON_K_STR_ARRAY,
                    NGX_CHAT_F_PARTICIPANTS, participants, nparticipants,
                    NGX_CHAT_JSON_KEY_MAX, NGX_CHAT_JSON_PARTICIPANTS_MAX),
    ngx_chat_json_a("attachments", NGX_CHAT_JSON_K_STR_ARRAY,
                    NGX_CHAT_F_ATTACHMENTS, attachments, nattachments,
                    NGX_CHAT_JSON_KEY_MAX, NGX_CHAT_JSON_ATTACHMENTS_MAX),
    ngx_chat_json_a("eventIds", NGX_CHAT_JSON_K_U64_ARRAY,
                    NGX_CHAT_F_EVENT_IDS, event_ids, nevent_ids,
                    0, NGX_CHAT_JSON_EVENT_IDS_MAX),
};

#define NGX_CHAT_JSON_NFIELDS                                                \
    (sizeof(ngx_chat_json_fields) / sizeof(ngx_chat_json_fields[0]))


static const yajl_callbacks  ngx_chat_json_callbacks = {
    ngx_chat_json_on_null,
    ngx_chat_json_on_bool,
    NULL,                           /* integers: as text, via yajl_number */
    NULL,                           /* doubles: likewise */
    ngx_chat_json_on_number,
    ngx_chat_json_on_string,
    ngx_chat_json_on_start_map,
    ngx_chat_json_on_key,
    ngx_chat_json_on_end,
    ngx_chat_json_on_start_array,
    ngx_chat_json_on_end
};


size_t
ngx_chat_json_arena_size(size_t input_len)
{
    size_t  items;

    items = (NGX_CHAT_JSON_PARTICIPANTS_MAX + NGX_CHAT_JSON_ATTACHMENTS_MAX)
            * sizeof(ngx_chat_json_str_t)
            + NGX_CHAT_JSON_EVENT_IDS_MAX * sizeof(uint64_t);

    if (input_len <= items / 5) {
        return input_len * 6 + 64;
    }

    if (input_len > SIZE_MAX - items - 64) {
        return 0;
    }

    return input_len + items + 64;
}


int
ngx_chat_json_parse_cmd(const uint8_t *p, size_t len, ngx_chat_cmd_t *cmd,
    void *arena, size_t arena_size, char *err, size_t err_size)
{
    uintptr_t            a;
    yajl_status          st;
    yajl_handle          h;
    unsigned char       *msg;
    size_t               n;
    ngx_chat_json_ctx_t  ctx;

    memset(cmd, 0, sizeof(ngx_chat_cmd_t));
    memset(&ctx, 0, sizeof(ngx_chat_json_ctx_t));

    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }

    ctx.cmd = cmd;
    ctx.in = (p != NULL) ? p : (const uint8_t *) "";
    ctx.in_len = (p != NULL) ? len : 0;
    ctx.err = err;
    ctx.err_size = err_size;

    a = (uintptr_t) arena;
    a = (a + NGX_CHAT_JSON_ALIGN - 1) & ~(uintptr_t) (NGX_CHAT_JSON_ALIGN - 1);

    if (arena == NULL || a - (uintptr_t) arena > arena_size) {
        ngx_chat_json_fail(&ctx, NGX_CHAT_JSON_ERROR, "arena too small",
                           NULL, 0);
        return ctx.rc;
    }

    ctx.front = (uint8_t *) a;
    ctx.back = (uint8_t *) arena + arena_size;

    h = yajl_alloc(&ngx_chat_json_callbacks, NULL, &ctx);
    if (h == NULL) {
        ngx_chat_json_fail(&ctx, NGX_CHAT_JSON_ERROR, "yajl_alloc() failed",
                           NULL, 0);
        return ctx.rc;
    }

    st = yajl_parse(h, ctx.in, ctx.in_len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (st == yajl_status_error) {
        msg = yajl_get_error(h, 0, NULL, 0);

        if (msg != NULL) {
            /* yajl ends its messages with a newline */
            n = strlen((char *) msg);
            while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
                msg[--n] = '\0';
            }

            ngx_chat_json_fail(&ctx, NGX_CHAT_JSON_EMALFORMED,
                               "malformed JSON: %s", (char *) msg, 0);
            yajl_free_error(h, msg);

        } else {
            ngx_chat_json_fail(&ctx, NGX_CHAT_JSON_EMALFORMED,
                               "malformed JSON", NULL, 0);
        }
    }

    /* yajl_status_client_canceled: the callback recorded why */

    yajl_free(h);

    return ctx.rc;
}


static int
ngx_chat_json_hex4(const uint8_t *p, const uint8_t *end, unsigned *cp)
{
    unsigned  i, c, v;

    if (end - p < 4) {
        return -1;
    }

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }

        v = (v << 4) | c;
    }

    *cp = v;

    return 0;
}


/*
 * Advances the scanner over the next string token of the raw input and
 * returns why it is unacceptable, or NULL.  Called once per string
 * callback, in order; yajl has already checked the token's syntax.
 */

static const char *
ngx_chat_json_scan_string(ngx_chat_json_ctx_t *ctx)
{
    unsigned        cp, lo;
    const char     *why;
    const uint8_t  *p, *q, *end;

    p = ctx->in + ctx->scan;
    end = ctx->in + ctx->in_len;
    why = NULL;

    while (p < end && *p != '"') {
        p++;
    }

    if (p < end) {
        p++;
    }

    while (p < end && *p != '"') {

        if (*p == '\\') {
            if (end - p < 2) {
                break;
            }

            if (p[1] != 'u') {
                p += 2;
                continue;
            }

            if (ngx_chat_json_hex4(p + 2, end, &cp) != 0) {
                why = (why != NULL) ? why : "bad \\u escape in string";
                p += 2;
                continue;
            }

            p += 6;

            if (cp == 0) {
                why = (why != NULL) ? why : "\\u0000 in string";

            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                why = (why != NULL) ? why : "lone surrogate in string";

            } else if (cp >= 0xd800 && cp <= 0xdbff) {

                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u'
                    && ngx_chat_json_hex4(p + 2, end, &lo) == 0
                    && lo >= 0xdc00 && lo <= 0xdfff)
                {
                    p += 6;

                } else {
                    why = (why != NULL) ? why : "lone surrogate in string";
                }
            }

            continue;
        }

        /*
         * a run of raw bytes up to the next escape or the closing quote:
         * no valid character contains '\\' or '"', so checking runs finds
         * the same first error as checking character by character
         */

        q = p;

        while (q < end && *q != '"' && *q != '\\') {
            q++;
        }

        if (ngx_chat_utf8_check(p, q - p) != 0) {
            why = (why != NULL) ? why : "invalid UTF-8 in string";
        }

        p = q;
    }

    ctx->scan = (p < end) ? (size_t) (p + 1 - ctx->in) : ctx->in_len;

    return why;
}


static int
ngx_chat_json_rank(int rc)
{
    switch (rc) {
    case NGX_CHAT_JSON_OK:
        return 0;
    case NGX_CHAT_JSON_ETYPE:
        return 1;
    case NGX_CHAT_JSON_EMALFORMED:
        return 2;
    default:
        return 3;
    }
}


/*
 * Records an error unless a worse or equal one is already recorded.  fmt
 * may hold one "%s" (replaced by arg) and one "%u" (replaced by n).
 */

static void
ngx_chat_json_fail(ngx_chat_json_ctx_t *ctx, int rc, const char *fmt,
    const char *arg, size_t n)
{
    char    *d, *last, num[24];
    size_t   i;

    if (ngx_chat_json_rank(rc) <= ngx_chat_json_rank(ctx->rc)) {
        return;
    }

    ctx->rc = rc;

    if (ctx->err == NULL || ctx->err_size == 0) {
        return;
    }

    d = ctx->err;
    last = ctx->err + ctx->err_size - 1;

    for ( /* void */ ; *fmt != '\0' && d < last; fmt++) {

        if (fmt[0] == '%' && fmt[1] == 's' && arg != NULL) {
            for (i = 0; arg[i] != '\0' && d < last; i++) {
                *d++ = arg[i];
            }

            fmt++;
            continue;
        }

        if (fmt[0] == '%' && fmt[1] == 'u') {
            i = sizeof(num);

            do {
                num[--i] = (char) ('0' + n % 10);
                n /= 10;
            } while (n != 0);

            while (i < sizeof(num) && d < last) {
                *d++ = num[i++];
            }

            fmt++;
            continue;
        }

        *d++ = *fmt;
    }

    *d = '\0';
}


/* a number token from yajl is an integer unless it has a fraction/exponent */

static int
ngx_chat_json_is_integer(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
            return 0;
        }
    }

    return len > 0;
}


/* returns 0, or 1 if s is not 1 or more digits, or 2 if the value > max */

static int
ngx_chat_json_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *v)
{
    size_t    i;
    uint64_t  r, d;

    if (len == 0) {
        return 1;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 1;
        }
    }

    r = 0;

    for (i = 0; i < len; i++) {
        d = (uint64_t) (s[i] - '0');

        if (r > (max - d) / 10) {
            return 2;
        }

        r = r * 10 + d;
    }

    *v = r;

    return 0;
}


/*
 * An id the database keeps as a bigint (chatId, eventIds items): a JSON
 * integer or a string of decimal digits, from 1 to INT64_MAX, without a
 * sign or leading zeros (so that equal ids have equal text).  Returns 0
 * with *n set, 1 if the value is not a digit string or an integer, 2 if
 * it is one but out of that range (0, leading zeros, over INT64_MAX).
 * Any digit count above 19 is out of range without being converted.
 */

static int
ngx_chat_json_parse_id(unsigned v, const char *s, size_t len, uint64_t *n)
{
    size_t  i;

    if (v == NGX_CHAT_JSON_V_NUMBER) {
        if (!ngx_chat_json_is_integer(s, len) || s[0] == '-') {
            return 1;
        }

    } else if (v != NGX_CHAT_JSON_V_STRING) {
        return 1;
    }

    if (len == 0) {
        return 1;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 1;
        }
    }

    if (s[0] == '0' || len > NGX_CHAT_JSON_CHAT_ID_MAX) {
        return 2;
    }

    if (ngx_chat_json_parse_u64(s, len, INT64_MAX, n) != 0) {
        return 2;
    }

    return 0;
}


/* copies a string to the back of the arena, NUL-terminated */

static const char *
ngx_chat_json_store(ngx_chat_json_ctx_t *ctx, const char *s, size_t len)
{
    if ((size_t) (ctx->back - ctx->front) < len + 1) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ERROR, "arena too small",
                           NULL, 0);
        return NULL;
    }

    ctx->back -= len + 1;
    if (len > 0) {
        memcpy(ctx->back, s, len);
    }
    ctx->back[len] = '\0';

    return (const char *) ctx->back;
}


/* returns 0 (cancel the parse) only when the arena is exhausted */

static int
ngx_chat_json_set_str(ngx_chat_json_ctx_t *ctx,
    const ngx_chat_json_field_t *f, const char *s, size_t len)
{
    const char           *d;
    ngx_chat_json_str_t  *str;

    d = ngx_chat_json_store(ctx, s, len);
    if (d == NULL) {
        return 0;
    }

    str = (ngx_chat_json_str_t *) ((char *) ctx->cmd + f->offset);
    str->data = d;
    str->len = len;

    ctx->cmd->present |= f->flag;

    return 1;
}


static int
ngx_chat_json_member(ngx_chat_json_ctx_t *ctx, unsigned v, const char *s,
    size_t len)
{
    const ngx_chat_json_field_t  *f;

    f = ctx->field;
    ctx->field = NULL;

    if (f == NULL || v == NGX_CHAT_JSON_V_BAD) {
        /* an unknown or repeated key, or a string already reported */
        return 1;
    }

    switch (f->kind) {

    case NGX_CHAT_JSON_K_STR:
        if (v != NGX_CHAT_JSON_V_STRING) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                               "field \"%s\" must be a string", f->name, 0);
            return 1;
        }

        break;

    case NGX_CHAT_JSON_K_ID:
        if (v == NGX_CHAT_JSON_V_NUMBER && ngx_chat_json_is_integer(s, len)) {
            if (len <= f->max) {
                ctx->cmd->id_is_number = 1;
            }

        } else if (v != NGX_CHAT_JSON_V_STRING) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                               "field \"%s\" must be a string or an integer",
                               f->name, 0);
            return 1;
        }

        break;

    case NGX_CHAT_JSON_K_DIGITS:
        return ngx_chat_json_digits(ctx, f, v, s, len);

    case NGX_CHAT_JSON_K_INT64:
        return ngx_chat_json_size(ctx, f, v, s, len);

    default:
        return ngx_chat_json_array_start(ctx, f, v);
    }

    if (len > f->max) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                           "field \"%s\" is too long (max %u bytes)",
                           f->name, f->max);
        return 1;
    }

    return ngx_chat_json_set_str(ctx, f, s, len);
}


static int
ngx_chat_json_digits(ngx_chat_json_ctx_t *ctx, const ngx_chat_json_field_t *f,
    unsigned v, const char *s, size_t len)
{
    int       rc;
    uint64_t  n;

    rc = ngx_chat_json_parse_id(v, s, len, &n);

    if (rc != 0) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                           (rc == 1)
                           ? "field \"%s\" must be a string of digits "
                             "or an integer"
                           : "field \"%s\" must be an id from 1 to "
                             "9223372036854775807 without leading zeros",
                           f->name, 0);
        return 1;
    }

    return ngx_chat_json_set_str(ctx, f, s, len);
}


static int
ngx_chat_json_size(ngx_chat_json_ctx_t *ctx, const ngx_chat_json_field_t *f,
    unsigned v, const char *s, size_t len)
{
    int       rc;
    uint64_t  n;

    if (v != NGX_CHAT_JSON_V_NUMBER || !ngx_chat_json_is_integer(s, len)
        || s[0] == '-')
    {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                           "field \"%s\" must be a non-negative integer",
                           f->name, 0);
        return 1;
    }

    rc = ngx_chat_json_parse_u64(s, len, INT64_MAX, &n);
    if (rc != 0) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                           "field \"%s\" is out of range", f->name, 0);
        return 1;
    }

    *(int64_t *) ((char *) ctx->cmd + f->offset) = (int64_t) n;
    ctx->cmd->present |= f->flag;

    return 1;
}


static int
ngx_chat_json_array_start(ngx_chat_json_ctx_t *ctx,
    const ngx_chat_json_field_t *f, unsigned v)
{
    uintptr_t  a;

    if (v != NGX_CHAT_JSON_V_ARRAY) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                           (f->kind == NGX_CHAT_JSON_K_STR_ARRAY)
                           ? "field \"%s\" must be an array of strings"
                           : "field \"%s\" must be an array",
                           f->name, 0);
        return 1;
    }

    a = (uintptr_t) ctx->front;
    a = (a + NGX_CHAT_JSON_ALIGN - 1) & ~(uintptr_t) (NGX_CHAT_JSON_ALIGN - 1);

    if (a > (uintptr_t) ctx->back) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ERROR, "arena too small",
                           NULL, 0);
        return 0;
    }

    ctx->front = (uint8_t *) a;
    ctx->array = f;
    ctx->items = ctx->front;
    ctx->nitems = 0;
    ctx->array_bad = 0;

    return 1;
}


static int
ngx_chat_json_item(ngx_chat_json_ctx_t *ctx, unsigned v, const char *s,
    size_t len)
{
    int                           rc;
    size_t                        size;
    uint8_t                      *item;
    uint64_t                      n;
    const char                   *d;
    ngx_chat_json_str_t          *str;
    const ngx_chat_json_field_t  *f;

    f = ctx->array;
    n = 0;

    if (ctx->array_bad || v == NGX_CHAT_JSON_V_BAD) {
        ctx->array_bad = 1;
        return 1;
    }

    if (ctx->nitems == f->max_items) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                           "field \"%s\" has too many items (max %u)",
                           f->name, f->max_items);
        ctx->array_bad = 1;
        return 1;
    }

    if (f->kind == NGX_CHAT_JSON_K_STR_ARRAY) {

        if (v != NGX_CHAT_JSON_V_STRING) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                               "field \"%s\" items must be strings",
                               f->name, 0);
            ctx->array_bad = 1;
            return 1;
        }

        if (len > f->max) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                               "field \"%s\" item is too long (max %u bytes)",
                               f->name, f->max);
            ctx->array_bad = 1;
            return 1;
        }

        size = sizeof(ngx_chat_json_str_t);

    } else {

        rc = ngx_chat_json_parse_id(v, s, len, &n);

        if (rc != 0) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                               (rc == 1)
                               ? "field \"%s\" items must be strings of "
                                 "digits or integers"
                               : "field \"%s\" items must be ids from 1 "
                                 "to 9223372036854775807 without leading "
                                 "zeros",
                               f->name, 0);
            ctx->array_bad = 1;
            return 1;
        }

        size = sizeof(uint64_t);
    }

    if ((size_t) (ctx->back - ctx->front) < size) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ERROR, "arena too small",
                           NULL, 0);
        return 0;
    }

    /* the item is claimed first; its string goes to the other end */
    item = ctx->front;
    ctx->front += size;

    if (f->kind == NGX_CHAT_JSON_K_U64_ARRAY) {
        memcpy(item, &n, sizeof(uint64_t));

    } else {
        d = ngx_chat_json_store(ctx, s, len);
        if (d == NULL) {
            return 0;
        }

        str = (ngx_chat_json_str_t *) item;
        str->data = d;
        str->len = len;
    }

    ctx->nitems++;

    return 1;
}


static void
ngx_chat_json_array_end(ngx_chat_json_ctx_t *ctx)
{
    const ngx_chat_json_field_t  *f;

    f = ctx->array;
    ctx->array = NULL;

    if (ctx->array_bad) {
        return;
    }

    *(void **) ((char *) ctx->cmd + f->offset) =
                                    (ctx->nitems > 0) ? ctx->items : NULL;
    *(size_t *) ((char *) ctx->cmd + f->count) = ctx->nitems;
    ctx->cmd->present |= f->flag;
}


/*
 * Every value goes through here, containers included (before the depth is
 * raised); returns 0 to cancel the parse.
 */

static int
ngx_chat_json_value(ngx_chat_json_ctx_t *ctx, unsigned v, const char *s,
    size_t len)
{
    switch (ctx->depth) {

    case 0:
        if (v != NGX_CHAT_JSON_V_MAP) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_EMALFORMED,
                               "top-level value must be an object", NULL, 0);
            return 0;
        }

        return 1;

    case 1:
        return ngx_chat_json_member(ctx, v, s, len);

    case 2:
        if (ctx->array != NULL) {
            return ngx_chat_json_item(ctx, v, s, len);
        }

        return 1;

    default:
        return 1;
    }
}


static int
ngx_chat_json_on_null(void *data)
{
    return ngx_chat_json_value(data, NGX_CHAT_JSON_V_NULL, NULL, 0);
}


static int
ngx_chat_json_on_bool(void *data, int b)
{
    (void) b;

    return ngx_chat_json_value(data, NGX_CHAT_JSON_V_BOOL, NULL, 0);
}


static int
ngx_chat_json_on_number(void *data, const char *s, size_t len)
{
    return ngx_chat_json_value(data, NGX_CHAT_JSON_V_NUMBER, s, len);
}


static int
ngx_chat_json_on_string(void *data, const unsigned char *s, size_t len)
{
    const char           *why;
    ngx_chat_json_ctx_t  *ctx;

    ctx = data;

    why = ngx_chat_json_scan_string(ctx);
    if (why != NULL) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_EMALFORMED, why, NULL, 0);
        return ngx_chat_json_value(ctx, NGX_CHAT_JSON_V_BAD, NULL, 0);
    }

    return ngx_chat_json_value(ctx, NGX_CHAT_JSON_V_STRING,
                               (const char *) s, len);
}


static int
ngx_chat_json_on_key(void *data, const unsigned char *s, size_t len)
{
    size_t                        i;
    const char                   *why;
    ngx_chat_json_ctx_t          *ctx;
    const ngx_chat_json_field_t  *f;

    ctx = data;

    why = ngx_chat_json_scan_string(ctx);
    if (why != NULL) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_EMALFORMED, why, NULL, 0);
        ctx->field = NULL;
        return 1;
    }

    if (ctx->depth != 1) {
        return 1;
    }

    ctx->field = NULL;

    for (i = 0; i < NGX_CHAT_JSON_NFIELDS; i++) {
        f = &ngx_chat_json_fields[i];

        if (f->name_len != len || memcmp(f->name, s, len) != 0) {
            continue;
        }

        if (ctx->seen & f->flag) {
            ngx_chat_json_fail(ctx, NGX_CHAT_JSON_ETYPE,
                               "duplicate field \"%s\"", f->name, 0);
            return 1;
        }

        ctx->seen |= f->flag;
        ctx->field = f;

        return 1;
    }

    return 1;
}


static int
ngx_chat_json_open(ngx_chat_json_ctx_t *ctx, unsigned v)
{
    if (ngx_chat_json_value(ctx, v, NULL, 0) == 0) {
        return 0;
    }

    if (++ctx->depth > NGX_CHAT_JSON_MAX_DEPTH) {
        ngx_chat_json_fail(ctx, NGX_CHAT_JSON_EMALFORMED,
                           "nesting too deep (max %u)", NULL,
                           NGX_CHAT_JSON_MAX_DEPTH);
        return 0;
    }

    return 1;
}


static int
ngx_chat_json_on_start_map(void *data)
{
    return ngx_chat_json_open(data, NGX_CHAT_JSON_V_MAP);
}


static int
ngx_chat_json_on_start_array(void *data)
{
    return ngx_chat_json_open(data, NGX_CHAT_JSON_V_ARRAY);
}


static int
ngx_chat_json_on_end(void *data)
{
    ngx_chat_json_ctx_t  *ctx;

    ctx = data;

    ctx->depth--;

    if (ctx->depth == 1 && ctx->array != NULL) {
        ngx_chat_json_array_end(ctx);
    }

    return 1;
}


/* the writer */

int
ngx_chat_json_out_init(ngx_chat_json_out_t *o, size_t reserve)
{
    memset(o, 0, sizeof(ngx_chat_json_out_t));

    if (reserve > SIZE_MAX - 256) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    o->cap = reserve + 256;
    o->buf = malloc(o->cap);
    if (o->buf == NULL) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    o->len = reserve;

    o->g = yajl_gen_alloc(NULL);

    if (o->g == NULL
        || !yajl_gen_config(o->g, yajl_gen_print_callback,
                            ngx_chat_json_out_print, o)
        || !yajl_gen_config(o->g, yajl_gen_validate_utf8, 1))
    {
        /* nothing stays allocated: a caller may just return */
        ngx_chat_json_out_free(o);
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    return NGX_CHAT_JSON_OK;
}


void
ngx_chat_json_out_free(ngx_chat_json_out_t *o)
{
    if (o->g != NULL) {
        yajl_gen_free(o->g);
        o->g = NULL;
    }

    free(o->buf);
    o->buf = NULL;
    o->len = 0;
    o->cap = 0;
}


/*
 * yajl's print callback.  Everything yajl prints outside strings is ASCII,
 * and it splits a string's text only at the ASCII characters it escapes, so
 * a UTF-8 sequence always arrives whole within one call: U+2028 (E2 80 A8)
 * and U+2029 (E2 80 A9) can be replaced here.
 */

static void
ngx_chat_json_out_print(void *data, const char *s, size_t len)
{
    const char           *p, *end;
    ngx_chat_json_out_t  *o;

    o = data;
    end = s + len;

    while (s < end) {
        p = memchr(s, 0xe2, end - s);

        if (p == NULL) {
            ngx_chat_json_out_append(o, s, end - s);
            return;
        }

        ngx_chat_json_out_append(o, s, p - s);

        if (end - p >= 3 && (uint8_t) p[1] == 0x80
            && ((uint8_t) p[2] == 0xa8 || (uint8_t) p[2] == 0xa9))
        {
            ngx_chat_json_out_append(o, ((uint8_t) p[2] == 0xa8)
                                        ? "\\u2028" : "\\u2029", 6);
            s = p + 3;

        } else {
            ngx_chat_json_out_append(o, p, 1);
            s = p + 1;
        }
    }
}


static void
ngx_chat_json_out_append(ngx_chat_json_out_t *o, const char *s, size_t len)
{
    size_t    cap;
    uint8_t  *buf;

    if (o->failed || len == 0) {
        return;
    }

    if (o->cap - o->len < len) {
        if (len > SIZE_MAX / 2 - o->len) {
            o->failed = 1;
            return;
        }

        cap = o->cap * 2;
        if (cap < o->len + len) {
            cap = o->len + len;
        }

        buf = realloc(o->buf, cap);
        if (buf == NULL) {
            o->failed = 1;
            return;
        }

        o->buf = buf;
        o->cap = cap;
    }

    memcpy(o->buf + o->len, s, len);
    o->len += len;
}


static int
ngx_chat_json_out_status(ngx_chat_json_out_t *o, yajl_gen_status st)
{
    if (st != yajl_gen_status_ok) {
        o->failed = 1;
    }

    return o->failed ? NGX_CHAT_JSON_ERROR : NGX_CHAT_JSON_OK;
}


/* a value may be written: inside an array, after a key, or at the top */

static int
ngx_chat_json_out_before_value(ngx_chat_json_out_t *o)
{
    if (o->failed || o->g == NULL || o->done) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    if (o->depth > 0 && (o->maps & ((uint64_t) 1 << (o->depth - 1)))
        && !o->want_value)
    {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    return NGX_CHAT_JSON_OK;
}


static int
ngx_chat_json_out_after_value(ngx_chat_json_out_t *o, yajl_gen_status st)
{
    o->want_value = 0;

    if (o->depth == 0) {
        o->done = 1;
    }

    return ngx_chat_json_out_status(o, st);
}


int
ngx_chat_json_out_key(ngx_chat_json_out_t *o, const char *s, size_t len)
{
    if (o->failed || o->g == NULL || o->depth == 0
        || !(o->maps & ((uint64_t) 1 << (o->depth - 1)))
        || o->want_value
        || ngx_chat_utf8_check((const uint8_t *) s, len) != 0)
    {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    o->want_value = 1;

    return ngx_chat_json_out_status(o,
               yajl_gen_string(o->g, (const unsigned char *) s, len));
}


int
ngx_chat_json_out_str(ngx_chat_json_out_t *o, const char *s, size_t len)
{
    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    if (ngx_chat_utf8_check((const uint8_t *) s, len) != 0) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    return ngx_chat_json_out_after_value(o,
               yajl_gen_string(o->g, (const unsigned char *) s, len));
}


int
ngx_chat_json_out_int(ngx_chat_json_out_t *o, int64_t v)
{
    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    return ngx_chat_json_out_after_value(o,
               yajl_gen_integer(o->g, (long long) v));
}


int
ngx_chat_json_out_uint(ngx_chat_json_out_t *o, uint64_t v)
{
    char    num[24];
    size_t  i;

    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    i = sizeof(num);

    do {
        num[--i] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);

    return ngx_chat_json_out_after_value(o,
               yajl_gen_number(o->g, num + i, sizeof(num) - i));
}


int
ngx_chat_json_out_bool(ngx_chat_json_out_t *o, int v)
{
    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    return ngx_chat_json_out_after_value(o, yajl_gen_bool(o->g, v != 0));
}


int
ngx_chat_json_out_null(ngx_chat_json_out_t *o)
{
    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    return ngx_chat_json_out_after_value(o, yajl_gen_null(o->g));
}


int
ngx_chat_json_out_raw(ngx_chat_json_out_t *o, const char *s, size_t len)
{
    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    if (len == 0) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    /* yajl_gen_number() prints its argument verbatim as one value */

    return ngx_chat_json_out_after_value(o, yajl_gen_number(o->g, s, len));
}


static int
ngx_chat_json_out_open(ngx_chat_json_out_t *o, int map)
{
    yajl_gen_status  st;

    if (ngx_chat_json_out_before_value(o) != NGX_CHAT_JSON_OK) {
        return NGX_CHAT_JSON_ERROR;
    }

    if (o->depth == NGX_CHAT_JSON_OUT_MAX_DEPTH) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    st = map ? yajl_gen_map_open(o->g) : yajl_gen_array_open(o->g);

    if (map) {
        o->maps |= (uint64_t) 1 << o->depth;

    } else {
        o->maps &= ~((uint64_t) 1 << o->depth);
    }

    o->depth++;
    o->want_value = 0;

    return ngx_chat_json_out_status(o, st);
}


static int
ngx_chat_json_out_close(ngx_chat_json_out_t *o, int map)
{
    int  is_map;

    if (o->failed || o->g == NULL || o->depth == 0 || o->want_value) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    is_map = (o->maps & ((uint64_t) 1 << (o->depth - 1))) != 0;

    if (is_map != (map != 0)) {
        o->failed = 1;
        return NGX_CHAT_JSON_ERROR;
    }

    o->depth--;

    return ngx_chat_json_out_after_value(o, map ? yajl_gen_map_close(o->g)
                                                : yajl_gen_array_close(o->g));
}


int
ngx_chat_json_out_map_open(ngx_chat_json_out_t *o)
{
    return ngx_chat_json_out_open(o, 1);
}


int
ngx_chat_json_out_map_close(ngx_chat_json_out_t *o)
{
    return ngx_chat_json_out_close(o, 1);
}


int
ngx_chat_json_out_array_open(ngx_chat_json_out_t *o)
{
    return ngx_chat_json_out_open(o, 0);
}


int
ngx_chat_json_out_array_close(ngx_chat_json_out_t *o)
{
    return ngx_chat_json_out_close(o, 0);
}


/* an id received as a number goes back as one if it still looks like one */

static int
ngx_chat_json_out_id(ngx_chat_json_out_t *o, const char *id, size_t len,
    int is_number)
{
    size_t  i, start;

    ngx_chat_json_out_key(o, ngx_chat_json_sl("id"));

    if (is_number && len > 0) {
        start = (id[0] == '-') ? 1 : 0;

        for (i = start; i < len; i++) {
            if (id[i] < '0' || id[i] > '9') {
                break;
            }
        }

        if (i == len && len > start && (id[start] != '0' || len == start + 1))
        {
            return ngx_chat_json_out_raw(o, id, len);
        }
    }

    return ngx_chat_json_out_str(o, id, len);
}


int
ngx_chat_json_response_ok_open(ngx_chat_json_out_t *o,
    const ngx_chat_cmd_t *cmd)
{
    ngx_chat_json_out_map_open(o);
    ngx_chat_json_out_key(o, ngx_chat_json_sl("type"));
    ngx_chat_json_out_str(o, ngx_chat_json_sl("response"));

    if (cmd != NULL && (cmd->present & NGX_CHAT_F_ID)) {
        ngx_chat_json_out_id(o, cmd->id.data, cmd->id.len, cmd->id_is_number);
    }

    ngx_chat_json_out_key(o, ngx_chat_json_sl("ok"));
    ngx_chat_json_out_bool(o, 1);

    return o->failed ? NGX_CHAT_JSON_ERROR : NGX_CHAT_JSON_OK;
}


int
ngx_chat_json_response_error(ngx_chat_json_out_t *o, const char *id,
    size_t id_len, int id_is_number, const char *code, const char *message)
{
    return ngx_chat_json_response_error_retry(o, id, id_len, id_is_number,
                                              code, message, 0);
}


int
ngx_chat_json_response_error_retry(ngx_chat_json_out_t *o, const char *id,
    size_t id_len, int id_is_number, const char *code, const char *message,
    uint64_t retry_ms)
{
    ngx_chat_json_out_map_open(o);
    ngx_chat_json_out_key(o, ngx_chat_json_sl("type"));
    ngx_chat_json_out_str(o, ngx_chat_json_sl("response"));

    if (id != NULL) {
        ngx_chat_json_out_id(o, id, id_len, id_is_number);
    }

    ngx_chat_json_out_key(o, ngx_chat_json_sl("ok"));
    ngx_chat_json_out_bool(o, 0);
    ngx_chat_json_out_key(o, ngx_chat_json_sl("error"));
    ngx_chat_json_out_map_open(o);
    ngx_chat_json_out_key(o, ngx_chat_json_sl("code"));
    ngx_chat_json_out_str(o, code, strlen(code));
    ngx_chat_json_out_key(o, ngx_chat_json_sl("message"));
    ngx_chat_json_out_str(o, message, strlen(message));
    if (retry_ms) {
        ngx_chat_json_out_key(o, ngx_chat_json_sl("retryAfterMs"));
        ngx_chat_json_out_uint(o, retry_ms);
    }
    ngx_chat_json_out_map_close(o);
    ngx_chat_json_out_map_close(o);

    return o->failed ? NGX_CHAT_JSON_ERROR : NGX_CHAT_JSON_OK;
}
