
/*
 * ngx_chat_pg_array.h: PostgreSQL arrays in their text form.
 */


#ifndef _NGX_CHAT_PG_ARRAY_H_INCLUDED_
#define _NGX_CHAT_PG_ARRAY_H_INCLUDED_


#include "ngx_chat.h"


/* parses a PostgreSQL text[] in its text form; items point into p */
ngx_int_t ngx_chat_pg_array_parse(u_char *p, size_t len, ngx_str_t *out,
    ngx_uint_t max, ngx_uint_t *n);

/*
 * A PostgreSQL array literal under construction: ngx_chat_pg_array_init()
 * with the room that ngx_chat_pg_array_room() adds up for the items, then
 * one add per item, then close (which NUL-terminates).
 */
typedef struct {
    u_char                  *start;
    u_char                  *p;
    ngx_uint_t               n;
} ngx_chat_pg_array_t;

#define ngx_chat_pg_array_room(len)  (2 * (len) + 3)

ngx_int_t ngx_chat_pg_array_init(ngx_chat_pg_array_t *a, size_t room);
void ngx_chat_pg_array_add(ngx_chat_pg_array_t *a, u_char *s, size_t len);
void ngx_chat_pg_array_close(ngx_chat_pg_array_t *a);


#endif /* _NGX_CHAT_PG_ARRAY_H_INCLUDED_ */
