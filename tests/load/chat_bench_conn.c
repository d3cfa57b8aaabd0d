
/*
 * chat_bench_conn.c: one client connection of chat-bench, on the worker's
 * epoll loop (edge-triggered, non-blocking).
 *
 * A connection is bound to a loopback source address chosen from its
 * global index (127.0.0.1 + g % --src-ips) with IP_BIND_ADDRESS_NO_PORT,
 * so the kernel picks the port at connect() time per 4-tuple and every
 * source address brings its own ephemeral port range.  After connect it
 * sends the upgrade request with a fresh JWT, checks the 101 and its
 * Sec-WebSocket-Accept, then parses server frames (which must be unmasked
 * with RSV clear), reassembles fragmented text messages, answers PINGs,
 * echoes a Close, and hands every text message to the scenario.  Client
 * frames are masked with a random key.  Input that does not make a whole
 * frame and output the socket did not take are kept in per-connection
 * buffers allocated only while needed, so an idle connection costs the
 * generator about 150 bytes plus its descriptor.  With --tls a TLS
 * handshake (chat_bench_tls.c) comes between connect and the upgrade, and
 * the bytes go through it; with --http the upgrade is a plain GET whose
 * 2xx answer leaves an idle HTTP keep-alive connection (nginx's own cost).
 */


#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "chat_bench.h"


#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT  24
#endif

#define NGX_CHAT_BENCH_MAX_MESSAGE  (16 * 1024 * 1024)
#define NGX_CHAT_BENCH_MAX_OUTPUT   (64 * 1024 * 1024)


static void ngx_chat_bench_conn_start(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint64_t now);
static void ngx_chat_bench_conn_connected(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
static void ngx_chat_bench_conn_read(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
static long ngx_chat_bench_conn_process(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint8_t *p, size_t len);
static long ngx_chat_bench_conn_http(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint8_t *p, size_t len);
static long ngx_chat_bench_conn_frames(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, uint8_t *p, size_t len);
static int ngx_chat_bench_conn_write(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c, const uint8_t *p, size_t len);
static void ngx_chat_bench_conn_flush(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c);
static int ngx_chat_bench_conn_append(uint8_t **buf, uint32_t *len,
    uint32_t *cap, const uint8_t *p, size_t n, size_t max);
static int ngx_chat_bench_errno_counter(int err);
static int ngx_chat_bench_close_counter(unsigned code);


uint64_t
ngx_chat_bench_rand(ngx_chat_bench_w_t *w)
{
    uint64_t  s0, s1;

    s1 = w->rng[0];
    s0 = w->rng[1];
    w->rng[0] = s0;
    s1 ^= s1 << 23;
    w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);

    return w->rng[1] + s0;
}


void
ngx_chat_bench_conn_queue(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    if (c->queued || c->fd >= 0) {
        return;
    }

    c->queued = 1;
    w->cq[(w->cq_head + w->cq_len) % (w->nconns + 1)] = c->li;
    w->cq_len++;
}


void
ngx_chat_bench_conn_pump(ngx_chat_bench_w_t *w, uint64_t now)
{
    ngx_chat_bench_conn_t  *c;

    while (w->cq_len && w->connecting < w->o->concurrency && !w->stopping) {
        c = &w->conns[w->cq[w->cq_head]];
        w->cq_head = (w->cq_head + 1) % (w->nconns + 1);
        w->cq_len--;
        c->queued = 0;

        if (c->fd < 0 && c->state != NGX_CHAT_BENCH_CS_FAILED) {
            ngx_chat_bench_conn_start(w, c, now);
        }
    }
}


static void
ngx_chat_bench_conn_start(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint64_t now)
{
    int                  fd, one, rc;
    struct sockaddr_in   sin;
    struct epoll_event   ev;

    NGX_CHAT_BENCH_CNT(w, CONNECTS)++;

    if (NGX_CHAT_BENCH_CNT(w, T_CONNECT_FIRST) == 0
        || now < NGX_CHAT_BENCH_CNT(w, T_CONNECT_FIRST))
    {
        NGX_CHAT_BENCH_CNT(w, T_CONNECT_FIRST) = now;
    }

    c->t_start = now;
    c->t_retry = 0;
    c->ready = 0;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        NGX_CHAT_BENCH_CNT(w, CONN_OTHER)++;
        goto failed;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                      sizeof(one));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x7f000001u + c->g % w->o->src_ips);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        w->cnt[ngx_chat_bench_errno_counter(errno)]++;
        close(fd);
        goto failed;
    }

    sin.sin_addr = w->o->host;
    sin.sin_port = htons(w->o->port);

    c->fd = fd;
    c->state = NGX_CHAT_BENCH_CS_CONNECTING;
    c->starting = 1;
    w->connecting++;

    ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
    ev.data.ptr = c;

    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_CONN_OTHER, 1);
        return;
    }

    rc = connect(fd, (struct sockaddr *) &sin, sizeof(sin));

    if (rc != 0 && errno != EINPROGRESS) {
        ngx_chat_bench_conn_close(w, c, ngx_chat_bench_errno_counter(errno),
                                  1);
        return;
    }

    /* the first EPOLLOUT tells the outcome */
    return;

failed:

    c->fd = -1;
    c->state = NGX_CHAT_BENCH_CS_IDLE;

    ngx_chat_bench_scen_closed(w, c);
}


void
ngx_chat_bench_conn_event(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint32_t events)
{
    int        err, rc;
    socklen_t  len;

    if (c->fd < 0) {
        return;
    }

    if (c->state == NGX_CHAT_BENCH_CS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }

        err = 0;
        len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }

        if (err) {
            ngx_chat_bench_conn_close(w, c, ngx_chat_bench_errno_counter(err),
                                      1);
            return;
        }

        rc = ngx_chat_bench_tls_start(w, c);
        if (rc < 0) {
            ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_CONN_OTHER, 1);
            return;
        }

        if (rc == 0) {
            ngx_chat_bench_conn_connected(w, c);

            if (c->fd < 0) {
                return;
            }
        }
    }

    if (c->state == NGX_CHAT_BENCH_CS_TLS) {
        rc = ngx_chat_bench_tls_handshake(w, c);
        if (rc < 0) {
            ngx_chat_bench_conn_close(w, c,
                                      ngx_chat_bench_errno_counter(errno), 1);
            return;
        }

        if (rc > 0) {
            return;
        }

        ngx_chat_bench_conn_connected(w, c);

        if (c->fd < 0) {
            return;
        }
    }

    if ((events & EPOLLOUT) && c->wlen > c->wpos) {
        ngx_chat_bench_conn_flush(w, c);

        if (c->fd < 0) {
            return;
        }
    }

    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        ngx_chat_bench_conn_read(w, c);
    }
}


static void
ngx_chat_bench_conn_connected(ngx_chat_bench_w_t *w,
    ngx_chat_bench_conn_t *c)
{
    int       n, tlen;
    char      user[96], key[32];
    time_t    now;
    uint64_t  r;

    r = ngx_chat_bench_rand(w);
    memcpy(c->key, &r, 8);
    r = ngx_chat_bench_rand(w);
    memcpy(c->key + 8, &r, 8);
    ngx_chat_bench_b64(key, c->key, 16, 0);

    ngx_chat_bench_scen_user(w, c->g, user, sizeof(user));
    now = time(NULL);

    tlen = ngx_chat_bench_jwt(w->tok, sizeof(w->tok), w->o->secret,
                              w->o->secret_len, user, "d", (int64_t) now,
                              (int64_t) now + 3600);
    if (tlen < 0) {
        ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_CONN_OTHER, 1);
        return;
    }

    if (w->o->http) {
        n = snprintf((char *) w->out, w->out_cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%u\r\n"
                     "\r\n",
                     w->o->path, inet_ntoa(w->o->host),
                     (unsigned) w->o->port);

        c->state = NGX_CHAT_BENCH_CS_HANDSHAKE;

        (void) ngx_chat_bench_conn_write(w, c, w->out, (size_t) n);
        return;
    }

    n = snprintf((char *) w->out, w->out_cap,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s:%u\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Authorization: Bearer %s\r\n"
                 "\r\n",
                 w->o->path, inet_ntoa(w->o->host), (unsigned) w->o->port,
                 key, w->tok);

    c->state = NGX_CHAT_BENCH_CS_HANDSHAKE;

    (void) ngx_chat_bench_conn_write(w, c, w->out, (size_t) n);
}


static void
ngx_chat_bench_conn_read(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    long      used;
    size_t    len;
    ssize_t   n;
    uint8_t  *data;

    for ( ;; ) {
        n = w->ssl ? ngx_chat_bench_tls_recv(w, c, w->scratch,
                                             NGX_CHAT_BENCH_SCRATCH)
                   : read(c->fd, w->scratch, NGX_CHAT_BENCH_SCRATCH);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN) {
                break;
            }

            ngx_chat_bench_conn_close(w, c,
                                      ngx_chat_bench_errno_counter(errno), 1);
            return;
        }

        if (n == 0) {
            if (w->nacks) {
                w->nacks = 0;
                w->acks_len = 0;
            }

            ngx_chat_bench_conn_close(w, c,
                                      c->state == NGX_CHAT_BENCH_CS_CONNECTING
                                      || c->state == NGX_CHAT_BENCH_CS_TLS
                                      || c->state
                                         == NGX_CHAT_BENCH_CS_HANDSHAKE
                                      ? NGX_CHAT_BENCH_C_CONN_RESET
                                      : NGX_CHAT_BENCH_C_CONN_EOF, 0);
            return;
        }

        NGX_CHAT_BENCH_CNT(w, BYTES_IN) += (uint64_t) n;

        if (c->rlen) {
            if (ngx_chat_bench_conn_append(&c->rbuf, &c->rlen, &c->rcap,
                                           w->scratch, (size_t) n,
                                           NGX_CHAT_BENCH_MAX_MESSAGE * 2)
                != 0)
            {
                ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL, 1);
                return;
            }

            data = c->rbuf;
            len = c->rlen;

        } else {
            data = w->scratch;
            len = (size_t) n;
        }

        used = ngx_chat_bench_conn_process(w, c, data, len);

        if (used < 0 || c->fd < 0) {
            return;
        }

        if (data == c->rbuf) {
            if ((size_t) used < len) {
                memmove(c->rbuf, c->rbuf + used, len - (size_t) used);
            }

            c->rlen = (uint32_t) (len - (size_t) used);

        } else if ((size_t) used < len) {
            c->rlen = 0;
            if (ngx_chat_bench_conn_append(&c->rbuf, &c->rlen, &c->rcap,
                                           data + used, len - (size_t) used,
                                           NGX_CHAT_BENCH_MAX_MESSAGE * 2)
                != 0)
            {
                ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL, 1);
                return;
            }
        }

        if (c->rlen == 0 && c->rbuf) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }

        if ((size_t) n < NGX_CHAT_BENCH_SCRATCH && w->ssl == NULL) {
            /*
             * edge-triggered: a later arrival brings a new event; TLS
             * reads one record at a time and may hold more already, so it
             * reads on until it would block
             */
            break;
        }
    }

    if (w->nacks && c->fd >= 0) {
        (void) ngx_chat_bench_conn_ack_flush(w, c, 0);
    }
}


/* returns the bytes used, or -1 if the connection was closed */
static long
ngx_chat_bench_conn_process(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint8_t *p, size_t len)
{
    long  used, more;

    used = 0;

    if (c->state == NGX_CHAT_BENCH_CS_HANDSHAKE) {
        used = ngx_chat_bench_conn_http(w, c, p, len);
        if (used <= 0 || c->fd < 0) {
            return c->fd < 0 ? -1 : 0;
        }
    }

    if (c->state != NGX_CHAT_BENCH_CS_OPEN) {
        return c->fd < 0 ? -1 : used;
    }

    more = ngx_chat_bench_conn_frames(w, c, p + used, len - (size_t) used);
    if (more < 0) {
        return -1;
    }

    return used + more;
}


static long
ngx_chat_bench_conn_http(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint8_t *p, size_t len)
{
    int       status, counter, ok;
    char      key[32], want[29];
    size_t    i, end, vlen;
    uint8_t  *line, *eol, *v;

    end = 0;

    for (i = 3; i < len; i++) {
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n'
            && p[i - 3] == '\r')
        {
            end = i + 1;
            break;
        }
    }

    if (end == 0) {
        if (len > 16384) {
            ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL, 1);
        }

        return 0;
    }

    status = 0;
    if (len > 12 && memcmp(p, "HTTP/1.1 ", 9) == 0) {
        status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    }

    if (w->o->http && status >= 200 && status < 300) {
        /* an idle keep-alive connection from here on (no body: 204) */
        c->state = NGX_CHAT_BENCH_CS_OPEN;
        NGX_CHAT_BENCH_CNT(w, UPGRADED)++;
        ngx_chat_bench_scen_open(w, c);

        return c->fd < 0 ? -1 : (long) end;
    }

    if (status != 101) {
        counter = status == 401 ? NGX_CHAT_BENCH_C_HTTP_401
                  : (status >= 400 && status < 500) ? NGX_CHAT_BENCH_C_HTTP_4XX
                  : (status >= 500 && status < 600) ? NGX_CHAT_BENCH_C_HTTP_5XX
                  : NGX_CHAT_BENCH_C_HTTP_OTHER;
        ngx_chat_bench_conn_close(w, c, counter, 0);
        return -1;
    }

    ngx_chat_bench_b64(key, c->key, 16, 0);
    ngx_chat_bench_ws_accept(want, key, 24);
    ok = 0;

    /* header lines: find Sec-WebSocket-Accept, case-insensitively */
    line = p;

    while (line < p + end) {
        eol = memchr(line, '\n', (size_t) (p + end - line));
        if (eol == NULL) {
            break;
        }

        if ((size_t) (eol - line) > 21
            && strncasecmp((char *) line, "Sec-WebSocket-Accept:", 21) == 0)
        {
            v = line + 21;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }

            vlen = (size_t) (eol - v);
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ')) {
                vlen--;
            }

            ok = vlen == 28 && memcmp(v, want, 28) == 0;
        }

        line = eol + 1;
    }

    if (!ok) {
        ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_BAD_ACCEPT, 1);
        return -1;
    }

    c->state = NGX_CHAT_BENCH_CS_OPEN;
    NGX_CHAT_BENCH_CNT(w, UPGRADED)++;
    ngx_chat_bench_hist_add(w->hist[NGX_CHAT_BENCH_H_UPGRADE],
                            ngx_chat_bench_now() - c->t_start);

    ngx_chat_bench_scen_open(w, c);

    return c->fd < 0 ? -1 : (long) end;
}


static long
ngx_chat_bench_conn_frames(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint8_t *p, size_t len)
{
    int                     rc;
    size_t                  used, total;
    unsigned                code;
    uint8_t                *payload, echo[2];
    ngx_chat_bench_frame_t  f;

    used = 0;

    while (used < len) {
        rc = ngx_chat_bench_ws_header(p + used, len - used, &f);

        if (rc == 0) {
            break;
        }

        if (rc < 0 || f.masked || f.rsv || f.plen > NGX_CHAT_BENCH_MAX_MESSAGE
            || (f.opcode >= 8 && (f.plen > 125 || !f.fin)))
        {
            ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL, 1);
            return -1;
        }

        total = f.hlen + (size_t) f.plen;
        if (len - used < total) {
            break;
        }

        payload = p + used + f.hlen;
        used += total;

        switch (f.opcode) {

        case 0x1:
        case 0x0:
            if ((f.opcode == 0x1 && c->msgop)
                || (f.opcode == 0x0 && !c->msgop))
            {
                ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL, 1);
                return -1;
            }

            if (f.fin && f.opcode == 0x1) {
                ngx_chat_bench_scen_message(w, c, (char *) payload,
                                            (size_t) f.plen);

            } else {
                c->msgop = 1;
                if (ngx_chat_bench_conn_append(&c->mbuf, &c->mlen, &c->mcap,
                                               payload, (size_t) f.plen,
                                               NGX_CHAT_BENCH_MAX_MESSAGE)
                    != 0)
                {
                    ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL,
                                              1);
                    return -1;
                }

                if (f.fin) {
                    c->msgop = 0;
                    ngx_chat_bench_scen_message(w, c, (char *) c->mbuf,
                                                c->mlen);
                    if (c->fd >= 0) {
                        free(c->mbuf);
                        c->mbuf = NULL;
                        c->mlen = 0;
                        c->mcap = 0;
                    }
                }
            }

            break;

        case 0x8:
            code = f.plen >= 2 ? ((unsigned) payload[0] << 8) | payload[1]
                               : 1005;
            echo[0] = (uint8_t) (code >> 8);
            echo[1] = (uint8_t) code;
            total = ngx_chat_bench_ws_frame(w->out, 0x8, echo,
                                            code == 1005 ? 0 : 2,
                                            (uint32_t)
                                            ngx_chat_bench_rand(w));
            if (w->ssl) {
                (void) ngx_chat_bench_tls_send(w, c, w->out, total);

            } else {
                (void) write(c->fd, w->out, total);
            }

            ngx_chat_bench_conn_close(w, c,
                                      ngx_chat_bench_close_counter(code), 0);
            return -1;

        case 0x9:
            total = ngx_chat_bench_ws_frame(w->out, 0xa, payload,
                                            (size_t) f.plen,
                                            (uint32_t)
                                            ngx_chat_bench_rand(w));
            if (ngx_chat_bench_conn_write(w, c, w->out, total) != 0) {
                return -1;
            }

            break;

        case 0xa:
            break;

        default:
            ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_PROTOCOL, 1);
            return -1;
        }

        if (c->fd < 0) {
            return -1;
        }
    }

    return (long) used;
}


int
ngx_chat_bench_conn_send(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    const char *text, size_t len)
{
    size_t    n, cap;
    uint8_t  *p;

    if (c->fd < 0 || c->state != NGX_CHAT_BENCH_CS_OPEN) {
        return -1;
    }

    if (len + 14 > w->out_cap) {
        cap = (len + 14) * 2;
        p = realloc(w->out, cap);
        if (p == NULL) {
            return -1;
        }

        w->out = p;
        w->out_cap = cap;
    }

    n = ngx_chat_bench_ws_frame(w->out, 0x1, (const uint8_t *) text, len,
                                (uint32_t) ngx_chat_bench_rand(w));

    return ngx_chat_bench_conn_write(w, c, w->out, n);
}


static int
ngx_chat_bench_conn_write(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    const uint8_t *p, size_t len)
{
    ssize_t  n;

    if (c->wlen == c->wpos) {
        c->wlen = 0;
        c->wpos = 0;

        while (len) {
            n = w->ssl ? ngx_chat_bench_tls_send(w, c, p, len)
                       : write(c->fd, p, len);

            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }

                if (errno == EAGAIN) {
                    break;
                }

                ngx_chat_bench_conn_close(w, c,
                                          ngx_chat_bench_errno_counter(errno),
                                          1);
                return -1;
            }

            NGX_CHAT_BENCH_CNT(w, BYTES_OUT) += (uint64_t) n;
            p += n;
            len -= (size_t) n;
        }

        if (len == 0) {
            return 0;
        }
    }

    if (c->wpos && c->wpos == c->wlen) {
        c->wpos = 0;
        c->wlen = 0;
    }

    if (ngx_chat_bench_conn_append(&c->wbuf, &c->wlen, &c->wcap, p, len,
                                   NGX_CHAT_BENCH_MAX_OUTPUT)
        != 0)
    {
        ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_CONN_OTHER, 1);
        return -1;
    }

    return 0;
}


static void
ngx_chat_bench_conn_flush(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c)
{
    ssize_t  n;

    while (c->wpos < c->wlen) {
        n = w->ssl ? ngx_chat_bench_tls_send(w, c, c->wbuf + c->wpos,
                                             c->wlen - c->wpos)
                   : write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN) {
                return;
            }

            ngx_chat_bench_conn_close(w, c,
                                      ngx_chat_bench_errno_counter(errno), 1);
            return;
        }

        NGX_CHAT_BENCH_CNT(w, BYTES_OUT) += (uint64_t) n;
        c->wpos += (uint32_t) n;
    }

    free(c->wbuf);
    c->wbuf = NULL;
    c->wpos = 0;
    c->wlen = 0;
    c->wcap = 0;
}


static int
ngx_chat_bench_conn_append(uint8_t **buf, uint32_t *len, uint32_t *cap,
    const uint8_t *p, size_t n, size_t max)
{
    size_t    want;
    uint8_t  *nb;

    if ((size_t) *len + n > max) {
        return -1;
    }

    if ((size_t) *len + n > *cap) {
        want = *cap ? *cap : 1024;
        while (want < (size_t) *len + n) {
            want *= 2;
        }

        nb = realloc(*buf, want);
        if (nb == NULL) {
            return -1;
        }

        *buf = nb;
        *cap = (uint32_t) want;
    }

    memcpy(*buf + *len, p, n);
    *len += (uint32_t) n;

    return 0;
}


void
ngx_chat_bench_conn_close(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    int counter, int rst)
{
    struct linger  lg;

    if (c->fd >= 0) {
        if (rst) {
            lg.l_onoff = 1;
            lg.l_linger = 0;
            (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }

        ngx_chat_bench_tls_free(w, c);
        close(c->fd);
        c->fd = -1;

        if (c->starting) {
            c->starting = 0;
            w->connecting--;
        }

        if (c->ready) {
            NGX_CHAT_BENCH_CNT(w, OPEN_NOW)--;
        }
    }

    free(c->rbuf);
    free(c->wbuf);
    free(c->mbuf);
    c->rbuf = NULL;
    c->wbuf = NULL;
    c->mbuf = NULL;
    c->rlen = c->rcap = 0;
    c->wlen = c->wpos = c->wcap = 0;
    c->mlen = c->mcap = 0;
    c->msgop = 0;
    c->ready = 0;
    c->state = NGX_CHAT_BENCH_CS_IDLE;

    if (counter >= 0) {
        w->cnt[counter]++;
    }

    ngx_chat_bench_scen_closed(w, c);
}


void
ngx_chat_bench_conn_check_timeouts(ngx_chat_bench_w_t *w, uint64_t now)
{
    uint32_t                i;
    uint64_t                limit;
    ngx_chat_bench_conn_t  *c;

    limit = (uint64_t) (w->o->connect_timeout * 1e9);

    for (i = 0; i < w->nconns; i++) {
        c = &w->conns[i];

        if (c->fd >= 0 && c->starting && now - c->t_start > limit)
        {
            ngx_chat_bench_conn_close(w, c, NGX_CHAT_BENCH_C_CONN_TIMEOUT, 1);
        }

        if (w->waiting && c->t_retry && c->t_retry <= now) {
            c->t_retry = 0;
            w->waiting--;
            ngx_chat_bench_conn_queue(w, c);
        }
    }
}


void
ngx_chat_bench_conn_ack_add(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    const char *id, size_t len)
{
    char  *p;

    if (w->nacks >= NGX_CHAT_BENCH_ACKS_MAX) {
        (void) ngx_chat_bench_conn_ack_flush(w, c, 0);
    }

    if (len > 24) {
        return;
    }

    p = w->acks + NGX_CHAT_BENCH_ACKS_PREFIX + w->acks_len;
    *p++ = '"';
    memcpy(p, id, len);
    p += len;
    *p++ = '"';
    *p = ',';
    w->acks_len += len + 3;
    w->nacks++;
}


/*
 * the ids wait in w->acks after a reserved prefix: the command's head is
 * written right before them, so the message is built without a copy
 */

int
ngx_chat_bench_conn_ack_flush(ngx_chat_bench_w_t *w, ngx_chat_bench_conn_t *c,
    uint64_t rid)
{
    int     n;
    char    head[NGX_CHAT_BENCH_ACKS_PREFIX], *ids;
    size_t  len;

    if (rid) {
        n = snprintf(head, sizeof(head),
                     "{\"type\":\"ack\",\"id\":%llu,\"eventIds\":[",
                     (unsigned long long) rid);
    } else {
        n = snprintf(head, sizeof(head), "{\"type\":\"ack\",\"eventIds\":[");
    }

    ids = w->acks + NGX_CHAT_BENCH_ACKS_PREFIX;
    memcpy(ids - n, head, (size_t) n);

    if (w->acks_len) {
        /* the last ',' becomes ']' */
        len = w->acks_len;
        ids[len - 1] = ']';
        ids[len] = '}';
        len++;

    } else {
        ids[0] = ']';
        ids[1] = '}';
        len = 2;
    }

    NGX_CHAT_BENCH_CNT(w, EVENTS_ACKED) += w->nacks;
    w->nacks = 0;
    w->acks_len = 0;

    return ngx_chat_bench_conn_send(w, c, ids - n, (size_t) n + len);
}


static int
ngx_chat_bench_errno_counter(int err)
{
    switch (err) {

    case ECONNREFUSED:
        return NGX_CHAT_BENCH_C_CONN_REFUSED;

    case ECONNRESET:
    case EPIPE:
        return NGX_CHAT_BENCH_C_CONN_RESET;

    case ETIMEDOUT:
        return NGX_CHAT_BENCH_C_CONN_TIMEOUT;

    case EADDRNOTAVAIL:
    case EADDRINUSE:
        return NGX_CHAT_BENCH_C_CONN_ADDRNOTAVAIL;

    default:
        return NGX_CHAT_BENCH_C_CONN_OTHER;
    }
}


static int
ngx_chat_bench_close_counter(unsigned code)
{
    switch (code) {
    case 1000: return NGX_CHAT_BENCH_C_CLOSE_1000;
    case 1001: return NGX_CHAT_BENCH_C_CLOSE_1001;
    case 1002: return NGX_CHAT_BENCH_C_CLOSE_1002;
    case 1003: return NGX_CHAT_BENCH_C_CLOSE_1003;
    case 1007: return NGX_CHAT_BENCH_C_CLOSE_1007;
    case 1008: return NGX_CHAT_BENCH_C_CLOSE_1008;
    case 1009: return NGX_CHAT_BENCH_C_CLOSE_1009;
    case 1011: return NGX_CHAT_BENCH_C_CLOSE_1011;
    case 4001: return NGX_CHAT_BENCH_C_CLOSE_4001;
    case 4003: return NGX_CHAT_BENCH_C_CLOSE_4003;
    case 4004: return NGX_CHAT_BENCH_C_CLOSE_4004;
    default:   return NGX_CHAT_BENCH_C_CLOSE_OTHER;
    }
}
