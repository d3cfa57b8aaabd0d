#!/usr/bin/perl

# Scale-out fault: PostgreSQL restarts, then hangs for a while, under
# steady traffic.  Two gateway
# instances (worker_processes 2 each) over one private PostgreSQL and one
# Redis prefix; clients connect directly to both instances.
#   - during the outage commands answer "unavailable" fast: every answer
#     within chat_db_timeout + 1 s, and no connection is closed;
#   - the same while PostgreSQL hangs (SIGSTOP) and then thaws: answers
#     come from chat_db_timeout;
#   - clients resend with the same clientMessageId (and retry failed acks);
#   - after recovery every message is stored once and reached every
#     recipient device exactly once (after dedupe), no inbox row is left.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;

my $DB_TIMEOUT = 2;
my $OUTAGE = 8;
my $FREEZE = 6;

my $c = ChatTest::Cluster->new(instances => 2, workers => 2, lb => 0);
my $pg = $c->private_pg;
$c->conf(http => "chat_ping_interval 60s;\n"
    . "    chat_db_timeout ${DB_TIMEOUT}s;")->run;
my $t = $c->t;

my $tr = ChatTest::Cluster::Traffic->new(t => $t, ports => [ $c->ports ],
    users => 12, rate => 2, req_timeout => 20);
ok $tr->start(timeout => 30), 'clients connected to both instances,'
    . ' chats created';

# the answers slower than chat_db_timeout + 1 s, times relative to the
# start of the fault
sub slow_answers {
    my ($from, $to, @r) = @_;
    my @slow = grep { $_->[1] - $_->[0] >= $DB_TIMEOUT + 1 } @r;
    diag sprintf "%d slow answers (fault from 0 to %.3f):\n%s", scalar @slow,
        $to - $from, join "\n", map {
            sprintf '  %s sent at %+.3f answered at %+.3f: %s', $_->[2],
                $_->[0] - $from, $_->[1] - $from, $_->[3]
        } @slow[0 .. ($#slow < 19 ? $#slow : 19)];
}

$tr->pump(3);
cmp_ok $tr->messages, '>', 20, 'steady traffic flows ('
    . $tr->messages . ' messages stored)';

# --- PostgreSQL stops ...

my $t_stop = time;
my ($st, $out) = $tr->run_cmd($c->service_cmd($pg, 'stop'), 30);
is $st, 0, 'PostgreSQL stopped' or diag $out;

my $unavailable = $tr->pump_until(sub {
    grep { $_->[3] eq 'unavailable' } $tr->responses($t_stop, time);
}, $DB_TIMEOUT + 5);
ok $unavailable, 'sends answer "unavailable"';

$tr->pump($t_stop + $OUTAGE - time);

# ... and starts again

my $t_start = time;
($st, $out) = $tr->run_cmd($c->service_cmd($pg, 'start'), 60);
is $st, 0, 'PostgreSQL started again after ' . int($t_start - $t_stop)
    . ' s' or diag $out;
my $t_started = time;
diag sprintf 'PostgreSQL stopped at %.3f, started at %.3f-%.3f', $t_stop,
    $t_start, $t_started;

# sends succeed again
my $recovered = $tr->pump_until(sub {
    grep { $_->[3] eq 'ok' } $tr->responses($t_started, time);
}, 30);
ok $recovered, 'sends succeed again';
my $t_ok = time;
$tr->pump(3);

# every answer from a little before the outage to the recovery came fast
my @r = $tr->responses($t_stop - 1, $t_ok);
my @unav = grep { $_->[3] eq 'unavailable' } @r;
my ($slowest) = sort { $b <=> $a } map { $_->[1] - $_->[0] } @r;
cmp_ok scalar(@unav), '>', 0, scalar(@r) . ' answers around the outage, '
    . scalar(@unav) . ' "unavailable"';
cmp_ok $slowest // 0, '<', $DB_TIMEOUT + 1, sprintf('each within'
    . ' chat_db_timeout + 1 s (slowest %.3fs)', $slowest // 0)
    or slow_answers($t_stop, $t_started, @r);
my %other;
$other{ $_->[3] }++ for grep { $_->[3] ne 'ok' && $_->[3] ne 'unavailable' }
    @r;
ok !%other, 'no other answers' or diag explain \%other;
my @dropped = $tr->dropped_since($t_stop);
ok !@dropped, 'no connection closed during the outage'
    or diag join ' ', map { $_->{name} } @dropped;

# --- PostgreSQL hangs (every process stopped with SIGSTOP), then thaws:
# the answers must come from chat_db_timeout, not from a refused connect

my $t_freeze = time;
ok $pg->kill('STOP', all => 1), 'PostgreSQL frozen';
$unavailable = $tr->pump_until(sub {
    grep { $_->[3] eq 'unavailable' } $tr->responses($t_freeze, time);
}, $DB_TIMEOUT + 5);
ok $unavailable, 'sends answer "unavailable"';
$tr->pump($t_freeze + $FREEZE - time);
ok $pg->kill('CONT', all => 1), 'PostgreSQL thawed after '
    . int(time - $t_freeze) . ' s';
my $t_thaw = time;
diag sprintf 'PostgreSQL frozen at %.3f, thawed at %.3f', $t_freeze,
    $t_thaw;
$recovered = $tr->pump_until(sub {
    grep { $_->[3] eq 'ok' } $tr->responses($t_thaw, time);
}, 30);
ok $recovered, 'sends succeed again';
$t_ok = time;
$tr->pump(3);

@r = $tr->responses($t_freeze - 1, $t_ok);
@unav = grep { $_->[3] eq 'unavailable' } @r;
($slowest) = sort { $b <=> $a } map { $_->[1] - $_->[0] } @r;
cmp_ok scalar(@unav), '>', 0, scalar(@r) . ' answers around the freeze, '
    . scalar(@unav) . ' "unavailable"';
cmp_ok $slowest // 0, '<', $DB_TIMEOUT + 1, sprintf('each within'
    . ' chat_db_timeout + 1 s (slowest %.3fs)', $slowest // 0)
    or slow_answers($t_freeze, $t_thaw, @r);
%other = ();
$other{ $_->[3] }++ for grep { $_->[3] ne 'ok' && $_->[3] ne 'unavailable' }
    @r;
ok !%other, 'no other answers' or diag explain \%other;
@dropped = $tr->dropped_since($t_freeze);
ok !@dropped, 'no connection closed during the freeze'
    or diag join ' ', map { $_->{name} } @dropped;

$tr->check($c, name => 'postgres restart');
$tr->close_all;

$c->done_testing;
