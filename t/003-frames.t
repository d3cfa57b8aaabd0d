#!/usr/bin/perl

# RFC 6455 framing after the upgrade: PING/PONG, fragmentation with
# interleaved control frames, partial frames, the message size limit, and
# the exact close code for each protocol violation; the server's own PINGs
# and the disconnection of a client that does not answer them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS qw(:op);

my $t = ChatTest->new;
$t->chat_conf(http => <<'EOF')->run;
    chat_max_frame_size 8k;
    chat_max_message_size 4k;
    chat_ping_interval 1s;
EOF

my @clients;

sub client {
    my $ws = ChatTest::WS->connect($t, @_);
    push @clients, $ws;
    return $ws;
}

# the server closes with $code and ends the TCP connection
sub closes_with {
    my ($ws, $code, $name) = @_;
    my ($c, $eof) = $ws->wait_closed(5);
    is $c, $code, "$name -> close $code";
    ok $eof, "$name -> TCP connection closed";
}

sub works {
    my ($ws, $name) = @_;
    my $r = $ws->cmd('ping');
    ok $r && $r->{ok}, "$name: connection still works";
}

# --- PING / PONG

my $ws = client();
my $payload = join '', map { chr } 0 .. 124;
$ws->ping($payload);
is $ws->wait_pong(3), $payload, 'PONG echoes a 125-byte binary payload';
$ws->ping('');
is $ws->wait_pong(3), '', 'PONG to an empty PING';
$ws->send_frame(OP_PONG, 'unsolicited');
works($ws, 'unsolicited PONG ignored');

# --- fragmentation

$ws->send_frame(OP_TEXT, '{"type":"pi', fin => 0);
$ws->send_frame(OP_PING, 'between');
$ws->send_frame(OP_CONT, 'ng","id":', fin => 0);
$ws->send_frame(OP_PONG, 'x');
$ws->send_frame(OP_CONT, '"frag-1"}', fin => 1);
is $ws->wait_pong(3), 'between', 'PING between fragments answered';
my $r = $ws->response('frag-1', 3);
ok $r && $r->{ok}, 'message in three fragments with control frames between';

# a UTF-8 character split across two fragments
my $id = "\x{e9}t\x{e9}-\x{1F600}";
my $json = ChatTest->json->encode({ type => 'ping', id => $id });
my $cut = index($json, "\xc3") + 1;               # inside the first e-acute
$ws->send_frame(OP_TEXT, substr($json, 0, $cut), fin => 0);
$ws->send_frame(OP_CONT, substr($json, $cut));
$r = $ws->response($id, 3);
ok $r && $r->{ok}, 'UTF-8 character split across fragments';

# empty fragments
$ws->send_frame(OP_TEXT, '', fin => 0);
$ws->send_frame(OP_CONT, '{"type":"ping","id":"empty-frags"}', fin => 0);
$ws->send_frame(OP_CONT, '', fin => 1);
$r = $ws->response('empty-frags', 3);
ok $r && $r->{ok}, 'empty first and last fragments';

# one frame written a byte at a time, then header and payload apart
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"slow-1"}',
    split => [ 1, 1, 1, 1, 1, 1, 1 ]);
$r = $ws->response('slow-1', 3);
ok $r && $r->{ok}, 'frame split into 1-byte writes';
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"slow-2"}' . (' ' x 300),
    split => [ 4, 4 ]);
$r = $ws->response('slow-2', 3);
ok $r && $r->{ok}, '16-bit length frame split inside its header';
$ws->send_frame(OP_PING, 'split', split => [ 1, 1, 1, 1, 1 ]);
is $ws->wait_pong(3), 'split', 'PING split into 1-byte writes';


# --- message size limit (chat_max_frame_size 8k)

my $exact = '{"type":"ping","id":"max"';
$exact .= ' ' x (8192 - length($exact) - 1) . '}';
is length $exact, 8192, 'an 8192-byte message';
$ws->send_text($exact);
$r = $ws->response('max', 3);
ok $r && $r->{ok}, 'message of exactly chat_max_frame_size accepted';

$ws->send_text($exact . ' ');
closes_with($ws, 1009, 'message of chat_max_frame_size + 1 bytes');

$ws = client();
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"f"' . ' ' x 3000, fin => 0);
$ws->send_frame(OP_CONT, ' ' x 3000, fin => 0);
$ws->send_frame(OP_CONT, ' ' x 3000 . '}', fin => 1);
closes_with($ws, 1009, 'fragments adding up over the limit');

$ws = client();
my $t0 = time;
$ws->send_raw(ChatTest::WS::encode_frame(OP_TEXT, '', length => 2**40));
closes_with($ws, 1009, 'frame declaring 2^40 bytes');
cmp_ok time - $t0, '<', 3, 'without waiting for the payload';

# --- protocol violations

$ws = client();
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"1"}', masked => 0);
closes_with($ws, 1002, 'unmasked text frame');

$ws = client();
$ws->send_frame(OP_PING, 'x', masked => 0);
closes_with($ws, 1002, 'unmasked PING');

for my $rsv (4, 2, 1) {
    $ws = client();
    $ws->send_frame(OP_TEXT, '{"type":"ping","id":"1"}', rsv => $rsv);
    closes_with($ws, 1002, 'RSV' . { 4 => 1, 2 => 2, 1 => 3 }->{$rsv}
        . ' set');
}

for my $op (0x3, 0x7, 0xB, 0xF) {
    $ws = client();
    $ws->send_frame($op, 'x');
    closes_with($ws, 1002, sprintf 'reserved opcode 0x%X', $op);
}

$ws = client();
$ws->send_frame(OP_BINARY, '{"type":"ping","id":"1"}');
closes_with($ws, 1003, 'binary frame');

$ws = client();
$ws->send_frame(OP_CONT, '{"type":"ping","id":"1"}');
closes_with($ws, 1002, 'continuation frame without a message');

$ws = client();
$ws->send_frame(OP_TEXT, '{"type":', fin => 0);
$ws->send_frame(OP_TEXT, '"ping","id":"1"}');
closes_with($ws, 1002, 'new text frame inside a fragmented message');

$ws = client();
$ws->send_frame(OP_PING, 'x', fin => 0);
closes_with($ws, 1002, 'fragmented PING');

$ws = client();
$ws->send_frame(OP_PING, 'x' x 126);
closes_with($ws, 1002, 'PING with 126 bytes of payload');

# RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the
# length"
$ws = client();
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"len64"}', len_bytes => 8);
closes_with($ws, 1002, 'small frame with a 64-bit length field');

$ws = client();
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"len16"}', len_bytes => 2);
closes_with($ws, 1002, 'small frame with a 16-bit length field');

# --- invalid UTF-8 in text messages

my %bad = (
    'byte 0xFF' => "\xff",
    'overlong "/"' => "\xc0\xaf",
    'overlong 3-byte' => "\xe0\x80\xaf",
    'UTF-16 surrogate' => "\xed\xa0\x80",
    'code point above U+10FFFF' => "\xf4\x90\x80\x80",
    'lone continuation byte' => "\x80",
    'truncated sequence at the end' => "\xe2\x82",
);
for my $name (sort keys %bad) {
    $ws = client();
    $ws->send_text('{"type":"ping","id":"' . $bad{$name} . '"}');
    closes_with($ws, 1007, "invalid UTF-8: $name");
}

$ws = client();
$ws->send_frame(OP_TEXT, '{"type":"ping","id":"', fin => 0);
$ws->send_frame(OP_CONT, "\xc3", fin => 0);
$ws->send_frame(OP_CONT, "(\"}", fin => 1);
closes_with($ws, 1007, 'invalid UTF-8 across fragments');

$ws = client();
$ws->send_frame(OP_TEXT, "{\"type\":\"ping\",\"id\":\"\xe2\x82", fin => 0);
$ws->send_frame(OP_CONT, '"}', fin => 1);
closes_with($ws, 1007, 'sequence cut short at a fragment boundary');

# --- closing handshake

$ws = client();
works($ws, 'before close');
is $ws->close(1000, 'bye'), 1000, 'Close 1000 echoed with 1000';
ok $ws->eof, 'then the TCP connection is closed';

$ws = client();
is $ws->close(3000, 'app'), 3000, 'Close 3000 echoed with 3000';
ok $ws->eof, 'then the TCP connection is closed';

$ws = client();
$ws->send_frame(OP_TEXT, '{"type":', fin => 0);
is $ws->close(1001), 1001, 'Close inside a fragmented message echoed';

# --- server PINGs (chat_ping_interval 1s)

my $alive = client();
my $dead = client();
$dead->auto_pong(0);
$t0 = time;
# serve both: the answering client must read to answer
while (!$dead->eof && time - $t0 < 6) {
    $dead->recv_frame(0.05);
    $alive->recv_frame(0.05);
}
my ($code, $eof) = $dead->wait_closed(0.1);
ok $eof, 'client that never answers PINGs is disconnected';
my $elapsed = time - $t0;
cmp_ok $elapsed, '<', 4.5, 'within a few ping intervals';
cmp_ok scalar($dead->pings), '>=', 1, 'after getting a PING';

# the answering client was connected as long and is still there
cmp_ok scalar($alive->pings), '>=', 1, 'answering client got PINGs too';
works($alive, 'answering client');
ok !defined $alive->recv_frame(1.5), 'no data while idle another interval';
works($alive, 'answering client after another interval');
is $alive->close(1000), 1000, 'answering client closes normally';

is_deeply [ map { $_->violations } @clients ], [],
    'server frames follow RFC 6455';

$t->done_testing;
