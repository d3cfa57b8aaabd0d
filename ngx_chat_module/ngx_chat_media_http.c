
/*
 * ngx_chat_media_http.c: the local media store, served by nginx itself in
 * a "chat_media" location.
 *
 *   PUT /media/<id>?<signed query>   an upload.  The signature, expiry and
 *       operation are checked first (403), then Content-Length must equal
 *       the signed size (411 without one, 400 otherwise).  The body is
 *       streamed to a temp file in <dir>/.tmp (the location's
 *       client_body_temp_path) while a request body filter hashes it;
 *       only when length and SHA-256 match is the file renamed into place
 *       (same file system: atomic) and the attachment marked uploaded in
 *       PostgreSQL, asynchronously, before the answer.  On a mismatch
 *       (400), a client that goes away, or a full disk, nginx's pool
 *       cleanup deletes the temp file: nothing half-written is ever at an
 *       object path, and nothing is marked uploaded that is not there.
 *
 *   GET|HEAD /media/<id>?<signed query>   a download, for the device named
 *       in the signed query.  After the signature check the file is sent
 *       the way ngx_http_static_module sends files: opened through the
 *       location's open_file_cache and passed down the filter chain as a
 *       file buffer, so sendfile, Range (r->allow_ranges), If-None-Match /
 *       If-Modified-Since (ETag, Last-Modified) and output buffering all
 *       come from nginx's own filters.  This was chosen over an internal
 *       redirect to an "internal; alias" location because it needs no
 *       second location in the configuration, keeps the request (and our
 *       context) for the log phase, and cannot be reached by a URI that
 *       skips the check.  The Content-Type is the signed one.
 *
 *   log phase: a GET whose bytes reached the end of the file (a complete
 *       200, or a 206 ending at the last byte, fully sent) counts as that
 *       device having received the object: chat_media_received() in
 *       PostgreSQL, and the blob is deleted when it was the last device.
 */


#include "ngx_chat.h"
#include "ngx_chat_media.h"
#include "ngx_chat_metrics.h"
#include "ngx_chat_http.h"
#include "ngx_chat_urlsign.h"
#include "ngx_chat_store.h"
#include "ngx_chat_pg.h"
#include "ngx_chat_jwt.h"

#include <openssl/evp.h>


typedef struct {
    ngx_http_request_t      *r;
    EVP_MD_CTX              *md;            /* PUT: hash of the body */
    off_t                    received;      /* PUT: body bytes hashed */
    off_t                    size;          /* signed size */
    off_t                    file_size;     /* GET: what was served */
    ngx_str_t                id;
    ngx_str_t                user;
    ngx_str_t                device;
    u_char                   sha256[65];    /* signed, hex */
    u_char                   path[NGX_MAX_PATH];
    unsigned                 get:1;
    unsigned                 hashing:1;
    unsigned                 created:1;     /* PUT: we put the file there */
} ngx_chat_media_ctx_t;


static ngx_int_t ngx_chat_media_get(ngx_http_request_t *r,
    ngx_chat_media_ctx_t *ctx, ngx_chat_urlsign_t *u);
static ngx_int_t ngx_chat_media_put(ngx_http_request_t *r,
    ngx_chat_media_ctx_t *ctx);
static void ngx_chat_media_put_body(ngx_http_request_t *r);
static ngx_int_t ngx_chat_media_put_store(ngx_http_request_t *r,
    ngx_chat_media_ctx_t *ctx, ngx_str_t *temp);
static void ngx_chat_media_put_done(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static ngx_int_t ngx_chat_media_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_chat_media_log(ngx_http_request_t *r);
static off_t ngx_chat_media_num(u_char **p, u_char *last, u_char stop);
static void ngx_chat_media_received(ngx_chat_conn_t *unused, void *data,
    PGresult *res, ngx_int_t rc);
static void ngx_chat_media_md_cleanup(void *data);
static ngx_int_t ngx_chat_media_http_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


ngx_int_t
ngx_chat_media_http_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_chat_media_log;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_chat_media_body_filter;

    return NGX_OK;
}


ngx_int_t
ngx_chat_media_handler(ngx_http_request_t *r)
{
    u_char                      *p, *buf;
    ngx_int_t                    rc;
    ngx_str_t                    id;
    ngx_chat_urlsign_t           u;
    ngx_chat_media_ctx_t        *ctx;
    ngx_chat_media_main_conf_t  *mc;

    mc = ngx_http_get_module_main_conf(r, ngx_chat_media_module);

    if (mc->store != NGX_CHAT_MEDIA_LOCAL || ngx_chat_worker == NULL) {
        return ngx_chat_media_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                         "no local media store");
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT))) {
        return ngx_chat_media_http_error(r, NGX_HTTP_NOT_ALLOWED,
                                         "bad_request",
                                         "only GET, HEAD and PUT");
    }

    /* the object id is the last segment of the URI */

    p = r->uri.data + r->uri.len;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    id.data = p;
    id.len = r->uri.data + r->uri.len - p;

    if (!ngx_chat_media_id_valid(id.data, id.len)) {
        return ngx_chat_media_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                         "no such object");
    }

    buf = ngx_pnalloc(r->pool, r->args.len + 1);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_chat_urlsign_verify(mc->key, 32, (const char *) id.data, id.len,
                                 (const char *) r->args.data, r->args.len,
                                 ngx_time(), &u, (char *) buf,
                                 r->args.len + 1);

    if (rc == NGX_CHAT_URLSIGN_OK
        && (u.op == NGX_CHAT_URLSIGN_PUT) != (r->method == NGX_HTTP_PUT))
    {
        rc = NGX_CHAT_URLSIGN_ESIG;
    }

    if (rc != NGX_CHAT_URLSIGN_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat media: refused %V of \"%V\": %s", &r->method_name,
                      &id,
                      rc == NGX_CHAT_URLSIGN_EEXPIRED ? "URL expired"
                      : rc == NGX_CHAT_URLSIGN_ESIG ? "bad signature"
                      : "malformed signed query");

        return ngx_chat_media_http_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                         rc == NGX_CHAT_URLSIGN_EEXPIRED
                                         ? "the URL has expired"
                                         : "invalid URL signature");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_chat_media_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->r = r;
    ctx->id = id;
    ctx->size = u.size;
    ngx_memcpy(ctx->sha256, u.sha256, 64);

    ctx->user.len = u.user_len;
    ctx->user.data = ngx_pnalloc(r->pool, u.user_len);
    ctx->device.len = u.device_len;
    ctx->device.data = ngx_pnalloc(r->pool, u.device_len);

    if (ctx->user.data == NULL || ctx->device.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->user.data, u.user, u.user_len);
    ngx_memcpy(ctx->device.data, u.device, u.device_len);

    if (ngx_chat_media_local_path(&id, ctx->path, sizeof(ctx->path)) == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_chat_media_module);

    if (r->method == NGX_HTTP_PUT) {
        return ngx_chat_media_put(r, ctx);
    }

    return ngx_chat_media_get(r, ctx, &u);
}


static ngx_int_t
ngx_chat_media_get(ngx_http_request_t *r, ngx_chat_media_ctx_t *ctx,
    ngx_chat_urlsign_t *u)
{
    u_char                    *p;
    time_t                     left;
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_str_t                  path;
    ngx_chain_t                out;
    ngx_table_elt_t           *h;
    ngx_open_file_info_t       of;
    ngx_http_core_loc_conf_t  *clcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    path.data = ctx->path;
    path.len = ngx_strlen(ctx->path);

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));

    of.read_ahead = clcf->read_ahead;
    of.directio = clcf->directio;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_open_cached_file(clcf->open_file_cache, &path, &of, r->pool)
        != NGX_OK)
    {
        if (of.err == NGX_ENOENT || of.err == NGX_ENOTDIR) {
            return ngx_chat_media_http_error(r, NGX_HTTP_NOT_FOUND,
                                             "not_found",
                                             "the object is gone");
        }

        ngx_log_error(NGX_LOG_CRIT, r->connection->log, of.err,
                      "%s \"%s\" failed", of.failed, path.data);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!of.is_file) {
        return ngx_chat_media_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                         "the object is gone");
    }

    ctx->get = 1;
    ctx->file_size = of.size;

    r->root_tested = !r->error_page;
    r->allow_ranges = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;

    p = ngx_pnalloc(r->pool, u->type_len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, u->type, u->type_len);
    r->headers_out.content_type.data = p;
    r->headers_out.content_type.len = u->type_len;
    r->headers_out.content_type_len = u->type_len;

    if (ngx_http_set_etag(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* private to the device; never sniffed or run as a document */

    left = u->expires - ngx_time();

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    h->value.data = ngx_pnalloc(r->pool, sizeof("private, max-age=") - 1
                                         + NGX_TIME_T_LEN);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "private, max-age=%T",
                               left > 0 ? left : 0)
                   - h->value.data;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Content-Type-Options");
    ngx_str_set(&h->value, "nosniff");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Security-Policy");
    ngx_str_set(&h->value, "sandbox");

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;

    b->in_file = b->file_last ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->sync = (b->last_buf || b->in_file) ? 0 : 1;

    b->file->fd = of.fd;
    b->file->name = path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_chat_media_put(ngx_http_request_t *r, ngx_chat_media_ctx_t *ctx)
{
    ngx_int_t           rc;
    ngx_pool_cleanup_t  *cln;

    if (r->headers_in.content_length_n < 0) {
        return ngx_chat_media_http_error(r, NGX_HTTP_LENGTH_REQUIRED,
                                         "bad_request",
                                         "Content-Length is required");
    }

    if (r->headers_in.content_length_n != ctx->size) {
        return ngx_chat_media_http_error(r, NGX_HTTP_BAD_REQUEST,
                                         "bad_request",
                                         "Content-Length is not the "
                                         "declared size");
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->md = EVP_MD_CTX_new();

    if (ctx->md == NULL
        || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1)
    {
        if (ctx->md) {
            EVP_MD_CTX_free(ctx->md);
            ctx->md = NULL;
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_chat_media_md_cleanup;
    cln->data = ctx;

    ctx->hashing = 1;

    /* a temp file with a name, deleted with the request unless renamed */

    r->request_body_in_file_only = 1;
    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;
    r->request_body_file_log_level = 0;

    rc = ngx_http_read_client_request_body(r, ngx_chat_media_put_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_chat_media_put_body(ngx_http_request_t *r)
{
    unsigned int            n;
    ngx_str_t               temp;
    ngx_chat_media_ctx_t   *ctx;
    u_char                  md[EVP_MAX_MD_SIZE];
    u_char                  hex[65];

    ctx = ngx_http_get_module_ctx(r, ngx_chat_media_module);

    ctx->hashing = 0;

    if (EVP_DigestFinal_ex(ctx->md, md, &n) != 1 || n != 32) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    *ngx_hex_dump(hex, md, 32) = '\0';

    if (ctx->received != ctx->size || ngx_memcmp(hex, ctx->sha256, 64) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "chat media: upload of \"%V\" refused: %O bytes, "
                      "sha256 %s; declared %O bytes, sha256 %s", &ctx->id,
                      ctx->received, hex, ctx->size, ctx->sha256);

        ngx_http_finalize_request(r,
            ngx_chat_media_http_error(r, NGX_HTTP_BAD_REQUEST,
                                      "bad_request",
                                      ctx->received != ctx->size
                                      ? "the body is not the declared size"
                                      : "the body does not match the "
                                        "declared sha256"));
        return;
    }

    ngx_str_null(&temp);

    if (r->request_body && r->request_body->temp_file) {
        temp = r->request_body->temp_file->file.name;
    }

    ngx_http_finalize_request(r, ngx_chat_media_put_store(r, ctx, &temp));
}


/* moves the verified body into place and marks it uploaded */
static ngx_int_t
ngx_chat_media_put_store(ngx_http_request_t *r, ngx_chat_media_ctx_t *ctx,
    ngx_str_t *temp)
{
    u_char           *slash;
    ngx_fd_t          fd;
    ngx_err_t         err;
    const char       *values[3];
    ngx_file_info_t   fi;
    u_char            id[NGX_CHAT_MEDIA_ID_LEN + 1];
    u_char            size[NGX_OFF_T_LEN + 1];

    if (ngx_file_info(ctx->path, &fi) == NGX_FILE_ERROR) {

        /* not there yet: it is ours to create */

        for (slash = ctx->path + ngx_strlen(ctx->path);
             slash > ctx->path && *slash != '/';
             slash--)
        {
            /* void */
        }

        for ( ;; ) {
            if (temp->len) {
                if (ngx_rename_file(temp->data, ctx->path) == 0) {
                    break;
                }

            } else {
                /* an empty body has no temp file */
                fd = ngx_open_file(ctx->path, NGX_FILE_WRONLY,
                                   NGX_FILE_CREATE_OR_OPEN,
                                   NGX_FILE_DEFAULT_ACCESS);
                if (fd != NGX_INVALID_FILE) {
                    ngx_close_file(fd);
                    break;
                }
            }

            err = ngx_errno;

            if (err == NGX_ENOENT && slash) {
                *slash = '\0';
                err = ngx_create_dir(ctx->path, 0700) == NGX_FILE_ERROR
                      ? ngx_errno : 0;
                *slash = '/';

                if (err == 0 || err == NGX_EEXIST) {
                    slash = NULL;
                    continue;
                }
            }

            ngx_log_error(NGX_LOG_CRIT, r->connection->log, err,
                          ngx_rename_file_n " \"%V\" to \"%s\" failed",
                          temp, ctx->path);

            return err == NGX_ENOSPC
                   ? ngx_chat_media_http_error(r, 507, "unavailable",
                                               "insufficient storage")
                   : ngx_chat_media_http_error(r,
                                               NGX_HTTP_INTERNAL_SERVER_ERROR,
                                               "internal_error",
                                               "could not store the file");
        }

        ctx->created = 1;
    }

    /*
     * Else the same bytes are there already (the signature covers size and
     * hash): a retried upload; the temp file goes with the request.
     */

    *ngx_cpymem(id, ctx->id.data, ctx->id.len) = '\0';
    *ngx_sprintf(size, "%O", ctx->size) = '\0';

    values[0] = (const char *) id;
    values[1] = (const char *) size;
    values[2] = (const char *) ctx->sha256;

    if (ngx_chat_store_query(NULL, NGX_CHAT_STMT_MEDIA_UPLOADED, 3, values,
                             ngx_chat_media_put_done, ctx)
        != NGX_OK)
    {
        /* never sent: nothing is marked, what we placed goes */

        if (ctx->created) {
            (void) ngx_delete_file(ctx->path);
        }

        return ngx_chat_media_http_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "unavailable",
                                         "database unavailable, retry "
                                         "later");
    }

    /* the request waits for the answer (one more reference) */

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_chat_media_put_done(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    ngx_chat_media_ctx_t  *ctx = data;

    u_char              *p;
    ngx_int_t            status;
    ngx_http_request_t  *r;
    u_char               body[256];

    r = ctx->r;

    status = (rc == NGX_OK && PQntuples(res) == 1)
             ? ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                        PQgetlength(res, 0, 0))
             : NGX_ERROR;

    if (status == 0) {
        ngx_chat_metrics_count(NGX_CHAT_C_UPLOADS, 1);
        ngx_chat_metrics_count(NGX_CHAT_C_UP_BYTES, ctx->size);

        p = ngx_sprintf(body, "{\"attachmentId\":\"%V\",\"size\":%O,"
                        "\"sha256\":\"%s\"}", &ctx->id, ctx->size,
                        ctx->sha256);

        ngx_http_finalize_request(r,
            ngx_chat_http_json(r, NGX_HTTP_OK, body, p - body));
        return;
    }

    /*
     * A definite no (statement answered 1, or failed and rolled back):
     * the file we placed goes.  Unknown outcome (timeout, lost
     * connection): the file stays, consistent with either outcome; an
     * unreferenced one is swept after chat_media_grace.
     */

    if (rc != NGX_DECLINED && ctx->created) {
        /* gone already when the grace sweep took the row and the file */
        if (ngx_delete_file(ctx->path) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          ngx_delete_file_n " \"%s\" failed", ctx->path);
        }
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_chat_media_http_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "unavailable",
                                      "database unavailable, retry later"));
        return;
    }

    if (status == 1) {
        ngx_http_finalize_request(r,
            ngx_chat_media_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such attachment waiting for "
                                      "this upload"));
        return;
    }

    ngx_http_finalize_request(r,
        ngx_chat_media_http_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal_error", "internal error"));
}


/* hashes the body of an upload on its way to the temp file */
static ngx_int_t
ngx_chat_media_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                 n;
    ngx_buf_t             *b;
    ngx_chain_t           *cl;
    ngx_chat_media_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_chat_media_module);

    if (ctx && ctx->hashing) {

        for (cl = in; cl; cl = cl->next) {
            b = cl->buf;

            if (ngx_buf_special(b)) {
                continue;
            }

            if (!ngx_buf_in_memory(b)) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "chat media: request body buffer in a file");
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            n = b->last - b->pos;

            if (n && EVP_DigestUpdate(ctx->md, b->pos, n) != 1) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ctx->received += n;
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


/* a download that reached the end of the file: the device has it */
static ngx_int_t
ngx_chat_media_log(ngx_http_request_t *r)
{
    u_char                *p, *last, *id;
    off_t                  sent, from, to, total;
    ngx_uint_t             complete;
    const char            *values[3];
    ngx_chat_media_ctx_t  *ctx;
    u_char                 user[NGX_CHAT_ID_MAX + 1];
    u_char                 device[NGX_CHAT_ID_MAX + 1];

    ctx = ngx_http_get_module_ctx(r, ngx_chat_media_module);

    if (ctx == NULL || !ctx->get || r->header_only || ngx_chat_worker == NULL)
    {
        return NGX_OK;
    }

    sent = r->connection->sent - r->header_size;
    complete = 0;

    if (sent > 0) {
        ngx_chat_metrics_count(NGX_CHAT_C_DOWN_BYTES, sent);
    }

    if (r->headers_out.status == NGX_HTTP_OK) {
        complete = (sent >= ctx->file_size);

    } else if (r->headers_out.status == NGX_HTTP_PARTIAL_CONTENT
               && r->headers_out.content_range
               && r->headers_out.content_range->value.len > 6)
    {
        /* "bytes FROM-TO/TOTAL": a single range ending at the last byte */

        p = r->headers_out.content_range->value.data + 6;
        last = p + r->headers_out.content_range->value.len - 6;

        from = ngx_chat_media_num(&p, last, '-');
        to = ngx_chat_media_num(&p, last, '/');
        total = ngx_chat_media_num(&p, last, '\0');

        complete = (from >= 0 && to >= from && total == ctx->file_size
                    && to == total - 1 && sent >= to - from + 1);
    }

    if (!complete) {
        return NGX_OK;
    }

    ngx_chat_metrics_count(NGX_CHAT_C_DOWNLOADS, 1);

    id = ngx_alloc(NGX_CHAT_MEDIA_ID_LEN + 1, r->connection->log);
    if (id == NULL) {
        return NGX_OK;
    }

    *ngx_cpymem(id, ctx->id.data, ctx->id.len) = '\0';
    *ngx_cpymem(user, ctx->user.data, ctx->user.len) = '\0';
    *ngx_cpymem(device, ctx->device.data, ctx->device.len) = '\0';

    values[0] = (const char *) id;
    values[1] = (const char *) user;
    values[2] = (const char *) device;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "chat media: \"%s\" received by %s/%s", id, user, device);

    if (ngx_chat_store_query(NULL, NGX_CHAT_STMT_MEDIA_RECEIVED, 3, values,
                             ngx_chat_media_received, id)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "chat media: receipt of \"%s\" by %s/%s not recorded "
                      "(database unavailable)", id, user, device);
        ngx_free(id);
    }

    return NGX_OK;
}


/* digits at *p up to stop (or the end); -1 if none or anything else */
static off_t
ngx_chat_media_num(u_char **p, u_char *last, u_char stop)
{
    u_char  *start;
    off_t    n;

    start = *p;

    while (*p < last && **p >= '0' && **p <= '9') {
        (*p)++;
    }

    n = (*p > start) ? ngx_atoof(start, *p - start) : -1;

    if (*p < last) {
        if (**p != stop || stop == '\0') {
            return -1;
        }

        (*p)++;

    } else if (stop != '\0') {
        return -1;
    }

    return n;
}


static void
ngx_chat_media_received(ngx_chat_conn_t *unused, void *data, PGresult *res,
    ngx_int_t rc)
{
    u_char  *id = data;

    ngx_str_t  s;

    if (rc == NGX_OK && PQntuples(res) == 1
        && PQgetvalue(res, 0, 1)[0] == 't')
    {
        s.data = id;
        s.len = NGX_CHAT_MEDIA_ID_LEN;
        ngx_chat_media_purge(&s, 1);

    } else if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "chat media: receipt of \"%s\" not recorded", id);
    }

    ngx_free(id);
}


static void
ngx_chat_media_md_cleanup(void *data)
{
    ngx_chat_media_ctx_t  *ctx = data;

    if (ctx->md) {
        EVP_MD_CTX_free(ctx->md);
        ctx->md = NULL;
    }
}


/* {"error":{"code":...,"message":...}} with status */
static ngx_int_t
ngx_chat_media_http_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    u_char  *p;
    u_char   body[512];

    if (r->request_body == NULL) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            r->keepalive = 0;
        }
    }

    p = ngx_snprintf(body, sizeof(body),
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                     code, message);

    return ngx_chat_http_json(r, status, body, p - body);
}
