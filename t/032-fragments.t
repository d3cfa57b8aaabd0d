#!/usr/bin/perl

# Fragmented WebSocket messages (docs/security.md "Frames, ordering
# buffers and event size"): reassembly costs linear time, and the number
# of frames of one message is capped by chat_max_fragments (default 128).
# Two gateway instances over one database: the first with the cap raised
# to 131072, the second with the default.
#   - a ping command in 1000 fragments, and in 131072 one-byte fragments
#     (a message of exactly chat_max_frame_size), is answered; the worker
#     CPU the latter cost is printed (diag), not asserted;
#   - a PING between fragments is answered and the message still works;
#   - one fragment over the cap (131073, or 129 by default) closes the
#     connection with 1008 "too many fragments", logged at info; exactly
#     the cap (128 by default) is accepted;
#   - empty continuation frames count too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;
use ChatTest::WS qw(:op);

my $BIG = 131072;

my $c = ChatTest::Cluster->new(instances => 2, workers => 1, lb => 0);
$c->conf(http => 'chat_ping_interval 600s;');
$c->node(1)->chat_conf(pg => $c->pg_conninfo, redis => $c->redis_conf,
    http => "chat_ping_interval 600s;\n    chat_max_fragments $BIG;");
$c->run;

my $t = $c->t;
my ($raised, $default) = ($c->node(1), $c->node(2));

sub client {
    my ($node, %o) = @_;
    return ChatTest::WS->connect($t, port => $node->port, %o);
}

# the frames of $text cut into $n pieces (the last takes the rest), as
# one byte string; $between: a frame to put after each of the first ones
sub fragments {
    my ($text, $n, %o) = @_;
    my $size = int(length($text) / $n) || 1;
    my $mask = "\x01\x02\x03\x04";
    my $out = '';
    for my $i (0 .. $n - 1) {
        my $piece = $i == $n - 1 ? substr($text, $i * $size)
            : substr($text, $i * $size, $size);
        $out .= ChatTest::WS::encode_frame($i ? OP_CONT : OP_TEXT, $piece,
            fin => $i == $n - 1 ? 1 : 0, mask => $mask);
        $out .= $o{between} if $o{between} && $i < $n - 1 && $i < 3;
    }
    return $out;
}

# a ping command of exactly $len bytes
sub ping_of {
    my ($id, $len) = @_;
    my $s = qq({"type":"ping","id":"$id");
    return $s . (' ' x ($len - length($s) - 1)) . '}';
}

# CPU time (ns) a process has used so far
sub cpu_ns {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/schedstat" or return undef;
    my ($ns) = split ' ', scalar <$fh>;
    return $ns;
}

sub closes_with {
    my ($ws, $code, $name) = @_;
    my ($got, $eof) = $ws->wait_closed(10);
    is $got, $code, "$name: close $code";
    ok $eof, "$name: TCP connection closed";
}

# --- many fragments are reassembled

my $ws = client($raised, user => 'frag1');
ok $ws->send_raw(fragments(ping_of('f1000', 5000), 1000)),
    '1000 fragments sent';
my $r = $ws->response('f1000', 10);
ok $r && $r->{ok}, 'a ping in 1000 fragments is answered';

# a control frame between fragments
$ws->send_raw(fragments(ping_of('fping', 200), 10,
    between => ChatTest::WS::encode_frame(OP_PING, 'mid')));
is $ws->wait_pong(5), 'mid', 'a PING between fragments is answered';
$r = $ws->response('fping', 5);
ok $r && $r->{ok}, '... and the message around it too';

# chat_max_frame_size (128k) in one-byte fragments
my ($pid) = $raised->worker_pids;
my $bytes = fragments(ping_of('fbig', $BIG), $BIG);
is length($bytes), 7 * $BIG, "$BIG one-byte frames";
my $cpu0 = cpu_ns($pid);
my $t0 = time;
ok $ws->send_raw($bytes, timeout => 60), "$BIG fragments sent";
$r = $ws->response('fbig', 60);
ok $r && $r->{ok}, "a ping in $BIG one-byte fragments is answered";
my $cpu1 = cpu_ns($pid);
diag sprintf '%d one-byte fragments: worker CPU %.1f ms, %.2f s wall',
    $BIG, ($cpu1 - $cpu0) / 1e6, time - $t0
    if defined $cpu0 && defined $cpu1;

$r = $ws->cmd('ping');
ok $r && $r->{ok}, 'the connection goes on';

# one more than the raised cap
$ws->send_raw(fragments(ping_of('fover', $BIG), $BIG + 1), timeout => 60);
closes_with($ws, 1008, ($BIG + 1) . ' fragments');
is $ws->close_reason, 'too many fragments', 'the reason says why';
ok $raised->wait_log(qr/\[info\].*more than $BIG fragments/, 5),
    'error.log says it at info';

# --- the default cap: 128

$ws = client($default, user => 'frag2');
$ws->send_raw(fragments(ping_of('f128', 1000), 128));
$r = $ws->response('f128', 10);
ok $r && $r->{ok}, '128 fragments: accepted by default';

$ws->send_raw(fragments(ping_of('f129', 1000), 129));
closes_with($ws, 1008, '129 fragments by default');
ok !$ws->events || !grep({ ($_->{id} // '') eq 'f129' } $ws->events),
    'the message over the cap was not answered';

# empty continuation frames count: no payload, no end
$ws = client($default, user => 'frag3');
my $empty = ChatTest::WS::encode_frame(OP_TEXT, '{"type":"ping"',
    fin => 0);
$empty .= ChatTest::WS::encode_frame(OP_CONT, '', fin => 0) for 1 .. 200;
$ws->send_raw($empty);
closes_with($ws, 1008, '200 empty continuation frames');

# the other clients of the instance are fine
$ws = client($default, user => 'frag4');
$r = $ws->cmd('ping');
ok $r && $r->{ok}, 'a new client is served';

$c->done_testing;
