#!/usr/bin/perl

# Scale-out fault: a whole gateway instance goes away under steady traffic.
# Two instances (worker_processes 2 each) over one database and Redis
# prefix, clients connected through the L4 load balancer.
#   1. instance 1 is stopped gracefully (SIGQUIT to its master): its clients
#      get 1001 and move to instance 2 through the load balancer;
#   2. instance 1 is started again, then instance 2 is killed outright
#      (SIGKILL to its whole process group): its clients see their
#      connections drop and move to instance 1.
# In the end every stored message reached every recipient device exactly
# once (after dropping duplicates by messageId) and no inbox row is left.

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

# device connections an instance has accepted so far
sub connections {
    my ($i) = @_;
    return scalar $c->node($i)->grep_log(qr/chat: device connected/);
}

my @connected = map { connections($_) } 1, 2;
ok $connected[0] && $connected[1],
    "clients on both instances (@connected connections)";

$tr->pump(3);
cmp_ok $tr->messages, '>', 20, 'steady traffic flows ('
    . $tr->messages . ' messages stored)';

# --- 1. SIGQUIT instance 1

my $t_quit = time;
ok $c->node(1)->signal('QUIT'), 'SIGQUIT to the master of instance 1';
ok $tr->pump_until(sub { $c->node_exited(1) }, 20),
    'instance 1 exits while the traffic goes on';
is $c->node(1)->{exit_status}, 0, 'with status 0';

my $moved = $tr->pump_until(sub {
    $tr->dropped_since($t_quit) && $tr->all_ready;
}, 30);
my @dropped = $tr->dropped_since($t_quit);
my $codes = $tr->closes_since($t_quit);
ok scalar(@dropped), scalar(@dropped) . ' clients lost their connection ('
    . join(' ', map { "$_=$codes->{$_}" } sort keys %$codes) . ')';
ok $codes->{1001}, 'with close code 1001';
ok $moved, 'all clients are connected again (to instance 2)'
    or diag join ' ', map { "$_->{name}:$_->{state}" }
        grep { !($_->{state} eq 'open' && $_->{registered}) } $tr->devices;

my $before = $tr->messages;
$tr->pump(3);
cmp_ok $tr->messages, '>', $before, 'traffic goes on with one instance';

# --- 2. instance 1 back, instance 2 killed with its whole group

$c->node(1)->run;
ok $c->node(1)->pid, 'instance 1 started again';
$tr->pump(1);

my $t_kill = time;
my $on1 = connections(1);
my $pid2 = $c->node(2)->pid;
$c->node(2)->kill_nginx;
ok !kill(0, -$pid2), 'instance 2 killed (SIGKILL to its process group)';

$moved = $tr->pump_until(sub {
    $tr->dropped_since($t_kill) && $tr->all_ready;
}, 30);
@dropped = $tr->dropped_since($t_kill);
ok scalar(@dropped) >= @{ [ $tr->devices ] } - 2,
    scalar(@dropped) . ' clients lost their connection';
ok $moved, 'all clients are connected again (to instance 1)'
    or diag join ' ', map { "$_->{name}:$_->{state}" }
        grep { !($_->{state} eq 'open' && $_->{registered}) } $tr->devices;
cmp_ok connections(1) - $on1, '>=', scalar(@dropped),
    'instance 1 took them';

$before = $tr->messages;
$tr->pump(3);
cmp_ok $tr->messages, '>', $before, 'traffic goes on after the kill';

$tr->check($c, name => 'instance stop');
$tr->close_all;

$c->done_testing;
