#!/usr/bin/perl

# The admin token endpoint: POST /chat/admin/token {"user":..,"device":..
# [,"ttl":seconds]} -> 200 {"token":"<jwt>"}, an HS256 JWT signed with the
# chat secret that /chat accepts; bad JSON or ids -> 400; other methods ->
# 405.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new;
$t->chat_conf->run;

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

# still minting after all that
($st) = post('{"user":"carol","device":"tab"}');
is $st, 200, 'POST still works';

$t->done_testing;
