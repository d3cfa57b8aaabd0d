
/*
 * chat_bench_tls.c: the TLS client of chat-bench (--tls, wss://), on the
 * worker's epoll loop.
 *
 * A worker has one SSL_CTX and, only with --tls, an array of SSL pointers
 * beside its connections (the plain path keeps its connection struct and
 * its cost).  After the TCP connect a connection runs a non-blocking
 * client handshake (SSL_connect until it stops asking for events), then
 * the WebSocket upgrade and everything after it go through SSL_read and
 * SSL_write.  The bench certificate is self-signed: no verification, no
 * SNI.  SSL_MODE_RELEASE_BUFFERS keeps an idle connection's generator
 * side small; partial writes and a moving write buffer let the caller
 * keep unwritten bytes in its own buffer as on the plain path.
 */


#include <errno.h>
#include <stdlib.h>
#include <openssl/err.h>

#include "chat_bench.h"


static ssize_t ngx_chat_bench_tls_error(SSL *ssl, int rc);


int
ngx_chat_bench_tls_init(ngx_chat_bench_w_t *w)
{
    if (!w->o->tls) {
        return 0;
    }

    w->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (w->ssl_ctx == NULL) {
        return -1;
    }

    SSL_CTX_set_verify(w->ssl_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(w->ssl_ctx, SSL_SESS_CACHE_OFF);
    /* a server close without close_notify reads as end of file */
    SSL_CTX_set_options(w->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(w->ssl_ctx, SSL_MODE_RELEASE_BUFFERS
                                 | SSL_MODE_ENABLE_PARTIAL_WRITE
                                 | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    w->ssl = calloc(w->nconns + 1, sizeof(SSL *));
    if (w->ssl == NULL) {
        return -1;
    }

    return 0;
}


int
ngx_chat_bench_tls_start(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    SSL  *ssl;

    if (w->ssl == NULL) {
        return 0;
    }

    ssl = SSL_new(w->ssl_ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return -1;
    }

    if (SSL_set_fd(ssl, c->fd) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return -1;
    }

    SSL_set_connect_state(ssl);
    w->ssl[c->li] = ssl;
    c->state = NGX_CHAT_BENCH_CS_TLS;

    return 1;
}


/* maps an SSL_get_error() answer to errno; -1 always */
static ssize_t
ngx_chat_bench_tls_error(SSL *ssl, int rc)
{
    int  err, saved;

    saved = errno;
    err = SSL_get_error(ssl, rc);
    ERR_clear_error();

    switch (err) {

    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        break;

    case SSL_ERROR_SYSCALL:
        errno = saved ? saved : ECONNRESET;
        break;

    default:
        errno = EPROTO;
    }

    return -1;
}


int
ngx_chat_bench_tls_handshake(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    int   rc;
    SSL  *ssl;

    ssl = w->ssl[c->li];

    rc = SSL_do_handshake(ssl);
    if (rc == 1) {
        return 0;
    }

    (void) ngx_chat_bench_tls_error(ssl, rc);

    return errno == EAGAIN ? 1 : -1;
}


ssize_t
ngx_chat_bench_tls_recv(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint8_t *buf, size_t size)
{
    int   rc;
    SSL  *ssl;

    ssl = w->ssl[c->li];

    rc = SSL_read(ssl, buf, size > 0x7fffffff ? 0x7fffffff : (int) size);
    if (rc > 0) {
        return rc;
    }

    if (SSL_get_error(ssl, rc) == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return 0;
    }

    return ngx_chat_bench_tls_error(ssl, rc);
}


ssize_t
ngx_chat_bench_tls_send(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    const uint8_t *buf, size_t size)
{
    int   rc;
    SSL  *ssl;

    ssl = w->ssl[c->li];

    rc = SSL_write(ssl, buf, size > 0x7fffffff ? 0x7fffffff : (int) size);
    if (rc > 0) {
        return rc;
    }

    return ngx_chat_bench_tls_error(ssl, rc);
}


void
ngx_chat_bench_tls_free(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    if (w->ssl && w->ssl[c->li]) {
        SSL_free(w->ssl[c->li]);
        w->ssl[c->li] = NULL;
    }
}
