#!/usr/bin/perl

# The JavaScript SDK (clients/js) against a real gateway running the
# sample configuration of `make run` (conf/chat.conf: media in a local
# store, the token endpoint), with one worker: Node's test runner runs
# clients/js/test/*.test.mjs, which cover every command, events by
# callback and by async iterator, acks after the handler stored the event,
# display order by seq, reconnects after Close 1001 (a reload) and after a
# worker killed with SIGKILL with unanswered sends resent and nothing
# duplicated, duplicate drop by eventId, and an attachment round trip with
# its hash checked.  Each node test is one test here.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::Cluster;

my $sdk = "$ChatTest::REPO/clients/js";
-d "$sdk/node_modules/ws"
    or BAIL_OUT('npm package ws not installed in clients/js'
        . ' (scripts/deps test installs it)');

# a ChatTest that may be told which error.log alerts to expect
my $t = ChatTest::Cluster::Node->new(workers => 1);
# the SDK tests kill workers on purpose
$t->allow_log(qr/worker process \d+ exited on signal 9/);
$t->sample_conf(workers => 1)->run;

my $port = $t->port;
$t->node_tests(
    dir => $sdk,
    # types.test.mjs (tsc on index.d.ts) needs no gateway: scripts/test
    # runs it with the unit tests
    files => [ map { "test/$_" } grep { $_ ne 'types.test.mjs' }
        sort map { s{.*/}{}r } glob "$sdk/test/*.test.mjs" ],
    env => {
        CHAT_URL => "ws://127.0.0.1:$port/chat",
        CHAT_HTTP => "http://127.0.0.1:$port",
        CHAT_NGINX_PID => $t->pid,
    },
    min => 14,
);

$t->done_testing;
