
/*
 * ngx_chat_check.h: the assertion of the C unit tests.  Each test program
 * includes it once; NGX_CHAT_CHECK counts what passed and reports what
 * failed with its file and line, and main() prints the two counts and
 * exits non-zero when anything failed.
 */


#ifndef _NGX_CHAT_CHECK_H_INCLUDED_
#define _NGX_CHAT_CHECK_H_INCLUDED_


#include <stdio.h>


static unsigned  ngx_chat_test_passed;
static unsigned  ngx_chat_test_failed;


#define NGX_CHAT_CHECK(cond)                                                  \
    do {                                                                      \
        if (cond) {                                                           \
            ngx_chat_test_passed++;                                           \
        } else {                                                              \
            ngx_chat_test_failed++;                                           \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);\
        }                                                                     \
    } while (0)


#endif /* _NGX_CHAT_CHECK_H_INCLUDED_ */
