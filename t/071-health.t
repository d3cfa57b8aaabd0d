#!/usr/bin/perl

# chat_health (docs/operations.md): 200 and {"status":"ok",...} while the
# worker's PostgreSQL pool and Redis subscriber are up; 503 with the reason
# within a second of either going away (killed: the sockets close at once),
# on every worker; 200 again once it is back.  The metrics follow: redis_up
# and polling flip, and the reconnects and errors are counted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use JSON::PP;
use ChatTest;
use ChatTest::Prom;

my $t = ChatTest->new(workers => 2);
my $pg = $t->private_pg;
my $rd = $t->private_redis;
$t->chat_conf(pg => $pg->conninfo, redis => $rd->conf, listen => ' reuseport',
    http => 'chat_ping_interval 600s;', server => <<'EOF')->run;
        location = /chat/health {
            chat_health;
        }
        location = /chat/metrics {
            chat_metrics;
        }
EOF

my $JSON = JSON::PP->new;

# (status, decoded body) of one health check
sub health {
    my ($status, undef, $body) = $t->http('GET', '/chat/health');
    return ($status, eval { $JSON->decode($body) } // { raw => $body });
}

sub metric { ChatTest::Prom::scrape($t)->{ $_[0] } // 0 }

# true once $n health checks in a row (they land on both workers) answer
# $want, within $timeout seconds; the time it took
sub settles {
    my ($want, $timeout, $n) = @_;
    my $t0 = time;
    my ($row, %pids) = (0);
    while (time - $t0 < $timeout) {
        my ($status, $b) = health();
        if ($status == $want) {
            $row++;
            $pids{ $b->{pid} // '' } = 1;
            return time - $t0 if $row >= ($n // 10) && keys %pids == 2;
        } else {
            ($row, %pids) = (0);
        }
    }
    return undef;
}

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.05) }

# kills a service (every process of it) and waits for them to be gone, so
# that it can start again
sub kill_service {
    my ($svc) = @_;
    my @p = $svc->pids;
    return 0 unless @p && $svc->kill('KILL', all => 1);
    return poll(sub { !grep { kill 0, $_ } @p });
}

ok poll(sub { $t->worker_pids == 2 }), 'two workers';
ok defined settles(200, 15), 'both workers healthy';
my ($status, $b) = health();
is $status, 200, '200 when all is up';
is_deeply { map { $_ => $b->{$_} } qw(status postgres redis) },
    { status => 'ok', postgres => JSON::PP::true, redis => JSON::PP::true },
    'the body says ok, postgres and redis up';
like $b->{pid}, qr/^\d+$/, 'the worker that answered';
is metric('ngx_chat_redis_up'), 1, 'redis_up 1';
is metric('ngx_chat_polling'), 0, 'polling 0';

# --- Redis goes away

my $rec = metric('ngx_chat_redis_reconnects_total');
my $t0 = time;
ok kill_service($rd), 'Redis killed';
my $took = settles(503, 5);
ok defined $took && $took < 1, 'every worker answers 503 within 1 s ('
    . (defined $took ? sprintf('%.3f s', $took) : 'never') . ')';
($status, $b) = health();
is $status, 503, 'still 503';
is $b->{reason}, 'redis down', 'the reason: redis down';
is $b->{status}, 'down', 'status down';
is metric('ngx_chat_redis_up'), 0, 'redis_up 0';
is metric('ngx_chat_polling'), 1, 'polling 1: inboxes are polled';

ok $rd->start, 'Redis started again';
ok defined settles(200, 20), '200 again once Redis is back';
ok poll(sub { metric('ngx_chat_redis_reconnects_total') == $rec + 2 }),
    'a reconnect counted per worker';
is metric('ngx_chat_redis_up'), 1, 'redis_up 1 again';
is metric('ngx_chat_polling'), 0, 'polling 0 again';

# --- PostgreSQL goes away

my $pgrec = metric('ngx_chat_pg_reconnects_total');
my $pgerr = metric('ngx_chat_pg_errors_total');
ok kill_service($pg), 'PostgreSQL killed';
$took = settles(503, 5);
ok defined $took && $took < 1, 'every worker answers 503 within 1 s ('
    . (defined $took ? sprintf('%.3f s', $took) : 'never') . ')';
($status, $b) = health();
is $b->{reason}, 'postgres down', 'the reason: postgres down';
ok $b->{redis} && !$b->{postgres}, 'redis up, postgres down';
cmp_ok metric('ngx_chat_pg_errors_total'), '>=', $pgerr + 2 * 2,
    'the lost pool connections are counted as errors';

# both at once
ok kill_service($rd), 'Redis killed too';
ok defined settles(503, 5), 'still 503 on every worker';
ok poll(sub { (health())[1]{reason} eq 'postgres and redis down' }),
    'the reason names both';

ok $pg->start, 'PostgreSQL started again';
ok $rd->start, 'Redis started again';
ok defined settles(200, 30), '200 again once both are back';
ok poll(sub { metric('ngx_chat_pg_reconnects_total') >= $pgrec + 2 * 2 }, 20),
    'every pool connection reconnected, counted (pool=2 on two workers)';

# not GET: 405
($status) = $t->http('POST', '/chat/health', [], '');
is $status, 405, 'POST: 405';

$t->done_testing;
