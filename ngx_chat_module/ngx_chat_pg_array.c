
/*
 * ngx_chat_pg_array.c: PostgreSQL arrays in their text form, both ways:
 * the literals the module passes as statement parameters (many values in
 * one round trip, e.g. unnest($1::text[], ...)), and the text[] values the
 * SQL functions return (the recipients of an event).
 */


#include "ngx_chat.h"
#include "ngx_chat_pg_array.h"


/*
 * Parses the text form of a one-dimensional text[]: {a,"b c",NULL}.
 * Items point into p (quoted ones are unescaped in place).  NULL items
 * and items over max are skipped/refused.
 */
ngx_int_t
ngx_chat_pg_array_parse(u_char *p, size_t len, ngx_str_t *out,
    ngx_uint_t max, ngx_uint_t *n)
{
    u_char  *last, *d, *start;

    *n = 0;
    last = p + len;

    if (len < 2 || p[0] != '{' || last[-1] != '}') {
        return NGX_ERROR;
    }

    p++;
    last--;

    while (p < last) {

        if (*n == max) {
            return NGX_ERROR;
        }

        if (*p == '"') {
            start = d = ++p;

            while (p < last && *p != '"') {
                if (*p == '\\' && p + 1 < last) {
                    p++;
                }

                *d++ = *p++;
            }

            if (p == last) {
                return NGX_ERROR;
            }

            p++;
            out[*n].data = start;
            out[*n].len = d - start;
            (*n)++;

        } else {
            start = p;

            while (p < last && *p != ',') {
                p++;
            }

            if (p - start == 4 && ngx_strncasecmp(start, (u_char *) "NULL", 4)
                                  == 0)
            {
                /* skip SQL NULLs */

            } else {
                out[*n].data = start;
                out[*n].len = p - start;
                (*n)++;
            }
        }

        if (p < last) {
            if (*p != ',') {
                return NGX_ERROR;
            }

            p++;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_chat_pg_array_init(ngx_chat_pg_array_t *a, size_t room)
{
    a->start = ngx_alloc(room + 3, ngx_cycle->log);
    if (a->start == NULL) {
        return NGX_ERROR;
    }

    a->p = a->start;
    *a->p++ = '{';
    a->n = 0;

    return NGX_OK;
}


void
ngx_chat_pg_array_add(ngx_chat_pg_array_t *a, u_char *s, size_t len)
{
    u_char  *p, *last;

    p = a->p;

    if (a->n++) {
        *p++ = ',';
    }

    *p++ = '"';

    for (last = s + len; s < last; s++) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
        }

        *p++ = *s;
    }

    *p++ = '"';

    a->p = p;
}


void
ngx_chat_pg_array_close(ngx_chat_pg_array_t *a)
{
    *a->p++ = '}';
    *a->p = '\0';
}
