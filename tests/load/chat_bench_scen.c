
/*
 * chat_bench_scen.c: the scenarios of chat-bench, as seen by one worker.
 *
 * Every worker owns the connections whose unit (--group connections:
 * 1, or 2 for the pairs of offline and storm) falls to it round-robin,
 * and computes the same chat plan from --seed, so a worker knows every
 * chat's members and needs nothing from the others: the chat ids that
 * other workers' createChat obtained are learned from the chatUpdate
 * events (the chat's name carries the plan's index).
 *
 * Requests waiting for a response live in one table (w->rq) indexed by
 * the low 24 bits of the numeric request id; the high bits are a
 * generation, so a late response to a reused slot is recognised.  Each
 * connection links its requests, so that a lost connection re-sends its
 * sendMessage/createChat commands (same clientMessageId) when it is
 * registered again, as docs/protocol.md asks of clients; "unavailable"
 * is retried the same way after a backoff.  Latency is always measured
 * from the request's scheduled time, whatever happened since.
 *
 * Message text: "<scheduled ns>.<chat>.<rep>.<conversation seq>." padded
 * with 'x' to --msg-size: receivers take the end-to-end latency from it.
 * Received messages are checked for duplicates (messageId per device) and
 * order (seq per chat per device); loss is what was acknowledged to
 * senders (deliveries owed) minus what receivers got, once drained.
 */


#include <stdlib.h>
#include <string.h>

#include "chat_bench.h"


#define NGX_CHAT_BENCH_RQ_ID_BITS   24
#define NGX_CHAT_BENCH_RQ_ID_MASK   ((1u << NGX_CHAT_BENCH_RQ_ID_BITS) - 1)
#define NGX_CHAT_BENCH_GEN_MASK     0x1fffffu
#define NGX_CHAT_BENCH_OFFLINE_WIN  100
#define NGX_CHAT_BENCH_MS           1000000ull

/* values in w->seen */
#define NGX_CHAT_BENCH_SEEN         1
#define NGX_CHAT_BENCH_HELD         2    /* storm: unacked, due again */


static int ngx_chat_bench_plan_build(ngx_chat_bench_w_t *w);
static uint32_t ngx_chat_bench_rq_alloc(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, int kind);
static void ngx_chat_bench_rq_free(ngx_chat_bench_w_t *w, uint32_t idx);
static void ngx_chat_bench_rq_send(ngx_chat_bench_w_t *w, uint32_t idx);
static void ngx_chat_bench_rq_retry(ngx_chat_bench_w_t *w, uint32_t idx,
    uint64_t now);
static void ngx_chat_bench_response(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, ngx_chat_bench_msg_t *m, uint64_t now);
static void ngx_chat_bench_ready(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint64_t now);
static void ngx_chat_bench_new_message(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, ngx_chat_bench_msg_t *m, uint64_t now);
static void ngx_chat_bench_chat_update(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, ngx_chat_bench_msg_t *m);
static void ngx_chat_bench_learn(ngx_chat_bench_w_t *w, uint32_t chat,
    ngx_chat_bench_conn_t *c);
static void ngx_chat_bench_send_one(ngx_chat_bench_w_t *w, uint64_t sched);
static void ngx_chat_bench_send_to(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint32_t chat, uint32_t cseq, uint64_t sched);
static void ngx_chat_bench_offline_fill(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *s, uint64_t now);
static void ngx_chat_bench_storm_check(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint64_t now);
static void ngx_chat_bench_storm_pace(ngx_chat_bench_w_t *w, uint64_t now);
static void ngx_chat_bench_phase_done(ngx_chat_bench_w_t *w, int phase);
static int ngx_chat_bench_error_counter(const ngx_chat_bench_jv_t *code);


/* ---------------------------------------------------------------------- */

uint32_t
ngx_chat_bench_scen_global(const ngx_chat_bench_opts_t *o, uint32_t proc,
    uint32_t li)
{
    return ((li / o->group) * o->procs + proc) * o->group + li % o->group;
}


uint32_t
ngx_chat_bench_scen_local_count(const ngx_chat_bench_opts_t *o,
    uint32_t proc)
{
    uint32_t  units;

    units = o->nconns / o->group;

    return (units / o->procs + (proc < units % o->procs ? 1 : 0)) * o->group;
}


/* the local index of global connection g, NIL if another worker's */
static uint32_t
ngx_chat_bench_local(ngx_chat_bench_w_t *w, uint32_t g)
{
    uint32_t  unit;

    unit = g / w->o->group;

    if (unit % w->o->procs != w->proc) {
        return NGX_CHAT_BENCH_NIL;
    }

    return (unit / w->o->procs) * w->o->group + g % w->o->group;
}


size_t
ngx_chat_bench_scen_user(ngx_chat_bench_w_t *w, uint32_t g, char *buf,
    size_t size)
{
    int  n;
    char  letter;

    switch (w->o->scenario) {

    case NGX_CHAT_BENCH_CHAT:
        letter = g < w->o->users ? 'u' : 'b';
        break;

    case NGX_CHAT_BENCH_OFFLINE:
        letter = 'o';
        break;

    case NGX_CHAT_BENCH_STORM:
        letter = 's';
        break;

    default:
        letter = 'i';
        break;
    }

    n = snprintf(buf, size, "%s%c%u", w->o->tag, letter, g);

    return n < 0 ? 0 : (size_t) n;
}


int
ngx_chat_bench_scen_init(ngx_chat_bench_w_t *w)
{
    uint32_t                i;
    ngx_chat_bench_conn_t  *c;

    w->nconns = ngx_chat_bench_scen_local_count(w->o, w->proc);
    w->conns = calloc(w->nconns + 1, sizeof(ngx_chat_bench_conn_t));
    w->cq = calloc(w->nconns + 1, sizeof(uint32_t));

    if (w->conns == NULL || w->cq == NULL) {
        return -1;
    }

    for (i = 0; i < w->nconns; i++) {
        c = &w->conns[i];
        c->fd = -1;
        c->li = i;
        c->g = ngx_chat_bench_scen_global(w->o, w->proc, i);
        c->phead = NGX_CHAT_BENCH_NIL;
    }

    w->rq_free = NGX_CHAT_BENCH_NIL;

    switch (w->o->scenario) {

    case NGX_CHAT_BENCH_CHAT:
        w->live_kind = NGX_CHAT_BENCH_H_E2E;
        break;

    case NGX_CHAT_BENCH_OFFLINE:
        w->live_kind = NGX_CHAT_BENCH_H_DRAIN;
        break;

    case NGX_CHAT_BENCH_STORM:
        w->live_kind = NGX_CHAT_BENCH_H_STORM_BACK;
        break;

    default:
        w->live_kind = NGX_CHAT_BENCH_H_CONNECT;
        break;
    }

    return ngx_chat_bench_plan_build(w);
}


/* xorshift64* on a private state: the plan must not depend on w->rng */
static uint64_t
ngx_chat_bench_plan_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;

    return *s * 0x2545f4914f6cdd1dull;
}


static int
ngx_chat_bench_plan_build(ngx_chat_bench_w_t *w)
{
    int                     dup;
    uint32_t                i, j, k, n, u, nsmall, nbig, npairs, total;
    uint32_t                nmembers, li, m, size, lo, hi;
    uint64_t                rs;
    ngx_chat_bench_plan_t  *pl;
    ngx_chat_bench_slot_t  *s;

    pl = &w->plan;
    rs = w->o->seed * 0x9e3779b97f4a7c15ull + 1;

    npairs = 0;
    nsmall = 0;
    nbig = 0;

    switch (w->o->scenario) {

    case NGX_CHAT_BENCH_CHAT:
        u = w->o->users;
        npairs = u / 2;
        if (u >= 3) {
            nsmall = u / 50 ? u / 50 : 1;
        }

        if (u >= 50) {
            nbig = u / 2000 ? u / 2000 : 1;
        }

        break;

    case NGX_CHAT_BENCH_OFFLINE:
        npairs = w->o->nconns / 2;
        u = w->o->nconns;
        break;

    case NGX_CHAT_BENCH_STORM:
        npairs = w->o->unacked ? w->o->nconns / 2 : 0;
        u = w->o->nconns;
        break;

    default:
        return 0;
    }

    pl->nchats = npairs + nsmall + nbig;
    total = npairs * 2 + nsmall * 20 + nbig * 100;

    pl->off = calloc(pl->nchats + 1, sizeof(uint32_t));
    pl->members = calloc(total + 1, sizeof(uint32_t));
    pl->kind = calloc(pl->nchats + 1, 1);
    pl->chat_id = calloc(pl->nchats + 1, sizeof(uint64_t));

    if (pl->off == NULL || pl->members == NULL || pl->kind == NULL
        || pl->chat_id == NULL)
    {
        return -1;
    }

    nmembers = 0;

    for (i = 0; i < pl->nchats; i++) {
        pl->off[i] = nmembers;

        if (i < npairs) {
            pl->kind[i] = 0;
            pl->members[nmembers++] = 2 * i;
            pl->members[nmembers++] = 2 * i + 1;
            continue;
        }

        if (i < npairs + nsmall) {
            pl->kind[i] = 1;
            lo = 3;
            hi = 20;

        } else {
            pl->kind[i] = 2;
            lo = 50;
            hi = 100;
        }

        if (hi > u) {
            hi = u;
        }

        if (lo > hi) {
            lo = hi;
        }

        size = lo + (uint32_t) (ngx_chat_bench_plan_rand(&rs)
                                % (hi - lo + 1));

        for (j = 0; j < size; j++) {
            do {
                m = (uint32_t) (ngx_chat_bench_plan_rand(&rs) % u);
                dup = 0;
                for (k = pl->off[i]; k < nmembers; k++) {
                    if (pl->members[k] == m) {
                        dup = 1;
                        break;
                    }
                }
            } while (dup);

            pl->members[nmembers++] = m;
        }
    }

    pl->off[pl->nchats] = nmembers;

    /* local senders per kind */
    for (k = 0; k < 3; k++) {
        pl->slots[k] = calloc(nmembers + 1, sizeof(ngx_chat_bench_slot_t));
        if (pl->slots[k] == NULL) {
            return -1;
        }
    }

    for (i = 0; i < pl->nchats; i++) {
        for (j = pl->off[i]; j < pl->off[i + 1]; j++) {
            li = ngx_chat_bench_local(w, pl->members[j]);
            if (li == NGX_CHAT_BENCH_NIL) {
                continue;
            }

            k = pl->kind[i];
            n = pl->nslots[k]++;
            s = &pl->slots[k][n];
            s->chat = i;
            s->li = li;
            s->n = 0;
            w->learn_left++;
        }
    }

    return 0;
}


/* ---------------------------------------------------------------------- */

static uint32_t
ngx_chat_bench_rq_alloc(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    int kind)
{
    uint32_t               i, idx, cap;
    ngx_chat_bench_req_t  *rq, *r;

    if (w->rq_free == NGX_CHAT_BENCH_NIL) {
        cap = w->rq_cap ? w->rq_cap * 2 : 4096;
        if (cap > NGX_CHAT_BENCH_RQ_ID_MASK + 1) {
            return NGX_CHAT_BENCH_NIL;
        }

        rq = realloc(w->rq, (size_t) cap * sizeof(ngx_chat_bench_req_t));
        if (rq == NULL) {
            return NGX_CHAT_BENCH_NIL;
        }

        memset(rq + w->rq_cap, 0,
               (size_t) (cap - w->rq_cap) * sizeof(ngx_chat_bench_req_t));

        for (i = cap; i > w->rq_cap; i--) {
            rq[i - 1].next = w->rq_free;
            w->rq_free = i - 1;
        }

        w->rq = rq;
        w->rq_cap = cap;
    }

    idx = w->rq_free;
    r = &w->rq[idx];
    w->rq_free = r->next;

    r->gen = (r->gen + 1) & NGX_CHAT_BENCH_GEN_MASK;
    r->kind = (uint8_t) kind;
    r->state = NGX_CHAT_BENCH_RS_WAITING;
    r->tries = 0;
    r->retry_at = 0;
    r->sched = 0;
    r->sent = 0;
    r->li = c->li;
    r->arg = 0;
    r->n = 0;
    r->cseq = 0;

    r->prev = NGX_CHAT_BENCH_NIL;
    r->next = c->phead;
    if (c->phead != NGX_CHAT_BENCH_NIL) {
        w->rq[c->phead].prev = idx;
    }

    c->phead = idx;

    return idx;
}


static void
ngx_chat_bench_rq_free(ngx_chat_bench_w_t *w, uint32_t idx)
{
    ngx_chat_bench_req_t   *r;
    ngx_chat_bench_conn_t  *c;

    r = &w->rq[idx];
    c = &w->conns[r->li];

    if (r->state == NGX_CHAT_BENCH_RS_WAITING && r->retry_at) {
        w->rq_timed--;
    }

    if (r->prev != NGX_CHAT_BENCH_NIL) {
        w->rq[r->prev].next = r->next;
    } else {
        c->phead = r->next;
    }

    if (r->next != NGX_CHAT_BENCH_NIL) {
        w->rq[r->next].prev = r->prev;
    }

    r->state = NGX_CHAT_BENCH_RS_FREE;
    r->next = w->rq_free;
    w->rq_free = idx;
}


static uint64_t
ngx_chat_bench_rq_id(ngx_chat_bench_w_t *w, uint32_t idx)
{
    return ((uint64_t) w->rq[idx].gen << NGX_CHAT_BENCH_RQ_ID_BITS) | idx;
}


static void
ngx_chat_bench_rq_send(ngx_chat_bench_w_t *w, uint32_t idx)
{
    int                     n;
    char                   *p, *end;
    size_t                  len;
    uint32_t                j, g;
    ngx_chat_bench_req_t   *r;
    ngx_chat_bench_conn_t  *c;
    ngx_chat_bench_plan_t  *pl;

    r = &w->rq[idx];
    c = &w->conns[r->li];
    pl = &w->plan;

    if (r->state == NGX_CHAT_BENCH_RS_WAITING && r->retry_at) {
        w->rq_timed--;
    }

    r->retry_at = 0;

    if (!c->ready && r->kind != NGX_CHAT_BENCH_RQ_PING) {
        r->state = NGX_CHAT_BENCH_RS_WAITING;
        return;
    }

    p = w->json;
    end = w->json + w->json_cap;

    switch (r->kind) {

    case NGX_CHAT_BENCH_RQ_PING:
        n = snprintf(p, 64, "{\"type\":\"ping\",\"id\":%llu}",
                     (unsigned long long) ngx_chat_bench_rq_id(w, idx));
        len = (size_t) n;
        break;

    case NGX_CHAT_BENCH_RQ_SEND:
        n = snprintf(p, 256,
                     "{\"type\":\"sendMessage\",\"id\":%llu,\"chatId\":"
                     "\"%llu\",\"clientMessageId\":\"m%u\",\"message\":"
                     "\"%llu.%u.%u.%u.",
                     (unsigned long long) ngx_chat_bench_rq_id(w, idx),
                     (unsigned long long) pl->chat_id[r->arg], r->n,
                     (unsigned long long) r->sched, r->arg, c->rep, r->cseq);
        len = (size_t) n;

        /* the text so far starts after "message":" */
        j = (uint32_t) (len - (size_t) (strstr(p, "\"message\":\"") + 11 - p));
        while (j < w->o->msg_size && p + len + 4 < end) {
            p[len++] = 'x';
            j++;
        }

        memcpy(p + len, "\"}", 2);
        len += 2;
        break;

    case NGX_CHAT_BENCH_RQ_CREATE:
        n = snprintf(p, 128, "{\"type\":\"createChat\",\"id\":%llu,"
                     "\"name\":\"%sc%u\",\"participants\":[",
                     (unsigned long long) ngx_chat_bench_rq_id(w, idx),
                     w->o->tag, r->arg);
        len = (size_t) n;

        for (j = pl->off[r->arg] + 1; j < pl->off[r->arg + 1]; j++) {
            g = pl->members[j];
            p[len++] = '"';
            len += ngx_chat_bench_scen_user(w, g, p + len, 80);
            p[len++] = '"';
            p[len++] = ',';
        }

        p[len - 1] = ']';
        p[len++] = '}';
        break;

    default:
        return;
    }

    /*
     * the attempt's own time, not the tick's: a tick that writes a burst
     * of due sends would otherwise count the burst's earlier writes into
     * the later ones' refusal times
     */

    r->state = NGX_CHAT_BENCH_RS_INFLIGHT;
    r->sent = ngx_chat_bench_now();

    (void) ngx_chat_bench_conn_send(w, c, p, len);
}


/* "unavailable" or a timeout: again later, same clientMessageId */
static void
ngx_chat_bench_rq_retry(ngx_chat_bench_w_t *w, uint32_t idx, uint64_t now)
{
    uint64_t               delay;
    ngx_chat_bench_req_t  *r;

    r = &w->rq[idx];

    if (r->tries < 10) {
        r->tries++;
    }

    /* 100 ms doubling up to --retry-max, times a random 0.5-1.5 */
    delay = 50 * NGX_CHAT_BENCH_MS << (r->tries < 16 ? r->tries : 16);
    if (delay > (uint64_t) (w->o->retry_max * 1e9)) {
        delay = (uint64_t) (w->o->retry_max * 1e9);
    }

    delay = delay / 2 + ngx_chat_bench_rand(w) % (delay + 1);

    r->state = NGX_CHAT_BENCH_RS_WAITING;
    r->retry_at = now + delay;
    w->rq_timed++;
    NGX_CHAT_BENCH_CNT(w, RESENDS)++;
}


/* ---------------------------------------------------------------------- */

void
ngx_chat_bench_scen_go(ngx_chat_bench_w_t *w, int phase, uint64_t t0)
{
    uint32_t                i, li, idx;
    uint64_t                now;
    ngx_chat_bench_conn_t  *c;
    ngx_chat_bench_plan_t  *pl;

    w->phase = phase;
    w->t0 = t0;
    now = ngx_chat_bench_now();
    pl = &w->plan;

    switch (phase) {

    case NGX_CHAT_BENCH_PH_CONNECT:
        for (i = 0; i < w->nconns; i++) {
            ngx_chat_bench_conn_queue(w, &w->conns[i]);
        }

        break;

    case NGX_CHAT_BENCH_PH_SETUP:
        for (i = 0; i < pl->nchats; i++) {
            li = ngx_chat_bench_local(w, pl->members[pl->off[i]]);
            if (li == NGX_CHAT_BENCH_NIL) {
                continue;
            }

            c = &w->conns[li];
            w->create_left++;
            idx = ngx_chat_bench_rq_alloc(w, c, NGX_CHAT_BENCH_RQ_CREATE);
            if (idx == NGX_CHAT_BENCH_NIL) {
                continue;
            }

            w->rq[idx].arg = i;
            w->rq[idx].sched = now;
            ngx_chat_bench_rq_send(w, idx);
        }

        if (w->o->scenario == NGX_CHAT_BENCH_STORM && pl->nchats) {
            w->recv_left = (uint64_t) w->o->unacked * w->nconns;
            w->sq = calloc(w->nconns + 1, sizeof(uint32_t));
        }

        if (w->o->scenario == NGX_CHAT_BENCH_OFFLINE) {
            w->units_left = w->nconns / 2;
        }

        break;

    case NGX_CHAT_BENCH_PH_RUN:
        NGX_CHAT_BENCH_CNT(w, T_RUN_FIRST) = t0;

        switch (w->o->scenario) {

        case NGX_CHAT_BENCH_IDLE:
            w->run_end = t0 + (uint64_t) (w->o->duration * 1e9);
            break;

        case NGX_CHAT_BENCH_CHAT:
            w->nsched = 0;
            w->run_end = t0 + (uint64_t) (w->o->duration * 1e9);

            if (w->o->rate > 0) {
                w->interval = 1e9 * w->o->procs / w->o->rate;
                w->ntotal = (uint64_t) (w->o->duration * w->o->rate
                                        / w->o->procs);
            } else {
                w->ntotal = UINT64_MAX;
            }

            break;

        case NGX_CHAT_BENCH_OFFLINE:
            w->units_left = w->nconns / 2;

            for (i = 0; i + 1 < w->nconns; i += 2) {
                c = &w->conns[i];
                c->rep = 0;
                c->expect = w->o->messages;
                c->got = 0;
                ngx_chat_bench_offline_fill(w, c, now);
            }

            break;

        case NGX_CHAT_BENCH_STORM:
            /* everybody goes now, whatever t0 said */
            w->t0 = now;
            NGX_CHAT_BENCH_CNT(w, T_RUN_FIRST) = now;
            w->units_left = w->nconns;

            for (i = 0; i < w->nconns; i++) {
                c = &w->conns[i];
                c->keep_closed = 1;
                ngx_chat_bench_conn_close(w, c, -1, w->o->storm_rst);
                c->keep_closed = 0;
                c->done = 0;
                c->tries = 0;

                while (c->phead != NGX_CHAT_BENCH_NIL) {
                    ngx_chat_bench_rq_free(w, c->phead);
                }

                ngx_chat_bench_conn_queue(w, c);
            }

            break;
        }

        break;
    }
}


uint64_t
ngx_chat_bench_scen_tick(ngx_chat_bench_w_t *w, uint64_t now)
{
    uint32_t               i;
    uint64_t               next, t, limit;
    ngx_chat_bench_req_t  *r;

    next = now + 50 * NGX_CHAT_BENCH_MS;

    if (now - w->last_conn_scan > 200 * NGX_CHAT_BENCH_MS
        || (w->waiting && now - w->last_conn_scan > 20 * NGX_CHAT_BENCH_MS))
    {
        w->last_conn_scan = now;
        ngx_chat_bench_conn_check_timeouts(w, now);
    }

    /* retries due, and requests without a response for too long */
    if (now - w->last_timed > 250 * NGX_CHAT_BENCH_MS
        || (w->rq_timed && now - w->last_timed > 20 * NGX_CHAT_BENCH_MS))
    {
        w->last_timed = now;
        limit = (uint64_t) (w->o->request_timeout * 1e9);

        for (i = 0; i < w->rq_cap; i++) {
            r = &w->rq[i];

            if (r->state == NGX_CHAT_BENCH_RS_WAITING && r->retry_at
                && r->retry_at <= now && w->conns[r->li].ready)
            {
                ngx_chat_bench_rq_send(w, i);

            } else if (r->state == NGX_CHAT_BENCH_RS_INFLIGHT
                       && now > r->sent && now - r->sent > limit)
            {
                /* sent is stamped at the write: it may be after now */
                NGX_CHAT_BENCH_CNT(w, REQUEST_TIMEOUT)++;

                if (r->kind == NGX_CHAT_BENCH_RQ_SEND
                    || r->kind == NGX_CHAT_BENCH_RQ_CREATE)
                {
                    ngx_chat_bench_rq_retry(w, i, now);

                } else {
                    /* a silent connection: start it over */
                    ngx_chat_bench_conn_close(w, &w->conns[r->li],
                                              -1, 1);
                }
            }
        }
    }

    switch (w->phase) {

    case NGX_CHAT_BENCH_PH_CONNECT:
        if (w->resolved >= w->nconns) {
            ngx_chat_bench_phase_done(w, NGX_CHAT_BENCH_PH_CONNECT);
        }

        break;

    case NGX_CHAT_BENCH_PH_SETUP:
        if (w->sq_len) {
            ngx_chat_bench_storm_pace(w, now);
        }

        if (w->create_left == 0 && w->sq_len == 0
            && NGX_CHAT_BENCH_CNT(w, INFLIGHT) == 0
            && (w->o->scenario != NGX_CHAT_BENCH_OFFLINE
                || w->units_left == 0))
        {
            if (w->sends_done == 0) {
                w->sends_done = now;
            }

            /*
             * chatUpdate events (chat ids) and storm's held messages are
             * stored for online devices and should arrive; if some do not
             * within --drain-timeout, count them and go on (messages are
             * still owed: a reconnect must bring them)
             */
            if ((w->recv_left || w->learn_left)
                && now - w->sends_done
                   > (uint64_t) (w->o->drain_timeout * 1e9)
                && w->o->scenario != NGX_CHAT_BENCH_OFFLINE)
            {
                NGX_CHAT_BENCH_CNT(w, SETUP_UNDELIVERED) += w->recv_left
                                                            + w->learn_left;
                w->recv_left = 0;
                w->learn_left = 0;
            }

            if (w->recv_left == 0 && w->learn_left == 0) {
                ngx_chat_bench_phase_done(w, NGX_CHAT_BENCH_PH_SETUP);
            }
        }

        break;

    case NGX_CHAT_BENCH_PH_RUN:
        switch (w->o->scenario) {

        case NGX_CHAT_BENCH_IDLE:
            if (now >= w->run_end) {
                ngx_chat_bench_phase_done(w, NGX_CHAT_BENCH_PH_RUN);
            } else if (w->run_end < next) {
                next = w->run_end;
            }

            break;

        case NGX_CHAT_BENCH_CHAT:
            if (w->o->rate > 0) {
                while (w->nsched < w->ntotal) {
                    t = w->t0 + (uint64_t) ((double) w->nsched * w->interval);
                    if (t > now) {
                        if (t < next) {
                            next = t;
                        }

                        break;
                    }

                    ngx_chat_bench_send_one(w, t);
                    w->nsched++;
                }

            } else if (w->ntotal == UINT64_MAX) {
                if (now >= w->run_end) {
                    w->ntotal = w->nsched;
                }

                while (w->ntotal == UINT64_MAX && now >= w->t0
                       && NGX_CHAT_BENCH_CNT(w, INFLIGHT) < w->o->inflight)
                {
                    ngx_chat_bench_send_one(w, now);
                    w->nsched++;
                }
            }

            if (w->nsched >= w->ntotal
                && NGX_CHAT_BENCH_CNT(w, INFLIGHT) == 0)
            {
                ngx_chat_bench_phase_done(w, NGX_CHAT_BENCH_PH_RUN);
            }

            break;

        default:
            if (w->units_left == 0) {
                ngx_chat_bench_phase_done(w, NGX_CHAT_BENCH_PH_RUN);
            }

            break;
        }

        break;
    }

    if (now - w->last_report >= 250 * NGX_CHAT_BENCH_MS) {
        w->last_report = now;
        ngx_chat_bench_scen_report(w, 0);
    }

    return next;
}


static void
ngx_chat_bench_phase_done(ngx_chat_bench_w_t *w, int phase)
{
    if (NGX_CHAT_BENCH_CNT(w, PHASE) >= (uint64_t) phase) {
        return;
    }

    NGX_CHAT_BENCH_CNT(w, PHASE) = (uint64_t) phase;
    w->phase = NGX_CHAT_BENCH_PH_NONE;
    ngx_chat_bench_scen_report(w, 0);
}


void
ngx_chat_bench_scen_report(ngx_chat_bench_w_t *w, int final)
{
    int       i;
    size_t    len, n;
    uint8_t  *p;

    p = w->report;
    memcpy(p, w->cnt, sizeof(w->cnt));
    len = sizeof(w->cnt);

    if (final) {
        for (i = 0; i < NGX_CHAT_BENCH_NHISTS; i++) {
            n = ngx_chat_bench_hist_encode(w->hist[i], p + len,
                                           w->report_cap - len);
            len += n;
        }

    } else {
        n = ngx_chat_bench_hist_encode(w->live, p + len,
                                       w->report_cap - len);
        len += n;
        ngx_chat_bench_hist_reset(w->live);
    }

    (void) ngx_chat_bench_pipe_write(w->wr,
                                     final ? NGX_CHAT_BENCH_MSG_FINAL
                                           : NGX_CHAT_BENCH_MSG_PROGRESS,
                                     p, len);
}


static void
ngx_chat_bench_sample(ngx_chat_bench_w_t *w, int h, uint64_t v)
{
    ngx_chat_bench_hist_add(w->hist[h], v);

    if (h == w->live_kind) {
        ngx_chat_bench_hist_add(w->live, v);
    }
}


/* ---------------------------------------------------------------------- */

void
ngx_chat_bench_scen_open(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    uint32_t  idx;

    if (w->o->http) {
        /* --http: the 2xx answer is all there is */
        ngx_chat_bench_ready(w, c, ngx_chat_bench_now());
        return;
    }

    /* the first response means registered (docs/protocol.md) */
    idx = ngx_chat_bench_rq_alloc(w, c, NGX_CHAT_BENCH_RQ_PING);
    if (idx == NGX_CHAT_BENCH_NIL) {
        ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_CONN_OTHER, 1);
        return;
    }

    ngx_chat_bench_rq_send(w, idx);
}


void
ngx_chat_bench_scen_closed(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    uint32_t               idx, next;
    uint64_t               now, delay;
    ngx_chat_bench_req_t  *r;

    now = ngx_chat_bench_now();

    for (idx = c->phead; idx != NGX_CHAT_BENCH_NIL; idx = next) {
        r = &w->rq[idx];
        next = r->next;

        if (r->kind == NGX_CHAT_BENCH_RQ_SEND
            || r->kind == NGX_CHAT_BENCH_RQ_CREATE)
        {
            /* sent again once registered */
            if (r->state == NGX_CHAT_BENCH_RS_WAITING && r->retry_at) {
                w->rq_timed--;
            }

            r->state = NGX_CHAT_BENCH_RS_WAITING;
            r->retry_at = 0;

        } else {
            ngx_chat_bench_rq_free(w, idx);
        }
    }

    if (c->keep_closed || w->stopping) {
        return;
    }

    if (c->tries < 255) {
        c->tries++;
    }

    if (!c->counted && c->tries >= w->o->retries
        && w->phase == NGX_CHAT_BENCH_PH_CONNECT)
    {
        c->counted = 1;
        c->state = NGX_CHAT_BENCH_CS_FAILED;
        w->resolved++;
        NGX_CHAT_BENCH_CNT(w, CONN_FAILED)++;
        return;
    }

    delay = 100 * NGX_CHAT_BENCH_MS << (c->tries < 6 ? c->tries : 6);
    delay = delay / 2 + ngx_chat_bench_rand(w) % delay;

    if (c->t_retry == 0) {
        w->waiting++;
    }

    c->t_retry = now + delay;
    NGX_CHAT_BENCH_CNT(w, RECONNECTS)++;
}


static void
ngx_chat_bench_ready(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint64_t now)
{
    uint32_t  idx, next;

    c->ready = 1;
    c->tries = 0;

    if (c->starting) {
        c->starting = 0;
        w->connecting--;
    }
    NGX_CHAT_BENCH_CNT(w, READY)++;
    NGX_CHAT_BENCH_CNT(w, OPEN_NOW)++;

    if (now > NGX_CHAT_BENCH_CNT(w, T_CONNECT_LAST)) {
        NGX_CHAT_BENCH_CNT(w, T_CONNECT_LAST) = now;
    }

    ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_CONNECT, now - c->t_start);

    if (!c->counted) {
        c->counted = 1;
        w->resolved++;
    }

    /* what waited for this connection */
    for (idx = c->phead; idx != NGX_CHAT_BENCH_NIL; idx = next) {
        next = w->rq[idx].next;

        if (w->rq[idx].state == NGX_CHAT_BENCH_RS_WAITING
            && w->rq[idx].retry_at == 0)
        {
            ngx_chat_bench_rq_send(w, idx);
            if (c->fd < 0) {
                return;
            }
        }
    }

    if (w->o->scenario == NGX_CHAT_BENCH_STORM
        && w->phase == NGX_CHAT_BENCH_PH_RUN && !c->done)
    {
        ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_STORM_BACK, now - w->t0);

        if (now > NGX_CHAT_BENCH_CNT(w, T_STORM_BACK)) {
            NGX_CHAT_BENCH_CNT(w, T_STORM_BACK) = now;
        }

        ngx_chat_bench_storm_check(w, c, now);
    }
}


static void
ngx_chat_bench_storm_check(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint64_t now)
{
    if (c->done || !c->ready || c->expect) {
        return;
    }

    c->done = 1;
    w->units_left--;
    ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_STORM_DRAINED, now - w->t0);

    if (now > NGX_CHAT_BENCH_CNT(w, T_STORM_DRAINED)) {
        NGX_CHAT_BENCH_CNT(w, T_STORM_DRAINED) = now;
    }
}


void
ngx_chat_bench_scen_message(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    const char *text, size_t len)
{
    uint64_t              now;
    ngx_chat_bench_msg_t  m;

    now = ngx_chat_bench_now();

    if (ngx_chat_bench_json_parse(text, len, &m) != 0) {
        NGX_CHAT_BENCH_CNT(w, PROTOCOL)++;
        return;
    }

    if (ngx_chat_bench_jv_is(&m.type, "response")) {
        ngx_chat_bench_response(w, c, &m, now);

    } else if (ngx_chat_bench_jv_is(&m.type, "newMessage")) {
        ngx_chat_bench_new_message(w, c, &m, now);

    } else if (ngx_chat_bench_jv_is(&m.type, "chatUpdate")) {
        ngx_chat_bench_chat_update(w, c, &m);

    } else {
        NGX_CHAT_BENCH_CNT(w, PROTOCOL)++;
    }
}


static void
ngx_chat_bench_response(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    ngx_chat_bench_msg_t *m, uint64_t now)
{
    int                     ok, counter;
    uint32_t                idx, chat;
    uint64_t                id, v;
    ngx_chat_bench_req_t   *r;
    ngx_chat_bench_conn_t  *rc;
    ngx_chat_bench_plan_t  *pl;

    pl = &w->plan;

    if (m->id.kind != NGX_CHAT_BENCH_JV_NUMBER
        || ngx_chat_bench_jv_u64(&m->id, &id) != 0)
    {
        NGX_CHAT_BENCH_CNT(w, UNKNOWN_RESPONSE)++;
        return;
    }

    idx = (uint32_t) (id & NGX_CHAT_BENCH_RQ_ID_MASK);

    if (idx >= w->rq_cap
        || w->rq[idx].state != NGX_CHAT_BENCH_RS_INFLIGHT
        || w->rq[idx].gen != (id >> NGX_CHAT_BENCH_RQ_ID_BITS)
        || w->rq[idx].li != c->li)
    {
        /* e.g. the answer to a request that timed out and was resent */
        NGX_CHAT_BENCH_CNT(w, UNKNOWN_RESPONSE)++;
        return;
    }

    r = &w->rq[idx];
    ok = m->ok.kind == NGX_CHAT_BENCH_JV_TRUE;

    if (!ok) {
        counter = ngx_chat_bench_error_counter(&m->code);
        w->cnt[counter]++;

        if (counter == NGX_CHAT_BENCH_C_ERR_UNAVAILABLE
            && r->kind == NGX_CHAT_BENCH_RQ_SEND)
        {
            /* refusals are timed from the attempt, not the schedule */
            ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_REFUSED,
                                  now - r->sent);

            if (w->o->no_resend) {
                NGX_CHAT_BENCH_CNT(w, INFLIGHT)--;
                NGX_CHAT_BENCH_CNT(w, SEND_REFUSED)++;
                ngx_chat_bench_rq_free(w, idx);
                return;
            }
        }

        if (counter == NGX_CHAT_BENCH_C_ERR_UNAVAILABLE
            && r->kind != NGX_CHAT_BENCH_RQ_PING
            && r->kind != NGX_CHAT_BENCH_RQ_ACK)
        {
            ngx_chat_bench_rq_retry(w, idx, now);
            return;
        }
    }

    switch (r->kind) {

    case NGX_CHAT_BENCH_RQ_PING:
        ngx_chat_bench_rq_free(w, idx);

        if (!ok) {
            ngx_chat_bench_conn_close(w, c, -1, 1);
            return;
        }

        ngx_chat_bench_ready(w, c, now);
        return;

    case NGX_CHAT_BENCH_RQ_SEND:
        chat = r->arg;
        NGX_CHAT_BENCH_CNT(w, INFLIGHT)--;

        if (!ok) {
            NGX_CHAT_BENCH_CNT(w, SEND_FAILED)++;
            ngx_chat_bench_rq_free(w, idx);

        } else {
            ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_ACK, now - r->sched);
            NGX_CHAT_BENCH_CNT(w, ACKED)++;

            if (m->duplicate.kind == NGX_CHAT_BENCH_JV_TRUE) {
                NGX_CHAT_BENCH_CNT(w, ACKED_DUP)++;
            }

            NGX_CHAT_BENCH_CNT(w, EXPECTED) += pl->off[chat + 1]
                                               - pl->off[chat] - 1;

            if (now > NGX_CHAT_BENCH_CNT(w, T_LAST_ACK)) {
                NGX_CHAT_BENCH_CNT(w, T_LAST_ACK) = now;
            }

            ngx_chat_bench_rq_free(w, idx);
        }

        if (w->o->scenario == NGX_CHAT_BENCH_OFFLINE
            && w->phase == NGX_CHAT_BENCH_PH_RUN)
        {
            c->got++;

            if (c->got == w->o->messages) {
                /* all queued: the recipient comes online */
                rc = &w->conns[c->li + 1];
                rc->keep_closed = 0;
                rc->got = 0;
                rc->tries = 0;
                ngx_chat_bench_conn_queue(w, rc);

            } else {
                ngx_chat_bench_offline_fill(w, c, now);
            }
        }

        return;

    case NGX_CHAT_BENCH_RQ_CREATE:
        chat = r->arg;
        ngx_chat_bench_rq_free(w, idx);
        w->create_left--;

        if (!ok) {
            return;
        }

        NGX_CHAT_BENCH_CNT(w, CHATS_CREATED)++;

        if (ngx_chat_bench_jv_u64(&m->chat_id, &v) == 0) {
            pl->chat_id[chat] = v;
            ngx_chat_bench_learn(w, chat, c);
        }

        return;

    case NGX_CHAT_BENCH_RQ_ACK:
        ngx_chat_bench_rq_free(w, idx);

        if (w->o->scenario != NGX_CHAT_BENCH_OFFLINE || !ok) {
            return;
        }

        /* the recipient of a pair: setup done, or a drain acked */
        if (w->phase == NGX_CHAT_BENCH_PH_RUN) {
            ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_DRAIN_ACKED,
                                  now - c->t_start);
            NGX_CHAT_BENCH_CNT(w, DRAINS)++;
        }

        c->keep_closed = 1;
        ngx_chat_bench_conn_close(w, c, -1, 0);

        if (w->phase != NGX_CHAT_BENCH_PH_RUN) {
            w->units_left--;
            return;
        }

        rc = &w->conns[c->li - 1];
        rc->rep++;

        if (rc->rep >= w->o->reps) {
            w->units_left--;
            return;
        }

        rc->expect = w->o->messages;
        rc->got = 0;
        ngx_chat_bench_offline_fill(w, rc, now);
        return;

    default:
        return;
    }
}


static void
ngx_chat_bench_new_message(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    ngx_chat_bench_msg_t *m, uint64_t now)
{
    int        isnew, hold;
    uint32_t   idx;
    uint64_t   mid, chat, seq, sched, *v;

    if (ngx_chat_bench_jv_u64(&m->event_id, &mid) != 0
        || ngx_chat_bench_jv_u64(&m->message_id, &mid) != 0
        || ngx_chat_bench_jv_u64(&m->chat_id, &chat) != 0
        || ngx_chat_bench_jv_u64(&m->seq, &seq) != 0)
    {
        NGX_CHAT_BENCH_CNT(w, PROTOCOL)++;
        return;
    }

    /* storm setup: these events stay unacked, to come again */
    hold = w->o->scenario == NGX_CHAT_BENCH_STORM
           && w->phase == NGX_CHAT_BENCH_PH_SETUP;

    if (!hold) {
        ngx_chat_bench_conn_ack_add(w, c, m->event_id.p, m->event_id.len);
    }

    v = ngx_chat_bench_map_put(&w->seen, ((mid + 1) << 20) | c->li, &isnew);
    if (v == NULL) {
        return;
    }

    if (!isnew) {
        if (*v == NGX_CHAT_BENCH_HELD) {
            *v = NGX_CHAT_BENCH_SEEN;
            NGX_CHAT_BENCH_CNT(w, REDELIVERED)++;

            if (c->expect) {
                c->expect--;
            }

            ngx_chat_bench_storm_check(w, c, now);

        } else {
            NGX_CHAT_BENCH_CNT(w, DUPLICATES)++;
        }

        return;
    }

    *v = hold ? NGX_CHAT_BENCH_HELD : NGX_CHAT_BENCH_SEEN;

    v = ngx_chat_bench_map_put(&w->order, ((chat + 1) << 20) | c->li,
                               &isnew);
    if (v) {
        if (!isnew && seq < *v) {
            NGX_CHAT_BENCH_CNT(w, REORDERS)++;
        } else {
            *v = seq;
        }
    }

    NGX_CHAT_BENCH_CNT(w, DELIVERED)++;

    if (now > NGX_CHAT_BENCH_CNT(w, T_LAST_DELIVERY)) {
        NGX_CHAT_BENCH_CNT(w, T_LAST_DELIVERY) = now;
    }

    if (hold) {
        c->expect++;
        if (w->recv_left) {
            w->recv_left--;
        }

        return;
    }

    sched = 0;
    if (m->message.kind == NGX_CHAT_BENCH_JV_STRING) {
        for (idx = 0; idx < m->message.len && idx < 20; idx++) {
            if (m->message.p[idx] < '0' || m->message.p[idx] > '9') {
                break;
            }

            sched = sched * 10 + (uint64_t) (m->message.p[idx] - '0');
        }
    }

    if (w->o->scenario == NGX_CHAT_BENCH_CHAT && sched && sched <= now) {
        ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_E2E, now - sched);
    }

    if (w->o->scenario == NGX_CHAT_BENCH_OFFLINE
        && w->phase == NGX_CHAT_BENCH_PH_RUN)
    {
        c->got++;

        if (c->got == w->o->messages) {
            ngx_chat_bench_sample(w, NGX_CHAT_BENCH_H_DRAIN,
                                  now - c->t_start);

            idx = ngx_chat_bench_rq_alloc(w, c, NGX_CHAT_BENCH_RQ_ACK);
            if (idx == NGX_CHAT_BENCH_NIL) {
                return;
            }

            w->rq[idx].state = NGX_CHAT_BENCH_RS_INFLIGHT;
            w->rq[idx].sent = now;
            (void) ngx_chat_bench_conn_ack_flush(w, c,
                                                 ngx_chat_bench_rq_id(w, idx));
        }
    }
}


static void
ngx_chat_bench_chat_update(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    ngx_chat_bench_msg_t *m)
{
    size_t    tl, i;
    uint32_t  idx;
    uint64_t  chat, id;

    NGX_CHAT_BENCH_CNT(w, CHAT_UPDATES)++;

    if (m->event_id.kind == NGX_CHAT_BENCH_JV_STRING) {
        ngx_chat_bench_conn_ack_add(w, c, m->event_id.p, m->event_id.len);
    }

    tl = strlen(w->o->tag);

    if (m->name.kind != NGX_CHAT_BENCH_JV_STRING || m->name.len <= tl + 1
        || memcmp(m->name.p, w->o->tag, tl) != 0 || m->name.p[tl] != 'c'
        || ngx_chat_bench_jv_u64(&m->chat_id, &id) != 0)
    {
        return;
    }

    chat = 0;
    for (i = tl + 1; i < m->name.len; i++) {
        if (m->name.p[i] < '0' || m->name.p[i] > '9') {
            return;
        }

        chat = chat * 10 + (uint64_t) (m->name.p[i] - '0');
    }

    if (chat >= w->plan.nchats) {
        return;
    }

    w->plan.chat_id[chat] = id;
    ngx_chat_bench_learn(w, (uint32_t) chat, c);

    /* offline setup: the recipient acks (answered) and goes offline */
    if (w->o->scenario == NGX_CHAT_BENCH_OFFLINE && (c->li & 1)
        && w->phase == NGX_CHAT_BENCH_PH_SETUP)
    {
        idx = ngx_chat_bench_rq_alloc(w, c, NGX_CHAT_BENCH_RQ_ACK);
        if (idx == NGX_CHAT_BENCH_NIL) {
            return;
        }

        w->rq[idx].state = NGX_CHAT_BENCH_RS_INFLIGHT;
        w->rq[idx].sent = ngx_chat_bench_now();
        (void) ngx_chat_bench_conn_ack_flush(w, c,
                                             ngx_chat_bench_rq_id(w, idx));
    }
}


static void
ngx_chat_bench_learn(ngx_chat_bench_w_t *w, uint32_t chat,
    ngx_chat_bench_conn_t *c)
{
    int        isnew;
    uint64_t  *v;

    v = ngx_chat_bench_map_put(&w->learned,
                               ((uint64_t) (chat + 1) << 20) | c->li, &isnew);
    if (v == NULL || !isnew) {
        return;
    }

    if (w->learn_left) {
        w->learn_left--;
    }

    /*
     * storm setup: each side sends its partner the events to hold, paced
     * by --inflight (ngx_chat_bench_storm_pace): the queue holds the
     * connection, its chat is its pair's
     */
    if (w->o->scenario == NGX_CHAT_BENCH_STORM
        && w->phase == NGX_CHAT_BENCH_PH_SETUP && w->sq)
    {
        w->sq[(w->sq_head + w->sq_len) % (w->nconns + 1)] = c->li;
        w->sq_len++;
    }
}


static void
ngx_chat_bench_storm_pace(ngx_chat_bench_w_t *w, uint64_t now)
{
    uint32_t                i;
    ngx_chat_bench_conn_t  *c;

    while (w->sq_len
           && NGX_CHAT_BENCH_CNT(w, INFLIGHT) + w->o->unacked
              <= w->o->inflight)
    {
        c = &w->conns[w->sq[w->sq_head]];
        w->sq_head = (w->sq_head + 1) % (w->nconns + 1);
        w->sq_len--;

        for (i = 0; i < w->o->unacked; i++) {
            ngx_chat_bench_send_to(w, c, c->g / 2, i + 1, now);
        }
    }
}


/* ---------------------------------------------------------------------- */

static void
ngx_chat_bench_send_one(ngx_chat_bench_w_t *w, uint64_t sched)
{
    int                     kind, tries;
    double                  r;
    uint32_t                n;
    ngx_chat_bench_plan_t  *pl;
    ngx_chat_bench_slot_t  *s;

    pl = &w->plan;
    r = (double) (ngx_chat_bench_rand(w) >> 11) / 9007199254740992.0;

    kind = r < w->o->big_share ? 2
           : r < w->o->big_share + w->o->group_share ? 1 : 0;

    if (pl->nslots[kind] == 0) {
        kind = pl->nslots[0] ? 0 : pl->nslots[1] ? 1 : 2;
        if (pl->nslots[kind] == 0) {
            return;
        }
    }

    /* a chat whose id this worker never learned cannot be sent to */
    for (tries = 0; tries < 8; tries++) {
        n = (uint32_t) (ngx_chat_bench_rand(w) % pl->nslots[kind]);
        s = &pl->slots[kind][n];

        if (pl->chat_id[s->chat]) {
            break;
        }
    }

    if (pl->chat_id[s->chat] == 0) {
        NGX_CHAT_BENCH_CNT(w, NO_CHAT_ID)++;
        return;
    }

    s->n++;
    ngx_chat_bench_send_to(w, &w->conns[s->li], s->chat, s->n, sched);
}


static void
ngx_chat_bench_send_to(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint32_t chat, uint32_t cseq, uint64_t sched)
{
    uint32_t  idx;

    idx = ngx_chat_bench_rq_alloc(w, c, NGX_CHAT_BENCH_RQ_SEND);
    if (idx == NGX_CHAT_BENCH_NIL) {
        NGX_CHAT_BENCH_CNT(w, SEND_FAILED)++;
        return;
    }

    w->rq[idx].sched = sched;
    w->rq[idx].arg = chat;
    w->rq[idx].n = ++w->serial;
    w->rq[idx].cseq = cseq;

    NGX_CHAT_BENCH_CNT(w, SENT)++;
    NGX_CHAT_BENCH_CNT(w, INFLIGHT)++;

    ngx_chat_bench_rq_send(w, idx);
}


/* offline: keep a window of the sender's K messages in flight */
static void
ngx_chat_bench_offline_fill(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *s,
    uint64_t now)
{
    uint32_t  chat, inflight;

    /* the pair's chat index is its global pair number */
    chat = s->g / 2;
    inflight = (w->o->messages - s->expect) - s->got;

    while (s->expect && inflight < NGX_CHAT_BENCH_OFFLINE_WIN) {
        s->expect--;
        inflight++;
        ngx_chat_bench_send_to(w, s, chat, w->o->messages - s->expect, now);
    }
}


static int
ngx_chat_bench_error_counter(const ngx_chat_bench_jv_t *code)
{
    static const struct {
        const char  *name;
        int          counter;
    } codes[] = {
        { "bad_request", NGX_CHAT_BENCH_C_ERR_BAD_REQUEST },
        { "unknown_type", NGX_CHAT_BENCH_C_ERR_UNKNOWN_TYPE },
        { "unavailable", NGX_CHAT_BENCH_C_ERR_UNAVAILABLE },
        { "forbidden", NGX_CHAT_BENCH_C_ERR_FORBIDDEN },
        { "not_found", NGX_CHAT_BENCH_C_ERR_NOT_FOUND },
        { "limit_exceeded", NGX_CHAT_BENCH_C_ERR_LIMIT_EXCEEDED },
        { "internal_error", NGX_CHAT_BENCH_C_ERR_INTERNAL_ERROR }
    };
    size_t  i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (ngx_chat_bench_jv_is(code, codes[i].name)) {
            return codes[i].counter;
        }
    }

    return NGX_CHAT_BENCH_C_ERR_OTHER_CODE;
}
