#!/usr/bin/perl

# Scale-out fault: nginx -s reload (SIGHUP to the master) under a couple of
# thousand connections.  One gateway instance (worker_processes 2,
# worker_connections raised), 2000 idle devices plus ~20 active ones with
# steady traffic.  The old workers close every WebSocket with 1001, spread
# over chat_shutdown_spread; clients reconnect after 0-2 s to the new
# workers; the old workers exit; nothing is lost: every stored message
# reached every recipient device exactly once (after dedupe), no inbox row
# is left.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;

my $IDLE = $ENV{CHAT_TEST_IDLE} // 2000;

my $c = ChatTest::Cluster->new(instances => 1, workers => 2, lb => 0,
    worker_connections => 8192);
$c->conf(pool => 4, listen => ' backlog=4096',
    http => "chat_ping_interval 60s;\n    chat_shutdown_spread 2s;")->run;
my $t = $c->t;
my $node = $c->node(1);

my $tr = ChatTest::Cluster::Traffic->new(t => $t, ports => [ $c->ports ],
    users => 12, rate => 2, idle => $IDLE, max_connecting => 200);
my $t0 = time;
ok $tr->start(timeout => 90), scalar(@{ [ $tr->devices ] })
    . ' devices connected, chats created';
diag sprintf 'connected and registered in %.1fs', time - $t0;

$tr->pump(3);
cmp_ok $tr->messages, '>', 20, 'steady traffic flows ('
    . $tr->messages . ' messages stored)';

# --- reload

my %old = map { $_ => 1 } $node->worker_pids;
my $before = () = $node->grep_log(qr/reconfiguring/);
my $t_reload = time;
ok $node->signal('HUP'), 'SIGHUP';
ok $tr->pump_until(sub {
    my $n = () = $node->grep_log(qr/reconfiguring/);
    $n > $before;
}, 10), 'nginx reconfigures';

my @devs = $tr->devices;
my $back = $tr->pump_until(sub {
    $tr->dropped_since($t_reload) == @devs && $tr->all_ready;
}, 60);
my $codes = $tr->closes_since($t_reload);
my @dropped = $tr->dropped_since($t_reload);
is scalar(@dropped), scalar(@devs), 'every client was disconnected ('
    . join(' ', map { "$_=$codes->{$_}" } sort keys %$codes) . ')';
my @no1001 = grep {
    !grep { $_->[0] >= $t_reload && $_->[1] eq '1001' } @{ $_->{close_log} }
} @devs;
ok !@no1001, 'each one with close code 1001'
    or diag scalar(@no1001) . ' without, e.g. ' . join ' ', map {
        "$_->{name}:" . join ',', map { $_->[1] } @{ $_->{close_log} }
    } @no1001[0 .. ($#no1001 < 9 ? $#no1001 : 9)];
ok $back, 'and all are connected again'
    or diag scalar(grep { !($_->{state} eq 'open' && $_->{registered}) }
        @devs) . ' not connected';
diag sprintf 'all reconnected %.1fs after SIGHUP', time - $t_reload;

ok $tr->pump_until(sub { !grep { $old{$_} } $node->worker_pids }, 20),
    'the old workers exited';

$before = $tr->messages;
$tr->pump(3);
cmp_ok $tr->messages, '>', $before, 'traffic goes on after the reload';

$tr->check($c, name => 'reload');
$tr->close_all(20);

$c->done_testing;
