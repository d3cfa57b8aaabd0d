
/*
 * ngx_chat_status.c: what an operator asks nginx about the module.
 *   - chat_metrics: the Prometheus text of the metrics zone
 *     (ngx_chat_metrics.c), summed over every worker;
 *   - chat_health: 200 when this worker's PostgreSQL pool and Redis
 *     subscriber link are up, 503 with the reason otherwise, both with a
 *     small JSON body, for load balancers;
 *   - the metrics zone itself: ngx_shared_memory_add at configuration,
 *     one slot per worker claimed in init_process;
 *   - a log phase handler that counts upgrade requests nginx refused
 *     before the module saw them (limit_req, limit_conn: 429).
 */


#include "ngx_chat.h"
#include "ngx_chat_status.h"
#include "ngx_chat_metrics.h"
#include "ngx_chat_http.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_shards.h"


static ngx_int_t ngx_chat_status_zone_init(ngx_shm_zone_t *zone, void *data);
static ngx_int_t ngx_chat_status_log(ngx_http_request_t *r);


static ngx_str_t  ngx_chat_status_zone_name = ngx_string("ngx_chat_metrics");


ngx_int_t
ngx_chat_status_conf(ngx_conf_t *cf, ngx_chat_main_conf_t *cmcf)
{
    ngx_shm_zone_t             *zone;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *hcmcf;

    if (!cmcf->used && !cmcf->status) {
        return NGX_OK;
    }

    zone = ngx_shared_memory_add(cf, &ngx_chat_status_zone_name,
                                 ngx_chat_metrics_zone_size(),
                                 &ngx_chat_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_chat_status_zone_init;
    zone->data = NULL;
    cmcf->metrics_zone = zone;

    if (!cmcf->used) {
        return NGX_OK;
    }

    hcmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&hcmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_chat_status_log;

    return NGX_OK;
}


/* a new zone is laid out; one kept across a reload keeps its counts */
static ngx_int_t
ngx_chat_status_zone_init(ngx_shm_zone_t *zone, void *data)
{
    size_t            size;
    void             *mem;
    ngx_slab_pool_t  *shpool;

    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (shpool->data) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    size = sizeof(ngx_chat_metrics_shm_t)
           + NGX_CHAT_METRICS_SLOTS * sizeof(ngx_chat_metrics_slot_t);

    mem = ngx_slab_calloc(shpool, size);
    if (mem == NULL) {
        return NGX_ERROR;
    }

    zone->data = ngx_chat_metrics_init_zone(mem, size);
    if (zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = zone->data;

    return NGX_OK;
}


void
ngx_chat_status_worker_init(ngx_chat_worker_t *w)
{
    if (w->cmcf->metrics_zone == NULL || w->cmcf->metrics_zone->data == NULL)
    {
        return;
    }

    w->metrics = ngx_chat_metrics_claim(w->cmcf->metrics_zone->data,
                                        ngx_pid);

    if (w->metrics->pid == 0) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "chat: no metrics slot of its own for this worker "
                      "(more than %d workers): its gauges are not "
                      "reported", NGX_CHAT_METRICS_SLOTS);
    }
}


void
ngx_chat_status_worker_exit(ngx_chat_worker_t *w)
{
    ngx_chat_metrics_release(w->metrics);
    w->metrics = NULL;
}


ngx_int_t
ngx_chat_status_metrics_handler(ngx_http_request_t *r)
{
    size_t                 size;
    ngx_int_t              rc;
    ngx_buf_t             *b;
    ngx_chain_t            out;
    ngx_chat_main_conf_t  *cmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_chat_module);

    if (cmcf->metrics_zone == NULL || cmcf->metrics_zone->data == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    size = ngx_chat_metrics_size();

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_chat_metrics_render(cmcf->metrics_zone->data, b->pos,
                                      b->end);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_chat_status_health_handler(ngx_http_request_t *r)
{
    u_char              *p;
    ngx_uint_t           pg, redis, status;
    const char          *reason;
    ngx_chat_worker_t   *w;
    u_char               body[256];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    w = ngx_chat_worker;

    if (w == NULL) {
        p = ngx_sprintf(body, "{\"status\":\"down\",\"reason\":"
                        "\"chat_websocket is not configured\"}\n");
        return ngx_chat_http_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, body,
                                  p - body);
    }

    pg = ngx_chat_pg_up(w->pg);
    redis = ngx_chat_shards_up(w->shards);

    if (pg && redis) {
        status = NGX_HTTP_OK;
        reason = NULL;

    } else {
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        reason = !pg && !redis ? "postgres and redis down"
                 : !pg ? "postgres down" : "redis down";
    }

    p = ngx_sprintf(body, "{\"status\":\"%s\",", reason ? "down" : "ok");

    if (reason) {
        p = ngx_sprintf(p, "\"reason\":\"%s\",", reason);
    }

    p = ngx_sprintf(p, "\"postgres\":%s,\"redis\":%s,\"pid\":%P,"
                    "\"connections\":%ui}\n", pg ? "true" : "false",
                    redis ? "true" : "false", ngx_pid, w->nconns);

    return ngx_chat_http_json(r, status, body, p - body);
}


/*
 * Counts upgrades refused before the content handler (limit_req,
 * limit_conn answer 429 in the preaccess phase) on chat_websocket
 * locations; the module counts the other outcomes itself.
 */
static ngx_int_t
ngx_chat_status_log(ngx_http_request_t *r)
{
    ngx_chat_loc_conf_t  *clcf;

    if (r->headers_out.status != NGX_HTTP_TOO_MANY_REQUESTS
        && r->headers_out.status != NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        return NGX_OK;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_chat_module);

    if (clcf == NULL || clcf->websocket != 1
        || ngx_http_get_module_ctx(r, ngx_chat_module) != NULL)
    {
        return NGX_OK;
    }

    ngx_chat_metrics_add(connects[NGX_CHAT_CONNECT_RATE_LIMITED], 1);

    return NGX_OK;
}
