
/*
 * ngx_chat_limit_test.c: unit tests of the token buckets
 * (ngx_chat_module/ngx_chat_limit.c): rate parsing, burst, exact refill
 * at per-minute rates, the debt of refused requests and the close, the
 * retry hint, clock wrap-around, and a long run against a floating-point
 * model.  Prints "N passed, M failed" and exits non-zero on any failure.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_chat_limit.h"


#include "ngx_chat_check.h"


static int
ngx_chat_test_rate(const char *s, uint32_t *n)
{
    return ngx_chat_limit_parse_rate((const unsigned char *) s, strlen(s), n);
}


static void
ngx_chat_test_parse(void)
{
    uint32_t  n;

    n = 0;
    NGX_CHAT_CHECK(ngx_chat_test_rate("50r/s", &n) == 0 && n == 3000);
    NGX_CHAT_CHECK(ngx_chat_test_rate("10r/m", &n) == 0 && n == 10);
    NGX_CHAT_CHECK(ngx_chat_test_rate("1r/m", &n) == 0 && n == 1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("1000000r/s", &n) == 0
                   && n == 60000000);
    NGX_CHAT_CHECK(ngx_chat_test_rate("60000000r/m", &n) == 0
                   && n == 60000000);

    NGX_CHAT_CHECK(ngx_chat_test_rate("1000001r/s", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("60000001r/m", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("99999999999999999999r/s", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("0r/s", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("r/s", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("5", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("5r", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("5r/", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("5r/h", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("5r/ss", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("-5r/s", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("5.5r/s", &n) == -1);
    NGX_CHAT_CHECK(ngx_chat_test_rate("", &n) == -1);
}


static void
ngx_chat_test_burst(void)
{
    int                    rc;
    uint32_t               retry, i;
    ngx_chat_limit_t       l;
    ngx_chat_limit_conf_t  lc;

    /* 10r/s burst 5: five at once, the sixth waits 100 ms */

    lc.rate = 600;
    lc.burst = 5;
    ngx_chat_limit_init(&l, &lc, 1000);

    for (i = 0; i < 5; i++) {
        NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 1000, NULL)
                       == NGX_CHAT_LIMIT_OK);
    }

    retry = 0;
    rc = ngx_chat_limit_take(&l, &lc, 1000, &retry);
    NGX_CHAT_CHECK(rc == NGX_CHAT_LIMIT_REFUSED);
    /* one request owed, one to take: 200 ms */
    NGX_CHAT_CHECK(retry == 200);

    /* after that wait it is taken, not before */
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 1199, &retry)
                   == NGX_CHAT_LIMIT_REFUSED);
    /* 0.99 refilled, 1 more owed: 1.01 to go */
    NGX_CHAT_CHECK(retry == 101);

    ngx_chat_limit_init(&l, &lc, 1000);
    for (i = 0; i < 5; i++) {
        (void) ngx_chat_limit_take(&l, &lc, 1000, NULL);
    }

    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 1099, NULL)
                   == NGX_CHAT_LIMIT_REFUSED);
    /* the refusal at 1099 cost one: 0.01 owed, back to 1 at 1200 */
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 1200, NULL)
                   == NGX_CHAT_LIMIT_OK);

    ngx_chat_limit_init(&l, &lc, 1000);
    for (i = 0; i < 5; i++) {
        (void) ngx_chat_limit_take(&l, &lc, 1000, NULL);
    }

    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 1100, NULL)
                   == NGX_CHAT_LIMIT_OK);
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 1100, NULL)
                   == NGX_CHAT_LIMIT_REFUSED);

    /* a long idle time refills to the burst, not beyond */

    ngx_chat_limit_init(&l, &lc, 0);
    (void) ngx_chat_limit_take(&l, &lc, 0, NULL);
    for (i = 0; i < 5; i++) {
        NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 3600000, NULL)
                       == NGX_CHAT_LIMIT_OK);
    }

    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 3600000, NULL)
                   == NGX_CHAT_LIMIT_REFUSED);
}


static void
ngx_chat_test_close(void)
{
    uint32_t               i, retry;
    ngx_chat_limit_t       l;
    ngx_chat_limit_conf_t  lc;

    /* a flood: burst taken, burst - 1 refused, the burst-th closes */

    lc.rate = 3000;
    lc.burst = 20;
    ngx_chat_limit_init(&l, &lc, 5);

    for (i = 0; i < 20; i++) {
        NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 5, NULL)
                       == NGX_CHAT_LIMIT_OK);
    }

    for (i = 0; i < 19; i++) {
        NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 5, NULL)
                       == NGX_CHAT_LIMIT_REFUSED);
    }

    retry = 0;
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 5, &retry)
                   == NGX_CHAT_LIMIT_CLOSE);
    /* 21 requests at 50r/s */
    NGX_CHAT_CHECK(retry == 420);

    /* the debt does not grow past the burst */
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 5, &retry)
                   == NGX_CHAT_LIMIT_CLOSE && retry == 420);

    /* a client that slows down after refusals recovers */

    ngx_chat_limit_init(&l, &lc, 0);
    for (i = 0; i < 30; i++) {
        (void) ngx_chat_limit_take(&l, &lc, 0, NULL);
    }

    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 219, NULL)
                   == NGX_CHAT_LIMIT_REFUSED);
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 260, NULL)
                   == NGX_CHAT_LIMIT_OK);

    /* rate 0: no limit at all */

    lc.rate = 0;
    for (i = 0; i < 100000; i++) {
        if (ngx_chat_limit_take(&l, &lc, 0, NULL) != NGX_CHAT_LIMIT_OK) {
            break;
        }
    }

    NGX_CHAT_CHECK(i == 100000);
}


static void
ngx_chat_test_extremes(void)
{
    uint32_t               i, n;
    ngx_chat_limit_t       l;
    ngx_chat_limit_conf_t  lc;

    /* the largest rate and burst stay in range */

    lc.rate = NGX_CHAT_LIMIT_RATE_MAX;
    lc.burst = NGX_CHAT_LIMIT_BURST_MAX;
    ngx_chat_limit_init(&l, &lc, 0);

    for (n = 0; n < 30000; n++) {
        if (ngx_chat_limit_take(&l, &lc, 0, NULL) != NGX_CHAT_LIMIT_OK) {
            break;
        }
    }

    NGX_CHAT_CHECK(n == NGX_CHAT_LIMIT_BURST_MAX);

    for (i = 0; i < 30000; i++) {
        if (ngx_chat_limit_take(&l, &lc, 0, NULL) == NGX_CHAT_LIMIT_CLOSE) {
            break;
        }
    }

    /* the first loop ended on a refusal: burst - 2 more, then close */
    NGX_CHAT_CHECK(i == NGX_CHAT_LIMIT_BURST_MAX - 2);
    NGX_CHAT_CHECK(l.tokens == -(int32_t) (NGX_CHAT_LIMIT_BURST_MAX
                                           * NGX_CHAT_LIMIT_UNIT));

    /* 2^32 - 1 ms later, full again, and 1000 requests per ms */
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 0xffffffff, NULL)
                   == NGX_CHAT_LIMIT_OK);
    NGX_CHAT_CHECK(l.tokens == (int32_t) ((NGX_CHAT_LIMIT_BURST_MAX - 1)
                                          * NGX_CHAT_LIMIT_UNIT));

    /* the slowest rate: one per minute, exactly */

    lc.rate = 1;
    lc.burst = 1;
    ngx_chat_limit_init(&l, &lc, 0xfffffff0);
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 0xfffffff0, NULL)
                   == NGX_CHAT_LIMIT_OK);
    /* across the wrap of the 32-bit clock */
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 59999 - 0x10, &n)
                   == NGX_CHAT_LIMIT_REFUSED && n == 60001);

    ngx_chat_limit_init(&l, &lc, 0xfffffff0);
    (void) ngx_chat_limit_take(&l, &lc, 0xfffffff0, NULL);
    NGX_CHAT_CHECK(ngx_chat_limit_take(&l, &lc, 60000 - 0x10, NULL)
                   == NGX_CHAT_LIMIT_OK);
}


/* many requests at random times: the takes match a float model */
static void
ngx_chat_test_model(void)
{
    int                    rc, want;
    uint32_t               now, i, bad;
    ngx_chat_limit_t       l;
    ngx_chat_limit_conf_t  lc;

    srand(7);

    lc.rate = 10;                  /* 10r/m: a fraction of a token per ms */
    lc.burst = 3;
    bad = 0;

    /* an exact model: one ms refills rate units */

    {
        int64_t  t, c;
        uint32_t prev;

        ngx_chat_limit_init(&l, &lc, 0);
        c = 3 * 60000;
        t = c;
        prev = 0;
        now = 0;

        for (i = 0; i < 200000; i++) {
            now += (uint32_t) (rand() % 20000);
            t += (int64_t) (now - prev) * 10;
            prev = now;
            t = t > c ? c : t;

            if (t >= 60000) {
                t -= 60000;
                want = NGX_CHAT_LIMIT_OK;

            } else {
                t -= 60000;
                t = t < -c ? -c : t;
                want = t <= -c ? NGX_CHAT_LIMIT_CLOSE
                               : NGX_CHAT_LIMIT_REFUSED;
            }

            rc = ngx_chat_limit_take(&l, &lc, now, NULL);

            if (rc != want || l.tokens != t) {
                bad++;
            }
        }
    }

    NGX_CHAT_CHECK(bad == 0);
}


/* over a long time, an endless flood gets exactly rate + burst */
static void
ngx_chat_test_throughput(void)
{
    uint32_t               now, ok;
    ngx_chat_limit_t       l;
    ngx_chat_limit_conf_t  lc;

    lc.rate = 50 * 60;
    lc.burst = 200;
    ngx_chat_limit_init(&l, &lc, 0);
    ok = 0;

    /* one request every 5 ms (200/s) for 60 s, refusals repaid first */

    for (now = 0; now < 60000; now += 5) {
        if (ngx_chat_limit_take(&l, &lc, now, NULL) == NGX_CHAT_LIMIT_OK) {
            ok++;
        }
    }

    /* refused ones cost too, so fewer than rate * 60 + burst get in */
    NGX_CHAT_CHECK(ok <= 50 * 60 + 200);
    NGX_CHAT_CHECK(ok >= 200);

    /* one every 25 ms (40/s, under the rate): all taken */

    ngx_chat_limit_init(&l, &lc, 0);
    ok = 0;

    for (now = 0; now < 60000; now += 25) {
        if (ngx_chat_limit_take(&l, &lc, now, NULL) == NGX_CHAT_LIMIT_OK) {
            ok++;
        }
    }

    NGX_CHAT_CHECK(ok == 60000 / 25);
}


int
main(void)
{
    ngx_chat_test_parse();
    ngx_chat_test_burst();
    ngx_chat_test_close();
    ngx_chat_test_extremes();
    ngx_chat_test_model();
    ngx_chat_test_throughput();

    printf("ngx_chat_limit_test: %u passed, %u failed\n",
           ngx_chat_test_passed, ngx_chat_test_failed);

    return ngx_chat_test_failed ? 1 : 0;
}
