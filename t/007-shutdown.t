#!/usr/bin/perl

# Graceful shutdown (SIGQUIT, nginx -s quit) and reload (SIGHUP) with
# WebSockets open: each client gets Close 1001 and its TCP connection ends,
# nginx (or the old workers) exit promptly, and error.log has no [alert]
# (such as "open socket left in connection").

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS qw(:op);

my $t = ChatTest->new(workers => 2);
$t->chat_conf(http => 'chat_ping_interval 60s;')->run;

sub clients {
    my @c = map {
        ChatTest::WS->connect($t, user => "user$_", device => 'phone')
    } 1 .. 3;
    my $ok = grep { my $r = $_->cmd('ping'); $r && $r->{ok} } @c;
    is $ok, 3, 'three clients connected and served';
    return @c;
}

sub all_get_1001 {
    my ($what, @c) = @_;
    my $i = 0;
    for my $ws (@c) {
        $i++;
        my ($code, $eof) = $ws->wait_closed(15);
        is $code, 1001, "$what: client $i gets Close 1001";
        ok $eof, "$what: client $i connection closed";
    }
}

# --- SIGQUIT

my @c = clients();
# one of them in the middle of a fragmented message and a partial frame
$c[2]->send_frame(OP_TEXT, '{"type":"ping",', fin => 0);
$c[2]->send_raw(substr ChatTest::WS::encode_frame(OP_CONT, '"id":"x"}'),
    0, 3);

my $t0 = time;
ok $t->signal('QUIT'), 'SIGQUIT';
all_get_1001('shutdown', @c);
ok $t->wait_exit(15), 'nginx exits';
cmp_ok time - $t0, '<', 15, 'promptly';
is $t->{exit_status}, 0, 'with status 0';

# --- SIGHUP: the old workers say goodbye, the new ones serve

$t->run;
@c = clients();
my @old = sort { $a <=> $b } $t->worker_pids;
ok $t->reload, 'SIGHUP: nginx reconfigures';
all_get_1001('reload', @c);

my $ws = ChatTest::WS->connect($t);
my $r = $ws->cmd('ping');
ok $r && $r->{ok}, 'new client served after the reload';

# the old workers are gone (bounded wait)
my $deadline = time + 15;
my %old = map { $_ => 1 } @old;
while (time < $deadline) {
    last unless grep { $old{$_} } $t->worker_pids;
    $ws->recv_frame(0.1);
}
ok !(grep { $old{$_} } $t->worker_pids), 'old workers exited';

ok $t->signal('QUIT'), 'SIGQUIT again';
all_get_1001('shutdown after reload', $ws);
ok $t->wait_exit(15), 'nginx exits';

is_deeply [ map { $_->violations } @c, $ws ], [],
    'server frames follow RFC 6455';

$t->done_testing;
