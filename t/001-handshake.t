#!/usr/bin/perl

# The WebSocket opening handshake on /chat (RFC 6455 section 4): the accept
# value, the refusals (426, 400, 405) and their order relative to
# authentication, case-insensitive header values, and bytes pipelined right
# behind the handshake.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS qw(:op);

my $t = ChatTest->new;
$t->chat_conf->run;

my $token = $t->token(user => 'alice', device => 'phone');
my $key = 'dGhlIHNhbXBsZSBub25jZQ==';          # RFC 6455 section 1.3

# a handshake request: the standard headers, overridden or dropped
# (value undef) by %over; method and path by -method/-path
sub hs {
    my (%over) = @_;
    my $method = delete $over{-method} // 'GET';
    my $path = delete $over{-path} // '/chat';
    my @h = (
        Upgrade => 'websocket',
        Connection => 'Upgrade',
        'Sec-WebSocket-Key' => $key,
        'Sec-WebSocket-Version' => 13,
        Authorization => "Bearer $token",
    );
    my @out;
    for (my $i = 0; $i < @h; $i += 2) {
        my ($n, $v) = @h[$i, $i + 1];
        $v = delete $over{$n} if exists $over{$n};
        push @out, $n, $v if defined $v;
    }
    push @out, %over;
    return $t->http($method, $path, \@out);
}

# --- a good handshake

my ($st, $h) = hs();
is $st, 101, 'handshake: 101';
is $h->{'sec-websocket-accept'}, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    'Sec-WebSocket-Accept of the RFC 6455 sample key';
like $h->{upgrade} // '', qr/^websocket$/i, 'Upgrade: websocket';
like $h->{connection} // '', qr/\bupgrade\b/i, 'Connection: upgrade';
ok !defined $h->{'sec-websocket-protocol'}, 'no subprotocol chosen';

my $ws = ChatTest::WS->connect($t);
ok $ws, 'client connects (its random key accepted)';
my $r = $ws->cmd('ping');
ok $r && $r->{ok}, 'and the connection works';

# header values are case-insensitive, Connection is a token list
($st) = hs(Upgrade => 'WebSocket', Connection => 'keep-alive, Upgrade');
is $st, 101, 'Upgrade: WebSocket, Connection: keep-alive, Upgrade -> 101';
($st) = hs(Connection => 'upgrade');
is $st, 101, 'Connection: upgrade (lower case) -> 101';

# --- refusals

($st, $h) = hs(Upgrade => undef);
is $st, 426, 'no Upgrade header -> 426';
($st) = hs(Upgrade => undef, Connection => undef, Authorization => undef,
    'Sec-WebSocket-Key' => undef, 'Sec-WebSocket-Version' => undef);
is $st, 426, 'plain GET /chat without credentials -> 426 (before auth)';

($st) = hs('Sec-WebSocket-Key' => undef);
is $st, 400, 'no Sec-WebSocket-Key -> 400';
($st) = hs('Sec-WebSocket-Key' => 'abc');
is $st, 400, 'Sec-WebSocket-Key not base64 of 16 bytes -> 400';
($st) = hs('Sec-WebSocket-Key' => 'AAAAAAAAAAAAAAAAAAAA');
is $st, 400, 'Sec-WebSocket-Key of 15 bytes -> 400';
($st) = hs('Sec-WebSocket-Key' => 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=');
is $st, 400, 'Sec-WebSocket-Key of 20 bytes -> 400';
($st) = hs('Sec-WebSocket-Key' => '!!!!!!!!!!!!!!!!!!!!!A==');
is $st, 400, 'Sec-WebSocket-Key with invalid characters -> 400';
($st) = hs('Sec-WebSocket-Key' => undef, Authorization => undef);
is $st, 400, 'missing key without credentials -> 400 (before auth)';

($st, $h) = hs('Sec-WebSocket-Version' => 8);
is $st, 426, 'Sec-WebSocket-Version: 8 -> 426';
is $h->{'sec-websocket-version'}, '13', 'with Sec-WebSocket-Version: 13';
($st, $h) = hs('Sec-WebSocket-Version' => 14);
is $st, 426, 'Sec-WebSocket-Version: 14 -> 426';
is $h->{'sec-websocket-version'}, '13', 'with Sec-WebSocket-Version: 13';
($st) = hs('Sec-WebSocket-Version' => 8, Authorization => undef);
is $st, 426, 'bad version without credentials -> 426 (before auth)';

($st) = hs(-method => 'POST');
is $st, 405, 'POST -> 405';
($st) = hs(-method => 'PUT', Authorization => undef);
is $st, 405, 'PUT without credentials -> 405 (before auth)';

($st) = hs(Authorization => undef);
is $st, 401, 'good handshake without credentials -> 401';

# the socket is still served after all these refusals
$r = $ws->cmd('ping');
ok $r && $r->{ok}, 'the first client still works';

# --- bytes sent in the same write as the handshake are not lost

my $ping = ChatTest::WS::encode_frame(OP_PING, 'early');
my $cmd = ChatTest::WS::encode_frame(OP_TEXT,
    '{"type":"ping","id":"early-1"}');
my $ws2 = ChatTest::WS->connect($t, extra => $ping . $cmd);
is $ws2->wait_pong(3), 'early', 'PING pipelined behind the handshake'
    . ' answered';
$r = $ws2->response('early-1', 3);
ok $r && $r->{ok}, 'command pipelined behind the handshake answered';

is $ws->close(1000), 1000, 'close';
is $ws2->close(1000), 1000, 'close the second';
is_deeply [ $ws->violations, $ws2->violations ], [],
    'server frames follow RFC 6455';

$t->done_testing;
