#!/usr/bin/perl

# Interoperability with an independent, strict client: npm's "ws" (run by
# tests/node/interop.js) connects with a header token and with
# ?access_token=, sends a ping command, a PING, a fragmented command, a
# non-ASCII id, closes normally, is refused with a bad token, and is closed
# with 1009 for an oversized message.  ws raises "error" on any server frame
# that breaks RFC 6455; none may occur.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use ChatTest;

my $node_dir = "$ChatTest::REPO/tests/node";
plan skip_all => 'node not installed' unless `node --version 2>/dev/null`;
plan skip_all => 'npm package ws not installed (scripts/deps test)'
    unless -d "$node_dir/node_modules/ws";

my $t = ChatTest->new;
$t->chat_conf(http => 'chat_max_frame_size 64k; chat_max_message_size 16k;')->run;

my $url = 'ws://127.0.0.1:' . $t->port . '/chat';
my $token = $t->token(user => 'nodeuser', device => 'nodedev');
my $token2 = $t->token(user => 'nodeuser', device => 'nodedev2');

my $out = `cd '$node_dir' && node interop.js '$url' '$token' '$token2' 65536 2>&1`;
is $?, 0, 'interop.js ran';
my ($line) = grep { /^\{/ } split /\n/, $out;
my $res = eval { decode_json($line // '') };
ok $res, 'interop.js printed its JSON result' or diag $out;
$res //= {};

ok $res->{connected}, 'ws connected with Authorization: Bearer';
ok !$res->{timeout}, 'interop.js finished in time';
is_deeply $res->{errors}, [], 'no errors from ws'
    or diag explain $res->{errors};
is_deeply $res->{ping}, { type => 'response', id => 'n1', ok => JSON::PP::true },
    'ping command answered';
ok defined $res->{ping_binary} && !$res->{ping_binary},
    'answers are text frames';
is $res->{pong}, 'hello', 'PONG echoes the PING payload';
ok $res->{fragmented} && $res->{fragmented}{ok}
    && $res->{fragmented}{id} eq 'n2', 'fragmented command answered';
ok $res->{unicode_ok}, 'non-ASCII id echoed intact';
ok $res->{query_ping} && $res->{query_ping}{ok},
    'connection with ?access_token= served';
is $res->{normal_close}{code}, 1000, 'Close 1000 echoed with 1000';
is $res->{bad_token_status}, 401, 'bad token refused with 401';
is $res->{oversize_close}{code}, 1009,
    'message over chat_max_frame_size: Close 1009';
is $res->{oversize_close}{at}, 'oversize', 'not before';

$t->done_testing;
