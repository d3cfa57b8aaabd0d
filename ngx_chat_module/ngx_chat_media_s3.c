
/*
 * ngx_chat_media_s3.c: the S3 media store.
 *
 *   - configuration: chat_media_store s3 endpoint=... region=... bucket=...
 *     access_key_file=... secret_key_file=... [prefix=...]
 *     [addressing=path|virtual] [checksum=on|off] [delete=on|off]
 *     [ca_file=<PEM bundle, default the system's>];
 *     the endpoint's host is resolved when the configuration is read (as
 *     proxy_pass does), the keys are read from their files then;
 *   - presigned URLs (ngx_chat_sigv4.c): PUT signs content-type,
 *     content-length and, with checksum=on, x-amz-checksum-sha256 (S3
 *     then refuses a body whose SHA-256 differs); GET signs host only;
 *   - a small asynchronous HTTP/1.1 client on nginx's event loop for the
 *     gateway's own presigned HEAD (is the upload there, with the right
 *     size?) and DELETE (the blob's life is over): a non-blocking socket
 *     from ngx_event_connect_peer(), TLS through nginx's ngx_ssl_* with
 *     SNI and certificate and host name verification against the system
 *     CA bundle, a timeout, "Connection: close", status line and
 *     Content-Length parsed, nothing else.  Never a blocking call.
 */


#include "ngx_chat.h"
#include "ngx_chat_media.h"
#include "ngx_chat_sigv4.h"


#define NGX_CHAT_MEDIA_S3_TIMEOUT    10000
#define NGX_CHAT_MEDIA_S3_BUF        4096
#define NGX_CHAT_MEDIA_S3_CA         "/etc/ssl/certs/ca-certificates.crt"


struct ngx_chat_media_s3_s {
    ngx_str_t                endpoint;      /* scheme://host[:port] */
    ngx_str_t                host;          /* Host header */
    ngx_str_t                server;        /* TLS server name */
    ngx_uint_t               tls;
    ngx_addr_t              *addrs;
    ngx_uint_t               naddrs;
    ngx_uint_t               next;          /* round robin */
    ngx_str_t                region;        /* NUL-terminated */
    ngx_str_t                bucket;
    ngx_str_t                prefix;
    ngx_str_t                access_key;    /* NUL-terminated */
    ngx_str_t                secret_key;    /* NUL-terminated */
    ngx_flag_t               checksum;
    ngx_flag_t               deletes;
    ngx_flag_t               virtual_host;
    ngx_ssl_t               *ssl;
};


typedef struct {
    ngx_pool_t                    *pool;
    ngx_peer_connection_t          pc;
    ngx_buf_t                     *out;
    ngx_buf_t                     *in;
    ngx_chat_media_s3_t           *s3;
    ngx_chat_media_s3_handler_pt   handler;
    void                          *data;
    ngx_event_t                    fin;
    ngx_uint_t                     status;
    off_t                          length;
} ngx_chat_media_s3_req_t;


static ngx_int_t ngx_chat_media_s3_read_key(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *key);
static void ngx_chat_media_s3_write(ngx_event_t *wev);
static void ngx_chat_media_s3_handshaked(ngx_connection_t *c);
static void ngx_chat_media_s3_read(ngx_event_t *rev);
static ngx_int_t ngx_chat_media_s3_parse(ngx_chat_media_s3_req_t *rq);
static void ngx_chat_media_s3_finish(ngx_chat_media_s3_req_t *rq,
    ngx_uint_t status, off_t length);
static void ngx_chat_media_s3_report(ngx_event_t *ev);
static ngx_int_t ngx_chat_media_s3_path(ngx_chat_media_s3_t *s3,
    ngx_str_t *id, u_char *buf, size_t size);


char *
ngx_chat_media_s3_conf(ngx_conf_t *cf, ngx_chat_media_main_conf_t *mc,
    ngx_str_t *args, ngx_uint_t n)
{
    u_char               *p;
    ngx_str_t             v, ak_file, sk_file, ca, full;
    ngx_url_t             u;
    ngx_uint_t            i;
    ngx_pool_cleanup_t   *cln;
    ngx_chat_media_s3_t  *s3;

    s3 = ngx_pcalloc(cf->pool, sizeof(ngx_chat_media_s3_t));
    if (s3 == NULL) {
        return NGX_CONF_ERROR;
    }

    mc->s3 = s3;
    s3->checksum = 1;
    s3->deletes = 1;

    ngx_str_null(&ak_file);
    ngx_str_null(&sk_file);
    ngx_str_set(&ca, NGX_CHAT_MEDIA_S3_CA);

    for (i = 0; i < n; i++) {

#define ngx_chat_media_opt(name)                                             \
        (args[i].len > sizeof(name) - 1                                      \
         && ngx_strncmp(args[i].data, name, sizeof(name) - 1) == 0           \
         && (v.data = args[i].data + sizeof(name) - 1,                       \
             v.len = args[i].len - (sizeof(name) - 1), 1))

        if (ngx_chat_media_opt("endpoint=")) {
            s3->endpoint = v;

        } else if (ngx_chat_media_opt("region=")) {
            s3->region = v;

        } else if (ngx_chat_media_opt("bucket=")) {
            s3->bucket = v;

        } else if (ngx_chat_media_opt("prefix=")) {
            s3->prefix = v;

        } else if (ngx_chat_media_opt("access_key_file=")) {
            ak_file = v;

        } else if (ngx_chat_media_opt("secret_key_file=")) {
            sk_file = v;

        } else if (ngx_chat_media_opt("ca_file=")) {
            ca = v;

        } else if (ngx_chat_media_opt("checksum=")) {
            s3->checksum = (v.len == 2 && ngx_strncmp(v.data, "on", 2) == 0);

        } else if (ngx_chat_media_opt("delete=")) {
            s3->deletes = (v.len == 2 && ngx_strncmp(v.data, "on", 2) == 0);

        } else if (ngx_chat_media_opt("addressing=")) {
            s3->virtual_host = (v.len == 7
                                && ngx_strncmp(v.data, "virtual", 7) == 0);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"chat_media_store s3\"", &args[i]);
            return NGX_CONF_ERROR;
        }

#undef ngx_chat_media_opt
    }

    if (s3->endpoint.len == 0 || s3->region.len == 0 || s3->bucket.len == 0
        || ak_file.len == 0 || sk_file.len == 0)
    {
        return "needs endpoint=, region=, bucket=, access_key_file= and "
               "secret_key_file=";
    }

    for (p = s3->bucket.data; p < s3->bucket.data + s3->bucket.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '.'))
        {
            return "has an invalid bucket name";
        }
    }

    for (p = s3->prefix.data; p < s3->prefix.data + s3->prefix.len; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '?'
            || *p == '#')
        {
            return "has an invalid prefix";
        }
    }

    /* NUL-terminated copies for the signer */

    p = ngx_pnalloc(cf->pool, s3->region.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    *ngx_cpymem(p, s3->region.data, s3->region.len) = '\0';
    s3->region.data = p;

    if (ngx_chat_media_s3_read_key(cf, &ak_file, &s3->access_key) != NGX_OK
        || ngx_chat_media_s3_read_key(cf, &sk_file, &s3->secret_key)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the endpoint: http[s]://host[:port] */

    ngx_memzero(&u, sizeof(ngx_url_t));

    if (s3->endpoint.len > 7
        && ngx_strncasecmp(s3->endpoint.data, (u_char *) "http://", 7) == 0)
    {
        u.url.data = s3->endpoint.data + 7;
        u.url.len = s3->endpoint.len - 7;
        u.default_port = 80;

    } else if (s3->endpoint.len > 8
               && ngx_strncasecmp(s3->endpoint.data, (u_char *) "https://",
                                  8) == 0)
    {
        u.url.data = s3->endpoint.data + 8;
        u.url.len = s3->endpoint.len - 8;
        u.default_port = 443;
        s3->tls = 1;

    } else {
        return "needs an http:// or https:// endpoint";
    }

    while (u.url.len && u.url.data[u.url.len - 1] == '/') {
        u.url.len--;
    }

    s3->endpoint.len = (u.url.data - s3->endpoint.data) + u.url.len;

    if (ngx_strlchr(u.url.data, u.url.data + u.url.len, '/')
        || ngx_strlchr(u.url.data, u.url.data + u.url.len, '"'))
    {
        return "needs an endpoint without a path";
    }

    s3->host = u.url;

    if (s3->virtual_host) {
        /* bucket.host: both the Host header and the address to resolve */

        full.len = s3->bucket.len + 1 + u.url.len;
        full.data = ngx_pnalloc(cf->pool, full.len);
        if (full.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(full.data, "%V.%V", &s3->bucket, &u.url);
        s3->host = full;
        u.url = full;

        full.len = (s3->tls ? 8 : 7) + s3->host.len;
        full.data = ngx_pnalloc(cf->pool, full.len);
        if (full.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(full.data, "%s%V", s3->tls ? "https://" : "http://",
                    &s3->host);
        s3->endpoint = full;
    }

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in S3 endpoint \"%V\"",
                           u.err ? u.err : "error", &s3->endpoint);
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        return "could not resolve the S3 endpoint";
    }

    /* IPv4 addresses first (ngx_parse_url() lists them first): only those */

    for (i = 0; i < u.naddrs; i++) {
        if (u.addrs[i].sockaddr->sa_family != AF_INET) {
            break;
        }
    }

    s3->addrs = u.addrs;
    s3->naddrs = i ? i : u.naddrs;

    /* the Host header carries the port only when it is not the default */

    if (u.no_port || u.port == u.default_port) {
        s3->host.len = u.host.len;
        s3->host.data = u.host.data;
    }

    s3->server.data = ngx_pnalloc(cf->pool, u.host.len + 1);
    if (s3->server.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s3->server.len = u.host.len;
    *ngx_cpymem(s3->server.data, u.host.data, u.host.len) = '\0';

    if (s3->tls) {
        s3->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
        if (s3->ssl == NULL) {
            return NGX_CONF_ERROR;
        }

        s3->ssl->log = cf->log;

        if (ngx_ssl_create(s3->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            ngx_ssl_cleanup_ctx(s3->ssl);
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_ssl_cleanup_ctx;
        cln->data = s3->ssl;

        if (ngx_ssl_trusted_certificate(cf, s3->ssl, &ca, 5) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* a key file: its first line, without surrounding whitespace */
static ngx_int_t
ngx_chat_media_s3_read_key(ngx_conf_t *cf, ngx_str_t *file, ngx_str_t *key)
{
    u_char           *p, *start, *end;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         path;
    ngx_file_t        f;
    u_char            buf[1024];

    path = *file;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", path.data);
        return NGX_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.fd = fd;
    f.name = path;
    f.log = cf->log;

    n = ngx_read_file(&f, buf, sizeof(buf), 0);

    ngx_close_file(fd);

    if (n < 0) {
        return NGX_ERROR;
    }

    start = buf;
    end = buf + n;

    while (start < end && (*start == ' ' || *start == '\t')) {
        start++;
    }

    for (p = start; p < end && *p != CR && *p != LF; p++) {
        /* void */
    }

    while (p > start && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    if (p == start || n == (ssize_t) sizeof(buf)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" must hold a key on its first line",
                           path.data);
        return NGX_ERROR;
    }

    key->len = p - start;
    key->data = ngx_pnalloc(cf->pool, key->len + 1);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(key->data, start, key->len) = '\0';

    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_OK;
}


ngx_uint_t
ngx_chat_media_s3_deletes(ngx_chat_media_main_conf_t *mc)
{
    return mc->s3 && mc->s3->deletes;
}


/* the object's path: /bucket/prefix+id, or /prefix+id for virtual hosts */
static ngx_int_t
ngx_chat_media_s3_path(ngx_chat_media_s3_t *s3, ngx_str_t *id, u_char *buf,
    size_t size)
{
    if (s3->bucket.len + s3->prefix.len + id->len + 3 > size) {
        return NGX_ERROR;
    }

    if (s3->virtual_host) {
        *ngx_sprintf(buf, "/%V%V", &s3->prefix, id) = '\0';

    } else {
        *ngx_sprintf(buf, "/%V/%V%V", &s3->bucket, &s3->prefix, id) = '\0';
    }

    return NGX_OK;
}


ngx_int_t
ngx_chat_media_sha256_b64(ngx_str_t *hex, u_char *out, size_t *len)
{
    ngx_str_t   src, dst;
    ngx_uint_t  i;
    ngx_int_t   hi, lo;
    u_char      raw[32];

    if (hex->len != 64) {
        return NGX_ERROR;
    }

    for (i = 0; i < 32; i++) {
        hi = ngx_hextoi(&hex->data[2 * i], 1);
        lo = ngx_hextoi(&hex->data[2 * i + 1], 1);

        if (hi < 0 || lo < 0) {
            return NGX_ERROR;
        }

        raw[i] = (u_char) (hi << 4 | lo);
    }

    src.data = raw;
    src.len = 32;
    dst.data = out;

    ngx_encode_base64(&dst, &src);
    *len = dst.len;

    return NGX_OK;
}


ngx_int_t
ngx_chat_media_s3_url(ngx_chat_media_main_conf_t *mc, const char *method,
    ngx_str_t *id, ngx_str_t *type, off_t size, ngx_str_t *sha256,
    time_t expires, u_char *buf, size_t size_buf, size_t *len)
{
    int                     rc;
    size_t                  n, b64len;
    time_t                  now, ttl;
    ngx_uint_t              nh;
    ngx_chat_sigv4_req_t    r;
    ngx_chat_media_s3_t    *s3;
    ngx_chat_sigv4_pair_t   h[3];
    char                    date[NGX_CHAT_SIGV4_DATE_LEN + 1];
    u_char                  path[256];
    u_char                  num[NGX_OFF_T_LEN];
    u_char                  b64[48];

    s3 = mc->s3;
    now = ngx_time();
    ttl = expires - now;

    if (s3 == NULL || ttl < 1 || ttl > NGX_CHAT_SIGV4_EXPIRES_MAX
        || ngx_chat_media_s3_path(s3, id, path, sizeof(path)) != NGX_OK
        || s3->endpoint.len + 1 > size_buf)
    {
        return NGX_ERROR;
    }

    ngx_chat_sigv4_amz_date(now, date);

    nh = 0;

    if (ngx_strcmp(method, "PUT") == 0) {
        h[nh].name = "content-type";
        h[nh].name_len = 12;
        h[nh].value = (const char *) type->data;
        h[nh].value_len = type->len;
        nh++;

        h[nh].name = "content-length";
        h[nh].name_len = 14;
        h[nh].value = (const char *) num;
        h[nh].value_len = ngx_sprintf(num, "%O", size) - num;
        nh++;

        if (s3->checksum
            && ngx_chat_media_sha256_b64(sha256, b64, &b64len) == NGX_OK)
        {
            h[nh].name = "x-amz-checksum-sha256";
            h[nh].name_len = 21;
            h[nh].value = (const char *) b64;
            h[nh].value_len = b64len;
            nh++;
        }
    }

    ngx_memzero(&r, sizeof(r));
    r.method = method;
    r.host = (const char *) s3->host.data;
    r.host_len = s3->host.len;
    r.path = (const char *) path;
    r.path_len = ngx_strlen(path);
    r.headers = h;
    r.nheaders = nh;
    r.region = (const char *) s3->region.data;
    r.service = "s3";
    r.access_key = (const char *) s3->access_key.data;
    r.secret_key = (const char *) s3->secret_key.data;
    r.amz_date = date;
    r.expires = (uint32_t) ttl;

    n = s3->endpoint.len;
    ngx_memcpy(buf, s3->endpoint.data, n);

    rc = ngx_chat_sigv4_presign(&r, (char *) buf + n, size_buf - n, len);

    if (rc != NGX_CHAT_SIGV4_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "chat media: SigV4 presigning failed (%d)", rc);
        return NGX_ERROR;
    }

    *len += n;

    return NGX_OK;
}


ngx_int_t
ngx_chat_media_s3_request(ngx_chat_media_main_conf_t *mc, const char *method,
    ngx_str_t *id, ngx_chat_media_s3_handler_pt handler, void *data)
{
    u_char                   *p;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_str_t                 none;
    ngx_pool_t               *pool;
    ngx_addr_t               *addr;
    ngx_connection_t         *c;
    ngx_chat_media_s3_t      *s3;
    ngx_chat_media_s3_req_t  *rq;
    u_char                    url[NGX_CHAT_MEDIA_URL_MAX];

    s3 = mc->s3;

    ngx_str_null(&none);

    if (ngx_chat_media_s3_url(mc, method, id, &none, 0, &none,
                              ngx_time() + 300, url, sizeof(url), &len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    pool = ngx_create_pool(2048, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rq = ngx_pcalloc(pool, sizeof(ngx_chat_media_s3_req_t));
    if (rq == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    rq->pool = pool;
    rq->s3 = s3;
    rq->handler = handler;
    rq->data = data;
    rq->length = -1;

    rq->fin.handler = ngx_chat_media_s3_report;
    rq->fin.data = rq;
    rq->fin.log = ngx_cycle->log;

    /* METHOD path?query HTTP/1.1, from the URL without the endpoint */

    rq->out = ngx_create_temp_buf(pool, len + s3->host.len + 64);
    rq->in = ngx_create_temp_buf(pool, NGX_CHAT_MEDIA_S3_BUF);

    if (rq->out == NULL || rq->in == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    p = rq->out->last;
    p = ngx_sprintf(p, "%s %*s HTTP/1.1" CRLF "Host: %V" CRLF
                    "Connection: close" CRLF CRLF, method,
                    len - s3->endpoint.len, url + s3->endpoint.len,
                    &s3->host);
    rq->out->last = p;

    addr = &s3->addrs[s3->next++ % s3->naddrs];

    rq->pc.sockaddr = addr->sockaddr;
    rq->pc.socklen = addr->socklen;
    rq->pc.name = &addr->name;
    rq->pc.get = ngx_event_get_peer;
    rq->pc.log = ngx_cycle->log;
    rq->pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&rq->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (rq->pc.connection) {
            ngx_close_connection(rq->pc.connection);
            rq->pc.connection = NULL;
        }

        /* answered later, as promised */
        ngx_chat_media_s3_finish(rq, 0, -1);
        return NGX_OK;
    }

    c = rq->pc.connection;
    c->data = rq;
    c->pool = pool;
    c->read->handler = ngx_chat_media_s3_read;
    c->write->handler = ngx_chat_media_s3_write;

    ngx_add_timer(c->write, NGX_CHAT_MEDIA_S3_TIMEOUT);

    if (rc == NGX_OK) {
        /* connected at once: write when the loop comes round */
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_chat_media_s3_write(ngx_event_t *wev)
{
    ssize_t                   n;
    ngx_int_t                 rc;
    ngx_connection_t         *c;
    ngx_chat_media_s3_req_t  *rq;

    c = wev->data;
    rq = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                      "chat media: S3 request timed out");
        ngx_chat_media_s3_finish(rq, 0, -1);
        return;
    }

    if (rq->s3->tls && c->ssl == NULL) {

        if (ngx_ssl_create_connection(rq->s3->ssl, c,
                                      NGX_SSL_BUFFER|NGX_SSL_CLIENT)
            != NGX_OK)
        {
            ngx_chat_media_s3_finish(rq, 0, -1);
            return;
        }

        if (SSL_set_tlsext_host_name(c->ssl->connection,
                                     (char *) rq->s3->server.data)
            == 0)
        {
            ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                          "SSL_set_tlsext_host_name() failed");
            ngx_chat_media_s3_finish(rq, 0, -1);
            return;
        }

        rc = ngx_ssl_handshake(c);

        if (rc == NGX_AGAIN) {
            c->ssl->handler = ngx_chat_media_s3_handshaked;
            return;
        }

        ngx_chat_media_s3_handshaked(c);
        return;
    }

    while (rq->out->pos < rq->out->last) {
        n = c->send(c, rq->out->pos, rq->out->last - rq->out->pos);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_chat_media_s3_finish(rq, 0, -1);
            }

            return;
        }

        if (n <= 0) {
            ngx_chat_media_s3_finish(rq, 0, -1);
            return;
        }

        rq->out->pos += n;
    }

    /* sent: now the answer */

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    ngx_add_timer(c->read, NGX_CHAT_MEDIA_S3_TIMEOUT);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_chat_media_s3_finish(rq, 0, -1);
        return;
    }

    if (c->read->ready) {
        ngx_chat_media_s3_read(c->read);
    }
}


static void
ngx_chat_media_s3_handshaked(ngx_connection_t *c)
{
    long                      v;
    ngx_chat_media_s3_req_t  *rq;

    rq = c->data;

    if (!c->ssl->handshaked) {
        ngx_chat_media_s3_finish(rq, 0, -1);
        return;
    }

    v = SSL_get_verify_result(c->ssl->connection);

    if (v != X509_V_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "chat media: S3 certificate verify error: (%l:%s)",
                      v, X509_verify_cert_error_string(v));
        ngx_chat_media_s3_finish(rq, 0, -1);
        return;
    }

    if (ngx_ssl_check_host(c, &rq->s3->server) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "chat media: S3 certificate does not match \"%V\"",
                      &rq->s3->server);
        ngx_chat_media_s3_finish(rq, 0, -1);
        return;
    }

    c->read->handler = ngx_chat_media_s3_read;
    c->write->handler = ngx_chat_media_s3_write;

    ngx_chat_media_s3_write(c->write);
}


static void
ngx_chat_media_s3_read(ngx_event_t *rev)
{
    ssize_t                   n;
    ngx_connection_t         *c;
    ngx_chat_media_s3_req_t  *rq;

    c = rev->data;
    rq = c->data;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                      "chat media: S3 answer timed out");
        ngx_chat_media_s3_finish(rq, 0, -1);
        return;
    }

    for ( ;; ) {
        if (rq->in->last == rq->in->end) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "chat media: S3 answer header too large");
            ngx_chat_media_s3_finish(rq, 0, -1);
            return;
        }

        n = c->recv(c, rq->in->last, rq->in->end - rq->in->last);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_chat_media_s3_finish(rq, 0, -1);
            }

            return;
        }

        if (n > 0) {
            rq->in->last += n;
        }

        if (ngx_chat_media_s3_parse(rq) == NGX_OK) {
            ngx_chat_media_s3_finish(rq, rq->status, rq->length);
            return;
        }

        if (n <= 0) {
            ngx_chat_media_s3_finish(rq, 0, -1);
            return;
        }
    }
}


/* NGX_OK once the header is complete: status and Content-Length */
static ngx_int_t
ngx_chat_media_s3_parse(ngx_chat_media_s3_req_t *rq)
{
    u_char  *p, *end, *line, *eol, *colon;

    p = rq->in->pos;
    end = ngx_strlcasestrn(p, rq->in->last, (u_char *) CRLF CRLF, 4 - 1);

    if (end == NULL) {
        return NGX_AGAIN;
    }

    /* HTTP/1.x NNN ... */

    if (end - p < 12 || ngx_strncmp(p, "HTTP/1.", 7) != 0) {
        rq->status = 0;
        return NGX_OK;
    }

    rq->status = ngx_atoi(p + 9, 3);
    if (rq->status == (ngx_uint_t) NGX_ERROR) {
        rq->status = 0;
    }

    for (line = p; line < end; line = eol + 2) {
        eol = ngx_strlcasestrn(line, end + 2, (u_char *) CRLF, 2 - 1);
        if (eol == NULL) {
            break;
        }

        colon = ngx_strlchr(line, eol, ':');

        if (colon && colon - line == 14
            && ngx_strncasecmp(line, (u_char *) "content-length", 14) == 0)
        {
            for (colon++; colon < eol && *colon == ' '; colon++) {
                /* void */
            }

            rq->length = ngx_atoof(colon, eol - colon);
        }
    }

    return NGX_OK;
}


/* closes the connection; the handler runs from a posted event */
static void
ngx_chat_media_s3_finish(ngx_chat_media_s3_req_t *rq, ngx_uint_t status,
    off_t length)
{
    ngx_connection_t  *c;

    rq->status = status;
    rq->length = length;

    c = rq->pc.connection;

    if (c) {
        if (c->ssl) {
            c->ssl->no_wait_shutdown = 1;
            c->ssl->no_send_shutdown = 1;
            (void) ngx_ssl_shutdown(c);
        }

        ngx_close_connection(c);
        rq->pc.connection = NULL;
    }

    ngx_post_event(&rq->fin, &ngx_posted_events);
}


static void
ngx_chat_media_s3_report(ngx_event_t *ev)
{
    ngx_chat_media_s3_req_t  *rq = ev->data;

    rq->handler(rq->data, rq->status, rq->length);

    ngx_destroy_pool(rq->pool);
}
