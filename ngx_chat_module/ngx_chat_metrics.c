
/*
 * ngx_chat_metrics.c: the module's metrics in a shared memory zone, and
 * their Prometheus text exposition (version 0.0.4).
 *
 * The zone (set up by ngx_chat_module.c with ngx_shared_memory_add, kept
 * across reloads) holds NGX_CHAT_METRICS_SLOTS slots.  A worker claims a
 * free slot (or one whose owner died) in init_process and counts into it
 * with atomic adds; nothing is locked and nothing is allocated on the hot
 * path, and nothing is kept per connection.  Counters stay in the slot
 * when its worker exits, so a reload or a crashed worker loses no counts;
 * gauges count only for slots whose owner is alive.  Workers beyond the
 * slots share slot 0 (counters and histograms only).
 *
 * Histograms keep a count per bucket (not cumulative; the render sums)
 * and their sum in microseconds (or items for the batch sizes).
 */


#include "ngx_chat.h"
#include "ngx_chat_metrics.h"


typedef struct {
    const char              *name;
    const char              *help;
    const char              *unit;          /* "seconds" or "" */
    const uint64_t          *bounds;        /* us, or items */
} ngx_chat_metrics_hdef_t;


typedef enum {
    NGX_CHAT_AGG_SUM = 0,
    NGX_CHAT_AGG_MIN,
    NGX_CHAT_AGG_MAX
} ngx_chat_metrics_agg_e;


typedef struct {
    const char              *name;
    const char              *help;
    ngx_chat_metrics_agg_e   agg;
} ngx_chat_metrics_def_t;


static u_char *ngx_chat_metrics_head(u_char *p, u_char *last,
    const char *name, const char *help, const char *type);
static u_char *ngx_chat_metrics_render_hist(u_char *p, u_char *last,
    const ngx_chat_metrics_hdef_t *def, ngx_chat_metrics_hist_t *h);
static ngx_uint_t ngx_chat_metrics_alive(ngx_pid_t pid);


/* 0.5 ms to 10 s */
static const uint64_t  ngx_chat_metrics_time_bounds[NGX_CHAT_H_BUCKETS - 1]
    = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};

static const uint64_t  ngx_chat_metrics_size_bounds[NGX_CHAT_H_BUCKETS - 1]
    = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000
};


static const ngx_chat_metrics_hdef_t  ngx_chat_metrics_hists[NGX_CHAT_H_N]
    = {
    { "ngx_chat_send_commit_seconds",
      "sendMessage arrival to its durable commit in PostgreSQL",
      "seconds", ngx_chat_metrics_time_bounds },
    { "ngx_chat_delivery_seconds",
      "commit of an event to its frame queued on a recipient's socket, "
      "live path (the commit time travels in the Redis message)",
      "seconds", ngx_chat_metrics_time_bounds },
    { "ngx_chat_drain_seconds",
      "a device's inbox drain, from its first page read to its last page "
      "written",
      "seconds", ngx_chat_metrics_time_bounds },
    { "ngx_chat_ack_seconds",
      "event written to a device to its ack received",
      "seconds", ngx_chat_metrics_time_bounds },
    { "ngx_chat_send_batch_size",
      "sendMessage commands per chat_send_batch() transaction",
      "", ngx_chat_metrics_size_bounds },
    { "ngx_chat_poll_batch_size",
      "connections whose inboxes one chat_poll() statement read (polling "
      "while Redis is down; at most chat_poll_batch)",
      "", ngx_chat_metrics_size_bounds }
};


static const ngx_chat_metrics_def_t  ngx_chat_metrics_gauges[NGX_CHAT_G_N]
    = {
    { "ngx_chat_connections", "open WebSocket connections",
      NGX_CHAT_AGG_SUM },
    { "ngx_chat_devices_online",
      "devices registered with a live connection", NGX_CHAT_AGG_SUM },
    { "ngx_chat_pg_queue_depth",
      "queries waiting for a PostgreSQL connection of the pools",
      NGX_CHAT_AGG_SUM },
    { "ngx_chat_redis_up",
      "1 when every worker's Redis subscriber link is up", NGX_CHAT_AGG_MIN },
    { "ngx_chat_polling",
      "1 while some worker polls inboxes because Redis is down",
      NGX_CHAT_AGG_MAX },
    { "ngx_chat_send_capacity_per_second",
      "sends a second PostgreSQL commits while sends wait, as the workers "
      "measure it to shed load (chat_send_queue_time); 0 until measured",
      NGX_CHAT_AGG_SUM }
};


static const ngx_chat_metrics_def_t  ngx_chat_metrics_counters[NGX_CHAT_C_N]
    = {
    { "ngx_chat_events_acked_total", "event ids acked by devices", 0 },
    { "ngx_chat_pg_errors_total",
      "PostgreSQL statements failed and connections lost", 0 },
    { "ngx_chat_pg_reconnects_total",
      "PostgreSQL pool connections re-established after a loss", 0 },
    { "ngx_chat_redis_reconnects_total",
      "Redis subscriber links re-established after a loss", 0 },
    { "ngx_chat_output_dropped_total",
      "connections dropped for exceeding chat_output_limit (slow "
      "consumers)", 0 },
    { "ngx_chat_media_uploads_total", "media uploads stored", 0 },
    { "ngx_chat_media_downloads_total", "media downloads served", 0 },
    { "ngx_chat_media_upload_bytes_total", "bytes of media uploaded", 0 },
    { "ngx_chat_media_download_bytes_total", "bytes of media downloaded", 0 }
};


static const char  *ngx_chat_metrics_connects[NGX_CHAT_CONNECT_N] = {
    "ok", "unauthorized", "device_limit", "device_removed", "unavailable",
    "rate_limited", "bad_request"
};


static const char  *ngx_chat_metrics_cmd_types[NGX_CHAT_CMD_T_N] = {
    "invalid", "unknown",
    "ping", "sendMessage", "ack", "createChat", "modifyChatParticipants",
    "getChats", "removeDevice", "createAttachment", "getAttachmentUrl",
    "ackAttachment"
};


static const char  *ngx_chat_metrics_cmd_results[NGX_CHAT_CMD_R_N] = {
    "ok", "bad_request", "unknown_type", "rate_limited", "unavailable",
    "not_found", "forbidden", "limit_exceeded", "internal_error", "other"
};


static const char  *ngx_chat_metrics_events[NGX_CHAT_EV_N] = {
    "newMessage", "chatUpdate", "other"
};


size_t
ngx_chat_metrics_zone_size(void)
{
    /* the slab allocator's page headers and the zone's own */
    return sizeof(ngx_chat_metrics_shm_t)
           + NGX_CHAT_METRICS_SLOTS * sizeof(ngx_chat_metrics_slot_t)
           + 16 * ngx_pagesize;
}


ngx_chat_metrics_shm_t *
ngx_chat_metrics_init_zone(void *mem, size_t size)
{
    ngx_chat_metrics_shm_t  *shm = mem;

    if (size < sizeof(ngx_chat_metrics_shm_t)
               + NGX_CHAT_METRICS_SLOTS * sizeof(ngx_chat_metrics_slot_t))
    {
        return NULL;
    }

    if (shm->nslots != NGX_CHAT_METRICS_SLOTS + 1) {
        ngx_memzero(shm, sizeof(ngx_chat_metrics_shm_t)
                    + NGX_CHAT_METRICS_SLOTS
                      * sizeof(ngx_chat_metrics_slot_t));
        shm->nslots = NGX_CHAT_METRICS_SLOTS + 1;
    }

    return shm;
}


ngx_chat_metrics_slot_t *
ngx_chat_metrics_claim(ngx_chat_metrics_shm_t *shm, ngx_pid_t pid)
{
    ngx_uint_t                i, pass;
    ngx_atomic_uint_t         old;
    ngx_chat_metrics_slot_t  *slot;

    /* free slots first, then those of workers that died */

    for (pass = 0; pass < 2; pass++) {
        for (i = 1; i < shm->nslots; i++) {
            slot = &shm->slots[i];
            old = slot->pid;

            if (pass == 0 ? old != 0
                          : old == 0 || ngx_chat_metrics_alive(old))
            {
                continue;
            }

            if (ngx_atomic_cmp_set(&slot->pid, old, (ngx_atomic_uint_t) pid))
            {
                ngx_memzero((void *) slot->gauge, sizeof(slot->gauge));
                return slot;
            }
        }
    }

    return &shm->slots[0];
}


void
ngx_chat_metrics_release(ngx_chat_metrics_slot_t *slot)
{
    if (slot == NULL || slot->pid == 0) {
        return;
    }

    ngx_memzero((void *) slot->gauge, sizeof(slot->gauge));
    ngx_memory_barrier();
    slot->pid = 0;
}


static ngx_uint_t
ngx_chat_metrics_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH;
}


uint64_t
ngx_chat_metrics_now(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000000 + (uint64_t) tv.tv_usec;
}


ngx_uint_t
ngx_chat_metrics_cmd_type(u_char *name, size_t len)
{
    ngx_uint_t  i;

    for (i = NGX_CHAT_CMD_T_FIRST; i < NGX_CHAT_CMD_T_N; i++) {
        if (ngx_strlen(ngx_chat_metrics_cmd_types[i]) == len
            && ngx_strncmp(ngx_chat_metrics_cmd_types[i], name, len) == 0)
        {
            return i;
        }
    }

    return NGX_CHAT_CMD_T_UNKNOWN;
}


const char *
ngx_chat_metrics_cmd_name(ngx_uint_t type)
{
    return type < NGX_CHAT_CMD_T_N ? ngx_chat_metrics_cmd_types[type]
                                   : "command";
}


ngx_uint_t
ngx_chat_metrics_cmd_result(const char *code)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_CHAT_CMD_R_N - 1; i++) {
        if (ngx_strcmp(ngx_chat_metrics_cmd_results[i], code) == 0) {
            return i;
        }
    }

    return NGX_CHAT_CMD_R_N - 1;
}


/* the events' JSON starts with their type: {"type" : "newMessage", ... */
ngx_uint_t
ngx_chat_metrics_event_type(u_char *json, size_t len)
{
    u_char  *last;

    last = json + ngx_min(len, 40);

    if (ngx_strlcasestrn(json, last, (u_char *) "\"newMessage\"",
                         sizeof("\"newMessage\"") - 2))
    {
        return NGX_CHAT_EV_NEW_MESSAGE;
    }

    if (ngx_strlcasestrn(json, last, (u_char *) "\"chatUpdate\"",
                         sizeof("\"chatUpdate\"") - 2))
    {
        return NGX_CHAT_EV_CHAT_UPDATE;
    }

    return NGX_CHAT_EV_OTHER;
}


void
ngx_chat_metrics_observe(ngx_chat_metrics_slot_t *slot, ngx_uint_t h,
    uint64_t value)
{
    ngx_uint_t                i;
    const uint64_t           *bounds;
    ngx_chat_metrics_hist_t  *hist;

    if (slot == NULL) {
        return;
    }

    hist = &slot->hist[h];
    bounds = ngx_chat_metrics_hists[h].bounds;

    for (i = 0; i < NGX_CHAT_H_BUCKETS - 1; i++) {
        if (value <= bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&hist->bucket[i], 1);
    (void) ngx_atomic_fetch_add(&hist->sum, (ngx_atomic_int_t) value);
    (void) ngx_atomic_fetch_add(&hist->count, 1);
}


size_t
ngx_chat_metrics_size(void)
{
    /* generous: every line below 256 bytes, HELP texts included */
    return 256 * (2 * (NGX_CHAT_G_N + NGX_CHAT_C_N + 3)
                  + NGX_CHAT_G_N + NGX_CHAT_C_N + NGX_CHAT_CONNECT_N
                  + NGX_CHAT_CMD_T_N * NGX_CHAT_CMD_R_N + NGX_CHAT_EV_N
                  + NGX_CHAT_H_N * (NGX_CHAT_H_BUCKETS + 4));
}


u_char *
ngx_chat_metrics_render(ngx_chat_metrics_shm_t *shm, u_char *p, u_char *last)
{
    ngx_uint_t                i, k, j, live, seen;
    ngx_atomic_uint_t         g[NGX_CHAT_G_N];
    ngx_chat_metrics_slot_t  *s, sum;

    ngx_memzero(&sum, sizeof(ngx_chat_metrics_slot_t));
    ngx_memzero(g, sizeof(g));
    seen = 0;

    for (i = 0; i < shm->nslots; i++) {
        s = &shm->slots[i];

        for (k = 0; k < NGX_CHAT_C_N; k++) {
            sum.counter[k] += s->counter[k];
        }

        for (k = 0; k < NGX_CHAT_CONNECT_N; k++) {
            sum.connects[k] += s->connects[k];
        }

        for (k = 0; k < NGX_CHAT_CMD_T_N; k++) {
            for (j = 0; j < NGX_CHAT_CMD_R_N; j++) {
                sum.commands[k][j] += s->commands[k][j];
            }
        }

        for (k = 0; k < NGX_CHAT_EV_N; k++) {
            sum.delivered[k] += s->delivered[k];
        }

        for (k = 0; k < NGX_CHAT_H_N; k++) {
            sum.hist[k].count += s->hist[k].count;
            sum.hist[k].sum += s->hist[k].sum;

            for (j = 0; j < NGX_CHAT_H_BUCKETS; j++) {
                sum.hist[k].bucket[j] += s->hist[k].bucket[j];
            }
        }

        live = (i > 0 && s->pid && ngx_chat_metrics_alive(s->pid));

        if (!live) {
            continue;
        }

        for (k = 0; k < NGX_CHAT_G_N; k++) {
            switch (ngx_chat_metrics_gauges[k].agg) {

            case NGX_CHAT_AGG_MIN:
                g[k] = seen ? ngx_min(g[k], s->gauge[k]) : s->gauge[k];
                break;

            case NGX_CHAT_AGG_MAX:
                g[k] = ngx_max(g[k], s->gauge[k]);
                break;

            default:
                g[k] += s->gauge[k];
            }
        }

        seen = 1;
    }

    for (k = 0; k < NGX_CHAT_G_N; k++) {
        p = ngx_chat_metrics_head(p, last, ngx_chat_metrics_gauges[k].name,
                                  ngx_chat_metrics_gauges[k].help, "gauge");
        p = ngx_slprintf(p, last, "%s %uA\n",
                         ngx_chat_metrics_gauges[k].name, g[k]);
    }

    p = ngx_chat_metrics_head(p, last, "ngx_chat_connects_total",
                              "WebSocket upgrade requests by outcome",
                              "counter");

    for (k = 0; k < NGX_CHAT_CONNECT_N; k++) {
        p = ngx_slprintf(p, last, "ngx_chat_connects_total{result=\"%s\"} "
                         "%uA\n", ngx_chat_metrics_connects[k],
                         sum.connects[k]);
    }

    p = ngx_chat_metrics_head(p, last, "ngx_chat_commands_total",
                              "commands answered, by type and by \"ok\" "
                              "or the error code", "counter");

    for (k = 0; k < NGX_CHAT_CMD_T_N; k++) {
        for (j = 0; j < NGX_CHAT_CMD_R_N; j++) {
            if (sum.commands[k][j] == 0 && j != 0) {
                continue;
            }

            p = ngx_slprintf(p, last, "ngx_chat_commands_total{type=\"%s\","
                             "result=\"%s\"} %uA\n",
                             ngx_chat_metrics_cmd_types[k],
                             ngx_chat_metrics_cmd_results[j],
                             sum.commands[k][j]);
        }
    }

    p = ngx_chat_metrics_head(p, last, "ngx_chat_events_delivered_total",
                              "events written to devices (live and "
                              "drained), by type", "counter");

    for (k = 0; k < NGX_CHAT_EV_N; k++) {
        p = ngx_slprintf(p, last, "ngx_chat_events_delivered_total"
                         "{type=\"%s\"} %uA\n", ngx_chat_metrics_events[k],
                         sum.delivered[k]);
    }

    for (k = 0; k < NGX_CHAT_C_N; k++) {
        p = ngx_chat_metrics_head(p, last, ngx_chat_metrics_counters[k].name,
                                  ngx_chat_metrics_counters[k].help,
                                  "counter");
        p = ngx_slprintf(p, last, "%s %uA\n",
                         ngx_chat_metrics_counters[k].name, sum.counter[k]);
    }

    for (k = 0; k < NGX_CHAT_H_N; k++) {
        p = ngx_chat_metrics_render_hist(p, last, &ngx_chat_metrics_hists[k],
                                         &sum.hist[k]);
    }

    return p;
}


static u_char *
ngx_chat_metrics_head(u_char *p, u_char *last, const char *name,
    const char *help, const char *type)
{
    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


/* one histogram: cumulative buckets, +Inf, sum, count */
static u_char *
ngx_chat_metrics_render_hist(u_char *p, u_char *last,
    const ngx_chat_metrics_hdef_t *def, ngx_chat_metrics_hist_t *h)
{
    uint64_t    cum, b;
    ngx_uint_t  i, seconds;

    seconds = def->unit[0] != '\0';

    p = ngx_chat_metrics_head(p, last, def->name, def->help, "histogram");

    cum = 0;

    for (i = 0; i < NGX_CHAT_H_BUCKETS - 1; i++) {
        cum += h->bucket[i];
        b = def->bounds[i];

        if (seconds) {
            p = ngx_slprintf(p, last, "%s_bucket{le=\"%uL.%06uL\"} %uL\n",
                             def->name, b / 1000000, b % 1000000, cum);

        } else {
            p = ngx_slprintf(p, last, "%s_bucket{le=\"%uL\"} %uL\n",
                             def->name, b, cum);
        }
    }

    cum += h->bucket[i];

    p = ngx_slprintf(p, last, "%s_bucket{le=\"+Inf\"} %uL\n", def->name, cum);

    if (seconds) {
        p = ngx_slprintf(p, last, "%s_sum %uL.%06uL\n", def->name,
                         (uint64_t) h->sum / 1000000,
                         (uint64_t) h->sum % 1000000);

    } else {
        p = ngx_slprintf(p, last, "%s_sum %uA\n", def->name, h->sum);
    }

    return ngx_slprintf(p, last, "%s_count %uL\n", def->name, cum);
}
