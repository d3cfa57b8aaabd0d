
/*
 * ngx_chat_media_module.c: the skeleton of ngx_chat_media_module: its
 * directives and their checks, the worker life cycle, the periodic media
 * sweep (worker 0) and the deletion of blobs, for both stores.
 *
 *   chat_media_store local <dir> [url=<prefix>];
 *   chat_media_store s3 endpoint=<url> region=<r> bucket=<b>
 *                    access_key_file=<f> secret_key_file=<f>
 *                    [prefix=<p>] [addressing=path|virtual]
 *                    [checksum=on|off] [delete=on|off] [ca_file=<f>];
 *   chat_media_max_size <size>;          64m
 *   chat_media_types <type> ...;         images, video, audio, pdf, binary
 *   chat_media_url_ttl <time>;           1h
 *   chat_media_grace <time>;             24h
 *   location /media/ { chat_media; }     the local store's URLs
 */


#include "ngx_chat.h"
#include "ngx_chat_media.h"
#include "ngx_chat_store.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_crypto.h"


#define NGX_CHAT_MEDIA_SWEEP_LIMIT     1000
#define NGX_CHAT_MEDIA_SWEEP_LIMIT_S3  100

/*
 * The local store's unlinks are synchronous: one event loop pass does at
 * most this many, and stops after this many microseconds; the rest of a
 * sweep's blobs wait for the next passes (ngx_posted_next_events).
 */
#define NGX_CHAT_MEDIA_UNLINKS_PASS    50
#define NGX_CHAT_MEDIA_UNLINK_USEC     2000


/* the worker's media state; NULL when media is not configured */
typedef struct {
    ngx_event_t              sweep;
    ngx_uint_t               sweeping;      /* a sweep query is out, or
                                               its unlinks are not done */
    ngx_event_t              unlink;        /* the next pass of unlinks */
    ngx_str_t               *ids;           /* the sweep's blobs, malloc'd
                                               with their bytes */
    ngx_uint_t               nids;
    ngx_uint_t               next;          /* ids[next..] are left */
    ngx_uint_t               passes;
} ngx_chat_media_worker_t;


static void *ngx_chat_media_create_main_conf(ngx_conf_t *cf);
static char *ngx_chat_media_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_chat_media_create_loc_conf(ngx_conf_t *cf);
static char *ngx_chat_media_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_chat_media_postconfiguration(ngx_conf_t *cf);
static char *ngx_chat_media_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_media_types(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_media(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_chat_media_add_path(ngx_conf_t *cf, ngx_str_t *name,
    ngx_path_t **out);
static ngx_int_t ngx_chat_media_init_process(ngx_cycle_t *cycle);
static void ngx_chat_media_exit_process(ngx_cycle_t *cycle);
static void ngx_chat_media_sweep(ngx_event_t *ev);
static void ngx_chat_media_swept(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_chat_media_unlink_start(ngx_chat_media_worker_t *mw,
    PGresult *res);
static void ngx_chat_media_unlink_pass(ngx_event_t *ev);
static void ngx_chat_media_unlink_done(ngx_chat_media_worker_t *mw);
static ngx_uint_t ngx_chat_media_purge_local(ngx_str_t *ids, ngx_uint_t n);
static uint64_t ngx_chat_media_usec(void);
static void ngx_chat_media_deleted(void *data, ngx_uint_t status,
    off_t length);
static void ngx_chat_media_purged(ngx_str_t *ids, ngx_uint_t n);
static void ngx_chat_media_purged_done(ngx_chat_conn_t *cc, void *data,
    PGresult *res, ngx_int_t rc);


static ngx_chat_media_worker_t  *ngx_chat_media_worker;

static ngx_chat_media_main_conf_t  *ngx_chat_media_cf;


static ngx_str_t  ngx_chat_media_default_types[] = {
    ngx_string("image/jpeg"),
    ngx_string("image/png"),
    ngx_string("image/gif"),
    ngx_string("image/webp"),
    ngx_string("image/heic"),
    ngx_string("image/heif"),
    ngx_string("video/mp4"),
    ngx_string("video/quicktime"),
    ngx_string("video/webm"),
    ngx_string("video/3gpp"),
    ngx_string("audio/mpeg"),
    ngx_string("audio/mp4"),
    ngx_string("audio/aac"),
    ngx_string("audio/ogg"),
    ngx_string("audio/opus"),
    ngx_string("audio/webm"),
    ngx_string("audio/wav"),
    ngx_string("application/pdf"),
    ngx_string("application/octet-stream"),
    ngx_null_string
};


static ngx_command_t  ngx_chat_media_commands[] = {

    { ngx_string("chat_media_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_chat_media_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_media_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_media_main_conf_t, max_size),
      NULL },

    { ngx_string("chat_media_types"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_chat_media_types,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_media_url_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_media_main_conf_t, url_ttl),
      NULL },

    { ngx_string("chat_media_grace"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_media_main_conf_t, grace),
      NULL },

    { ngx_string("chat_media"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_chat_media,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_chat_media_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_chat_media_postconfiguration,      /* postconfiguration */

    ngx_chat_media_create_main_conf,       /* create main configuration */
    ngx_chat_media_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_chat_media_create_loc_conf,        /* create location configuration */
    ngx_chat_media_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_chat_media_module = {
    NGX_MODULE_V1,
    &ngx_chat_media_module_ctx,            /* module context */
    ngx_chat_media_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_chat_media_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_chat_media_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_chat_media_main_conf_t *
ngx_chat_media_conf(void)
{
    return ngx_chat_media_cf;
}


static void *
ngx_chat_media_create_main_conf(ngx_conf_t *cf)
{
    ngx_chat_media_main_conf_t  *mc;

    mc = ngx_pcalloc(cf->pool, sizeof(ngx_chat_media_main_conf_t));
    if (mc == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     mc->store = NGX_CHAT_MEDIA_NONE;
     *     mc->dir = { 0, NULL };
     *     mc->url = { 0, NULL };
     *     mc->s3 = NULL;
     *     mc->types = NULL;
     */

    mc->max_size = NGX_CONF_UNSET_SIZE;
    mc->url_ttl = NGX_CONF_UNSET;
    mc->grace = NGX_CONF_UNSET;

    return mc;
}


static char *
ngx_chat_media_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_chat_media_main_conf_t  *mc = conf;

    ngx_str_t             *t, *d, name;
    ngx_chat_main_conf_t  *cmcf;
    static const char      label[] = "ngx_chat media url key v1";

    ngx_conf_init_size_value(mc->max_size, 64 * 1024 * 1024);
    ngx_conf_init_value(mc->url_ttl, 3600);
    ngx_conf_init_value(mc->grace, 86400);

    if (mc->types == NULL) {
        mc->types = ngx_array_create(cf->pool, 20, sizeof(ngx_str_t));
        if (mc->types == NULL) {
            return NGX_CONF_ERROR;
        }

        for (d = ngx_chat_media_default_types; d->len; d++) {
            t = ngx_array_push(mc->types);
            if (t == NULL) {
                return NGX_CONF_ERROR;
            }

            *t = *d;
        }
    }

    if (mc->url_ttl < 60 || mc->url_ttl > 604800) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_url_ttl\" must be between 1m and 7d");
        return NGX_CONF_ERROR;
    }

    if (mc->grace < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_grace\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (mc->max_size < 1 || mc->max_size > (size_t) 1 << 40) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_max_size\" must be between 1 and "
                           "1t");
        return NGX_CONF_ERROR;
    }

    if (mc->used && mc->store != NGX_CHAT_MEDIA_LOCAL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media\" needs \"chat_media_store local\" "
                           "in http{}");
        return NGX_CONF_ERROR;
    }

    if (mc->store == NGX_CHAT_MEDIA_NONE) {
        return NGX_CONF_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_chat_module);

    if (!cmcf->used || cmcf->jwt_secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_media_store\" needs a \"chat_websocket\" "
                           "location and \"chat_jwt_secret_file\"");
        return NGX_CONF_ERROR;
    }

    /* the URL key: derived from the JWT secret, for this purpose only */

    if (ngx_chat_hmac_sha256(cmcf->jwt_secret.data, cmcf->jwt_secret.len,
                             label, sizeof(label) - 1, mc->key)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "HMAC() failed");
        return NGX_CONF_ERROR;
    }

    if (mc->store == NGX_CHAT_MEDIA_LOCAL) {
        if (ngx_chat_media_add_path(cf, &mc->dir, NULL) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        name.len = mc->dir.len + sizeof("/.tmp") - 1;
        name.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(name.data, "%V/.tmp%Z", &mc->dir);

        if (ngx_chat_media_add_path(cf, &name, &mc->tmp_path) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        if (mc->url.len == 0) {
            ngx_str_set(&mc->url, "/media/");
        }
    }

    ngx_chat_media_cf = mc;

    return NGX_CONF_OK;
}


/* a folder nginx creates at start, owned by the worker user */
static ngx_int_t
ngx_chat_media_add_path(ngx_conf_t *cf, ngx_str_t *name, ngx_path_t **out)
{
    ngx_path_t  *path;

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name = *name;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    if (out) {
        *out = path;
    }

    return NGX_OK;
}


static void *
ngx_chat_media_create_loc_conf(ngx_conf_t *cf)
{
    ngx_chat_media_loc_conf_t  *lc;

    lc = ngx_pcalloc(cf->pool, sizeof(ngx_chat_media_loc_conf_t));
    if (lc == NULL) {
        return NULL;
    }

    lc->enabled = NGX_CONF_UNSET;

    return lc;
}


/*
 * A chat_media location gets, once the core module merged it, its request
 * body limit raised to chat_media_max_size (each request is further held
 * to its signed size) and its body temp files in <dir>/.tmp, on the
 * store's file system, so a verified upload is renamed into place.
 */
static char *
ngx_chat_media_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_chat_media_loc_conf_t  *prev = parent;
    ngx_chat_media_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t    *clcf;
    ngx_chat_media_main_conf_t  *mc;

    ngx_conf_merge_value(conf->enabled, prev->enabled, 0);

    if (!conf->enabled) {
        return NGX_CONF_OK;
    }

    mc = ngx_http_conf_get_module_main_conf(cf, ngx_chat_media_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (mc->tmp_path) {
        clcf->client_body_temp_path = mc->tmp_path;
        clcf->client_max_body_size = (off_t) mc->max_size;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_chat_media_postconfiguration(ngx_conf_t *cf)
{
    return ngx_chat_media_http_init(cf);
}


/* chat_media_store local <dir> [url=...] | s3 key=value... */
static char *
ngx_chat_media_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_media_main_conf_t  *mc = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (mc->store != NGX_CHAT_MEDIA_NONE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 5 && ngx_strncmp(value[1].data, "local", 5) == 0) {

        if (cf->args->nelts < 3) {
            return "needs a directory after \"local\"";
        }

        mc->store = NGX_CHAT_MEDIA_LOCAL;
        mc->dir = value[2];

        if (ngx_conf_full_name(cf->cycle, &mc->dir, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        while (mc->dir.len > 1 && mc->dir.data[mc->dir.len - 1] == '/') {
            mc->dir.len--;
        }

        for (i = 3; i < cf->args->nelts; i++) {
            if (value[i].len > 4
                && ngx_strncmp(value[i].data, "url=", 4) == 0
                && value[i].data[value[i].len - 1] == '/'
                && ngx_strlchr(value[i].data, value[i].data + value[i].len,
                               '"') == NULL
                && ngx_strlchr(value[i].data, value[i].data + value[i].len,
                               '\\') == NULL)
            {
                mc->url.data = value[i].data + 4;
                mc->url.len = value[i].len - 4;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"chat_media_store local\" (url=<prefix "
                               "ending in />)", &value[i]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (value[1].len == 2 && ngx_strncmp(value[1].data, "s3", 2) == 0) {
        mc->store = NGX_CHAT_MEDIA_S3;
        return ngx_chat_media_s3_conf(cf, mc, &value[2],
                                      cf->args->nelts - 2);
    }

    return "needs \"local\" or \"s3\"";
}


/* chat_media_types type ...; the list replaces the default one */
static char *
ngx_chat_media_types(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_media_main_conf_t  *mc = conf;

    u_char      *p;
    ngx_str_t   *value, *t;
    ngx_uint_t   i;

    if (mc->types) {
        return "is duplicate";
    }

    mc->types = ngx_array_create(cf->pool, cf->args->nelts, sizeof(ngx_str_t));
    if (mc->types == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        for (p = value[i].data; p < value[i].data + value[i].len; p++) {
            *p = ngx_tolower(*p);

            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                  || *p == '/' || *p == '.' || *p == '+' || *p == '-'
                  || *p == '_'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid media type \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        if (value[i].len == 0 || value[i].len > 127
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, '/')
               == NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid media type \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        t = ngx_array_push(mc->types);
        if (t == NULL) {
            return NGX_CONF_ERROR;
        }

        *t = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_chat_media(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_media_loc_conf_t  *lc = conf;

    ngx_http_core_loc_conf_t    *clcf;
    ngx_chat_media_main_conf_t  *mc;

    if (lc->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lc->enabled = 1;

    mc = ngx_http_conf_get_module_main_conf(cf, ngx_chat_media_module);
    mc->used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_chat_media_handler;

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_chat_media_id_valid(u_char *p, size_t len)
{
    size_t  i;

    if (len != NGX_CHAT_MEDIA_ID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/* <dir>/<first two characters of id>/<id> */
u_char *
ngx_chat_media_local_path(ngx_str_t *id, u_char *buf, size_t size)
{
    ngx_chat_media_main_conf_t  *mc;

    mc = ngx_chat_media_cf;

    if (mc == NULL || mc->dir.len + id->len + 5 > size || id->len < 2) {
        return NULL;
    }

    ngx_sprintf(buf, "%V/%*s/%V%Z", &mc->dir, (size_t) 2, id->data, id);

    return buf;
}


static ngx_int_t
ngx_chat_media_init_process(ngx_cycle_t *cycle)
{
    ngx_chat_media_worker_t     *mw;
    ngx_chat_media_main_conf_t  *mc;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mc = ngx_http_cycle_get_module_main_conf(cycle, ngx_chat_media_module);

    if (mc == NULL || mc->store == NGX_CHAT_MEDIA_NONE
        || ngx_chat_worker == NULL)
    {
        ngx_chat_media_cf = NULL;
        return NGX_OK;
    }

    ngx_chat_media_cf = mc;

    mw = ngx_calloc(sizeof(ngx_chat_media_worker_t), cycle->log);
    if (mw == NULL) {
        return NGX_ERROR;
    }

    mw->sweep.handler = ngx_chat_media_sweep;
    mw->sweep.data = mw;
    mw->sweep.log = cycle->log;
    mw->sweep.cancelable = 1;

    mw->unlink.handler = ngx_chat_media_unlink_pass;
    mw->unlink.data = mw;
    mw->unlink.log = cycle->log;

    ngx_chat_media_worker = mw;

    if (ngx_worker == 0) {
        ngx_add_timer(&mw->sweep,
                      ngx_min(ngx_chat_worker->cmcf->sweep_interval, 5000));
    }

    return NGX_OK;
}


static void
ngx_chat_media_exit_process(ngx_cycle_t *cycle)
{
    ngx_chat_media_worker_t  *mw;

    mw = ngx_chat_media_worker;
    if (mw == NULL) {
        return;
    }

    if (mw->sweep.timer_set) {
        ngx_del_timer(&mw->sweep);
    }

    if (mw->unlink.posted) {
        ngx_delete_posted_event(&mw->unlink);
    }

    if (mw->ids) {
        ngx_free(mw->ids);
    }

    ngx_free(mw);
    ngx_chat_media_worker = NULL;
}


static void
ngx_chat_media_sweep(ngx_event_t *ev)
{
    ngx_chat_media_worker_t     *mw = ev->data;

    const char                  *values[3];
    ngx_chat_media_main_conf_t  *mc;
    u_char                       ret[NGX_TIME_T_LEN + 1];
    u_char                       grace[NGX_TIME_T_LEN + 1];
    u_char                       limit[NGX_INT_T_LEN + 1];

    mc = ngx_chat_media_cf;

    if (ngx_exiting || mc == NULL || ngx_chat_worker == NULL) {
        return;
    }

    if (!mw->sweeping && ngx_chat_pg_up(ngx_chat_worker->pg)) {

        *ngx_sprintf(ret, "%T", ngx_chat_worker->cmcf->retention) = '\0';
        *ngx_sprintf(grace, "%T", mc->grace) = '\0';
        *ngx_sprintf(limit, "%ui", mc->store == NGX_CHAT_MEDIA_S3
                                   ? NGX_CHAT_MEDIA_SWEEP_LIMIT_S3
                                   : NGX_CHAT_MEDIA_SWEEP_LIMIT) = '\0';

        values[0] = (const char *) ret;
        values[1] = (const char *) grace;
        values[2] = (const char *) limit;

        if (ngx_chat_store_query(NULL, NGX_CHAT_STMT_MEDIA_SWEEP, 3, values,
                                 ngx_chat_media_swept, mw)
            == NGX_OK)
        {
            mw->sweeping = 1;
        }
    }

    ngx_add_timer(ev, ngx_chat_worker->cmcf->sweep_interval);
}


static void
ngx_chat_media_swept(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_media_worker_t  *mw = data;

    int          row, rows;
    ngx_str_t   *ids;

    if (ngx_chat_media_worker != mw) {
        /* the worker is exiting: its media state is gone */
        return;
    }

    mw->sweeping = 0;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat media: sweep failed, retrying later");
        return;
    }

    rows = PQntuples(res);
    if (rows == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "chat media: sweep deletes %d blobs", rows);

    if (ngx_chat_media_cf->store == NGX_CHAT_MEDIA_LOCAL) {
        (void) ngx_chat_media_unlink_start(mw, res);
        return;
    }

    ids = ngx_alloc(rows * sizeof(ngx_str_t), ngx_cycle->log);
    if (ids == NULL) {
        return;
    }

    for (row = 0; row < rows; row++) {
        ids[row].data = (u_char *) PQgetvalue(res, row, 0);
        ids[row].len = PQgetlength(res, row, 0);
    }

    ngx_chat_media_purge(ids, rows);

    ngx_free(ids);
}


/*
 * The local store: copies the sweep's ids and unlinks them over several
 * event loop passes; no new sweep starts until they are done.
 */
static ngx_int_t
ngx_chat_media_unlink_start(ngx_chat_media_worker_t *mw, PGresult *res)
{
    u_char      *p;
    size_t       size;
    ngx_uint_t   i, n;

    n = PQntuples(res);
    size = n * sizeof(ngx_str_t);

    for (i = 0; i < n; i++) {
        size += PQgetlength(res, i, 0);
    }

    mw->ids = ngx_alloc(size, ngx_cycle->log);
    if (mw->ids == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) (mw->ids + n);

    for (i = 0; i < n; i++) {
        mw->ids[i].len = PQgetlength(res, i, 0);
        mw->ids[i].data = p;
        p = ngx_cpymem(p, PQgetvalue(res, i, 0), mw->ids[i].len);
    }

    mw->nids = n;
    mw->next = 0;
    mw->passes = 0;
    mw->sweeping = 1;

    ngx_chat_media_unlink_pass(&mw->unlink);

    return NGX_OK;
}


static void
ngx_chat_media_unlink_pass(ngx_event_t *ev)
{
    ngx_chat_media_worker_t  *mw = ev->data;

    if (ngx_chat_media_worker != mw || mw->ids == NULL) {
        return;
    }

    mw->next += ngx_chat_media_purge_local(mw->ids + mw->next,
                                           mw->nids - mw->next);
    mw->passes++;

    if (mw->next < mw->nids && !ngx_exiting) {
        /* after the I/O of the next event loop pass */
        ngx_post_event(ev, &ngx_posted_next_events);
        return;
    }

    ngx_chat_media_unlink_done(mw);
}


static void
ngx_chat_media_unlink_done(ngx_chat_media_worker_t *mw)
{
    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "chat media: sweep went through %ui of %ui blobs in %ui "
                  "passes", mw->next, mw->nids, mw->passes);

    ngx_free(mw->ids);
    mw->ids = NULL;
    mw->nids = 0;
    mw->next = 0;
    mw->sweeping = 0;
}


/*
 * Deletes blobs, then their rows.  Local: unlink (a missing file is
 * fine: a previous purge may have unlinked it and failed to drop the
 * row).  S3: one DELETE each when allowed ("delete=on"), the row of each
 * deleted (2xx or 404) object is dropped as its answer arrives; a failure
 * leaves the row for the next sweep.  With delete=off only the rows go,
 * the bucket's lifecycle rule removes the objects.
 */
void
ngx_chat_media_purge(ngx_str_t *ids, ngx_uint_t n)
{
    ngx_str_t                   *id;
    ngx_uint_t                   i;
    ngx_chat_media_main_conf_t  *mc;

    mc = ngx_chat_media_cf;

    if (mc == NULL || n == 0) {
        return;
    }

    if (mc->store == NGX_CHAT_MEDIA_S3 && ngx_chat_media_s3_deletes(mc)) {

        for (i = 0; i < n; i++) {
            if (!ngx_chat_media_id_valid(ids[i].data, ids[i].len)) {
                continue;
            }

            id = ngx_alloc(sizeof(ngx_str_t) + ids[i].len, ngx_cycle->log);
            if (id == NULL) {
                return;
            }

            id->len = ids[i].len;
            id->data = (u_char *) (id + 1);
            ngx_memcpy(id->data, ids[i].data, id->len);

            if (ngx_chat_media_s3_request(mc, "DELETE", id,
                                          ngx_chat_media_deleted, id)
                != NGX_OK)
            {
                ngx_free(id);
            }
        }

        return;
    }

    if (mc->store == NGX_CHAT_MEDIA_LOCAL) {
        /* callers other than the sweep give one id */
        for (i = 0; i < n; /* void */) {
            i += ngx_chat_media_purge_local(ids + i, n - i);
        }

        return;
    }

    /* S3 with delete=off: only the rows go */

    ngx_chat_media_purged(ids, n);
}


/*
 * Unlinks the blobs of ids[0..n) and drops the rows of those gone, but
 * at most NGX_CHAT_MEDIA_UNLINKS_PASS and for about
 * NGX_CHAT_MEDIA_UNLINK_USEC; returns how many ids it went through
 * (at least one when n > 0).
 */
static ngx_uint_t
ngx_chat_media_purge_local(ngx_str_t *ids, ngx_uint_t n)
{
    uint64_t     start;
    ngx_str_t   *gone;
    ngx_uint_t   i, ngone;
    u_char       path[NGX_MAX_PATH];

    n = ngx_min(n, NGX_CHAT_MEDIA_UNLINKS_PASS);

    gone = ngx_alloc(n * sizeof(ngx_str_t) + 1, ngx_cycle->log);
    if (gone == NULL) {
        return n;
    }

    ngone = 0;
    start = ngx_chat_media_usec();

    for (i = 0; i < n; i++) {

        if (i > 0 && ngx_chat_media_usec() - start
                     >= NGX_CHAT_MEDIA_UNLINK_USEC)
        {
            break;
        }

        if (!ngx_chat_media_id_valid(ids[i].data, ids[i].len)
            || ngx_chat_media_local_path(&ids[i], path, sizeof(path))
               == NULL)
        {
            continue;
        }

        if (ngx_delete_file(path) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_errno,
                          ngx_delete_file_n " \"%s\" failed", path);
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "chat media: deleted \"%s\"", path);

        gone[ngone++] = ids[i];
    }

    ngx_chat_media_purged(gone, ngone);

    ngx_free(gone);

    return i;
}


/* a monotonic clock in microseconds, for the unlink budget */
static uint64_t
ngx_chat_media_usec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static void
ngx_chat_media_deleted(void *data, ngx_uint_t status, off_t length)
{
    ngx_str_t  *id = data;

    if ((status >= 200 && status < 300) || status == NGX_HTTP_NOT_FOUND) {
        ngx_chat_media_purged(id, 1);

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat media: S3 DELETE of \"%V\" answered %ui, "
                      "retrying at the next sweep", id, status);
    }

    ngx_free(id);
}


/* drops the rows of deleted blobs */
static void
ngx_chat_media_purged(ngx_str_t *ids, ngx_uint_t n)
{
    size_t           room;
    ngx_uint_t       i;
    ngx_chat_pg_array_t   arr;
    const char      *values[1];

    if (n == 0 || ngx_chat_worker == NULL) {
        return;
    }

    room = 0;

    for (i = 0; i < n; i++) {
        room += ngx_chat_pg_array_room(ids[i].len);
    }

    if (ngx_chat_pg_array_init(&arr, room) != NGX_OK) {
        return;
    }

    for (i = 0; i < n; i++) {
        ngx_chat_pg_array_add(&arr, ids[i].data, ids[i].len);
    }

    ngx_chat_pg_array_close(&arr);
    values[0] = (const char *) arr.start;

    (void) ngx_chat_store_query(NULL, NGX_CHAT_STMT_MEDIA_PURGED, 1, values,
                                ngx_chat_media_purged_done, NULL);

    ngx_free(arr.start);
}


static void
ngx_chat_media_purged_done(ngx_chat_conn_t *cc, void *data, PGresult *res,
    ngx_int_t rc)
{
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat media: dropping purged rows failed, the sweep "
                      "will retry");
    }
}
