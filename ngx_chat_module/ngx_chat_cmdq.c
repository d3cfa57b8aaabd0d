
/*
 * ngx_chat_cmdq.c: the commands of one connection take effect in the
 * order the connection sent them.
 *
 * sendMessage goes through the batches of ngx_chat_store.c, which keep a
 * connection's sends in order among themselves (one batch holding sends of
 * a connection is out at a time).  The commands that change who receives
 * what (createChat, modifyChatParticipants, removeDevice), and getChats,
 * which reads it, run as a statement of their own on any pooled
 * PostgreSQL connection.  Left alone the two kinds overtake each other: a
 * removal pipelined after 20 sends would commit before most of them, an
 * add before 20 sends could commit after all of them.  So each of those
 * commands is a barrier: it runs once the connection's earlier sends are
 * answered (cc->nsends is 0, their transactions committed or failed), and
 * the connection's later commands, but for pings, acks and the media
 * commands, which change nothing the others depend on, wait until its
 * statement has returned.  Sends of different connections, and the sends
 * of one connection between two barriers, are batched as before.
 *
 * What waits is kept as the command's text in a FIFO of the connection
 * and run in its turn by the function the commands gave (admitted once,
 * so not counted against chat_command_rate again).  A sendMessage whose
 * S3 attachments are being confirmed first (ngx_chat_media_cmd.c) holds
 * the turn like a barrier until it runs again, so that it keeps its place
 * too.  The FIFO lives in an
 * ngx_chat_cmdq_t that exists only while a barrier runs or something
 * waits (cc->cmdq, else NULL): a connection that only sends pays a
 * pointer and a counter, and one test per send.  Each kept command holds
 * cc->pending like a command waiting for PostgreSQL, so chat_max_inflight
 * bounds the FIFO; the posted event that runs it holds cc->pending too.
 * The ngx_chat_cmdq_t is freed by that event only, once nothing runs,
 * waits or is posted, so it is gone before cc->pending can reach 0.
 */


#include "ngx_chat.h"
#include "ngx_chat_cmdq.h"
#include "ngx_chat_ws.h"


typedef struct ngx_chat_cmdq_item_s  ngx_chat_cmdq_item_t;

struct ngx_chat_cmdq_item_s {
    ngx_chat_cmdq_item_t    *next;
    ngx_uint_t               kind;          /* NGX_CHAT_CMDQ_* */
    size_t                   len;
    u_char                   text[1];       /* the command's JSON */
};


struct ngx_chat_cmdq_s {
    ngx_chat_conn_t         *cc;
    ngx_chat_cmdq_item_t    *head;          /* waiting, in arrival order */
    ngx_chat_cmdq_item_t   **tail;
    ngx_event_t              run;           /* posted: run what may go */
    ngx_chat_cmdq_run_pt     again;         /* runs a kept command */
    unsigned                 running:1;     /* a barrier's statement out */
};


static ngx_chat_cmdq_t *ngx_chat_cmdq_get(ngx_chat_conn_t *cc,
    ngx_chat_cmdq_run_pt again);
static void ngx_chat_cmdq_post(ngx_chat_cmdq_t *q);
static void ngx_chat_cmdq_run(ngx_event_t *ev);


ngx_int_t
ngx_chat_cmdq_admit(ngx_chat_conn_t *cc, ngx_uint_t kind, u_char *p,
    size_t len, ngx_chat_cmdq_run_pt again)
{
    ngx_chat_cmdq_t       *q;
    ngx_chat_cmdq_item_t  *it;

    /* the hot path: a send while no barrier runs or waits */

    if (cc->cmdq == NULL
        && (kind == NGX_CHAT_CMDQ_SEND || cc->nsends == 0))
    {
        return NGX_DECLINED;
    }

    if (kind == NGX_CHAT_CMDQ_FREE) {
        return NGX_DECLINED;
    }

    q = ngx_chat_cmdq_get(cc, again);
    if (q == NULL) {
        return NGX_ERROR;
    }

    it = ngx_alloc(offsetof(ngx_chat_cmdq_item_t, text) + len,
                   ngx_cycle->log);
    if (it == NULL) {
        if (q->head == NULL && !q->running && !q->run.posted) {
            cc->cmdq = NULL;
            ngx_free(q);
        }

        return NGX_ERROR;
    }

    it->next = NULL;
    it->kind = kind;
    it->len = len;
    ngx_memcpy(it->text, p, len);

    *q->tail = it;
    q->tail = &it->next;

    cc->pending++;

    /*
     * Nothing to post: what it waits for (a barrier's statement, the
     * connection's sends, or an earlier command that waits for those)
     * posts the run when it is over.
     */

    return NGX_OK;
}


ngx_int_t
ngx_chat_cmdq_start(ngx_chat_conn_t *cc, ngx_chat_cmdq_run_pt again)
{
    ngx_chat_cmdq_t  *q;

    q = ngx_chat_cmdq_get(cc, again);
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->running = 1;

    return NGX_OK;
}


void
ngx_chat_cmdq_done(ngx_chat_conn_t *cc)
{
    ngx_chat_cmdq_t  *q;

    q = cc->cmdq;
    if (q == NULL) {
        return;
    }

    q->running = 0;

    /* also with nothing waiting: the run frees q */
    ngx_chat_cmdq_post(q);
}


void
ngx_chat_cmdq_sent(ngx_chat_conn_t *cc)
{
    ngx_chat_cmdq_t  *q;

    q = cc->cmdq;

    if (q && q->head && !q->running) {
        ngx_chat_cmdq_post(q);
    }
}


static ngx_chat_cmdq_t *
ngx_chat_cmdq_get(ngx_chat_conn_t *cc, ngx_chat_cmdq_run_pt again)
{
    ngx_chat_cmdq_t  *q;

    if (cc->cmdq) {
        return cc->cmdq;
    }

    q = ngx_calloc(sizeof(ngx_chat_cmdq_t), ngx_cycle->log);
    if (q == NULL) {
        return NULL;
    }

    q->cc = cc;
    q->again = again;
    q->tail = &q->head;
    q->run.handler = ngx_chat_cmdq_run;
    q->run.data = q;
    q->run.log = ngx_cycle->log;

    cc->cmdq = q;

    return q;
}


static void
ngx_chat_cmdq_post(ngx_chat_cmdq_t *q)
{
    if (q->run.posted) {
        return;
    }

    q->cc->pending++;
    ngx_post_event(&q->run, &ngx_posted_events);
}


/*
 * Runs the kept commands that may go now: sends up to the next barrier,
 * and a barrier once the sends before it are answered.  Once the
 * connection is no longer active they are dropped unanswered (there is
 * no one to answer), as soon as no barrier's statement is out.
 */

static void
ngx_chat_cmdq_run(ngx_event_t *ev)
{
    ngx_chat_cmdq_t       *q = ev->data;

    ngx_chat_conn_t       *cc;
    ngx_chat_cmdq_item_t  *it;

    cc = q->cc;

    while (q->head && !q->running) {
        it = q->head;

        if (ngx_chat_conn_active(cc) && it->kind == NGX_CHAT_CMDQ_BARRIER
            && cc->nsends)
        {
            /* ngx_chat_cmdq_sent() posts the run again */
            break;
        }

        q->head = it->next;
        if (q->head == NULL) {
            q->tail = &q->head;
        }

        if (ngx_chat_conn_active(cc)) {
            (void) q->again(cc, it->text, it->len);
        }

        ngx_free(it);

        /* its hold; this run's own keeps cc */
        cc->pending--;
    }

    if (q->head == NULL && !q->running && !q->run.posted) {
        cc->cmdq = NULL;
        ngx_free(q);
    }

    ngx_chat_ws_release(cc);
}
