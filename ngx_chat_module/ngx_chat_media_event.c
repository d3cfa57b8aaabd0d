
/*
 * ngx_chat_media_event.c: the attachment scanner of events (see
 * ngx_chat_media_event.h).  A small recursive-descent skipper over JSON
 * text; it checks structure (brackets, strings, separators) but not the
 * fine grammar of numbers and literals, which PostgreSQL wrote.
 */


#include <string.h>

#include "ngx_chat_media_event.h"


/* key (klen bytes) is the literal s */
#define ngx_chat_media_event_key(key, klen, s)                               \
    ((klen) == sizeof(s) - 1 && memcmp(key, s, sizeof(s) - 1) == 0)


typedef struct {
    const char              *start;
    const char              *p;
    const char              *last;
} ngx_chat_media_scan_t;


static void ngx_chat_media_event_ws(ngx_chat_media_scan_t *s);
static int ngx_chat_media_event_string(ngx_chat_media_scan_t *s,
    const char **str, size_t *len, int *escaped);
static int ngx_chat_media_event_skip(ngx_chat_media_scan_t *s, int depth);
static int ngx_chat_media_event_object(ngx_chat_media_scan_t *s,
    ngx_chat_media_event_att_t *a);
static int ngx_chat_media_event_array(ngx_chat_media_scan_t *s,
    ngx_chat_media_event_att_t *a, int max);


int
ngx_chat_media_event_scan(const char *json, size_t len,
    ngx_chat_media_event_att_t *a, int max)
{
    int                     n, escaped, first;
    size_t                  klen;
    const char             *key;
    ngx_chat_media_scan_t   s;

    s.start = json;
    s.p = json;
    s.last = json + len;
    n = 0;

    ngx_chat_media_event_ws(&s);

    if (s.p == s.last || *s.p != '{') {
        return -1;
    }

    s.p++;
    first = 1;

    for ( ;; ) {
        ngx_chat_media_event_ws(&s);

        if (s.p == s.last) {
            return -1;
        }

        if (*s.p == '}') {
            s.p++;
            break;
        }

        if (!first) {
            if (*s.p != ',') {
                return -1;
            }

            s.p++;
            ngx_chat_media_event_ws(&s);
        }

        first = 0;

        if (ngx_chat_media_event_string(&s, &key, &klen, &escaped) != 0) {
            return -1;
        }

        ngx_chat_media_event_ws(&s);

        if (s.p == s.last || *s.p != ':') {
            return -1;
        }

        s.p++;
        ngx_chat_media_event_ws(&s);

        if (!escaped && ngx_chat_media_event_key(key, klen, "attachments")
            && s.p < s.last && *s.p == '[' && n == 0)
        {
            n = ngx_chat_media_event_array(&s, a, max);
            if (n < 0) {
                return -1;
            }

            continue;
        }

        if (ngx_chat_media_event_skip(&s, 1) != 0) {
            return -1;
        }
    }

    ngx_chat_media_event_ws(&s);

    return s.p == s.last ? n : -1;
}


static int
ngx_chat_media_event_array(ngx_chat_media_scan_t *s,
    ngx_chat_media_event_att_t *a, int max)
{
    int  n, first;

    s->p++;     /* '[' */
    n = 0;
    first = 1;

    for ( ;; ) {
        ngx_chat_media_event_ws(s);

        if (s->p == s->last) {
            return -1;
        }

        if (*s->p == ']') {
            s->p++;
            return n;
        }

        if (!first) {
            if (*s->p != ',') {
                return -1;
            }

            s->p++;
            ngx_chat_media_event_ws(s);
        }

        first = 0;

        if (s->p < s->last && *s->p == '{') {
            if (n == max) {
                return -1;
            }

            if (ngx_chat_media_event_object(s, &a[n]) != 0) {
                return -1;
            }

            n++;
            continue;
        }

        if (ngx_chat_media_event_skip(s, 2) != 0) {
            return -1;
        }
    }
}


/* an attachment object: picks its fields, notes where it closes */
static int
ngx_chat_media_event_object(ngx_chat_media_scan_t *s,
    ngx_chat_media_event_att_t *a)
{
    int          first, escaped, vesc, neg;
    size_t       klen, vlen;
    int64_t      v;
    const char  *key, *val;

    memset(a, 0, sizeof(ngx_chat_media_event_att_t));
    a->size = -1;

    s->p++;     /* '{' */
    first = 1;

    for ( ;; ) {
        ngx_chat_media_event_ws(s);

        if (s->p == s->last) {
            return -1;
        }

        if (*s->p == '}') {
            a->close = (size_t) (s->p - s->start);
            a->empty = first;
            s->p++;
            return 0;
        }

        if (!first) {
            if (*s->p != ',') {
                return -1;
            }

            s->p++;
            ngx_chat_media_event_ws(s);
        }

        first = 0;

        if (ngx_chat_media_event_string(s, &key, &klen, &escaped) != 0) {
            return -1;
        }

        ngx_chat_media_event_ws(s);

        if (s->p == s->last || *s->p != ':') {
            return -1;
        }

        s->p++;
        ngx_chat_media_event_ws(s);

        if (s->p == s->last) {
            return -1;
        }

        if (*s->p == '"' && !escaped
            && (ngx_chat_media_event_key(key, klen, "attachmentId")
                || ngx_chat_media_event_key(key, klen, "contentType")
                || ngx_chat_media_event_key(key, klen, "sha256")))
        {
            if (ngx_chat_media_event_string(s, &val, &vlen, &vesc) != 0) {
                return -1;
            }

            if (vesc) {
                val = NULL;
                vlen = 0;
            }

            if (klen == sizeof("attachmentId") - 1) {
                a->id = val;
                a->id_len = vlen;

            } else if (klen == sizeof("contentType") - 1) {
                a->type = val;
                a->type_len = vlen;

            } else {
                a->sha256 = val;
                a->sha256_len = vlen;
            }

            continue;
        }

        if (!escaped && ngx_chat_media_event_key(key, klen, "size")
            && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')))
        {
            neg = (*s->p == '-');
            val = s->p;

            if (ngx_chat_media_event_skip(s, 2) != 0) {
                return -1;
            }

            v = 0;

            for (val += neg; val < s->p && *val >= '0' && *val <= '9'
                             && v < ((int64_t) 1 << 53); val++)
            {
                v = v * 10 + (*val - '0');
            }

            a->size = (neg || val != s->p) ? -1 : v;
            continue;
        }

        if (ngx_chat_media_event_skip(s, 2) != 0) {
            return -1;
        }
    }
}


static void
ngx_chat_media_event_ws(ngx_chat_media_scan_t *s)
{
    while (s->p < s->last
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
    {
        s->p++;
    }
}


/* a string at s->p: its raw contents, and whether it had an escape */
static int
ngx_chat_media_event_string(ngx_chat_media_scan_t *s, const char **str,
    size_t *len, int *escaped)
{
    const char  *start;

    if (s->p == s->last || *s->p != '"') {
        return -1;
    }

    start = ++s->p;
    *escaped = 0;

    while (s->p < s->last) {
        if (*s->p == '\\') {
            *escaped = 1;

            if (s->p + 1 == s->last) {
                return -1;
            }

            s->p += 2;
            continue;
        }

        if (*s->p == '"') {
            *str = start;
            *len = (size_t) (s->p - start);
            s->p++;
            return 0;
        }

        if ((unsigned char) *s->p < 0x20) {
            return -1;
        }

        s->p++;
    }

    return -1;
}


/* skips one value at s->p */
static int
ngx_chat_media_event_skip(ngx_chat_media_scan_t *s, int depth)
{
    int          first, escaped;
    char         close;
    size_t       len;
    const char  *str;

    if (s->p == s->last) {
        return -1;
    }

    if (*s->p == '"') {
        return ngx_chat_media_event_string(s, &str, &len, &escaped);
    }

    if (*s->p == '{' || *s->p == '[') {
        if (depth >= NGX_CHAT_MEDIA_EVENT_DEPTH) {
            return -1;
        }

        close = (*s->p == '{') ? '}' : ']';
        s->p++;
        first = 1;

        for ( ;; ) {
            ngx_chat_media_event_ws(s);

            if (s->p == s->last) {
                return -1;
            }

            if (*s->p == close) {
                s->p++;
                return 0;
            }

            if (!first) {
                if (*s->p != ',') {
                    return -1;
                }

                s->p++;
                ngx_chat_media_event_ws(s);
            }

            first = 0;

            if (close == '}') {
                if (ngx_chat_media_event_string(s, &str, &len, &escaped)
                    != 0)
                {
                    return -1;
                }

                ngx_chat_media_event_ws(s);

                if (s->p == s->last || *s->p != ':') {
                    return -1;
                }

                s->p++;
                ngx_chat_media_event_ws(s);
            }

            if (ngx_chat_media_event_skip(s, depth + 1) != 0) {
                return -1;
            }
        }
    }

    /* a number or a literal: up to the next delimiter */

    str = s->p;

    while (s->p < s->last
           && ((*s->p >= '0' && *s->p <= '9') || (*s->p >= 'a'
               && *s->p <= 'z') || *s->p == '-' || *s->p == '+'
               || *s->p == '.' || *s->p == 'E'))
    {
        s->p++;
    }

    return s->p > str ? 0 : -1;
}
