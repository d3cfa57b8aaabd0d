#!/usr/bin/perl

# Scale-out fault: Redis (the bus between workers and instances) stops for
# about 20 s under steady traffic, then starts again on the same port.
# Two gateway instances (worker_processes 2 each) over one database and a
# private Redis; clients connect directly to both instances, so most
# messages cross workers and instances.
#   - sends keep succeeding (they need PostgreSQL only);
#   - delivery goes on by polling PostgreSQL every chat_poll_interval (1 s):
#     the end-to-end latency of messages stored during the outage stays
#     under poll interval + margin (3 s);
#   - once Redis is back the workers resubscribe and push again (latency
#     back to push levels);
#   - nothing missing, nothing duplicated after dedupe, no inbox row left.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;

my $OUTAGE = 20;
my $POLL = 1;

my $c = ChatTest::Cluster->new(instances => 2, workers => 2, lb => 0);
my $rd = $c->private_redis;
$c->conf(http => "chat_ping_interval 60s;\n    chat_poll_interval ${POLL}s;")
    ->run;
my $t = $c->t;

my $tr = ChatTest::Cluster::Traffic->new(t => $t, ports => [ $c->ports ],
    users => 12, rate => 2);
ok $tr->start(timeout => 30), 'clients connected to both instances,'
    . ' chats created';

sub count_log {
    my ($re) = @_;
    return map { scalar $_->grep_log($re) } $c->nodes;
}

$tr->pump(3);
my ($max, $n, $median) = $tr->latency(0, time);
cmp_ok $n, '>', 20, "steady traffic flows ($n deliveries)";
diag sprintf 'before the outage: e2e latency median %.3fs max %.3fs',
    $median, $max;

# --- Redis stops

my @sub_up = count_log(qr/redis sub: connected to/);
my $t_stop = time;
my ($st, $out) = $tr->run_cmd($c->service_cmd($rd, 'stop'), 30);
is $st, 0, 'Redis stopped' or diag $out;

my $noticed = $tr->pump_until(sub {
    my @down = count_log(qr/redis subscriber down/);
    !grep { $_ < 2 } @down;
}, 10);
ok $noticed, 'every worker noticed (and polls)'
    or diag 'subscriber down lines per instance: '
        . join ' ', count_log(qr/redis subscriber down/);

$tr->pump($t_stop + $OUTAGE - time);

my $t_start = time;
($st, $out) = $tr->run_cmd($c->service_cmd($rd, 'start'), 30);
is $st, 0, 'Redis started again after ' . int($t_start - $t_stop) . ' s'
    or diag $out;
my $t_started = time;
diag sprintf 'Redis stopped at %.3f, started at %.3f-%.3f', $t_stop,
    $t_start, $t_started;

# sends during the outage: all answered ok
my @r = $tr->responses($t_stop, $t_started);
my @bad = grep { $_->[3] ne 'ok' } @r;
cmp_ok scalar(@r), '>', 10 * $OUTAGE, scalar(@r) . ' sends during the outage';
ok !@bad, 'all answered ok'
    or diag scalar(@bad) . ' not ok, e.g. ' . join ' ',
        map { $_->[3] } @bad[0 .. ($#bad < 9 ? $#bad : 9)];

# the workers resubscribe (their reconnect backoff is at most 5 s)
my $back = $tr->pump_until(sub {
    my @up = count_log(qr/redis sub: connected to/);
    !grep { $up[$_] < $sub_up[$_] + 2 } 0 .. $#up;
}, 20);
ok $back, 'every worker resubscribed';
diag sprintf 'resubscribed by %.3f', time;
my $t_push = time + 1;
$tr->pump(5);

# latencies: during the outage by polling, after it by push again
($max, $n, $median) = $tr->latency($t_stop, $t_started);
cmp_ok $n, '>', 10 * $OUTAGE, "$n deliveries of messages stored during"
    . ' the outage';
cmp_ok $max, '<', $POLL + 2, sprintf('their e2e latency stays under poll'
    . ' interval + 2 s (max %.3fs, median %.3fs)', $max, $median);

($max, $n, $median) = $tr->latency($t_push, time);
cmp_ok $n, '>', 20, "$n deliveries after Redis is back";
cmp_ok $median, '<', 0.25, sprintf('pushed again: median e2e latency'
    . ' %.3fs (max %.3fs)', $median, $max);

$tr->check($c, name => 'redis outage');
$tr->close_all;

$c->done_testing;
