#!/usr/bin/perl

# Scale-out fault: a client that stops reading.  One gateway instance
# (worker_processes 2) with a small chat_output_limit (16k), a small
# server send buffer (listen ... sndbuf=4k) and a small client receive
# buffer; background traffic goes on while four senders push a couple of
# thousand 1 KB messages at the device that never reads.
#   - its connection is cut when its output queue passes chat_output_limit
#     (error.log says so);
#   - the workers' memory (VmRSS) does not grow by more than a few MiB
#     while the messages are sent: they wait in the inbox, not in nginx;
#   - when the client reads again it sees the end of its connection,
#     reconnects and receives everything; the accounting holds for every
#     device (each message once after dedupe, no inbox row left).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;

my $PER_SENDER = $ENV{CHAT_TEST_BURST} // 600;
my $RSS_SLACK_KB = 4096;

my $c = ChatTest::Cluster->new(instances => 1, workers => 2, lb => 0);
$c->conf(listen => ' sndbuf=4k', http => <<'EOF')->run;
    chat_output_limit 16k;
    chat_max_frame_size 12k;
    chat_max_message_size 8k;
    chat_send_timeout 60s;
    chat_ping_interval 60s;
EOF
my $t = $c->t;
my $node = $c->node(1);

# tru1 never reads; tru3, tru5, tru7, tru9 send it bursts; everybody
# also takes part in the background traffic
my $slow = 'tru1/d1';
my @senders = map { "tru$_" } 3, 5, 7, 9;
my $tr = ChatTest::Cluster::Traffic->new(t => $t, ports => [ $c->ports ],
    users => 10, rate => 1, size => 1000, quiet => [ $slow ],
    rcvbuf => { $slow => 4096 }, window => 8,
    chats => [
        (map { [ 'tru1', $_ ] } @senders),
        [ 'tru2', 'tru4' ], [ 'tru4', 'tru6', 'tru8' ], [ 'tru6', 'tru10' ],
        [ 'tru3', 'tru5', 'tru10' ], [ 'tru7', 'tru9', 'tru2' ],
    ]);
ok $tr->start(timeout => 30), 'clients connected, chats created';

# warm up: the slow device still reads
$tr->pump(3);
cmp_ok scalar(grep { $_->{chat}{members}[0] eq 'tru1' }
    values %{ $tr->{msgs} }), '>', 0, 'messages to the slow device flow';

$tr->pause($slow);
$tr->pump(0.5);
my $rss0 = $c->workers_rss_kb(1);
my $rss_max = $rss0;
diag "workers' VmRSS before the burst: $rss0 kB";

my $t_burst = time;
my $before = $tr->messages;
for my $s (@senders) {
    $tr->burst("$s/d1", $tr->chat_of('tru1', $s), $PER_SENDER);
}
my $sent = $tr->pump_until(sub {
    my $rss = $c->workers_rss_kb(1);
    $rss_max = $rss if $rss > $rss_max;
    !grep { @{ $tr->dev("$_/d1")->{queue} } || @{ $tr->dev("$_/d1")->{later} }
        || %{ $tr->dev("$_/d1")->{req} } } @senders;
}, 120);
my $stored = $tr->messages - $before;
ok $sent, sprintf '%d messages (%d to the slow device) stored in %.1fs',
    $stored, $PER_SENDER * @senders, time - $t_burst;

ok $node->wait_log(qr/output limit/, 0),
    'its connection was cut at chat_output_limit' or diag $node->log_tail;

$tr->pump(1);
my $rss1 = $c->workers_rss_kb(1);
$rss_max = $rss1 if $rss1 > $rss_max;
SKIP: {
    # AddressSanitizer keeps freed memory in quarantine (up to 256 MiB):
    # RSS says nothing about our memory use in that build
    skip 'RSS is meaningless under AddressSanitizer', 1
        if $ENV{CHAT_TEST_PRELOAD};
    cmp_ok $rss_max - $rss0, '<', $RSS_SLACK_KB, "workers' VmRSS grew by "
        . ($rss_max - $rss0) . " kB at most ($rss0 -> max $rss_max, now $rss1)";
}

my $waiting = $c->psql("SELECT count(*) FROM inbox WHERE user_id = 'tru1'");
cmp_ok $waiting, '>=', $PER_SENDER * @senders - 200,
    "$waiting events wait in the slow device's inbox";

# it reads again: the end of the old connection, a new one, the inbox
my $t_resume = time;
my $d = $tr->dev($slow);
my $got0 = keys %{ $d->{got} };
$tr->resume($slow);
my $back = $tr->pump_until(sub {
    $tr->dropped_since($t_resume) && $d->{state} eq 'open'
        && $d->{registered};
}, 15);
ok $back, 'the slow device finds its connection closed and reconnects'
    . ' (' . join(' ', map { $_->[1] } grep { $_->[0] >= $t_burst }
        @{ $d->{close_log} }) . ')';

$tr->check($c, name => 'slow reader');
diag sprintf 'the slow device received %d messages after it resumed'
    . ' (%.1fs)', keys(%{ $d->{got} }) - $got0, time - $t_resume;
$tr->close_all;

$c->done_testing;
