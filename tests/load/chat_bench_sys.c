
/*
 * chat_bench_sys.c: what chat-bench reads from the system and its small
 * shared utilities: the monotonic clock, per-process CPU and RSS from
 * /proc/PID/stat and /proc/PID/status (a process plus its children found
 * by scanning /proc for their parent pid), kernel Slab (/proc/meminfo)
 * and /proc/net/sockstat, the framed parent/worker pipe writes, the
 * counter table and the open-addressing map used for duplicate and order
 * tracking.
 */


#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include "chat_bench.h"


#define NGX_CHAT_BENCH_X_INFO(name, agg, err)                               \
    { #name, NGX_CHAT_BENCH_AGG_##agg, err },
#define NGX_CHAT_BENCH_AGG_sum  NGX_CHAT_BENCH_AGG_SUM
#define NGX_CHAT_BENCH_AGG_min  NGX_CHAT_BENCH_AGG_MIN
#define NGX_CHAT_BENCH_AGG_max  NGX_CHAT_BENCH_AGG_MAX

const ngx_chat_bench_counter_info_t
    ngx_chat_bench_counter_info[NGX_CHAT_BENCH_NCOUNTERS] =
{
    NGX_CHAT_BENCH_COUNTERS(NGX_CHAT_BENCH_X_INFO)
};

const char *ngx_chat_bench_hist_names[NGX_CHAT_BENCH_NHISTS] = {
    "connect", "upgrade", "send_ack", "e2e", "offline_drain",
    "offline_drain_acked", "storm_back", "storm_drained", "send_refused"
};


uint64_t
ngx_chat_bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}


static int
ngx_chat_bench_read_file(const char *path, char *buf, size_t size)
{
    int      fd;
    ssize_t  n;
    size_t   len;

    fd = open(path, 0);
    if (fd < 0) {
        return -1;
    }

    len = 0;

    while (len < size - 1) {
        n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        len += (size_t) n;
    }

    close(fd);
    buf[len] = '\0';

    return (int) len;
}


/* ppid, utime + stime (ticks) of a pid; -1 if gone */
static int
ngx_chat_bench_stat(int pid, int *ppid, uint64_t *ticks)
{
    int                 i;
    char                path[64], buf[1024], *p, *end;
    unsigned long long  v[16];

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);

    if (ngx_chat_bench_read_file(path, buf, sizeof(buf)) <= 0) {
        return -1;
    }

    /* "pid (comm) state ppid ...": comm may hold anything, even ')' */
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ') {
        return -1;
    }

    p += 2;

    /* fields 3..17: state, ppid, pgrp, session, tty, tpgid, flags,
     * minflt, cminflt, majflt, cmajflt, utime, stime, cutime, cstime */
    while (*p && *p != ' ') {
        p++;
    }

    for (i = 0; i < 14; i++) {
        v[i] = (unsigned long long) strtoll(p, &end, 10);
        if (end == p) {
            return -1;
        }

        p = end;
    }

    *ppid = (int) v[0];
    /* with cutime + cstime: children that exited and were waited for
     * (PostgreSQL backends, nginx workers) keep counting */
    *ticks = v[10] + v[11] + v[12] + v[13];

    return 0;
}


static uint64_t
ngx_chat_bench_rss(int pid)
{
    char  path[64], buf[4096], *p;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);

    if (ngx_chat_bench_read_file(path, buf, sizeof(buf)) <= 0) {
        return 0;
    }

    p = strstr(buf, "\nVmRSS:");
    if (p == NULL) {
        return 0;
    }

    return strtoull(p + 7, NULL, 10);
}


void
ngx_chat_bench_proc_sample(int pid, int with_children,
    ngx_chat_bench_proc_t *out)
{
    int             ppid, child;
    DIR            *d;
    long            hz;
    uint64_t        ticks, total;
    struct dirent  *de;

    memset(out, 0, sizeof(ngx_chat_bench_proc_t));

    if (pid <= 0 || ngx_chat_bench_stat(pid, &ppid, &ticks) != 0) {
        return;
    }

    total = ticks;
    out->rss_kib = ngx_chat_bench_rss(pid);
    out->nprocs = 1;

    if (with_children) {
        d = opendir("/proc");

        while (d && (de = readdir(d)) != NULL) {
            if (de->d_name[0] < '1' || de->d_name[0] > '9') {
                continue;
            }

            child = atoi(de->d_name);

            if (ngx_chat_bench_stat(child, &ppid, &ticks) == 0
                && ppid == pid)
            {
                total += ticks;
                out->rss_kib += ngx_chat_bench_rss(child);
                out->nprocs++;
            }
        }

        if (d) {
            closedir(d);
        }
    }

    hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) {
        hz = 100;
    }

    out->cpu_ns = total * (1000000000ull / (uint64_t) hz);
}


void
ngx_chat_bench_kernel_sample(ngx_chat_bench_kernel_t *out)
{
    char  buf[8192], *p;

    memset(out, 0, sizeof(ngx_chat_bench_kernel_t));

    if (ngx_chat_bench_read_file("/proc/meminfo", buf, sizeof(buf)) > 0) {
        p = strstr(buf, "\nSlab:");
        if (p) {
            out->slab_kib = strtoull(p + 6, NULL, 10);
        }
    }

    if (ngx_chat_bench_read_file("/proc/net/sockstat", buf, sizeof(buf))
        > 0)
    {
        p = strstr(buf, "sockets: used ");
        if (p) {
            out->sockets_used = strtoull(p + 14, NULL, 10);
        }

        p = strstr(buf, "TCP: inuse ");
        if (p) {
            out->tcp_inuse = strtoull(p + 11, &p, 10);
            p = strstr(p, "orphan ");
            if (p) {
                out->tcp_orphan = strtoull(p + 7, &p, 10);
                p = strstr(p, "tw ");
            }

            if (p) {
                out->tcp_tw = strtoull(p + 3, &p, 10);
                p = strstr(p, "alloc ");
            }

            if (p) {
                out->tcp_alloc = strtoull(p + 6, &p, 10);
                p = strstr(p, "mem ");
            }

            if (p) {
                out->tcp_mem_pages = strtoull(p + 4, NULL, 10);
            }
        }
    }
}


int
ngx_chat_bench_pipe_write(int fd, uint32_t type, const void *p, size_t len)
{
    size_t                     done;
    ssize_t                    n;
    const uint8_t             *b;
    ngx_chat_bench_pipe_hdr_t  hdr;

    hdr.type = type;
    hdr.len = (uint32_t) len;

    b = (const uint8_t *) &hdr;
    done = 0;

    while (done < sizeof(hdr) + len) {
        if (done < sizeof(hdr)) {
            n = write(fd, b + done, sizeof(hdr) - done);
        } else {
            n = write(fd, (const uint8_t *) p + (done - sizeof(hdr)),
                      sizeof(hdr) + len - done);
        }

        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }

            return -1;
        }

        done += (size_t) n;
    }

    return 0;
}


/* ---------------------------------------------------------------------- */

static uint64_t
ngx_chat_bench_map_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;

    return k;
}


uint64_t *
ngx_chat_bench_map_get(ngx_chat_bench_map_t *m, uint64_t key)
{
    size_t  i;

    if (m->cap == 0) {
        return NULL;
    }

    i = ngx_chat_bench_map_hash(key) & (m->cap - 1);

    while (m->keys[i]) {
        if (m->keys[i] == key) {
            return &m->vals[i];
        }

        i = (i + 1) & (m->cap - 1);
    }

    return NULL;
}


static int
ngx_chat_bench_map_grow(ngx_chat_bench_map_t *m)
{
    size_t     cap, i, j;
    uint64_t  *keys, *vals;

    cap = m->cap ? m->cap * 2 : 4096;
    keys = calloc(cap, sizeof(uint64_t));
    vals = calloc(cap, sizeof(uint64_t));

    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return -1;
    }

    for (i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0) {
            continue;
        }

        j = ngx_chat_bench_map_hash(m->keys[i]) & (cap - 1);
        while (keys[j]) {
            j = (j + 1) & (cap - 1);
        }

        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }

    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;

    return 0;
}


uint64_t *
ngx_chat_bench_map_put(ngx_chat_bench_map_t *m, uint64_t key, int *isnew)
{
    size_t  i;

    if ((m->n + 1) * 2 > m->cap && ngx_chat_bench_map_grow(m) != 0) {
        return NULL;
    }

    i = ngx_chat_bench_map_hash(key) & (m->cap - 1);

    while (m->keys[i]) {
        if (m->keys[i] == key) {
            *isnew = 0;
            return &m->vals[i];
        }

        i = (i + 1) & (m->cap - 1);
    }

    m->keys[i] = key;
    m->vals[i] = 0;
    m->n++;
    *isnew = 1;

    return &m->vals[i];
}


void
ngx_chat_bench_map_free(ngx_chat_bench_map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(ngx_chat_bench_map_t));
}
