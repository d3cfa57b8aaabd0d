
/*
 * ngx_chat_media.h: media attachments (docs/media.md), a second nginx
 * module, ngx_chat_media_module, in the same shared object as
 * ngx_chat_module.
 *
 * The first part is what the core calls (the hooks); the second what the
 * media files share among themselves:
 *   ngx_chat_media_module.c  directives, worker life cycle, the sweep and
 *                            the deletion of blobs;
 *   ngx_chat_media_cmd.c     the commands, the sendMessage hook, the URLs
 *                            added to events;
 *   ngx_chat_media_http.c    the local store: signed PUT and GET in nginx;
 *   ngx_chat_media_s3.c      the S3 store: presigned URLs and an
 *                            asynchronous HTTP client for HEAD and DELETE;
 *   ngx_chat_urlsign.c, ngx_chat_sigv4.c, ngx_chat_media_event.c: pure
 *                            code they use.
 */


#ifndef _NGX_CHAT_MEDIA_H_INCLUDED_
#define _NGX_CHAT_MEDIA_H_INCLUDED_


#include "ngx_chat.h"
#include "ngx_chat_json.h"


/* ---- what plugs into the core (ngx_chat_worker.c wires it) -------- */

/*
 * The commands createAttachment, getAttachmentUrl and ackAttachment, and
 * the attachments of sendMessage (ngx_chat_cmd_plugin_t).
 */
extern const ngx_chat_cmd_plugin_t  ngx_chat_media_plugin;

/* the largest attachment id list it writes for a sendMessage */
#define NGX_CHAT_MEDIA_LIST_MAX                                             \
    (NGX_CHAT_MEDIA_MAX_ATTACH * (NGX_CHAT_MEDIA_ID_LEN + 3) + 3)

/*
 * For each event delivered to cc: an event whose "attachments" array has
 * objects gets "url" and "urlExpiresAt" added to each, for this device.
 * NGX_OK: *out (ngx_alloc()ed, the caller ngx_free()s it) holds the event
 * to send instead; NGX_DECLINED: send json as it is (no attachment, media
 * not configured, or the event could not be rewritten: logged).
 */
ngx_int_t ngx_chat_media_render(ngx_chat_conn_t *cc, u_char *json,
    size_t len, u_char **out, size_t *out_len);


/* ---- shared by the media files -------------------------------------- */

#define NGX_CHAT_MEDIA_NONE        0
#define NGX_CHAT_MEDIA_LOCAL       1
#define NGX_CHAT_MEDIA_S3          2

#define NGX_CHAT_MEDIA_ID_LEN      32      /* lowercase hex */
#define NGX_CHAT_MEDIA_MAX_ATTACH  10      /* per message */
#define NGX_CHAT_MEDIA_URL_MAX     4096


typedef struct ngx_chat_media_s3_s  ngx_chat_media_s3_t;


typedef struct {
    ngx_uint_t               store;          /* NGX_CHAT_MEDIA_* */
    ngx_str_t                dir;            /* local: no trailing '/' */
    ngx_path_t              *tmp_path;       /* local: <dir>/.tmp */
    ngx_str_t                url;            /* local: URL prefix of the
                                                media location, ends in
                                                '/'; s3: unused */
    ngx_chat_media_s3_t     *s3;
    size_t                   max_size;       /* chat_media_max_size */
    ngx_array_t             *types;          /* ngx_str_t, lowercase */
    time_t                   url_ttl;        /* chat_media_url_ttl */
    time_t                   grace;          /* chat_media_grace */
    u_char                   key[32];        /* signs local URLs */
    ngx_uint_t               used;           /* a chat_media location */
} ngx_chat_media_main_conf_t;


typedef struct {
    ngx_flag_t               enabled;        /* chat_media */
} ngx_chat_media_loc_conf_t;


/* a command waiting for an answer: the client's request id */
typedef struct {
    ngx_chat_conn_t         *cc;
    ngx_str_t                id;
    unsigned                 has_id:1;
    unsigned                 id_is_number:1;
    u_char                   data[1];
} ngx_chat_media_req_t;


extern ngx_module_t  ngx_chat_media_module;


/* ngx_chat_media_module.c */
ngx_chat_media_main_conf_t *ngx_chat_media_conf(void);
/* deletes the blobs of ids (local unlink, S3 DELETE), then their rows */
void ngx_chat_media_purge(ngx_str_t *ids, ngx_uint_t n);
/* the object path of id in the local store, NUL-terminated, in buf */
u_char *ngx_chat_media_local_path(ngx_str_t *id, u_char *buf, size_t size);
ngx_uint_t ngx_chat_media_id_valid(u_char *p, size_t len);

/* ngx_chat_media_http.c */
ngx_int_t ngx_chat_media_http_init(ngx_conf_t *cf);
ngx_int_t ngx_chat_media_handler(ngx_http_request_t *r);

/* ngx_chat_media_s3.c */
char *ngx_chat_media_s3_conf(ngx_conf_t *cf, ngx_chat_media_main_conf_t *mc,
    ngx_str_t *args, ngx_uint_t n);

/*
 * A presigned URL (endpoint included) for method on object id, in buf;
 * for PUT the content type, length and, when configured, the SHA-256 are
 * signed headers.  NGX_OK or NGX_ERROR (logged).
 */
ngx_int_t ngx_chat_media_s3_url(ngx_chat_media_main_conf_t *mc,
    const char *method, ngx_str_t *id, ngx_str_t *type, off_t size,
    ngx_str_t *sha256, time_t expires, u_char *buf, size_t size_buf,
    size_t *len);

/* base64 of the 32 bytes of a hex SHA-256 (x-amz-checksum-sha256) */
ngx_int_t ngx_chat_media_sha256_b64(ngx_str_t *hex, u_char *out,
    size_t *len);

/*
 * An asynchronous request (HEAD or DELETE) on object id; handler gets the
 * HTTP status (0 on a network error or timeout) and the Content-Length
 * (-1 if none), exactly once, never from inside this call.
 */
typedef void (*ngx_chat_media_s3_handler_pt)(void *data, ngx_uint_t status,
    off_t length);

ngx_int_t ngx_chat_media_s3_request(ngx_chat_media_main_conf_t *mc,
    const char *method, ngx_str_t *id, ngx_chat_media_s3_handler_pt handler,
    void *data);

ngx_uint_t ngx_chat_media_s3_deletes(ngx_chat_media_main_conf_t *mc);


#endif /* _NGX_CHAT_MEDIA_H_INCLUDED_ */
