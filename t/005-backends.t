#!/usr/bin/perl

# Backends going away and coming back: nginx starts with PostgreSQL or
# Redis unreachable; without PostgreSQL a connect is refused with 503
# before the upgrade (the 101 means the device is registered), fast
# (within about chat_db_timeout); commands needing PostgreSQL fail fast with
# "unavailable" while it is down, stopped or hung, and work again once it is
# back, without restarting nginx; Redis stopping, restarting or being
# killed does not disturb connected clients.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new;

# getChats timed: (response, seconds)
sub get_chats {
    my ($ws) = @_;
    my $t0 = time;
    my $r = $ws->cmd('getChats', _timeout => 10);
    return ($r, time - $t0);
}

sub is_unavailable {
    my ($r) = @_;
    return $r && defined $r->{ok} && !$r->{ok} && ref $r->{error}
        && ($r->{error}{code} // '') eq 'unavailable';
}

# retry getChats until $want->($r) or the deadline; returns the last
# response and the slowest call
sub until_chats {
    my ($ws, $want, $timeout) = @_;
    my $deadline = time + $timeout;
    my ($r, $slowest) = (undef, 0);
    while (1) {
        my $took;
        ($r, $took) = get_chats($ws);
        $slowest = $took if $took > $slowest;
        return ($r, $slowest) if $want->($r) || time > $deadline;
        $ws->recv_frame(0.2);           # pause without stopping reading
    }
}

my $ok = sub { $_[0] && $_[0]{ok} };

sub pings_ok {
    my ($ws, $name) = @_;
    my $r = $ws->cmd('ping');
    ok $r && $r->{ok}, "$name: ping answered";
}

# --- PostgreSQL unreachable from the start (nothing listens on the port)

my $closed = ChatTest::free_port();
$t->chat_conf(
    pg => "host=127.0.0.1 port=$closed user=postgres dbname=chat",
    http => 'chat_db_timeout 1s;',
)->run;

# a connect refused with 503 "unavailable": (status, seconds)
sub refused_503 {
    my (%o) = @_;
    my $t0 = time;
    my ($w, $status, $h, $body) = ChatTest::WS->try_connect($t, %o,
        timeout => 10);
    my $took = time - $t0;
    return (($w ? 101 : $status // 0)
        . (($body // '') =~ /"unavailable"/ ? ' unavailable' : ''), $took);
}

my ($st, $took) = refused_503();
is $st, '503 unavailable',
    'PostgreSQL unreachable: nginx starts, a connect gets 503';
cmp_ok $took, '<', 3, 'within 3 s (chat_db_timeout 1s)';
($st, $took) = refused_503();
ok $st eq '503 unavailable' && $took < 3, 'again, as fast';
$t->stop;
my ($r, $ws);

# --- Redis unreachable from the start

$t->chat_conf(redis => '127.0.0.1:' . ChatTest::free_port()
    . ' prefix=' . $t->redis_prefix)->run;
$ws = ChatTest::WS->connect($t);
ok $ws, 'Redis unreachable: nginx starts and upgrades';
pings_ok($ws, 'Redis unreachable');
($r) = until_chats($ws, $ok, 15);
ok $ok->($r), 'getChats works without Redis' or diag explain $r;
$ws->close(1000);
$t->stop;

# --- a private PostgreSQL stopped, started, hung

my $pg = $t->private_pg;
$t->chat_conf(pg => $pg->conninfo, http => 'chat_db_timeout 1s;')->run;
$ws = ChatTest::WS->connect($t);
($r) = until_chats($ws, $ok, 15);
ok $ok->($r), 'private PostgreSQL: getChats works' or diag explain $r;

$pg->stop;
my $slowest;
($r, $slowest) = until_chats($ws, \&is_unavailable, 10);
ok is_unavailable($r), 'PostgreSQL stopped: getChats -> unavailable'
    or diag explain $r;
cmp_ok $slowest, '<', 3, 'every call answered within 3 s';
pings_ok($ws, 'PostgreSQL stopped');
($st) = refused_503(user => 'bob');
is $st, '503 unavailable', 'PostgreSQL stopped: a new client gets 503';

$pg->start;
($r) = until_chats($ws, $ok, 20);
ok $ok->($r), 'PostgreSQL started again: getChats works (pool reconnected)'
    or diag explain $r;
my $ws2 = ChatTest::WS->connect($t, user => 'bob');
($r) = until_chats($ws2, $ok, 10);
ok $ok->($r), 'a new client connects and works too';

# hung: every PostgreSQL process stopped with SIGSTOP
ok $pg->kill('STOP', all => 1), 'PostgreSQL frozen';
($r, $took) = get_chats($ws);
ok is_unavailable($r), 'PostgreSQL hung: getChats -> unavailable'
    or diag explain $r;
cmp_ok $took, '<', 3, 'within 3 s (chat_db_timeout 1s)';
pings_ok($ws, 'PostgreSQL hung');
ok $pg->kill('CONT', all => 1), 'PostgreSQL thawed';
($r) = until_chats($ws, $ok, 20);
ok $ok->($r), 'after the thaw: getChats works' or diag explain $r;

$ws->close(1000);
$ws2->close(1000);
$t->stop;
$pg->stop;

# --- a private Redis stopped, started, killed

my $rd = $t->private_redis;
$t->chat_conf(redis => $rd->conf)->run;
$ws = ChatTest::WS->connect($t);
pings_ok($ws, 'private Redis');

$rd->stop;
pings_ok($ws, 'Redis stopped');
$ws->recv_frame(1.5);       # let the worker notice
pings_ok($ws, 'Redis stopped a while');
$ws2 = ChatTest::WS->connect($t, user => 'bob');
ok $ws2, 'Redis stopped: new clients still upgrade';
pings_ok($ws2, 'new client, Redis stopped');

$rd->start;
$ws->recv_frame(1.5);       # reconnect window
pings_ok($ws, 'Redis started again');
pings_ok($ws2, 'Redis started again (second client)');

ok $rd->kill('KILL'), 'Redis killed with SIGKILL';
pings_ok($ws, 'Redis killed');
$rd->start;
my $ws3 = ChatTest::WS->connect($t, user => 'carol');
pings_ok($ws3, 'new client after Redis restart');
pings_ok($ws, 'first client after Redis restart');

is $_->close(1000), 1000, 'clean close' for $ws, $ws2, $ws3;
is_deeply [ map { $_->violations } $ws, $ws2, $ws3 ], [],
    'server frames follow RFC 6455';

$t->done_testing;
