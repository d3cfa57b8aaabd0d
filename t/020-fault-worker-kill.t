#!/usr/bin/perl

# Scale-out fault: a gateway worker dies (kill -9) under steady traffic.
# Two gateway instances (worker_processes 2 each) share one database and
# one Redis prefix behind an L4 load balancer; simulated users (1-2
# devices, 1:1 and group chats) send steadily.  The busiest worker of
# instance 1 is killed: its clients reconnect (to the same instance or the
# other one), resend what was not acknowledged, and in the end every stored
# message reached every recipient device exactly once (after dropping
# duplicates by messageId) and no inbox row is left.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;

my $c = ChatTest::Cluster->new(instances => 2, workers => 2);
$c->conf(http => 'chat_ping_interval 60s;')->run;
my $t = $c->t;

my $tr = ChatTest::Cluster::Traffic->new(t => $t, ports => [ $c->lb_port ],
    users => 12, rate => 2);
ok $tr->start(timeout => 30),
    'clients connected through the load balancer, chats created';

my @connected = map {
    scalar $_->grep_log(qr/chat: device connected/)
} $c->nodes;
ok $connected[0] && $connected[1],
    "clients on both instances (@connected connections)";

$tr->pump(3);
cmp_ok $tr->messages, '>', 20, 'steady traffic flows ('
    . $tr->messages . ' messages stored)';

# the worker of instance 1 with the most sockets
my ($victim, $sockets) = $c->busiest_worker(1);
my $t_kill = time;
ok $c->kill_worker(1, $victim), "kill -9 worker $victim of instance 1"
    . " ($sockets sockets)";

my $respawned = $tr->pump_until(sub {
    my @w = $c->node(1)->worker_pids;
    @w == 2 && !grep { $_ == $victim } @w;
}, 15);
ok $respawned, 'the master started a new worker';

my $moved = $tr->pump_until(sub {
    $tr->dropped_since($t_kill) && $tr->all_ready;
}, 30);
my @dropped = $tr->dropped_since($t_kill);
ok scalar(@dropped), scalar(@dropped) . ' clients lost their connection';
ok $moved, 'and all of them are connected again'
    or diag join ' ', map { "$_->{name}:$_->{state}" }
        grep { !($_->{state} eq 'open' && $_->{registered}) } $tr->devices;

# more traffic after the fault
my $before = $tr->messages;
$tr->pump(3);
cmp_ok $tr->messages, '>', $before, 'traffic goes on after the fault';

$tr->check($c, name => 'worker kill');
$tr->close_all;

$c->done_testing;
