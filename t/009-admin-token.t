#!/usr/bin/perl

# The admin token endpoint: POST /chat/admin/token {"user":..,"device":..
# [,"ttl":seconds]} -> 200 {"token":"<jwt>"}, an HS256 JWT signed with the
# chat secret that /chat accepts; bad JSON or ids -> 400; other methods ->
# 405.  It mints for whoever reaches it, so (docs/tokens.md "Development
# tokens"): a request that came through a proxy (X-Forwarded-For,
# Forwarded, X-Real-IP, Via, the PROXY protocol) -> 403, and a peer that is
# not loopback -> 403 unless "chat_admin_token any" (still not proxied).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use ChatTest;
use ChatTest::WS;
use IO::Socket::INET;

my $t = ChatTest->new;

# an address of this host that is not loopback, if it has one
my ($ip) = grep { /^\d+\.\d+\.\d+\.\d+$/ && !/^127\./ }
    split ' ', (`hostname -I 2>/dev/null` // '');
my $pport = ChatTest::free_port();
my $rport = ChatTest::free_port();
my $remote = $ip ? <<EOF : '';
    server {
        listen $ip:$rport;
        location = /loopback { chat_admin_token loopback; }
        location = /any { chat_admin_token any; }
    }
EOF

$t->chat_conf(server => <<'EOF', http => <<EOF)->run;
        location = /chat/admin/any {
            chat_admin_token any;
        }
EOF
    server {
        listen 127.0.0.1:$pport proxy_protocol;
        location = /chat/admin/token { chat_admin_token; }
    }
$remote
EOF

my $path = '/chat/admin/token';
my @ct = ('Content-Type' => 'application/json');

sub post {
    my ($body) = @_;
    return $t->http(POST => $path, \@ct, $body);
}

# --- minting

my $now = time;
my ($st, $h, $body) = post('{"user":"alice","device":"phone"}');
is $st, 200, 'POST -> 200';
like $h->{'content-type'} // '', qr{^application/json}, 'JSON answer';
my $res = eval { decode_json($body) } // {};
ok defined $res->{token}, 'with a token' or diag $body;

my ($hdr, $claims, $sig_ok) = $t->decode_token($res->{token});
is $hdr && $hdr->{alg}, 'HS256', 'alg HS256';
ok $sig_ok, 'signed with the chat secret';
is $claims && $claims->{sub}, 'alice', 'sub is the user';
is $claims && $claims->{dev}, 'phone', 'dev is the device';
ok $claims && $claims->{exp} && $claims->{exp} =~ /^\d+$/
    && $claims->{exp} > $now + 60, 'exp an integer in the future';

my $ws = ChatTest::WS->connect($t, token => $res->{token});
my $r = $ws->cmd('ping');
ok $r && $r->{ok}, 'the token opens /chat';
is $ws->close(1000), 1000, 'close';

$now = time;
($st, undef, $body) = post('{"user":"bob.b@x-y_z","device":"d1","ttl":120}');
is $st, 200, 'with ttl -> 200';
$res = eval { decode_json($body) } // {};
(undef, $claims, $sig_ok) = $t->decode_token($res->{token});
ok $sig_ok && $claims->{sub} eq 'bob.b@x-y_z', 'punctuated user id';
ok $claims->{exp} >= $now + 115 && $claims->{exp} <= $now + 125,
    'exp is now + ttl' or diag "exp $claims->{exp} now $now";

# --- refusals

my @bad = (
    [ '', 'empty body' ],
    [ 'not json', 'not JSON' ],
    [ '{"user":"alice","device":"phone"', 'truncated JSON' ],
    [ '[]', 'an array' ],
    [ '{"device":"phone"}', 'no user' ],
    [ '{"user":"alice"}', 'no device' ],
    [ '{"user":"","device":"phone"}', 'empty user' ],
    [ '{"user":"alice","device":""}', 'empty device' ],
    [ '{"user":"al ice","device":"phone"}', 'space in user' ],
    [ '{"user":"alice","device":"ph/one"}', 'slash in device' ],
    [ '{"user":"' . ('u' x 65) . '","device":"phone"}', '65-character user' ],
    [ '{"user":12,"device":"phone"}', 'numeric user' ],
    [ '{"user":"alice","device":"phone"} x', 'trailing garbage' ],
);
for my $b (@bad) {
    ($st) = post($b->[0]);
    is $st, 400, "$b->[1] -> 400";
}

($st) = $t->http(GET => $path);
is $st, 405, 'GET -> 405';
($st) = $t->http(PUT => $path, \@ct, '{"user":"alice","device":"phone"}');
is $st, 405, 'PUT -> 405';
($st) = $t->http(DELETE => $path);
is $st, 405, 'DELETE -> 405';

# --- through a proxy, from afar

my $ok = '{"user":"mallory","device":"phone"}';
for my $h ([ 'X-Forwarded-For' => '203.0.113.7' ],
           [ 'x-forwarded-for' => '127.0.0.1' ],
           [ 'Forwarded' => 'for=203.0.113.7' ],
           [ 'X-Real-IP' => '127.0.0.1' ],
           [ 'Via' => '1.1 proxy' ])
{
    ($st, undef, $body) = $t->http(POST => $path, [ @ct, @$h ], $ok);
    is $st, 403, "with $h->[0]: 403";
    ($st) = $t->http(POST => '/chat/admin/any', [ @ct, @$h ], $ok);
    is $st, 403, "with $h->[0], chat_admin_token any: 403";
}
like $body, qr/"forbidden"/, 'the error code is forbidden';
ok $t->wait_log(qr/admin token request with "Via" \(through a proxy\)/),
    'error.log says why';

($st) = $t->http(POST => '/chat/admin/any', \@ct, $ok);
is $st, 200, 'chat_admin_token any: a local client mints';

# the PROXY protocol: whatever address it names
($st) = $t->http(POST => $path, undef, undef, port => $pport,
    raw => "PROXY TCP4 127.0.0.1 127.0.0.1 40000 80\r\n"
         . "POST $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
         . 'Content-Length: ' . length($ok) . "\r\n\r\n$ok");
is $st, 403, 'through the PROXY protocol: 403';

# a peer that is not loopback (this host's own address)
sub post_from {
    my ($where) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $ip, PeerPort => $rport,
        LocalAddr => $ip, Proto => 'tcp', Timeout => 10) or return 'none';
    print $s "POST $where HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . 'Content-Length: ' . length($ok) . "\r\n\r\n$ok";
    local $/;
    my $res = <$s> // '';
    return $res =~ m{^HTTP/1\.1 (\d+)} ? $1 : 'none';
}

SKIP: {
    skip 'this host has no address but loopback', 2 unless $ip;
    is post_from('/loopback'), 403, "from $ip: 403";
    is post_from('/any'), 200, "from $ip, chat_admin_token any: 200";
}

# still minting after all that
($st) = post('{"user":"carol","device":"tab"}');
is $st, 200, 'POST still works';

$t->done_testing;
