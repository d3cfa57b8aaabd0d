
/*
 * ngx_chat_module.c: the module skeleton.  It owns the configuration
 * directives, their defaults and checks, and the worker life cycle
 * (init_process builds the ngx_chat_worker_t, exit_process tears it down).
 * Everything else lives in the ngx_chat_<area>.c files.
 */


#include "ngx_chat.h"
#include "ngx_chat_ws.h"
#include "ngx_chat_admin.h"
#include "ngx_chat_worker.h"
#include "ngx_chat_redis.h"
#include "ngx_chat_media.h"
#include "ngx_chat_jwt.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_status.h"


/*
 * Bounds of the events sql/900_functions.sql builds (json_build_object
 * writes '"key" : value' and ', ' between them), for the check that the
 * largest one fits chat_output_limit:
 *   - keys, separators, ids and numbers of a newMessage or a chatUpdate
 *     with an empty text, name and lists: at most 392 and 204 bytes;
 *   - an attachment object (chat_media_json(): keys, 32-hex id, 64-hex
 *     sha256, size, the content type (<= 127 bytes) escaped): < 960;
 *   - what ngx_chat_media_render() adds to each: "url" (at most
 *     NGX_CHAT_MEDIA_URL_MAX bytes) and "urlExpiresAt": 48 bytes more.
 */
#define NGX_CHAT_EVENT_FIXED     512
#define NGX_CHAT_EVENT_ATTACH    1024
#define NGX_CHAT_EVENT_URL       (NGX_CHAT_MEDIA_URL_MAX + 64)


static void *ngx_chat_create_main_conf(ngx_conf_t *cf);
static char *ngx_chat_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_chat_postconfiguration(ngx_conf_t *cf);
static void *ngx_chat_create_loc_conf(ngx_conf_t *cf);
static char *ngx_chat_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_chat_websocket(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_admin_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_postgres(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_chat_send_queue_time(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_command_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_user_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_chat_rate_args(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t n, ngx_chat_limit_conf_t *lc);
static ngx_int_t ngx_chat_init_process(ngx_cycle_t *cycle);
static void ngx_chat_exit_process(ngx_cycle_t *cycle);


/* like ngx_conf_num_bounds_t, but nginx then names the directive */
typedef struct {
    ngx_conf_post_handler_pt  post_handler;
    ngx_int_t                 low;
    ngx_int_t                 high;
    char                     *message;
} ngx_chat_bounds_t;


static char *ngx_chat_check_bounds(ngx_conf_t *cf, void *post, void *data);


static ngx_chat_bounds_t  ngx_chat_participants_bounds = {
    ngx_chat_check_bounds, 2, 10000, "must be between 2 and 10000"
};

static ngx_chat_bounds_t  ngx_chat_devices_bounds = {
    ngx_chat_check_bounds, 1, 100, "must be between 1 and 100"
};

static ngx_chat_bounds_t  ngx_chat_drain_bounds = {
    ngx_chat_check_bounds, 1, 10000, "must be between 1 and 10000"
};

static ngx_chat_bounds_t  ngx_chat_send_batch_bounds = {
    ngx_chat_check_bounds, 1, 5000, "must be between 1 and 5000"
};

static ngx_chat_bounds_t  ngx_chat_send_batches_bounds = {
    ngx_chat_check_bounds, 1, 64, "must be between 1 and 64"
};

static ngx_chat_bounds_t  ngx_chat_poll_batch_bounds = {
    ngx_chat_check_bounds, 1, 100000, "must be between 1 and 100000"
};

static ngx_chat_bounds_t  ngx_chat_fragments_bounds = {
    ngx_chat_check_bounds, 1, 1048576, "must be between 1 and 1048576"
};


static ngx_chat_bounds_t  ngx_chat_inflight_bounds = {
    ngx_chat_check_bounds, 1, 100000, "must be between 1 and 100000"
};


/* a rate not configured yet (ngx_chat_limit_conf_t.rate) */
#define NGX_CHAT_RATE_UNSET  0xffffffff


/* chat_user_rate: the commands, by NGX_CHAT_RATE_* */
static ngx_str_t  ngx_chat_user_rate_names[NGX_CHAT_RATE_N] = {
    ngx_string("createChat"),
    ngx_string("modifyChatParticipants"),
    ngx_string("createAttachment")
};

/* and their defaults: requests per minute, burst */
static ngx_chat_limit_conf_t  ngx_chat_user_rate_defaults[NGX_CHAT_RATE_N] = {
    { 10, 20 },
    { 60, 60 },
    { 60, 60 }
};


static ngx_command_t  ngx_chat_commands[] = {

    { ngx_string("chat_websocket"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_chat_websocket,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_admin_token"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_chat_admin_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_chat_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_chat_status_metrics_handler },

    { ngx_string("chat_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_chat_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_chat_status_health_handler },

    { ngx_string("chat_admin_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_chat_loc_conf_t, token_ttl),
      NULL },

    { ngx_string("chat_jwt_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_chat_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_chat_postgres,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_chat_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_db_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, db_timeout),
      NULL },

    { ngx_string("chat_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, ping_interval),
      NULL },

    { ngx_string("chat_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, send_timeout),
      NULL },

    { ngx_string("chat_max_frame_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, max_frame_size),
      NULL },

    { ngx_string("chat_max_fragments"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, max_fragments),
      &ngx_chat_fragments_bounds },

    { ngx_string("chat_output_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, output_limit),
      NULL },

    { ngx_string("chat_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, max_message_size),
      NULL },

    { ngx_string("chat_max_participants"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, max_participants),
      &ngx_chat_participants_bounds },

    { ngx_string("chat_order_hold_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, order_hold_limit),
      NULL },

    { ngx_string("chat_max_devices"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, max_devices),
      &ngx_chat_devices_bounds },

    { ngx_string("chat_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, retention),
      NULL },

    { ngx_string("chat_device_idle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, device_idle),
      NULL },

    { ngx_string("chat_sweep_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, sweep_interval),
      NULL },

    { ngx_string("chat_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, poll_interval),
      NULL },

    { ngx_string("chat_poll_batch"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, poll_batch),
      &ngx_chat_poll_batch_bounds },

    { ngx_string("chat_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("chat_drain_page"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, drain_page),
      &ngx_chat_drain_bounds },

    { ngx_string("chat_drain_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, drain_window),
      &ngx_chat_drain_bounds },

    { ngx_string("chat_send_batch_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, send_batch_size),
      &ngx_chat_send_batch_bounds },

    { ngx_string("chat_send_batches"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, send_batches),
      &ngx_chat_send_batches_bounds },

    { ngx_string("chat_command_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_chat_command_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_user_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_chat_user_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("chat_send_queue_time"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_chat_send_queue_time,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, send_queue_time),
      NULL },

    { ngx_string("chat_max_inflight"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, max_inflight),
      &ngx_chat_inflight_bounds },

    { ngx_string("chat_shutdown_spread"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_chat_main_conf_t, shutdown_spread),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_chat_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_chat_postconfiguration,            /* postconfiguration */

    ngx_chat_create_main_conf,             /* create main configuration */
    ngx_chat_init_main_conf,               /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_chat_create_loc_conf,              /* create location configuration */
    ngx_chat_merge_loc_conf                /* merge location configuration */
};


ngx_module_t  ngx_chat_module = {
    NGX_MODULE_V1,
    &ngx_chat_module_ctx,                  /* module context */
    ngx_chat_commands,                     /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_chat_init_process,                 /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_chat_exit_process,                 /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_chat_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_chat_bounds_t  *b = post;
    ngx_int_t          *np = data;

    if (*np < b->low || *np > b->high) {
        return b->message;
    }

    return NGX_CONF_OK;
}


static void *
ngx_chat_create_main_conf(ngx_conf_t *cf)
{
    ngx_uint_t             i;
    ngx_chat_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_chat_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *     cmcf->jwt_secret = { 0, NULL };
     *     cmcf->pg_conninfo = { 0, NULL };
     *     cmcf->redis_addr = { 0, NULL };
     *     cmcf->redis_prefix = { 0, NULL };
     */

    cmcf->pg_pool_size = NGX_CONF_UNSET_UINT;
    cmcf->pg_max_queue = NGX_CONF_UNSET_UINT;
    cmcf->db_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->ping_interval = NGX_CONF_UNSET_MSEC;
    cmcf->send_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->max_frame_size = NGX_CONF_UNSET_SIZE;
    cmcf->max_fragments = NGX_CONF_UNSET_UINT;
    cmcf->output_limit = NGX_CONF_UNSET_SIZE;
    cmcf->max_message_size = NGX_CONF_UNSET_SIZE;
    cmcf->max_participants = NGX_CONF_UNSET_UINT;
    cmcf->order_hold_limit = NGX_CONF_UNSET_SIZE;
    cmcf->max_devices = NGX_CONF_UNSET_UINT;
    cmcf->retention = NGX_CONF_UNSET;
    cmcf->device_idle = NGX_CONF_UNSET;
    cmcf->sweep_interval = NGX_CONF_UNSET_MSEC;
    cmcf->poll_interval = NGX_CONF_UNSET_MSEC;
    cmcf->poll_batch = NGX_CONF_UNSET_UINT;
    cmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    cmcf->drain_page = NGX_CONF_UNSET_UINT;
    cmcf->drain_window = NGX_CONF_UNSET_UINT;
    cmcf->shutdown_spread = NGX_CONF_UNSET_MSEC;
    cmcf->send_batch_size = NGX_CONF_UNSET_UINT;
    cmcf->send_batches = NGX_CONF_UNSET_UINT;
    cmcf->command_rate.rate = NGX_CHAT_RATE_UNSET;
    cmcf->max_inflight = NGX_CONF_UNSET_UINT;
    cmcf->send_queue_time = NGX_CONF_UNSET_MSEC;

    for (i = 0; i < NGX_CHAT_RATE_N; i++) {
        cmcf->user_rate[i].rate = NGX_CHAT_RATE_UNSET;
    }

    return cmcf;
}


static char *
ngx_chat_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    ngx_uint_t  i;

    ngx_conf_init_uint_value(cmcf->pg_pool_size, 4);
    ngx_conf_init_uint_value(cmcf->pg_max_queue, 4096);
    ngx_conf_init_msec_value(cmcf->db_timeout, 2000);
    ngx_conf_init_msec_value(cmcf->ping_interval, 30000);
    ngx_conf_init_msec_value(cmcf->send_timeout, 10000);
    ngx_conf_init_size_value(cmcf->max_frame_size, 128 * 1024);
    ngx_conf_init_uint_value(cmcf->max_fragments, 128);
    ngx_conf_init_size_value(cmcf->output_limit, 256 * 1024);
    ngx_conf_init_size_value(cmcf->max_message_size, 64 * 1024);
    ngx_conf_init_uint_value(cmcf->max_participants, 100);
    ngx_conf_init_size_value(cmcf->order_hold_limit, 16 * 1024 * 1024);
    ngx_conf_init_uint_value(cmcf->max_devices, 3);
    ngx_conf_init_value(cmcf->retention, 30 * 86400);
    ngx_conf_init_value(cmcf->device_idle, 30 * 86400);
    ngx_conf_init_msec_value(cmcf->sweep_interval, 60000);
    ngx_conf_init_msec_value(cmcf->poll_interval, 1000);
    ngx_conf_init_uint_value(cmcf->poll_batch, 1000);
    ngx_conf_init_msec_value(cmcf->redis_timeout, 10000);
    ngx_conf_init_uint_value(cmcf->drain_page, 100);
    ngx_conf_init_uint_value(cmcf->drain_window, 200);
    ngx_conf_init_msec_value(cmcf->shutdown_spread, 2000);
    ngx_conf_init_uint_value(cmcf->send_batch_size, 500);
    ngx_conf_init_uint_value(cmcf->send_batches, 1);
    ngx_conf_init_uint_value(cmcf->max_inflight, 128);

    if (cmcf->command_rate.rate == NGX_CHAT_RATE_UNSET) {
        /* 200r/s burst=2000 */
        cmcf->command_rate.rate = 200 * 60;
        cmcf->command_rate.burst = 2000;
    }

    for (i = 0; i < NGX_CHAT_RATE_N; i++) {
        if (cmcf->user_rate[i].rate == NGX_CHAT_RATE_UNSET) {
            cmcf->user_rate[i] = ngx_chat_user_rate_defaults[i];
        }
    }

    if (cmcf->max_frame_size < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_max_frame_size\" must be at least 1k");
        return NGX_CONF_ERROR;
    }

    /* a message being reassembled counts its bytes in 32 bits */

    if (cmcf->max_frame_size > 1024 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_max_frame_size\" must be at most 1g");
        return NGX_CONF_ERROR;
    }

    if (cmcf->output_limit < 4096) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_output_limit\" must be at least 4k");
        return NGX_CONF_ERROR;
    }

    if (cmcf->max_message_size + 4096 > cmcf->max_frame_size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_max_message_size\" must be at least 4k "
                           "below \"chat_max_frame_size\"");
        return NGX_CONF_ERROR;
    }

    /* 0: live events are never held for order */

    if (cmcf->order_hold_limit > 1024 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_order_hold_limit\" must be at most 1g");
        return NGX_CONF_ERROR;
    }

    if (cmcf->retention < 1 || cmcf->device_idle < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_retention\" and \"chat_device_idle\" "
                           "must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (cmcf->db_timeout == 0 || cmcf->ping_interval == 0
        || cmcf->poll_interval == 0 || cmcf->sweep_interval == 0
        || cmcf->send_timeout == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_db_timeout\", \"chat_ping_interval\", "
                           "\"chat_poll_interval\", \"chat_sweep_interval\" "
                           "and \"chat_send_timeout\" must not be zero");
        return NGX_CONF_ERROR;
    }

    /*
     * Redis is PINGed every 3 s: below two periods a healthy idle link
     * could look silent; above an hour a hung Redis would stall live
     * delivery (and keep its users from being polled) for that long.
     */

    if (cmcf->redis_timeout < NGX_CHAT_REDIS_MIN_TIMEOUT
        || cmcf->redis_timeout > 3600000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_redis_timeout\" must be between 6s "
                           "and 1h");
        return NGX_CONF_ERROR;
    }

    /* sends are refused at once beyond this much queued work (0: off) */

    if (cmcf->send_queue_time == NGX_CONF_UNSET_MSEC) {
        cmcf->send_queue_time = ngx_min(150, cmcf->db_timeout / 2);

    } else if (cmcf->send_queue_time >= cmcf->db_timeout) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_send_queue_time\" must be below "
                           "\"chat_db_timeout\"");
        return NGX_CONF_ERROR;
    }

    if (cmcf->used) {
        if (cmcf->jwt_secret.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"chat_websocket\" needs "
                               "\"chat_jwt_secret_file\" in http{}");
            return NGX_CONF_ERROR;
        }

        if (cmcf->pg_conninfo.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"chat_websocket\" needs \"chat_postgres\" "
                               "in http{}");
            return NGX_CONF_ERROR;
        }

        if (cmcf->redis_addr.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"chat_websocket\" needs \"chat_redis\" "
                               "in http{}");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Every event must fit chat_output_limit: one that does not is never
 * delivered, and the device is dropped at it on each reconnect until
 * retention removes it.  The largest ones are a chatUpdate of a chat of
 * chat_max_participants participants with the longest ids and name, and a
 * newMessage with the longest text and 10 attachments (when media is
 * configured; else a message has none).  The text in the event is the
 * text PostgreSQL escapes: at most 6 bytes for one byte of it ("\u0001"),
 * and never longer than the client's own escaped text, which came in one
 * message of at most chat_max_frame_size.  Runs after every module's
 * init_main_conf, so the media configuration is known.
 */
static ngx_int_t
ngx_chat_postconfiguration(ngx_conf_t *cf)
{
    size_t                       limit, text, update, message;
    ngx_chat_main_conf_t        *cmcf;
    ngx_chat_media_main_conf_t  *mc;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_chat_module);
    mc = ngx_http_conf_get_module_main_conf(cf, ngx_chat_media_module);

    if (ngx_chat_status_conf(cf, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!cmcf->used) {
        return NGX_OK;
    }

    limit = cmcf->output_limit - NGX_CHAT_WS_HEADER_MAX;

    update = NGX_CHAT_EVENT_FIXED + 6 * NGX_CHAT_JSON_NAME_MAX
             + cmcf->max_participants * (NGX_CHAT_ID_MAX + 3);

    if (update > limit) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_output_limit\" %uz is too small for "
                           "\"chat_max_participants\" %ui: a chatUpdate "
                           "event can take %uz bytes (67 per participant)",
                           cmcf->output_limit, cmcf->max_participants,
                           update + NGX_CHAT_WS_HEADER_MAX);
        return NGX_ERROR;
    }

    text = ngx_min(6 * cmcf->max_message_size, cmcf->max_frame_size);

    message = NGX_CHAT_EVENT_FIXED + text;

    if (mc->store != NGX_CHAT_MEDIA_NONE) {
        message += NGX_CHAT_MEDIA_MAX_ATTACH
                   * (NGX_CHAT_EVENT_ATTACH + NGX_CHAT_EVENT_URL);
    }

    if (message > limit) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_output_limit\" %uz is too small for "
                           "\"chat_max_message_size\" %uz and "
                           "\"chat_max_frame_size\" %uz%s: a newMessage "
                           "event can take %uz bytes",
                           cmcf->output_limit, cmcf->max_message_size,
                           cmcf->max_frame_size,
                           mc->store != NGX_CHAT_MEDIA_NONE
                           ? " with 10 attachments" : "",
                           message + NGX_CHAT_WS_HEADER_MAX);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_chat_create_loc_conf(ngx_conf_t *cf)
{
    ngx_chat_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_chat_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    clcf->websocket = NGX_CONF_UNSET;
    clcf->admin_token = NGX_CONF_UNSET;
    clcf->token_ttl = NGX_CONF_UNSET;

    return clcf;
}


static char *
ngx_chat_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_chat_loc_conf_t  *prev = parent;
    ngx_chat_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->websocket, prev->websocket, 0);
    ngx_conf_merge_value(conf->admin_token, prev->admin_token,
                         NGX_CHAT_ADMIN_OFF);
    ngx_conf_merge_sec_value(conf->token_ttl, prev->token_ttl, 86400);

    if (conf->token_ttl < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_admin_token_ttl\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_chat_websocket(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_loc_conf_t  *clcf = conf;

    ngx_http_core_loc_conf_t  *hclcf;
    ngx_chat_main_conf_t      *cmcf;

    if (clcf->websocket != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    clcf->websocket = 1;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_chat_module);
    cmcf->used = 1;

    hclcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    hclcf->handler = ngx_chat_ws_handler;

    return NGX_CONF_OK;
}


static char *
ngx_chat_admin_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_loc_conf_t  *clcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *hclcf;

    if (clcf->admin_token != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    clcf->admin_token = NGX_CHAT_ADMIN_LOOPBACK;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "any") == 0) {
            clcf->admin_token = NGX_CHAT_ADMIN_ANY;

        } else if (ngx_strcmp(value[1].data, "loopback") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"chat_admin_token\" (loopback or any)",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "\"chat_admin_token\" mints a token for any user "
                       "to whoever reaches it: for development and "
                       "operators' tooling only, never on a server a "
                       "proxy forwards to");

    hclcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    hclcf->handler = ngx_chat_admin_token_handler;

    return NGX_CONF_OK;
}


/* chat_metrics; chat_health;  (cmd->post is the location's handler) */
static char *
ngx_chat_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t      *cmcf;
    ngx_http_core_loc_conf_t  *hclcf;

    hclcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (hclcf->handler) {
        return "is duplicate, or the location has another handler";
    }

    hclcf->handler = (ngx_http_handler_pt) cmd->post;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_chat_module);
    cmcf->status = 1;

    return NGX_CONF_OK;
}


/*
 * The secret is read at configuration time (in the master, before any
 * worker exists), so a plain blocking read is fine here.
 */
static char *
ngx_chat_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value, path;
    ngx_file_info_t   fi;
    ngx_file_t        file;

    if (cmcf->jwt_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"chat_jwt_secret_file\": "
                           ngx_open_file_n " \"%s\" failed", path.data);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"chat_jwt_secret_file\": "
                           ngx_fd_info_n " \"%s\" failed", path.data);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size > 4096) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_secret_file\": \"%s\" is larger "
                           "than 4096 bytes", path.data);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    cmcf->jwt_secret.data = ngx_pnalloc(cf->pool, size + 1);
    if (cmcf->jwt_secret.data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = path;
    file.log = cf->log;

    n = ngx_read_file(&file, cmcf->jwt_secret.data, size, 0);

    ngx_close_file(fd);

    if (n != (ssize_t) size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_secret_file\": could not read \"%s\"",
                           path.data);
        return NGX_CONF_ERROR;
    }

    /* one trailing "\n" or "\r\n" is not part of the secret */

    if (size && cmcf->jwt_secret.data[size - 1] == LF) {
        size--;

        if (size && cmcf->jwt_secret.data[size - 1] == CR) {
            size--;
        }
    }

    if (size < 32) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_jwt_secret_file\": the secret in \"%s\" "
                           "must be at least 32 bytes", path.data);
        return NGX_CONF_ERROR;
    }

    cmcf->jwt_secret.len = size;

    return NGX_CONF_OK;
}


/* chat_postgres "conninfo" [pool=N] [queue=N] */
static char *
ngx_chat_postgres(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i;
    u_char       err[NGX_MAX_CONF_ERRSTR];

    if (cmcf->pg_conninfo.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty conninfo";
    }

    cmcf->pg_conninfo.len = value[1].len;
    cmcf->pg_conninfo.data = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (cmcf->pg_conninfo.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(cmcf->pg_conninfo.data, value[1].data, value[1].len + 1);

    /* workers never resolve names (it would block them): numeric only */

    if (ngx_chat_pg_check_conninfo((char *) cmcf->pg_conninfo.data, err,
                                   sizeof(err))
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"chat_postgres\" %s",
                           err);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "pool=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n < 1 || n > 256) {
                goto invalid;
            }

            cmcf->pg_pool_size = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n < 1 || n > 1000000) {
                goto invalid;
            }

            cmcf->pg_max_queue = n;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"chat_postgres\" "
                       "(pool=1..256, queue=1..1000000)", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * chat_redis ip:port|[ipv6]:port|unix:/path [prefix=str]
 * chat_redis ip:port [ip:port...] cluster=on [prefix=str]
 *
 * With cluster=on the addresses are seeds of a Redis Cluster: the slot map
 * is read from them (in the workers, asynchronously; nothing connects at
 * configuration time) and channels use sharded pub/sub.
 */
static char *
ngx_chat_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    ngx_str_t   *value, *seed;
    ngx_uint_t   i;

    if (cmcf->redis_addr.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cmcf->redis_seeds = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (cmcf->redis_seeds == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&cmcf->redis_prefix, "chat:");
    cmcf->redis_cluster = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            if (value[i].len < 8 || value[i].len > 64) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\" in "
                                   "\"chat_redis\" (prefix=..., at most 57 "
                                   "bytes)", &value[i]);
                return NGX_CONF_ERROR;
            }

            cmcf->redis_prefix.data = value[i].data + 7;
            cmcf->redis_prefix.len = value[i].len - 7;
            continue;
        }

        if (value[i].len == 10
            && ngx_strncmp(value[i].data, "cluster=on", 10) == 0)
        {
            cmcf->redis_cluster = 1;
            continue;
        }

        if (value[i].len == 11
            && ngx_strncmp(value[i].data, "cluster=off", 11) == 0)
        {
            cmcf->redis_cluster = 0;
            continue;
        }

        /* workers never resolve names (it would block them): numeric only */

        if (ngx_chat_redis_check_addr(&value[i]) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"chat_redis\" needs a numeric \"ip:port\", "
                               "\"[ipv6]:port\" or \"unix:/path\", not "
                               "\"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        seed = ngx_array_push(cmcf->redis_seeds);
        if (seed == NULL) {
            return NGX_CONF_ERROR;
        }

        *seed = value[i];
    }

    if (cmcf->redis_seeds->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_redis\" needs an address");
        return NGX_CONF_ERROR;
    }

    if (cmcf->redis_seeds->nelts > 1 && !cmcf->redis_cluster) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_redis\" takes several addresses only "
                           "with \"cluster=on\"");
        return NGX_CONF_ERROR;
    }

    if (cmcf->redis_seeds->nelts > 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_redis\" takes at most 16 seed addresses");
        return NGX_CONF_ERROR;
    }

    /* a hash tag in the prefix would put every channel in one slot */

    if (cmcf->redis_cluster
        && ngx_strlchr(cmcf->redis_prefix.data,
                       cmcf->redis_prefix.data + cmcf->redis_prefix.len, '{')
           != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_redis\" with \"cluster=on\" takes no "
                           "'{' in prefix= (a hash tag would put every "
                           "channel on one shard)");
        return NGX_CONF_ERROR;
    }

    seed = cmcf->redis_seeds->elts;
    cmcf->redis_addr = seed[0];

    return NGX_CONF_OK;
}


/* chat_command_rate <n>r/s|<n>r/m|off [burst=N] */
static char *
ngx_chat_command_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    if (cmcf->command_rate.rate != NGX_CHAT_RATE_UNSET) {
        return "is duplicate";
    }

    return ngx_chat_rate_args(cf, cf->args->elts, 1, &cmcf->command_rate);
}


/* chat_user_rate createChat|modifyChatParticipants|createAttachment ... */
static char *
ngx_chat_user_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 0; i < NGX_CHAT_RATE_N; i++) {
        if (value[1].len == ngx_chat_user_rate_names[i].len
            && ngx_strncmp(value[1].data, ngx_chat_user_rate_names[i].data,
                           value[1].len)
               == 0)
        {
            break;
        }
    }

    if (i == NGX_CHAT_RATE_N) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_user_rate\" limits \"createChat\", "
                           "\"modifyChatParticipants\" or "
                           "\"createAttachment\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cmcf->user_rate[i].rate != NGX_CHAT_RATE_UNSET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate \"chat_user_rate %V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return ngx_chat_rate_args(cf, value, 2, &cmcf->user_rate[i]);
}


/* value[n] is the rate or "off", value[n + 1] (if any) "burst=N" */
static char *
ngx_chat_rate_args(ngx_conf_t *cf, ngx_str_t *value, ngx_uint_t n,
    ngx_chat_limit_conf_t *lc)
{
    ngx_int_t  burst;
    uint32_t   rate;

    if (value[n].len == 3 && ngx_strncmp(value[n].data, "off", 3) == 0) {
        if (cf->args->nelts > n + 1) {
            goto invalid;
        }

        lc->rate = 0;
        lc->burst = 1;
        return NGX_CONF_OK;
    }

    if (ngx_chat_limit_parse_rate(value[n].data, value[n].len, &rate) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\" in \"%V\" (<n>r/s or "
                           "<n>r/m, 1r/m to 1000000r/s, or \"off\")",
                           &value[n], &value[0]);
        return NGX_CONF_ERROR;
    }

    /* the default burst: one second's worth, within 1..BURST_MAX */
    burst = ngx_min(ngx_max(rate / 60, 1), NGX_CHAT_LIMIT_BURST_MAX);

    if (cf->args->nelts > n + 1) {
        if (value[n + 1].len < 7
            || ngx_strncmp(value[n + 1].data, "burst=", 6) != 0)
        {
            goto invalid;
        }

        burst = ngx_atoi(value[n + 1].data + 6, value[n + 1].len - 6);
        if (burst < 1) {
            goto invalid;
        }
    }

    if (burst > NGX_CHAT_LIMIT_BURST_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the burst must be between 1 and %d",
                           &value[0], NGX_CHAT_LIMIT_BURST_MAX);
        return NGX_CONF_ERROR;
    }

    lc->rate = rate;
    lc->burst = (uint32_t) burst;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" (a rate "
                       "<n>r/s or <n>r/m up to 1000000r/s, or \"off\"; "
                       "then \"burst=1..%d\")",
                       &value[cf->args->nelts - 1], &value[0],
                       NGX_CHAT_LIMIT_BURST_MAX);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_chat_init_process(ngx_cycle_t *cycle)
{
    ngx_chat_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_chat_module);
    if (cmcf == NULL || !cmcf->used) {
        return NGX_OK;
    }

    return ngx_chat_worker_init(cycle, cmcf);
}


static void
ngx_chat_exit_process(ngx_cycle_t *cycle)
{
    ngx_chat_worker_exit(cycle);
}


/* chat_send_queue_time <time>|off: the send queue's budget */
static char *
ngx_chat_send_queue_time(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_chat_main_conf_t  *cmcf = conf;

    ngx_int_t   ms;
    ngx_str_t  *value;

    if (cmcf->send_queue_time != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        cmcf->send_queue_time = 0;
        return NGX_CONF_OK;
    }

    ms = ngx_parse_time(&value[1], 0);

    if (ms == NGX_ERROR || ms < 1 || ms > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"chat_send_queue_time\" must be \"off\" "
                           "or a time from 1ms to 1h");
        return NGX_CONF_ERROR;
    }

    cmcf->send_queue_time = (ngx_msec_t) ms;

    return NGX_CONF_OK;
}
