
/*
 * ngx_chat_order.c: live newMessage events of one chat in seq order.
 *
 * Messages of different senders to one chat are committed in seq order
 * (the chat row lock), but published by whichever worker stored them, after
 * its own commit: two of them can reach Redis, and so a device, the other
 * way round.  Each user entry of a worker therefore remembers, per chat it
 * receives messages of, the highest seq delivered, and holds an event that
 * comes before the one it follows, until the missing one arrives or
 * NGX_CHAT_ORDER_HOLD ms pass (a message the user will never see, e.g.
 * sent while it was not a participant, only costs that wait).  The user's
 * own sends count as seen: a device does not receive its own messages.
 *
 * The state exists only while the user gets messages: it is allocated on
 * the first one and freed NGX_CHAT_ORDER_IDLE ms after the last, so idle
 * connections pay nothing.  Drained (offline) events do not come through
 * here: the drain is in order already.
 *
 * What is held is bounded twice: NGX_CHAT_ORDER_HELD events per user, and
 * chat_order_hold_limit bytes for the whole worker (the worker's
 * order_held counts them).  An event that does not fit is delivered at
 * once, out of order, never dropped.
 */


#include "ngx_chat.h"
#include "ngx_chat_order.h"
#include "ngx_chat_jwt.h"


typedef struct ngx_chat_held_s  ngx_chat_held_t;

struct ngx_chat_held_s {
    ngx_chat_held_t         *next;
    uint64_t                 seq;
    uint64_t                 event_id;
    ngx_msec_t               since;
    ngx_str_t                skip;
    size_t                   len;
    ngx_uint_t               replay;
    u_char                   skip_data[NGX_CHAT_ID_MAX];
    u_char                   json[1];
};


typedef struct {
    uint64_t                 chat;          /* 0: a free slot */
    uint64_t                 last;          /* highest seq delivered */
    ngx_msec_t               used;
    ngx_chat_held_t         *held;          /* ascending seq */
} ngx_chat_order_chat_t;


struct ngx_chat_order_s {
    ngx_event_t              timer;
    ngx_chat_user_t         *user;
    ngx_chat_order_deliver_pt  deliver;     /* as the last caller gave */
    ngx_msec_t               used;          /* last event or seen */
    ngx_uint_t               nheld;
    ngx_chat_order_chat_t    chats[NGX_CHAT_ORDER_CHATS];
};


/* the memory an event held costs, as counted in worker->order_held */
#define ngx_chat_order_size(len)  (offsetof(ngx_chat_held_t, json) + (len))


static ngx_chat_order_t *ngx_chat_order_get(ngx_chat_user_t *u);
static ngx_chat_order_chat_t *ngx_chat_order_chat(ngx_chat_order_t *o,
    uint64_t chat, ngx_chat_held_t ***tail);
static ngx_int_t ngx_chat_order_hold(ngx_chat_order_t *o,
    ngx_chat_order_chat_t *c, uint64_t seq, uint64_t event_id,
    ngx_str_t *skip, u_char *json, size_t len, ngx_uint_t replay);
static void ngx_chat_order_release(ngx_chat_order_t *o,
    ngx_chat_order_chat_t *c, ngx_chat_held_t ***tail);
static void ngx_chat_order_timer(ngx_event_t *ev);
static void ngx_chat_order_arm(ngx_chat_order_t *o);
static void ngx_chat_order_deliver(ngx_chat_user_t *u,
    ngx_chat_held_t *out, ngx_chat_order_deliver_pt deliver);


void
ngx_chat_order_event(ngx_chat_user_t *u, uint64_t chat, uint64_t seq,
    uint64_t event_id, ngx_str_t *skip, u_char *json, size_t len,
    ngx_uint_t replay, ngx_chat_order_deliver_pt deliver)
{
    ngx_chat_held_t        *evicted, **etail, *next, **ntail;
    ngx_chat_order_t       *o;
    ngx_chat_order_chat_t  *c;

    o = ngx_chat_order_get(u);

    if (o == NULL || skip->len > NGX_CHAT_ID_MAX) {
        deliver(u, event_id, skip, json, len, replay);
        return;
    }

    o->deliver = deliver;

    evicted = NULL;
    etail = &evicted;
    next = NULL;
    ntail = &next;

    c = ngx_chat_order_chat(o, chat, &etail);

    if (c->last == 0 && c->held == NULL) {
        /* the first message of this chat we see */
        c->last = seq - 1;
    }

    if (seq > c->last + 1
        && ngx_chat_order_hold(o, c, seq, event_id, skip, json, len, replay)
           == NGX_OK)
    {
        /* a gap before it: kept, in seq order */
        ngx_chat_order_arm(o);
        ngx_chat_order_deliver(u, evicted, deliver);
        return;
    }

    /* next in line, older, or nowhere to keep it: now, then what it frees */

    if (seq > c->last) {
        c->last = seq;
    }

    ngx_chat_order_release(o, c, &ntail);
    ngx_chat_order_arm(o);

    /* an evicted chat's events first (another chat: its order is kept) */

    ngx_chat_order_deliver(u, evicted, deliver);

    deliver(u, event_id, skip, json, len, replay);

    ngx_chat_order_deliver(u, next, deliver);
}


void
ngx_chat_order_seen(ngx_chat_user_t *u, uint64_t chat, uint64_t seq,
    ngx_chat_order_deliver_pt deliver)
{
    ngx_chat_held_t         *out, **tail;
    ngx_chat_order_t        *o;
    ngx_chat_order_chat_t   *c;

    o = ngx_chat_order_get(u);
    if (o == NULL) {
        return;
    }

    o->deliver = deliver;
    out = NULL;
    tail = &out;

    c = ngx_chat_order_chat(o, chat, &tail);

    if (c->last == 0 && c->held == NULL) {
        c->last = seq - 1;
    }

    /*
     * Not "everything up to seq": messages of others before it may still
     * be on their way.  After a gap it fills its place as an entry that
     * delivers nothing.
     */

    if (seq == c->last + 1
        || (seq > c->last + 1
            && ngx_chat_order_hold(o, c, seq, 0, NULL, NULL, 0, 0)
               != NGX_OK))
    {
        c->last = seq;
    }

    ngx_chat_order_release(o, c, &tail);
    ngx_chat_order_arm(o);
    ngx_chat_order_deliver(u, out, deliver);
}


void
ngx_chat_order_free(ngx_chat_user_t *u)
{
    ngx_uint_t          i;
    ngx_chat_held_t    *h, *next;
    ngx_chat_order_t   *o;

    o = u->order;
    if (o == NULL) {
        return;
    }

    u->order = NULL;

    if (o->timer.timer_set) {
        ngx_del_timer(&o->timer);
    }

    for (i = 0; i < NGX_CHAT_ORDER_CHATS; i++) {
        for (h = o->chats[i].held; h; h = next) {
            next = h->next;
            ngx_chat_worker->order_held -= ngx_chat_order_size(h->len);
            ngx_free(h);
        }
    }

    ngx_free(o);
}


ngx_int_t
ngx_chat_order_parse(u_char *p, size_t len, uint64_t *chat, uint64_t *seq)
{
    u_char  *colon;
    off_t    c, s;

    colon = ngx_strlchr(p, p + len, ':');
    if (colon == NULL || colon == p || colon == p + len - 1) {
        return NGX_DECLINED;
    }

    c = ngx_atoof(p, colon - p);
    s = ngx_atoof(colon + 1, p + len - colon - 1);

    if (c <= 0 || s <= 0) {
        return NGX_DECLINED;
    }

    *chat = (uint64_t) c;
    *seq = (uint64_t) s;

    return NGX_OK;
}


static ngx_chat_order_t *
ngx_chat_order_get(ngx_chat_user_t *u)
{
    ngx_chat_order_t  *o;

    o = u->order;

    if (o == NULL) {
        o = ngx_calloc(sizeof(ngx_chat_order_t), ngx_cycle->log);
        if (o == NULL) {
            return NULL;
        }

        o->user = u;
        o->timer.handler = ngx_chat_order_timer;
        o->timer.data = o;
        o->timer.log = ngx_cycle->log;
        o->timer.cancelable = 1;
        u->order = o;
    }

    o->used = ngx_current_msec;

    return o;
}


/* the slot of chat, taking the least recently used one if needed */
static ngx_chat_order_chat_t *
ngx_chat_order_chat(ngx_chat_order_t *o, uint64_t chat,
    ngx_chat_held_t ***tail)
{
    ngx_uint_t              i;
    ngx_chat_held_t        *h;
    ngx_chat_order_chat_t  *c, *lru;

    lru = &o->chats[0];

    for (i = 0; i < NGX_CHAT_ORDER_CHATS; i++) {
        c = &o->chats[i];

        if (c->chat == chat) {
            c->used = ngx_current_msec;
            return c;
        }

        if (c->chat == 0) {
            lru = c;
            break;
        }

        if (lru->chat
            && (ngx_msec_int_t) (c->used - lru->used) < 0)
        {
            lru = c;
        }
    }

    /* what the evicted chat held goes out now, in its order */

    while (lru->held) {
        h = lru->held;
        lru->held = h->next;
        o->nheld--;
        ngx_chat_worker->order_held -= ngx_chat_order_size(h->len);
        h->next = NULL;
        **tail = h;
        *tail = &h->next;
    }

    lru->chat = chat;
    lru->last = 0;
    lru->used = ngx_current_msec;

    return lru;
}


/*
 * Keeps an event after a gap, in seq order; event_id 0 (no JSON): a seq
 * that reached the user another way and delivers nothing when released.
 * NGX_DECLINED when the user's or the worker's limit is reached: the
 * caller then delivers the event at once.
 */
static ngx_int_t
ngx_chat_order_hold(ngx_chat_order_t *o, ngx_chat_order_chat_t *c,
    uint64_t seq, uint64_t event_id, ngx_str_t *skip, u_char *json,
    size_t len, ngx_uint_t replay)
{
    size_t            size;
    ngx_chat_held_t  *h, **pp;

    if (o->nheld >= NGX_CHAT_ORDER_HELD) {
        return NGX_DECLINED;
    }

    size = ngx_chat_order_size(len);

    if (ngx_chat_worker->order_held + size
        > ngx_chat_worker->cmcf->order_hold_limit)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "chat order: %uz bytes held, %uz more do not fit "
                       "chat_order_hold_limit", ngx_chat_worker->order_held,
                       size);
        return NGX_DECLINED;
    }

    h = ngx_alloc(size, ngx_cycle->log);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->seq = seq;
    h->event_id = event_id;
    h->since = ngx_current_msec;
    h->len = len;
    h->replay = replay;
    h->skip.len = skip ? skip->len : 0;
    h->skip.data = h->skip_data;

    if (skip) {
        ngx_memcpy(h->skip_data, skip->data, skip->len);
    }

    if (len) {
        ngx_memcpy(h->json, json, len);
    }

    for (pp = &c->held; *pp && (*pp)->seq <= seq; pp = &(*pp)->next) {
        /* void */
    }

    h->next = *pp;
    *pp = h;
    o->nheld++;
    ngx_chat_worker->order_held += size;

    return NGX_OK;
}


/* moves the held events that are now next in line to the out list */
static void
ngx_chat_order_release(ngx_chat_order_t *o, ngx_chat_order_chat_t *c,
    ngx_chat_held_t ***tail)
{
    ngx_chat_held_t  *h;

    while (c->held && c->held->seq <= c->last + 1) {
        h = c->held;
        c->held = h->next;
        o->nheld--;
        ngx_chat_worker->order_held -= ngx_chat_order_size(h->len);

        if (h->seq > c->last) {
            c->last = h->seq;
        }

        h->next = NULL;
        **tail = h;
        *tail = &h->next;
    }
}


static void
ngx_chat_order_timer(ngx_event_t *ev)
{
    ngx_chat_order_t  *o = ev->data;

    ngx_uint_t                  i;
    ngx_chat_held_t            *out, **tail;
    ngx_chat_user_t            *u;
    ngx_chat_order_chat_t      *c;
    ngx_chat_order_deliver_pt   deliver;

    u = o->user;
    deliver = o->deliver;
    out = NULL;
    tail = &out;

    /* a gap that lasted too long: go on after it */

    for (i = 0; i < NGX_CHAT_ORDER_CHATS; i++) {
        c = &o->chats[i];

        while (c->held
               && (ngx_msec_int_t) (ngx_current_msec - c->held->since)
                  >= NGX_CHAT_ORDER_HOLD)
        {
            c->last = c->held->seq - 1;
            ngx_chat_order_release(o, c, &tail);
        }
    }

    if (o->nheld == 0
        && (ngx_msec_int_t) (ngx_current_msec - o->used)
           >= NGX_CHAT_ORDER_IDLE)
    {
        ngx_chat_order_free(u);

    } else {
        ngx_chat_order_arm(o);
    }

    ngx_chat_order_deliver(u, out, deliver);
}


/* the timer: the oldest held event's deadline, or the idle check */
static void
ngx_chat_order_arm(ngx_chat_order_t *o)
{
    ngx_uint_t      i;
    ngx_msec_t      at;
    ngx_msec_int_t  d;

    at = o->used + NGX_CHAT_ORDER_IDLE;

    for (i = 0; i < NGX_CHAT_ORDER_CHATS; i++) {
        if (o->chats[i].held
            && (ngx_msec_int_t) (o->chats[i].held->since
                                 + NGX_CHAT_ORDER_HOLD - at) < 0)
        {
            at = o->chats[i].held->since + NGX_CHAT_ORDER_HOLD;
        }
    }

    d = (ngx_msec_int_t) (at - ngx_current_msec);
    if (d < 1) {
        d = 1;
    }

    if (o->timer.timer_set) {
        if ((ngx_msec_int_t) (o->timer.timer.key - (ngx_current_msec + d))
            <= 0)
        {
            return;
        }

        ngx_del_timer(&o->timer);
    }

    ngx_add_timer(&o->timer, (ngx_msec_t) d);
}


/*
 * Delivers and frees the out list.  A delivery never frees the user entry
 * (a connection it drops is torn down from a posted event), so u stays
 * valid throughout.
 */
static void
ngx_chat_order_deliver(ngx_chat_user_t *u, ngx_chat_held_t *out,
    ngx_chat_order_deliver_pt deliver)
{
    ngx_chat_held_t  *h;

    while (out) {
        h = out;
        out = h->next;

        if (h->event_id) {
            deliver(u, h->event_id, &h->skip, h->json, h->len, h->replay);
        }

        ngx_free(h);
    }
}
