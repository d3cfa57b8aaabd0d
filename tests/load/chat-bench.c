
/*
 * chat-bench.c: the load generator and benchmark client of ngx_chat.
 *
 * This file owns the command line, the parent process and the workers'
 * main loop.  The parent forks --procs workers (each keeps its
 * connections under the per-process descriptor limit), then drives the
 * scenario's phases: CONNECT (every connection upgraded, authenticated
 * and registered: its first ping answered), SETUP (chats created and
 * known to every member), RUN (the measured part) and, for the chat
 * scenario, a drain until every delivery owed has arrived.  Around each
 * phase it samples the CPU and RSS of nginx (master + workers), of
 * PostgreSQL and Redis if given, of the generator itself, and the
 * kernel's Slab and sockstat.  It prints a progress line every second on
 * stderr and the result as one JSON object on stdout.
 *
 * Exit status: 0 when the scenario completed with no loss and no failed
 * send, 1 otherwise, 2 on a usage or setup error.
 *
 *   chat-bench --port 8080 --secret-file jwt.secret --scenario chat \
 *       --users 2000 --rate 5000 --duration 10 --nginx-pid $(cat pid)
 */


#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "chat_bench.h"


#define NGX_CHAT_BENCH_NSAMPLES  5     /* start, connect, setup, run, end */

typedef struct {
    pid_t      pid;
    int        rd;                     /* from the worker */
    int        wr;                     /* to the worker */
    int        final;
    int        dead;
    uint64_t   cnt[NGX_CHAT_BENCH_NCOUNTERS];
    uint8_t   *buf;
    size_t     len;
    size_t     cap;
} ngx_chat_bench_child_t;

typedef struct {
    int                      taken;
    uint64_t                 t;
    ngx_chat_bench_proc_t    nginx;
    ngx_chat_bench_proc_t    pg;
    ngx_chat_bench_proc_t    redis;
    ngx_chat_bench_proc_t    gen;
    ngx_chat_bench_kernel_t  kernel;
    uint64_t                 cnt[NGX_CHAT_BENCH_NCOUNTERS];
} ngx_chat_bench_sample_t;

typedef struct {
    ngx_chat_bench_opts_t    *o;
    ngx_chat_bench_child_t   *kids;
    ngx_chat_bench_hist_t    *hist[NGX_CHAT_BENCH_NHISTS];
    ngx_chat_bench_hist_t    *interval;
    uint64_t                  agg[NGX_CHAT_BENCH_NCOUNTERS];
    ngx_chat_bench_sample_t   s[NGX_CHAT_BENCH_NSAMPLES];
    uint64_t                  t_start;
    int                       phase;      /* running */
    int                       done;       /* last phase completed */
    int                       draining;
    int                       complete;
    char                      why[256];   /* why incomplete */
} ngx_chat_bench_parent_t;


static volatile sig_atomic_t  ngx_chat_bench_signalled;

static const char *ngx_chat_bench_scenarios[] = {
    "idle", "chat", "offline", "storm"
};

static const char *ngx_chat_bench_phases[] = {
    "start", "connect", "setup", "run", "stop"
};


static void ngx_chat_bench_usage(FILE *f);
static int ngx_chat_bench_options(int argc, char **argv,
    ngx_chat_bench_opts_t *o, int *selftest);
static int ngx_chat_bench_load_secret(const char *path,
    ngx_chat_bench_opts_t *o);
static int ngx_chat_bench_worker(ngx_chat_bench_opts_t *o, uint32_t proc,
    int rd, int wr);
static int ngx_chat_bench_parent(ngx_chat_bench_parent_t *pa);
static void ngx_chat_bench_take(ngx_chat_bench_parent_t *pa, int i);
static void ngx_chat_bench_aggregate(ngx_chat_bench_parent_t *pa);
static int ngx_chat_bench_read_child(ngx_chat_bench_parent_t *pa,
    ngx_chat_bench_child_t *k);
static void ngx_chat_bench_go(ngx_chat_bench_parent_t *pa, int phase,
    uint64_t t0);
static void ngx_chat_bench_progress(ngx_chat_bench_parent_t *pa,
    uint64_t now);
static void ngx_chat_bench_result(ngx_chat_bench_parent_t *pa, FILE *f);


static void
ngx_chat_bench_on_signal(int sig)
{
    (void) sig;
    ngx_chat_bench_signalled = 1;
}


int
main(int argc, char **argv)
{
    int                       selftest, rc, p2c[2], c2p[2];
    pid_t                     pid;
    uint32_t                  i, j, per, need;
    struct rlimit             rl;
    ngx_chat_bench_opts_t     o;
    ngx_chat_bench_parent_t   pa;
    struct sigaction          sa;

    selftest = 0;

    if (ngx_chat_bench_options(argc, argv, &o, &selftest) != 0) {
        return 2;
    }

    if (selftest) {
        return ngx_chat_bench_selftest(stdout) == 0 ? 0 : 1;
    }

    /* as many descriptors as we may have */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    (void) getrlimit(RLIMIT_NOFILE, &rl);

    if (o.procs == 0) {
        need = o.nconns / 18000 + 1;
        o.procs = need;
    }

    if (o.procs > o.nconns / o.group && o.nconns) {
        o.procs = o.nconns / o.group ? o.nconns / o.group : 1;
    }

    per = (o.nconns / o.group + o.procs - 1) / o.procs * o.group;

    if ((rlim_t) per + 64 > rl.rlim_cur) {
        fprintf(stderr, "chat-bench: %u connections per process do not fit "
                "in RLIMIT_NOFILE %llu: use more --procs\n", per,
                (unsigned long long) rl.rlim_cur);
        return 2;
    }

    if (o.concurrency == 0) {
        /* the server registers devices in PostgreSQL: a few hundred at a
         * time is what it can take; more only queue there and time out */
        o.concurrency = 512 / o.procs > 16 ? 512 / o.procs : 16;
    }

    if (o.src_ips == 0) {
        o.src_ips = o.nconns / 20000 + 1;
    }

    memset(&pa, 0, sizeof(pa));
    pa.o = &o;
    pa.kids = calloc(o.procs, sizeof(ngx_chat_bench_child_t));
    pa.interval = malloc(sizeof(ngx_chat_bench_hist_t));

    if (pa.kids == NULL || pa.interval == NULL) {
        return 2;
    }

    ngx_chat_bench_hist_reset(pa.interval);

    for (i = 0; i < NGX_CHAT_BENCH_NHISTS; i++) {
        pa.hist[i] = malloc(sizeof(ngx_chat_bench_hist_t));
        if (pa.hist[i] == NULL) {
            return 2;
        }

        ngx_chat_bench_hist_reset(pa.hist[i]);
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ngx_chat_bench_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pa.t_start = ngx_chat_bench_now();
    ngx_chat_bench_take(&pa, 0);

    fflush(stdout);
    fflush(stderr);

    for (i = 0; i < o.procs; i++) {
        if (pipe2(p2c, O_CLOEXEC) != 0 || pipe2(c2p, O_CLOEXEC) != 0) {
            perror("chat-bench: pipe");
            return 2;
        }

        pid = fork();

        if (pid < 0) {
            perror("chat-bench: fork");
            return 2;
        }

        if (pid == 0) {
            (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
            signal(SIGINT, SIG_IGN);
            signal(SIGTERM, SIG_DFL);

            for (j = 0; j < i; j++) {
                close(pa.kids[j].rd);
                close(pa.kids[j].wr);
            }

            close(p2c[1]);
            close(c2p[0]);
            _exit(ngx_chat_bench_worker(&o, i, p2c[0], c2p[1]));
        }

        close(p2c[0]);
        close(c2p[1]);
        pa.kids[i].pid = pid;
        pa.kids[i].rd = c2p[0];
        pa.kids[i].wr = p2c[1];
    }

    rc = ngx_chat_bench_parent(&pa);

    ngx_chat_bench_result(&pa, stdout);
    fflush(stdout);

    return rc;
}


/* ---------------------------------------------------------------------- */

static void
ngx_chat_bench_usage(FILE *f)
{
    fprintf(f,
"usage: chat-bench --port N --secret-file FILE [options]\n"
"  --scenario idle|chat|offline|storm    (idle)\n"
"  --host IP (127.0.0.1)  --port N  --path /chat  --secret-file FILE\n"
"  --tag STR          prefix of user ids (default: random per run)\n"
"  --procs N          worker processes (default: 1 per 18000 conns)\n"
"  --src-ips N        source addresses 127.0.0.1.. (default: 1 per 20000)\n"
"  --concurrency N    connects not yet registered, per worker (512/procs)\n"
"  --retries N        connect attempts before giving up (3)\n"
"  --duration S       idle: hold time (2); chat: sending time (5)\n"
"idle, storm:  --conns N (1000)\n"
"chat:         --users U (200)  --background B (0)  --rate R msgs/s in\n"
"              all, 0 = closed loop (1000)  --inflight N (sends in flight\n"
"              per worker with --rate 0, and in storm's setup: 1000)\n"
"              --msg-size BYTES (100)  --group-share F (0.15)\n"
"              --big-share F (0.02; groups of 50-100)\n"
"offline:      --messages K (1000)  --reps N (5)  --pairs N (1)\n"
"storm:        --unacked M events held per connection (2)  --storm-rst\n"
"timeouts (s): --connect-timeout (30)  --request-timeout (10)\n"
"              --phase-timeout (300)  --drain-timeout (15)\n"
"              --retry-max (5: cap of the backoff before resending a\n"
"              sendMessage/createChat answered \"unavailable\")\n"
"              --no-resend (a sendMessage answered \"unavailable\" is\n"
"              counted as refused, not resent: overload runs)\n"
"pacing:       --tick-us N (0: a worker wakes for each scheduled send; N:\n"
"              at most once per N us, the sends due meanwhile leave\n"
"              together, late by up to N us, timed from their schedule)\n"
"transport:    --tls (wss://: TLS without verification or SNI)\n"
"              --http (idle only: a GET of --path whose 2xx answer is\n"
"              held as an idle keep-alive connection, no WebSocket)\n"
"measuring:    --nginx-pid P  --pg-pid P  --redis-pid P  --seed N\n"
"              --quiet (no progress line)  --selftest\n");
}


static int
ngx_chat_bench_options(int argc, char **argv, ngx_chat_bench_opts_t *o,
    int *selftest)
{
    int          c, i, have_duration;
    char        *secret;
    uint64_t     r;
    static const struct option  longopts[] = {
        { "scenario", 1, NULL, 'S' }, { "host", 1, NULL, 'h' },
        { "port", 1, NULL, 'p' }, { "path", 1, NULL, 'P' },
        { "secret-file", 1, NULL, 's' }, { "tag", 1, NULL, 't' },
        { "procs", 1, NULL, 'j' }, { "src-ips", 1, NULL, 'i' },
        { "conns", 1, NULL, 'n' }, { "users", 1, NULL, 'u' },
        { "background", 1, NULL, 'b' }, { "rate", 1, NULL, 'r' },
        { "duration", 1, NULL, 'd' }, { "msg-size", 1, NULL, 'z' },
        { "group-share", 1, NULL, 'g' }, { "big-share", 1, NULL, 'G' },
        { "inflight", 1, NULL, 'F' }, { "messages", 1, NULL, 'k' },
        { "reps", 1, NULL, 'R' }, { "pairs", 1, NULL, 'a' },
        { "unacked", 1, NULL, 'U' }, { "storm-rst", 0, NULL, 'X' },
        { "concurrency", 1, NULL, 'c' }, { "retries", 1, NULL, 'y' },
        { "connect-timeout", 1, NULL, 'T' },
        { "request-timeout", 1, NULL, 'Q' },
        { "phase-timeout", 1, NULL, 'W' },
        { "drain-timeout", 1, NULL, 'D' }, { "seed", 1, NULL, 'e' },
        { "retry-max", 1, NULL, 'M' }, { "no-resend", 0, NULL, 'x' },
        { "tick-us", 1, NULL, 'J' },
        { "nginx-pid", 1, NULL, 'N' }, { "pg-pid", 1, NULL, 'O' },
        { "redis-pid", 1, NULL, 'E' }, { "quiet", 0, NULL, 'q' },
        { "tls", 0, NULL, 'L' }, { "http", 0, NULL, 'K' },
        { "selftest", 0, NULL, 'Z' }, { "help", 0, NULL, 'H' },
        { NULL, 0, NULL, 0 }
    };

    memset(o, 0, sizeof(ngx_chat_bench_opts_t));
    inet_aton("127.0.0.1", &o->host);
    strcpy(o->path, "/chat");
    o->conns = 1000;
    o->users = 200;
    o->rate = 1000;
    o->msg_size = 100;
    o->group_share = 0.15;
    o->big_share = 0.02;
    o->inflight = 1000;
    o->messages = 1000;
    o->reps = 5;
    o->pairs = 1;
    o->unacked = 2;
    o->concurrency = 0;
    o->retries = 3;
    o->connect_timeout = 30;
    o->request_timeout = 10;
    o->phase_timeout = 300;
    o->drain_timeout = 15;
    o->retry_max = 5;
    o->seed = 1;

    secret = NULL;
    have_duration = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'S':
            for (i = 0; i < 4; i++) {
                if (strcmp(optarg, ngx_chat_bench_scenarios[i]) == 0) {
                    break;
                }
            }

            if (i == 4) {
                fprintf(stderr, "chat-bench: unknown scenario %s\n", optarg);
                return -1;
            }

            o->scenario = i;
            break;
        case 'h':
            if (inet_aton(optarg, &o->host) == 0) {
                fprintf(stderr, "chat-bench: bad --host %s\n", optarg);
                return -1;
            }
            break;
        case 'p': o->port = (uint16_t) atoi(optarg); break;
        case 'P': snprintf(o->path, sizeof(o->path), "%s", optarg); break;
        case 's': secret = optarg; break;
        case 't': snprintf(o->tag, sizeof(o->tag), "%s", optarg); break;
        case 'j': o->procs = (uint32_t) atoi(optarg); break;
        case 'i': o->src_ips = (uint32_t) atoi(optarg); break;
        case 'n': o->conns = (uint32_t) atoi(optarg); break;
        case 'u': o->users = (uint32_t) atoi(optarg); break;
        case 'b': o->background = (uint32_t) atoi(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'd': o->duration = atof(optarg); have_duration = 1; break;
        case 'z': o->msg_size = (uint32_t) atoi(optarg); break;
        case 'g': o->group_share = atof(optarg); break;
        case 'G': o->big_share = atof(optarg); break;
        case 'F': o->inflight = (uint32_t) atoi(optarg); break;
        case 'k': o->messages = (uint32_t) atoi(optarg); break;
        case 'R': o->reps = (uint32_t) atoi(optarg); break;
        case 'a': o->pairs = (uint32_t) atoi(optarg); break;
        case 'U': o->unacked = (uint32_t) atoi(optarg); break;
        case 'X': o->storm_rst = 1; break;
        case 'c': o->concurrency = (uint32_t) atoi(optarg); break;
        case 'y': o->retries = (uint32_t) atoi(optarg); break;
        case 'T': o->connect_timeout = atof(optarg); break;
        case 'Q': o->request_timeout = atof(optarg); break;
        case 'W': o->phase_timeout = atof(optarg); break;
        case 'D': o->drain_timeout = atof(optarg); break;
        case 'M': o->retry_max = atof(optarg); break;
        case 'x': o->no_resend = 1; break;
        case 'J': o->tick = strtoull(optarg, NULL, 10) * 1000; break;
        case 'e': o->seed = strtoull(optarg, NULL, 10); break;
        case 'N': o->nginx_pid = atoi(optarg); break;
        case 'O': o->pg_pid = atoi(optarg); break;
        case 'E': o->redis_pid = atoi(optarg); break;
        case 'q': o->quiet = 1; break;
        case 'L': o->tls = 1; break;
        case 'K': o->http = 1; break;
        case 'Z': *selftest = 1; return 0;
        case 'H': ngx_chat_bench_usage(stdout); exit(0);
        default: ngx_chat_bench_usage(stderr); return -1;
        }
    }

    if (optind < argc) {
        ngx_chat_bench_usage(stderr);
        return -1;
    }

    if (o->port == 0 || secret == NULL) {
        fprintf(stderr, "chat-bench: --port and --secret-file are needed\n");
        ngx_chat_bench_usage(stderr);
        return -1;
    }

    if (o->http && o->scenario != NGX_CHAT_BENCH_IDLE) {
        fprintf(stderr, "chat-bench: --http is for the idle scenario\n");
        return -1;
    }

    if (ngx_chat_bench_load_secret(secret, o) != 0) {
        return -1;
    }

    if (!have_duration) {
        o->duration = o->scenario == NGX_CHAT_BENCH_CHAT ? 5 : 2;
    }

    if (o->tag[0] == '\0') {
        if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
            r = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        }

        snprintf(o->tag, sizeof(o->tag), "b%08x",
                 (unsigned) (r ^ (r >> 32)));
    }

    for (i = 0; o->tag[i]; i++) {
        if (!((o->tag[i] >= 'a' && o->tag[i] <= 'z')
              || (o->tag[i] >= 'A' && o->tag[i] <= 'Z')
              || (o->tag[i] >= '0' && o->tag[i] <= '9')
              || o->tag[i] == '-' || o->tag[i] == '_' || o->tag[i] == '.'))
        {
            fprintf(stderr, "chat-bench: --tag: use [A-Za-z0-9._-]\n");
            return -1;
        }
    }

    o->group = 1;

    switch (o->scenario) {
    case NGX_CHAT_BENCH_CHAT:
        if (o->users < 2) {
            fprintf(stderr, "chat-bench: --users must be at least 2\n");
            return -1;
        }

        o->nconns = o->users + o->background;
        break;
    case NGX_CHAT_BENCH_OFFLINE:
        o->group = 2;
        o->nconns = o->pairs * 2;
        break;
    case NGX_CHAT_BENCH_STORM:
        if (o->unacked) {
            o->group = 2;
            o->conns += o->conns & 1;
        }

        o->nconns = o->conns;
        break;
    default:
        o->nconns = o->conns;
        break;
    }

    if (o->retry_max < 0.05) {
        o->retry_max = 0.05;
    }

    if (o->nconns == 0 || o->retries == 0
        || o->msg_size > 60000 || o->nconns > 16000000)
    {
        fprintf(stderr, "chat-bench: bad sizes\n");
        return -1;
    }

    return 0;
}


static int
ngx_chat_bench_load_secret(const char *path, ngx_chat_bench_opts_t *o)
{
    FILE    *f;
    size_t   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "chat-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }

    n = fread(o->secret, 1, sizeof(o->secret), f);
    fclose(f);

    /* as the gateway: one trailing "\n" or "\r\n" is not part of it */
    if (n >= 1 && o->secret[n - 1] == '\n') {
        n--;
        if (n >= 1 && o->secret[n - 1] == '\r') {
            n--;
        }
    }

    if (n < 32 || n >= sizeof(o->secret)) {
        fprintf(stderr, "chat-bench: %s: the secret must be 32 to 4095 "
                "bytes\n", path);
        return -1;
    }

    o->secret_len = n;

    return 0;
}


/* ---------------------------------------------------------------------- */

static int
ngx_chat_bench_wait(int ep, struct epoll_event *ev, int max, uint64_t ns)
{
    int              n, ms;
    struct timespec  ts;
    static int       no_pwait2;

    if (!no_pwait2) {
        ts.tv_sec = (time_t) (ns / 1000000000ull);
        ts.tv_nsec = (long) (ns % 1000000000ull);
        n = epoll_pwait2(ep, ev, max, &ts, NULL);

        if (n >= 0 || errno != ENOSYS) {
            return n;
        }

        no_pwait2 = 1;
    }

    ms = (int) ((ns + 999999) / 1000000);

    return epoll_wait(ep, ev, max, ms);
}


static int
ngx_chat_bench_worker(ngx_chat_bench_opts_t *o, uint32_t proc, int rd,
    int wr)
{
    int                        i, n, stop;
    ssize_t                    r;
    uint8_t                    in[256];
    size_t                     inlen;
    uint64_t                   now, next;
    ngx_chat_bench_w_t        *w;
    ngx_chat_bench_go_t        go;
    struct epoll_event         ev, evs[1024];
    ngx_chat_bench_pipe_hdr_t  hdr;

    (void) prctl(PR_SET_TIMERSLACK, 1000UL);

    w = calloc(1, sizeof(ngx_chat_bench_w_t));
    if (w == NULL) {
        return 2;
    }

    w->o = o;
    w->proc = proc;
    w->rd = rd;
    w->wr = wr;

    if (getrandom(w->rng, sizeof(w->rng), 0) != sizeof(w->rng)) {
        w->rng[0] = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 20);
        w->rng[1] = 0x9e3779b97f4a7c15ull ^ proc;
    }

    w->rng[0] |= 1;

    w->scratch = malloc(NGX_CHAT_BENCH_SCRATCH);
    w->out_cap = 65536 + (size_t) o->msg_size * 2;
    w->out = malloc(w->out_cap);
    w->acks = malloc(NGX_CHAT_BENCH_ACKS_SIZE);
    w->json_cap = 65536 + (size_t) o->msg_size;
    w->json = malloc(w->json_cap);
    w->report_cap = sizeof(w->cnt)
                    + NGX_CHAT_BENCH_NHISTS
                      * (64 + NGX_CHAT_BENCH_HIST_BUCKETS * 12);
    w->report = malloc(w->report_cap);
    w->live = malloc(sizeof(ngx_chat_bench_hist_t));

    if (w->scratch == NULL || w->out == NULL || w->acks == NULL
        || w->json == NULL || w->report == NULL || w->live == NULL)
    {
        return 2;
    }

    ngx_chat_bench_hist_reset(w->live);

    for (i = 0; i < NGX_CHAT_BENCH_NHISTS; i++) {
        w->hist[i] = malloc(sizeof(ngx_chat_bench_hist_t));
        if (w->hist[i] == NULL) {
            return 2;
        }

        ngx_chat_bench_hist_reset(w->hist[i]);
    }

    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) {
        return 2;
    }

    (void) fcntl(rd, F_SETFL, O_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, rd, &ev) != 0) {
        return 2;
    }

    if (ngx_chat_bench_scen_init(w) != 0) {
        fprintf(stderr, "chat-bench: worker %u: out of memory\n", proc);
        return 2;
    }

    if (ngx_chat_bench_tls_init(w) != 0) {
        fprintf(stderr, "chat-bench: worker %u: TLS set-up failed\n", proc);
        return 2;
    }

    inlen = 0;
    stop = 0;

    while (!stop) {
        now = ngx_chat_bench_now();
        ngx_chat_bench_conn_pump(w, now);
        next = ngx_chat_bench_scen_tick(w, now);
        ngx_chat_bench_conn_pump(w, now);

        now = ngx_chat_bench_now();

        if (next < now + w->o->tick) {
            /*
             * --tick-us: an open loop of thousands of sends a second
             * would otherwise wake the worker for each one, a CPU cost
             * that a generator on its own machine does not take from
             * the server's
             */
            next = now + w->o->tick;
        }

        n = ngx_chat_bench_wait(w->ep, evs, 1024, next > now ? next - now : 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            return 2;
        }

        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr != NULL) {
                ngx_chat_bench_conn_event(w, evs[i].data.ptr, evs[i].events);
                continue;
            }

            r = read(rd, in + inlen, sizeof(in) - inlen);

            if (r == 0) {
                /* the parent is gone */
                stop = 1;
                break;
            }

            if (r < 0) {
                continue;
            }

            inlen += (size_t) r;

            while (inlen >= sizeof(hdr)) {
                memcpy(&hdr, in, sizeof(hdr));
                if (inlen < sizeof(hdr) + hdr.len) {
                    break;
                }

                if (hdr.type == NGX_CHAT_BENCH_MSG_GO
                    && hdr.len == sizeof(go))
                {
                    memcpy(&go, in + sizeof(hdr), sizeof(go));
                    ngx_chat_bench_scen_go(w, (int) go.phase, go.t0);

                } else if (hdr.type == NGX_CHAT_BENCH_MSG_STOP) {
                    stop = 1;
                }

                memmove(in, in + sizeof(hdr) + hdr.len,
                        inlen - sizeof(hdr) - hdr.len);
                inlen -= sizeof(hdr) + hdr.len;
            }
        }
    }

    /* reset every connection: no TIME_WAIT left behind */
    w->stopping = 1;

    for (i = 0; i < (int) w->nconns; i++) {
        if (w->conns[i].fd >= 0) {
            ngx_chat_bench_conn_close(w, &w->conns[i], -1, 1);
        }
    }

    ngx_chat_bench_scen_report(w, 1);

    return 0;
}


/* ---------------------------------------------------------------------- */

static void
ngx_chat_bench_take(ngx_chat_bench_parent_t *pa, int i)
{
    ngx_chat_bench_sample_t  *s;

    s = &pa->s[i];
    s->taken = 1;
    s->t = ngx_chat_bench_now();
    ngx_chat_bench_proc_sample(pa->o->nginx_pid, 1, &s->nginx);
    ngx_chat_bench_proc_sample(pa->o->pg_pid, 1, &s->pg);
    ngx_chat_bench_proc_sample(pa->o->redis_pid, 0, &s->redis);
    ngx_chat_bench_proc_sample(getpid(), 1, &s->gen);
    ngx_chat_bench_kernel_sample(&s->kernel);
    memcpy(s->cnt, pa->agg, sizeof(pa->agg));
}


static void
ngx_chat_bench_aggregate(ngx_chat_bench_parent_t *pa)
{
    int        agg, i;
    uint32_t   k;
    uint64_t   v, r;

    for (i = 0; i < NGX_CHAT_BENCH_NCOUNTERS; i++) {
        agg = ngx_chat_bench_counter_info[i].agg;
        r = 0;

        for (k = 0; k < pa->o->procs; k++) {
            v = pa->kids[k].cnt[i];

            if (agg == NGX_CHAT_BENCH_AGG_SUM) {
                r += v;

            } else if (agg == NGX_CHAT_BENCH_AGG_MAX) {
                r = v > r ? v : r;

            } else if (i == NGX_CHAT_BENCH_C_PHASE) {
                /* the phase every worker has completed */
                r = (k == 0 || v < r) ? v : r;

            } else if (v && (r == 0 || v < r)) {
                /* earliest time any worker saw */
                r = v;
            }
        }

        pa->agg[i] = r;
    }
}


static int
ngx_chat_bench_read_child(ngx_chat_bench_parent_t *pa,
    ngx_chat_bench_child_t *k)
{
    int                        i;
    size_t                     off, used, n;
    ssize_t                    r;
    uint8_t                   *p;
    ngx_chat_bench_pipe_hdr_t  hdr;

    if (k->cap - k->len < 65536) {
        p = realloc(k->buf, k->cap ? k->cap * 2 : 1 << 20);
        if (p == NULL) {
            return -1;
        }

        k->buf = p;
        k->cap = k->cap ? k->cap * 2 : 1 << 20;
    }

    r = read(k->rd, k->buf + k->len, k->cap - k->len);

    if (r < 0) {
        return (errno == EINTR || errno == EAGAIN) ? 0 : -1;
    }

    if (r == 0) {
        return -1;
    }

    k->len += (size_t) r;
    off = 0;

    while (k->len - off >= sizeof(hdr)) {
        memcpy(&hdr, k->buf + off, sizeof(hdr));

        if (k->len - off - sizeof(hdr) < hdr.len) {
            break;
        }

        p = k->buf + off + sizeof(hdr);

        if (hdr.len >= sizeof(k->cnt)) {
            memcpy(k->cnt, p, sizeof(k->cnt));
            used = sizeof(k->cnt);

            if (hdr.type == NGX_CHAT_BENCH_MSG_PROGRESS) {
                (void) ngx_chat_bench_hist_decode_merge(pa->interval,
                                                        p + used,
                                                        hdr.len - used);

            } else if (hdr.type == NGX_CHAT_BENCH_MSG_FINAL) {
                for (i = 0; i < NGX_CHAT_BENCH_NHISTS; i++) {
                    n = ngx_chat_bench_hist_decode_merge(pa->hist[i],
                                                         p + used,
                                                         hdr.len - used);
                    if (n == 0) {
                        break;
                    }

                    used += n;
                }

                k->final = 1;
            }
        }

        off += sizeof(hdr) + hdr.len;
    }

    if (off) {
        memmove(k->buf, k->buf + off, k->len - off);
        k->len -= off;
    }

    return 0;
}


static void
ngx_chat_bench_go(ngx_chat_bench_parent_t *pa, int phase, uint64_t t0)
{
    uint32_t             k;
    ngx_chat_bench_go_t  go;

    pa->phase = phase;
    go.phase = (uint32_t) phase;
    go.pad = 0;
    go.t0 = t0;

    for (k = 0; k < pa->o->procs; k++) {
        if (!pa->kids[k].dead) {
            (void) ngx_chat_bench_pipe_write(pa->kids[k].wr,
                                             NGX_CHAT_BENCH_MSG_GO,
                                             &go, sizeof(go));
        }
    }
}


static int
ngx_chat_bench_parent(ngx_chat_bench_parent_t *pa)
{
    int                     stopping, alive, n, status;
    uint32_t                k;
    uint64_t                now, phase_start, drain_end, stop_end;
    uint64_t                last_progress, timeout;
    struct pollfd          *pfd;
    ngx_chat_bench_opts_t  *o;

    o = pa->o;
    pfd = calloc(o->procs, sizeof(struct pollfd));
    if (pfd == NULL) {
        return 2;
    }

    stopping = 0;
    drain_end = 0;
    stop_end = 0;
    last_progress = ngx_chat_bench_now();

    phase_start = ngx_chat_bench_now();
    ngx_chat_bench_go(pa, NGX_CHAT_BENCH_PH_CONNECT, phase_start);

    for ( ;; ) {
        alive = 0;

        for (k = 0; k < o->procs; k++) {
            pfd[k].fd = (pa->kids[k].dead || pa->kids[k].final)
                        ? -1 : pa->kids[k].rd;
            pfd[k].events = POLLIN;
            pfd[k].revents = 0;
            alive += pfd[k].fd >= 0;
        }

        if (alive == 0) {
            break;
        }

        n = poll(pfd, o->procs, 100);

        for (k = 0; n > 0 && k < o->procs; k++) {
            if (pfd[k].revents
                && ngx_chat_bench_read_child(pa, &pa->kids[k]) != 0)
            {
                pa->kids[k].dead = !pa->kids[k].final;
                if (pa->kids[k].dead && !stopping) {
                    snprintf(pa->why, sizeof(pa->why),
                             "worker %u exited during %s", k,
                             ngx_chat_bench_phases[pa->phase]);
                }

                pfd[k].fd = -1;
            }
        }

        ngx_chat_bench_aggregate(pa);
        now = ngx_chat_bench_now();

        if (!o->quiet && now - last_progress >= 1000000000ull) {
            last_progress = now;
            ngx_chat_bench_progress(pa, now);
        }

        if (stopping) {
            if (now > stop_end) {
                break;
            }

            continue;
        }

        if (pa->why[0] == '\0' && ngx_chat_bench_signalled) {
            snprintf(pa->why, sizeof(pa->why), "interrupted during %s",
                     ngx_chat_bench_phases[pa->phase]);
        }

        timeout = (uint64_t) (o->phase_timeout * 1e9);
        if (pa->phase == NGX_CHAT_BENCH_PH_RUN) {
            timeout += (uint64_t) (o->duration * 1e9);
        }

        if (pa->why[0] == '\0' && !pa->draining
            && now - phase_start > timeout)
        {
            snprintf(pa->why, sizeof(pa->why), "phase %s timed out after "
                     "%.0f s", ngx_chat_bench_phases[pa->phase],
                     (double) timeout / 1e9);
        }

        if (pa->why[0] == '\0' && !pa->draining
            && pa->agg[NGX_CHAT_BENCH_C_PHASE] >= (uint64_t) pa->phase)
        {
            pa->done = pa->phase;
            ngx_chat_bench_take(pa, pa->phase);
            phase_start = now;

            if (pa->phase < NGX_CHAT_BENCH_PH_RUN) {
                ngx_chat_bench_go(pa, pa->phase + 1,
                                  now + 100 * 1000000ull);
                continue;
            }

            /* every scenario: what is owed must arrive (chat always
             * drains; storm may owe what setup did not deliver) */
            if (o->scenario == NGX_CHAT_BENCH_CHAT
                || pa->agg[NGX_CHAT_BENCH_C_DELIVERED]
                   < pa->agg[NGX_CHAT_BENCH_C_EXPECTED])
            {
                pa->draining = 1;
                drain_end = now + (uint64_t) (o->drain_timeout * 1e9);

            } else {
                pa->complete = 1;
            }
        }

        if (pa->draining && pa->why[0] == '\0') {
            if (pa->agg[NGX_CHAT_BENCH_C_DELIVERED]
                >= pa->agg[NGX_CHAT_BENCH_C_EXPECTED])
            {
                pa->complete = 1;

            } else if (now > drain_end) {
                snprintf(pa->why, sizeof(pa->why), "deliveries still "
                         "missing after --drain-timeout %.0f s",
                         o->drain_timeout);
            }
        }

        if (pa->complete || pa->why[0]) {
            ngx_chat_bench_take(pa, NGX_CHAT_BENCH_PH_STOP);
            stopping = 1;
            stop_end = now + 60 * 1000000000ull;

            for (k = 0; k < o->procs; k++) {
                if (!pa->kids[k].dead) {
                    (void) ngx_chat_bench_pipe_write(pa->kids[k].wr,
                                                     NGX_CHAT_BENCH_MSG_STOP,
                                                     NULL, 0);
                }
            }
        }
    }

    for (k = 0; k < o->procs; k++) {
        if (!pa->kids[k].final) {
            kill(pa->kids[k].pid, SIGKILL);
        }

        (void) waitpid(pa->kids[k].pid, &status, 0);
    }

    ngx_chat_bench_aggregate(pa);

    if (!o->quiet) {
        ngx_chat_bench_progress(pa, ngx_chat_bench_now());
    }

    free(pfd);

    if (!pa->complete) {
        return 1;
    }

    if (pa->agg[NGX_CHAT_BENCH_C_DELIVERED]
        < pa->agg[NGX_CHAT_BENCH_C_EXPECTED]
        || pa->agg[NGX_CHAT_BENCH_C_SEND_FAILED]
        || pa->agg[NGX_CHAT_BENCH_C_CONN_FAILED])
    {
        return 1;
    }

    return 0;
}


static uint64_t
ngx_chat_bench_errors(const uint64_t *cnt)
{
    int       i;
    uint64_t  n;

    n = 0;

    for (i = 0; i < NGX_CHAT_BENCH_NCOUNTERS; i++) {
        if (ngx_chat_bench_counter_info[i].error) {
            n += cnt[i];
        }
    }

    return n;
}


static void
ngx_chat_bench_progress(ngx_chat_bench_parent_t *pa, uint64_t now)
{
    uint64_t  *a;

    a = pa->agg;

    fprintf(stderr, "[%6.1fs] %-7s ready=%llu/%u open=%llu sent=%llu "
            "acked=%llu dlv=%llu/%llu infl=%llu err=%llu "
            "%s p99=%.2fms (n=%llu)\n",
            (double) (now - pa->t_start) / 1e9,
            pa->draining ? "drain" : ngx_chat_bench_phases[pa->phase],
            (unsigned long long) a[NGX_CHAT_BENCH_C_READY], pa->o->nconns,
            (unsigned long long) a[NGX_CHAT_BENCH_C_OPEN_NOW],
            (unsigned long long) a[NGX_CHAT_BENCH_C_SENT],
            (unsigned long long) a[NGX_CHAT_BENCH_C_ACKED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_DELIVERED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_EXPECTED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_INFLIGHT],
            (unsigned long long) ngx_chat_bench_errors(a),
            pa->o->scenario == NGX_CHAT_BENCH_CHAT ? "e2e"
            : pa->o->scenario == NGX_CHAT_BENCH_OFFLINE ? "drain"
            : pa->o->scenario == NGX_CHAT_BENCH_STORM ? "back" : "connect",
            (double) ngx_chat_bench_hist_pct(pa->interval, 99) / 1e6,
            (unsigned long long) pa->interval->count);

    ngx_chat_bench_hist_reset(pa->interval);
}


/* ---------------------------------------------------------------------- */

static double
ngx_chat_bench_sec(uint64_t a, uint64_t b)
{
    return b > a ? (double) (b - a) / 1e9 : 0;
}


static void
ngx_chat_bench_json_hist(FILE *f, const char *name,
    const ngx_chat_bench_hist_t *h, const char *sep)
{
    fprintf(f, "    \"%s\": {\"count\": %llu, \"p50\": %.3f, \"p90\": %.3f, "
            "\"p99\": %.3f, \"p99.9\": %.3f, \"max\": %.3f, "
            "\"mean\": %.3f}%s\n", name, (unsigned long long) h->count,
            (double) ngx_chat_bench_hist_pct(h, 50) / 1e6,
            (double) ngx_chat_bench_hist_pct(h, 90) / 1e6,
            (double) ngx_chat_bench_hist_pct(h, 99) / 1e6,
            (double) ngx_chat_bench_hist_pct(h, 99.9) / 1e6,
            (double) h->max / 1e6,
            h->count ? (double) h->sum / (double) h->count / 1e6 : 0.0,
            sep);
}


static void
ngx_chat_bench_json_proc(FILE *f, const char *name,
    ngx_chat_bench_parent_t *pa, size_t off, const char *sep)
{
    int                     i;
    const char             *comma;
    ngx_chat_bench_proc_t  *p, *p0;

    p0 = (ngx_chat_bench_proc_t *) ((char *) &pa->s[0] + off);
    fprintf(f, "    \"%s\": {\"processes\": %u, \"rss_kib\": {", name,
            p0->nprocs);

    comma = "";
    for (i = 0; i < NGX_CHAT_BENCH_NSAMPLES; i++) {
        if (pa->s[i].taken) {
            p = (ngx_chat_bench_proc_t *) ((char *) &pa->s[i] + off);
            fprintf(f, "%s\"%s\": %llu", comma, ngx_chat_bench_phases[i],
                    (unsigned long long) p->rss_kib);
            comma = ", ";
        }
    }

    fprintf(f, "}, \"cpu_s\": {");

    comma = "";
    for (i = 1; i < NGX_CHAT_BENCH_NSAMPLES; i++) {
        if (pa->s[i].taken && pa->s[i - 1].taken) {
            p = (ngx_chat_bench_proc_t *) ((char *) &pa->s[i] + off);
            p0 = (ngx_chat_bench_proc_t *) ((char *) &pa->s[i - 1] + off);
            fprintf(f, "%s\"%s\": %.2f", comma,
                    i == NGX_CHAT_BENCH_PH_STOP ? "drain"
                                                : ngx_chat_bench_phases[i],
                    p->cpu_ns > p0->cpu_ns
                    ? (double) (p->cpu_ns - p0->cpu_ns) / 1e9 : 0.0);
            comma = ", ";
        }
    }

    fprintf(f, "}}%s\n", sep);
}


static void
ngx_chat_bench_result(ngx_chat_bench_parent_t *pa, FILE *f)
{
    int                       i, first;
    double                    secs, rate;
    uint64_t                  *a, lost, ready, rss0, rss1, slab0, slab1;
    ngx_chat_bench_opts_t     *o;
    ngx_chat_bench_sample_t   *s0, *s1, *srun, *send;
    ngx_chat_bench_kernel_t   *k;
    struct rusage             ru;

    o = pa->o;
    a = pa->agg;
    s0 = &pa->s[0];
    s1 = &pa->s[NGX_CHAT_BENCH_PH_CONNECT];
    srun = &pa->s[NGX_CHAT_BENCH_PH_RUN];
    send = &pa->s[NGX_CHAT_BENCH_PH_STOP];

    lost = a[NGX_CHAT_BENCH_C_EXPECTED] > a[NGX_CHAT_BENCH_C_DELIVERED]
           ? a[NGX_CHAT_BENCH_C_EXPECTED] - a[NGX_CHAT_BENCH_C_DELIVERED]
           : 0;

    fprintf(f, "{\n  \"scenario\": \"%s\",\n  \"tag\": \"%s\",\n",
            ngx_chat_bench_scenarios[o->scenario], o->tag);
    fprintf(f, "  \"complete\": %s,\n  \"incomplete_reason\": \"%s\",\n",
            pa->complete ? "true" : "false", pa->why);
    fprintf(f, "  \"zero_loss\": %s,\n",
            pa->complete && lost == 0 && a[NGX_CHAT_BENCH_C_SEND_FAILED] == 0
            ? "true" : "false");
    fprintf(f, "  \"params\": {\"procs\": %u, \"src_ips\": %u, "
            "\"connections\": %u, \"users\": %u, \"background\": %u, "
            "\"rate\": %.0f, \"duration_s\": %.1f, \"msg_size\": %u, "
            "\"group_share\": %.3f, \"big_share\": %.3f, \"messages\": %u, "
            "\"reps\": %u, \"pairs\": %u, \"unacked\": %u, "
            "\"concurrency\": %u, \"retry_max_s\": %.2f, "
            "\"no_resend\": %s, \"tick_us\": %llu, \"tls\": %s, "
            "\"http\": %s, \"seed\": %llu},\n",
            o->procs, o->src_ips, o->nconns,
            o->scenario == NGX_CHAT_BENCH_CHAT ? o->users : 0,
            o->scenario == NGX_CHAT_BENCH_CHAT ? o->background : 0,
            o->rate, o->duration, o->msg_size, o->group_share,
            o->big_share, o->messages, o->reps, o->pairs, o->unacked,
            o->concurrency, o->retry_max,
            o->no_resend ? "true" : "false",
            (unsigned long long) (o->tick / 1000), o->tls ? "true" : "false",
            o->http ? "true" : "false", (unsigned long long) o->seed);
    fprintf(f, "  \"elapsed_s\": %.2f,\n",
            ngx_chat_bench_sec(pa->t_start, ngx_chat_bench_now()));

    /* connections */
    ready = s1->taken ? s1->cnt[NGX_CHAT_BENCH_C_READY]
                      : a[NGX_CHAT_BENCH_C_READY];
    secs = s1->taken ? ngx_chat_bench_sec(
                           s1->cnt[NGX_CHAT_BENCH_C_T_CONNECT_FIRST],
                           s1->cnt[NGX_CHAT_BENCH_C_T_CONNECT_LAST])
                     : 0;
    rate = secs > 0 ? (double) ready / secs : 0;

    fprintf(f, "  \"connections\": {\"target\": %u, \"ready\": %llu, "
            "\"connect_phase_s\": %.3f, \"connect_rate_per_s\": %.0f, "
            "\"connects\": %llu, \"failed\": %llu, \"reconnects\": %llu},\n",
            o->nconns, (unsigned long long) ready, secs, rate,
            (unsigned long long) a[NGX_CHAT_BENCH_C_CONNECTS],
            (unsigned long long) a[NGX_CHAT_BENCH_C_CONN_FAILED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_RECONNECTS]);

    /* messages */
    secs = ngx_chat_bench_sec(a[NGX_CHAT_BENCH_C_T_RUN_FIRST],
                              a[NGX_CHAT_BENCH_C_T_LAST_ACK]);
    fprintf(f, "  \"messages\": {\"sent\": %llu, \"acked\": %llu, "
            "\"acked_duplicate\": %llu, \"resends\": %llu, "
            "\"send_failed\": %llu, \"send_refused\": %llu, "
            "\"unresolved\": %llu, \"throughput_per_s\": %.0f, ",
            (unsigned long long) a[NGX_CHAT_BENCH_C_SENT],
            (unsigned long long) a[NGX_CHAT_BENCH_C_ACKED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_ACKED_DUP],
            (unsigned long long) a[NGX_CHAT_BENCH_C_RESENDS],
            (unsigned long long) a[NGX_CHAT_BENCH_C_SEND_FAILED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_SEND_REFUSED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_INFLIGHT],
            o->scenario == NGX_CHAT_BENCH_CHAT && secs > 0
            ? (double) a[NGX_CHAT_BENCH_C_ACKED] / secs : 0.0);
    secs = ngx_chat_bench_sec(a[NGX_CHAT_BENCH_C_T_RUN_FIRST],
                              a[NGX_CHAT_BENCH_C_T_LAST_DELIVERY]);
    fprintf(f, "\"deliveries_per_s\": %.0f, \"expected_deliveries\": %llu, "
            "\"delivered\": %llu, \"lost\": %llu, \"duplicates\": %llu, "
            "\"reorders\": %llu, \"redelivered\": %llu, "
            "\"events_acked\": %llu, \"chats_created\": %llu, "
            "\"chat_updates\": %llu, \"offline_drains\": %llu, "
            "\"bytes_out\": %llu, \"bytes_in\": %llu},\n",
            o->scenario == NGX_CHAT_BENCH_CHAT && secs > 0
            ? (double) a[NGX_CHAT_BENCH_C_DELIVERED] / secs : 0.0,
            (unsigned long long) a[NGX_CHAT_BENCH_C_EXPECTED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_DELIVERED],
            (unsigned long long) lost,
            (unsigned long long) a[NGX_CHAT_BENCH_C_DUPLICATES],
            (unsigned long long) a[NGX_CHAT_BENCH_C_REORDERS],
            (unsigned long long) a[NGX_CHAT_BENCH_C_REDELIVERED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_EVENTS_ACKED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_CHATS_CREATED],
            (unsigned long long) a[NGX_CHAT_BENCH_C_CHAT_UPDATES],
            (unsigned long long) a[NGX_CHAT_BENCH_C_DRAINS],
            (unsigned long long) a[NGX_CHAT_BENCH_C_BYTES_OUT],
            (unsigned long long) a[NGX_CHAT_BENCH_C_BYTES_IN]);

    if (o->scenario == NGX_CHAT_BENCH_STORM) {
        fprintf(f, "  \"storm\": {\"all_back_s\": %.3f, "
                "\"all_drained_s\": %.3f},\n",
                ngx_chat_bench_sec(a[NGX_CHAT_BENCH_C_T_RUN_FIRST],
                                   a[NGX_CHAT_BENCH_C_T_STORM_BACK]),
                ngx_chat_bench_sec(a[NGX_CHAT_BENCH_C_T_RUN_FIRST],
                                   a[NGX_CHAT_BENCH_C_T_STORM_DRAINED]));
    }

    /* latency */
    fprintf(f, "  \"latency_ms\": {\n");
    for (i = NGX_CHAT_BENCH_NHISTS - 1; i >= 0; i--) {
        if (pa->hist[i]->count) {
            break;
        }
    }

    first = i;
    for (i = 0; i <= first; i++) {
        if (pa->hist[i]->count) {
            ngx_chat_bench_json_hist(f, ngx_chat_bench_hist_names[i],
                                     pa->hist[i], i == first ? "" : ",");
        }
    }

    fprintf(f, "  },\n");

    /* errors */
    fprintf(f, "  \"errors_total\": %llu,\n  \"errors\": {",
            (unsigned long long) ngx_chat_bench_errors(a));
    first = 1;
    for (i = 0; i < NGX_CHAT_BENCH_NCOUNTERS; i++) {
        if (ngx_chat_bench_counter_info[i].error && a[i]) {
            fprintf(f, "%s\"%s\": %llu", first ? "" : ", ",
                    ngx_chat_bench_counter_info[i].name,
                    (unsigned long long) a[i]);
            first = 0;
        }
    }

    fprintf(f, "},\n");

    /* processes */
    fprintf(f, "  \"processes\": {\n");
    ngx_chat_bench_json_proc(f, "nginx", pa,
                             offsetof(ngx_chat_bench_sample_t, nginx), ",");
    ngx_chat_bench_json_proc(f, "postgres", pa,
                             offsetof(ngx_chat_bench_sample_t, pg), ",");
    ngx_chat_bench_json_proc(f, "redis", pa,
                             offsetof(ngx_chat_bench_sample_t, redis), ",");
    ngx_chat_bench_json_proc(f, "generator", pa,
                             offsetof(ngx_chat_bench_sample_t, gen), "");
    fprintf(f, "  },\n");

    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        fprintf(f, "  \"generator_workers_cpu_s\": %.2f,\n",
                (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
                + (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    }

    /* kernel */
    fprintf(f, "  \"kernel\": {");
    first = 1;
    for (i = 0; i < NGX_CHAT_BENCH_NSAMPLES; i++) {
        if (!pa->s[i].taken) {
            continue;
        }

        k = &pa->s[i].kernel;
        fprintf(f, "%s\n    \"%s\": {\"slab_kib\": %llu, \"sockets_used\": "
                "%llu, \"tcp_inuse\": %llu, \"tcp_orphan\": %llu, "
                "\"tcp_tw\": %llu, \"tcp_alloc\": %llu, "
                "\"tcp_mem_pages\": %llu}", first ? "" : ",",
                ngx_chat_bench_phases[i],
                (unsigned long long) k->slab_kib,
                (unsigned long long) k->sockets_used,
                (unsigned long long) k->tcp_inuse,
                (unsigned long long) k->tcp_orphan,
                (unsigned long long) k->tcp_tw,
                (unsigned long long) k->tcp_alloc,
                (unsigned long long) k->tcp_mem_pages);
        first = 0;
    }

    fprintf(f, "\n  },\n");

    /* idle: memory per connection, measured at the end of the hold */
    ready = srun->taken ? srun->cnt[NGX_CHAT_BENCH_C_OPEN_NOW] : 0;
    rss0 = s0->nginx.rss_kib;
    rss1 = srun->taken ? srun->nginx.rss_kib : 0;
    slab0 = s0->kernel.slab_kib;
    slab1 = srun->taken ? srun->kernel.slab_kib : 0;

    /* reclaimable slab (dentries, other tests' leftovers) may shrink
     * meanwhile: take the higher of the end of connect and of the hold */
    if (s1->taken && s1->kernel.slab_kib > slab1) {
        slab1 = s1->kernel.slab_kib;
    }

    fprintf(f, "  \"per_connection\": {\"open\": %llu, "
            "\"nginx_rss_bytes\": %.0f, \"kernel_slab_bytes_both_ends\": "
            "%.0f, \"tcp_mem_bytes_both_ends\": %.0f},\n",
            (unsigned long long) ready,
            ready && rss1 > rss0 ? (double) (rss1 - rss0) * 1024 / ready : 0,
            ready && slab1 > slab0
            ? (double) (slab1 - slab0) * 1024 / ready : 0,
            ready && srun->kernel.tcp_mem_pages > s0->kernel.tcp_mem_pages
            ? (double) (srun->kernel.tcp_mem_pages
                        - s0->kernel.tcp_mem_pages) * 4096 / ready : 0);

    /* where the CPU went during the run (and drain) */
    if (srun->taken && pa->s[NGX_CHAT_BENCH_PH_SETUP].taken) {
        secs = ngx_chat_bench_sec(pa->s[NGX_CHAT_BENCH_PH_SETUP].t,
                                  send->taken ? send->t : srun->t);
        fprintf(f, "  \"run_cpu_share\": {\"wall_s\": %.2f, \"nginx\": %.2f, "
                "\"postgres\": %.2f, \"redis\": %.2f, \"generator\": %.2f},"
                "\n", secs,
                secs > 0 ? (double) ((send->taken ? send : srun)->nginx.cpu_ns
                           - pa->s[NGX_CHAT_BENCH_PH_SETUP].nginx.cpu_ns)
                           / 1e9 / secs : 0,
                secs > 0 ? (double) ((send->taken ? send : srun)->pg.cpu_ns
                           - pa->s[NGX_CHAT_BENCH_PH_SETUP].pg.cpu_ns)
                           / 1e9 / secs : 0,
                secs > 0 ? (double) ((send->taken ? send : srun)->redis.cpu_ns
                           - pa->s[NGX_CHAT_BENCH_PH_SETUP].redis.cpu_ns)
                           / 1e9 / secs : 0,
                secs > 0 ? (double) ((send->taken ? send : srun)->gen.cpu_ns
                           - pa->s[NGX_CHAT_BENCH_PH_SETUP].gen.cpu_ns)
                           / 1e9 / secs : 0);
    }

    fprintf(f, "  \"version\": 1\n}\n");
}
