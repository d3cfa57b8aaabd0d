#!/usr/bin/perl

# The JSON command envelope: {"type":..,"id":..} answered by
# {"type":"response","id":..,"ok":..}; malformed input gets an error
# response (bad_request, unknown_type) and the connection stays usable;
# pipelined commands are all answered, in order.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS qw(:op);

my $t = ChatTest->new(workers => 2);
$t->chat_conf->run;

my $ws = ChatTest::WS->connect($t, user => 'alice', device => 'phone');

# --- ping

$ws->send_text('{"type":"ping","id":"1"}');
my $r = $ws->recv_json(3);
is_deeply $r, { type => 'response', id => '1', ok => JSON::PP::true },
    'ping -> exactly {"type":"response","id":"1","ok":true}';

$r = $ws->cmd('ping', id => "\x{fc}-\x{1F600}-\"quoted\"\\");
ok $r && $r->{ok}, 'id with non-ASCII, quote and backslash echoed';

# --- errors, each followed by a working ping

# an error response: ok false, error.code, a non-empty message
sub error_is {
    my ($r, $code, $name) = @_;
    ok $r && defined $r->{ok} && !$r->{ok}
        && ($r->{type} // '') eq 'response'
        && ref $r->{error} eq 'HASH'
        && ($r->{error}{code} // '') eq $code
        && length($r->{error}{message} // ''),
        "$name -> error $code"
        or diag explain $r;
}

sub still_works {
    my ($name) = @_;
    my $r = $ws->cmd('ping');
    ok $r && $r->{ok}, "connection usable after $name";
}

my @malformed = (
    [ '{"type":"ping",', 'truncated JSON' ],
    [ 'not json', 'not JSON at all' ],
    [ '', 'empty message' ],
    [ '[1,2]', 'an array' ],
    [ '"ping"', 'a string' ],
    [ '42', 'a number' ],
    [ 'null', 'null' ],
    [ '{"type":"ping","id":"1"} x', 'trailing garbage' ],
    [ '{"type":"ping","id":"1"}{}', 'two objects' ],
    [ "{\"type\":\"ping\",\"id\":\"1\"}\0junk", 'NUL and junk after JSON' ],
    [ "{\"type\":\"pi\0ng\",\"id\":\"1\"}", 'raw NUL inside a string' ],
    [ '{"type":"ping","id":"1",}', 'trailing comma' ],
    [ "{'type':'ping'}", 'single quotes' ],
);
for my $m (@malformed) {
    my ($text, $name) = @$m;
    $ws->send_text($text);
    $r = $ws->recv_json(3);
    error_is($r, 'bad_request', $name);
}
still_works('malformed JSON');

$r = $ws->cmd('noSuchCommand');
error_is($r, 'unknown_type', 'unknown type');
is $r->{id}, "c$ws->{seq}", 'unknown type: id echoed';
still_works('unknown type');

$ws->send_text('{"id":"no-type"}');
$r = $ws->recv_json(3);
error_is($r, 'bad_request', 'missing type');
is $r->{id}, 'no-type', 'missing type: id echoed';

$ws->send_text('{}');
error_is($ws->recv_json(3), 'bad_request', 'empty object');

$ws->send_text('{"type":5,"id":"num-type"}');
$r = $ws->recv_json(3);
error_is($r, 'bad_request', 'numeric type');

$ws->send_text('{"type":["ping"],"id":"arr-type"}');
error_is($ws->recv_json(3), 'bad_request', 'array type');

$ws->send_text('{"type":null,"id":"null-type"}');
error_is($ws->recv_json(3), 'bad_request', 'null type');
still_works('bad types');

# deep nesting must neither crash nor hang the worker
my $deep = '{"type":"ping","id":"deep","x":' . ('[' x 1500)
    . (']' x 1500) . '}';
$ws->send_text($deep);
$r = $ws->recv_json(5);
ok $r && ($r->{type} // '') eq 'response', 'deeply nested value answered';
still_works('deep nesting');

$deep = ('[' x 20000);
$ws->send_text($deep);
$r = $ws->recv_json(5);
error_is($r, 'bad_request', '20000 unclosed brackets');
still_works('unclosed brackets');

# --- pipelining: many commands in one write, answered in order

my $batch = '';
my @ids = map { "p$_" } 1 .. 100;
$batch .= ChatTest::WS::encode_frame(OP_TEXT,
    qq({"type":"ping","id":"$_"})) for @ids;
ok $ws->send_raw($batch), '100 commands in one write';
my @got;
for (@ids) {
    my $m = $ws->recv_json(5) or last;
    push @got, $m->{id};
}
is_deeply \@got, \@ids, 'all answered, in order';

# --- several devices of one user, each its own connection

my @dev = map {
    ChatTest::WS->connect($t, user => 'bob', device => "dev$_")
} 1 .. 3;
my $ok = grep { my $r = $_->cmd('ping'); $r && $r->{ok} } @dev;
is $ok, 3, 'three devices of one user connected and served';
is $dev[$_]->close(1000), 1000, "device $_ closes" for 0 .. 2;

still_works('everything');
is $ws->close(1000), 1000, 'close';
is_deeply [ $ws->violations ], [], 'server frames follow RFC 6455';

$t->done_testing;
