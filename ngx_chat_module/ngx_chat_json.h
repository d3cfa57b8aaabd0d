
/*
 * ngx_chat_json: the pure JSON codec of the chat protocol.
 *
 * This file owns two things and nothing else:
 *
 *   - parsing one client command (the payload of one WebSocket text
 *     message) into an ngx_chat_cmd_t with yajl's streaming parser, driven
 *     by a static table of known fields;
 *   - writing server frames with yajl_gen into a growable malloc()ed
 *     buffer that keeps room at its front for the WebSocket header.
 *
 * It includes no nginx header and never logs: errors are returned as
 * codes plus a human message, so unit tests and the fuzzer link it alone
 * (with -lyajl).
 */


#ifndef _NGX_CHAT_JSON_H_INCLUDED_
#define _NGX_CHAT_JSON_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>


/* a string literal as (pointer, length) arguments: keys, fixed values */
#define ngx_chat_json_sl(s)              s, sizeof(s) - 1


/* return codes */
#define NGX_CHAT_JSON_OK            0
#define NGX_CHAT_JSON_EMALFORMED    1   /* not JSON, bad strings, too deep */
#define NGX_CHAT_JSON_ETYPE         2   /* known field invalid or repeated */
#define NGX_CHAT_JSON_ERROR        -1   /* out of memory, arena too small,
                                           generator misuse */

/* limits */
#define NGX_CHAT_JSON_MAX_DEPTH          32      /* nesting of any value */
#define NGX_CHAT_JSON_TYPE_MAX           32
#define NGX_CHAT_JSON_ID_MAX             64
#define NGX_CHAT_JSON_CHAT_ID_MAX        19      /* digits of INT64_MAX */
#define NGX_CHAT_JSON_NAME_MAX           256
#define NGX_CHAT_JSON_KEY_MAX            64      /* userId, deviceId, ... */
#define NGX_CHAT_JSON_OPERATION_MAX      16
#define NGX_CHAT_JSON_MESSAGE_MAX        (1024 * 1024)
#define NGX_CHAT_JSON_CONTENT_TYPE_MAX   128
#define NGX_CHAT_JSON_SHA256_MAX         64
#define NGX_CHAT_JSON_PARTICIPANTS_MAX   1000
#define NGX_CHAT_JSON_ATTACHMENTS_MAX    64
#define NGX_CHAT_JSON_EVENT_IDS_MAX      1000

/* ngx_chat_cmd_t.present: one bit per field that was parsed successfully */
#define NGX_CHAT_F_TYPE                  0x0001
#define NGX_CHAT_F_ID                    0x0002
#define NGX_CHAT_F_CHAT_ID               0x0004
#define NGX_CHAT_F_NAME                  0x0008
#define NGX_CHAT_F_USER_ID               0x0010
#define NGX_CHAT_F_DEVICE_ID             0x0020
#define NGX_CHAT_F_ATTACHMENT_ID         0x0040
#define NGX_CHAT_F_OPERATION             0x0080
#define NGX_CHAT_F_CLIENT_MESSAGE_ID     0x0100
#define NGX_CHAT_F_MESSAGE               0x0200
#define NGX_CHAT_F_CONTENT_TYPE          0x0400
#define NGX_CHAT_F_SHA256                0x0800
#define NGX_CHAT_F_SIZE                  0x1000
#define NGX_CHAT_F_PARTICIPANTS          0x2000
#define NGX_CHAT_F_ATTACHMENTS           0x4000
#define NGX_CHAT_F_EVENT_IDS             0x8000
#define NGX_CHAT_F_USER                  0x10000  /* admin token request */
#define NGX_CHAT_F_DEVICE                0x20000
#define NGX_CHAT_F_TTL                   0x40000
#define NGX_CHAT_F_LIMIT                 0x80000  /* getChats */
#define NGX_CHAT_F_CURSOR                0x100000


typedef struct {
    const char          *data;      /* NUL-terminated, valid UTF-8 */
    size_t               len;       /* bytes, without the NUL */
} ngx_chat_json_str_t;


/*
 * A parsed command.  Every string lives in the caller's arena, is strictly
 * valid UTF-8 (no overlongs, no surrogates) and contains no NUL byte.
 * A field whose bit is not in "present" is zeroed (data NULL, len 0).
 * An empty array is present with a NULL pointer and a count of 0.
 * chatId and every eventIds item are ids that PostgreSQL keeps as bigint:
 * a JSON integer or a string of digits from 1 to 9223372036854775807
 * with no sign and no leading zeros, else the parse fails with ETYPE; so
 * a value that reaches a statement can never fail its ::bigint cast.
 */
typedef struct {
    ngx_chat_json_str_t  type;              /* <= 32 bytes */
    ngx_chat_json_str_t  id;                /* string, or integer text */
    ngx_chat_json_str_t  chat_id;           /* 1..INT64_MAX, canonical */
    ngx_chat_json_str_t  name;              /* <= 256 bytes */
    ngx_chat_json_str_t  user_id;           /* <= 64 bytes */
    ngx_chat_json_str_t  device_id;         /* <= 64 bytes */
    ngx_chat_json_str_t  attachment_id;     /* <= 64 bytes */
    ngx_chat_json_str_t  operation;         /* <= 16 bytes */
    ngx_chat_json_str_t  client_message_id; /* <= 64 bytes */
    ngx_chat_json_str_t  message;           /* <= 1 MiB, caller limits */
    ngx_chat_json_str_t  content_type;      /* <= 128 bytes */
    ngx_chat_json_str_t  sha256;            /* <= 64 bytes */
    int64_t              size;              /* >= 0 */
    ngx_chat_json_str_t *participants;      /* <= 1000 x <= 64 bytes */
    size_t               nparticipants;
    ngx_chat_json_str_t *attachments;       /* <= 64 x <= 64 bytes */
    size_t               nattachments;
    uint64_t            *event_ids;         /* <= 1000, 1..INT64_MAX */
    size_t               nevent_ids;
    ngx_chat_json_str_t  user;              /* admin endpoint: <= 64 */
    ngx_chat_json_str_t  device;            /* admin endpoint: <= 64 */
    int64_t              ttl;               /* admin endpoint: >= 0 */
    int64_t              limit;             /* getChats: >= 0 */
    ngx_chat_json_str_t  cursor;            /* getChats: 1..20 digits */
    uint32_t             present;           /* NGX_CHAT_F_* bits */
    uint32_t             flags;             /* not parsed: how the
                                               gateway runs it (0 here) */
    unsigned             id_is_number:1;    /* "id" was a JSON integer */
} ngx_chat_cmd_t;


/*
 * The arena needed to parse an input of input_len bytes, 64 bytes of
 * slack (alignment, a number ending the input) plus the smaller of:
 *   - 6 bytes per input byte: a decoded string with its NUL is never
 *     longer than its quoted token, and an array item costs at most 16
 *     bytes plus its string for at least 3 input bytes;
 *   - input_len plus the largest arrays: 1064 items of 16 bytes and 1000
 *     event ids of 8 bytes (25 024 bytes).
 * So a 1 MiB message needs 1 MiB + 25 088 bytes.  Returns 0 if the size
 * would overflow size_t.
 */
size_t ngx_chat_json_arena_size(size_t input_len);

/*
 * Parses one command: p[0..len) need not be NUL-terminated.  cmd is zeroed
 * first; decoded strings and arrays are placed in arena (which must be
 * suitably aligned for uint64_t, as malloc() memory is, and at least
 * ngx_chat_json_arena_size(len) bytes).  yajl's own memory is freed before
 * returning.  err receives a NUL-terminated English message (never
 * containing bytes of the input) when the result is not OK; err may be
 * NULL or err_size 0.
 *
 * Returns:
 *   NGX_CHAT_JSON_OK          the command is well formed; the caller checks
 *                             that "type" is present and known and that the
 *                             fields the command needs are present;
 *   NGX_CHAT_JSON_EMALFORMED  not JSON, trailing garbage, top level not an
 *                             object, nesting deeper than 32, a string
 *                             with invalid UTF-8, "\u0000" or a lone
 *                             surrogate escape (a raw NUL is not JSON);
 *   NGX_CHAT_JSON_ETYPE       a known field has the wrong JSON type, is too
 *                             long, out of range, has too many items, or is
 *                             given twice (unknown keys are skipped);
 *   NGX_CHAT_JSON_ERROR       arena too small or yajl allocation failure.
 * When several errors occur, EMALFORMED wins over ETYPE, and otherwise the
 * first error found is the one reported.
 *
 * The id on errors: a type error or a bad string does not stop the parse,
 * the rest of the document is still read, so "id" (with NGX_CHAT_F_ID and
 * id_is_number) is filled whenever its own value is valid and the text up
 * to the end of the "id" member is syntactically valid JSON, the top level
 * is an object and the depth limit was not hit before it; that is, id is
 * kept after any later syntax error and after any type error anywhere.
 * A repeated "id" keeps the first one.  Other fields parsed before or
 * after an error also stay set, but only id is meant to be used then.
 */
int ngx_chat_json_parse_cmd(const uint8_t *p, size_t len, ngx_chat_cmd_t *cmd,
    void *arena, size_t arena_size, char *err, size_t err_size);


/*
 * The frame writer.  buf is malloc()ed; the JSON text is at buf + reserve
 * and is len - reserve bytes long; the caller writes the WebSocket header
 * into the reserved bytes before it.  The caller may take buf away (set
 * o->buf to NULL before ngx_chat_json_out_free() and free() it later).
 * yajl's print callback points at o, so o must stay where it was
 * initialized (do not copy the struct) until ngx_chat_json_out_free().
 *
 * Every helper returns NGX_CHAT_JSON_OK or NGX_CHAT_JSON_ERROR; after the
 * first error "failed" is set and all later calls fail, so a caller may
 * build a whole frame and check o->failed once.  Errors are: out of memory,
 * a string that is not strictly valid UTF-8, and misuse (a value where a
 * key is expected or the reverse, a close that does not match the open
 * container, a second top-level value, nesting deeper than 64).  Thanks to
 * those checks, once the outermost container is closed the text is one
 * complete, valid JSON value.  Output strings escape U+2028 and U+2029 as
 * \u2028 and \u2029 (JavaScript line terminators), besides yajl's own
 * escapes.
 */
typedef struct {
    yajl_gen             g;
    uint8_t             *buf;
    size_t               len;       /* bytes used, reserve included */
    size_t               cap;
    int                  failed;
    unsigned             done:1;    /* the top-level value is complete:
                                       check !failed && done before
                                       sending */
    /* private: the writer's own view of the container stack */
    unsigned             want_value:1;  /* a key was written */
    unsigned             depth;     /* open containers */
    uint64_t             maps;      /* bit d-1 set: level d is a map */
} ngx_chat_json_out_t;

#define NGX_CHAT_JSON_OUT_MAX_DEPTH  64

/* on failure nothing stays allocated (ngx_chat_json_out_free() is a no-op) */
int ngx_chat_json_out_init(ngx_chat_json_out_t *o, size_t reserve);
void ngx_chat_json_out_free(ngx_chat_json_out_t *o);

int ngx_chat_json_out_key(ngx_chat_json_out_t *o, const char *s, size_t len);
int ngx_chat_json_out_str(ngx_chat_json_out_t *o, const char *s, size_t len);
int ngx_chat_json_out_int(ngx_chat_json_out_t *o, int64_t v);
int ngx_chat_json_out_uint(ngx_chat_json_out_t *o, uint64_t v);
int ngx_chat_json_out_bool(ngx_chat_json_out_t *o, int v);
int ngx_chat_json_out_null(ngx_chat_json_out_t *o);
int ngx_chat_json_out_map_open(ngx_chat_json_out_t *o);
int ngx_chat_json_out_map_close(ngx_chat_json_out_t *o);
int ngx_chat_json_out_array_open(ngx_chat_json_out_t *o);
int ngx_chat_json_out_array_close(ngx_chat_json_out_t *o);

/*
 * Splices s[0..len), which must be exactly one complete valid JSON value
 * (for instance an object serialized earlier by this writer or stored by
 * PostgreSQL), as the next value.  It goes through yajl_gen_number(), which
 * writes its argument verbatim after the right separator and advances
 * yajl's state as for any value; the text is not parsed again (only an
 * empty one is refused), but U+2028/U+2029 in it are escaped like in
 * strings, which keeps valid JSON valid since those bytes can only occur
 * inside strings.
 */
int ngx_chat_json_out_raw(ngx_chat_json_out_t *o, const char *s, size_t len);

/* {"type":"response","id":<id as received>,"ok":true   (left open) */
int ngx_chat_json_response_ok_open(ngx_chat_json_out_t *o,
    const ngx_chat_cmd_t *cmd);

/*
 * {"type":"response","id":...,"ok":false,
 *  "error":{"code":"<code>","message":"<message>"}}
 * "id" is omitted when id is NULL; with id_is_number it is written as a
 * number if it is a valid JSON integer (else as a string).  code and
 * message are NUL-terminated.
 */
int ngx_chat_json_response_error(ngx_chat_json_out_t *o, const char *id,
    size_t id_len, int id_is_number, const char *code, const char *message);

/* the same with "retryAfterMs":<retry_ms> in "error" (none when 0) */
int ngx_chat_json_response_error_retry(ngx_chat_json_out_t *o,
    const char *id, size_t id_len, int id_is_number, const char *code,
    const char *message, uint64_t retry_ms);


#endif /* _NGX_CHAT_JSON_H_INCLUDED_ */
