#!/usr/bin/perl

# The send rate that load shedding relies on (docs/protocol.md
# "Overload"): a worker measures how many sends a second PostgreSQL
# commits while sends wait, and refuses a new send when the work ahead of
# it would take longer than chat_send_queue_time at that rate.  The
# estimate is exported as ngx_chat_send_capacity_per_second.  Here two
# batches are in flight at once (chat_send_batches 2), and a trigger in
# the test's own database makes each batch's insert take 100 ms, so the
# estimate must match what the worker commits, measured by its own commit
# counter over the same second.  It used to count only the batches issued
# after a window opened, which left out the other batch in flight and
# made the estimate half the real rate here.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS;
use ChatTest::Prom;

my $t = ChatTest->new(workers => 1);
$t->chat_conf(pool => 3, http => <<'CONF', server => <<'CONF');
    chat_ping_interval 600s;
    chat_db_timeout 60s;
    chat_max_inflight 1000;
    chat_send_batch_size 20;
    chat_send_batches 2;
    chat_send_queue_time 30s;
CONF
        location = /chat/metrics {
            chat_metrics;
        }
CONF

# each batch is one INSERT into messages: 100 ms for the whole batch
$t->psql(<<'SQL');
CREATE FUNCTION t_slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.1);
    RETURN NULL;
END $$;
CREATE TRIGGER t_slow_batch BEFORE INSERT ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION t_slow_batch();
SQL

$t->run;

*code_of = \&ChatTest::code_of;

# six senders, each in a chat of its own, so that no batch waits for
# another's chat lock and each batch holds one sender's sends
my $n = 150;
my @senders;
for my $i (1 .. 6) {
    my $ws = $t->client("s$i", 'phone');
    my $r = $ws->cmd('createChat', participants => ['bob']);
    ok $r && $r->{ok}, "s$i has a chat with bob" or next;
    push @senders, [ $ws, $r->{chatId} ];
}
is scalar(@senders), 6, 'six senders';

my $m0 = ChatTest::Prom::scrape($t);
is $m0->{ngx_chat_send_capacity_per_second} // -1, 0,
    'no rate before anything was sent';

# 900 sends queued at once: about 400 committed a second (2 batches of
# 20 per 100 ms), so the queue stays full for two seconds
for my $s (@senders) {
    my ($ws, $chat) = @$s;
    ok $ws->send_json_burst(map { { type => 'sendMessage', id => "m$_",
        chatId => $chat, clientMessageId => "m$_", message => "m$_" } }
        1 .. $n), 'a burst of sends';
}

# one second of the full queue, after the first windows were measured
sleep 0.5;
my $a = ChatTest::Prom::scrape($t);
my $t0 = time;
sleep 1;
my $b = ChatTest::Prom::scrape($t);
my $dt = time - $t0;

my $key = 'ngx_chat_send_commit_seconds_count';
my $committed = (($b->{$key} // 0) - ($a->{$key} // 0)) / $dt;
my $estimate = $b->{ngx_chat_send_capacity_per_second} // 0;
note sprintf 'committed %.0f sends/s, estimated %.0f', $committed,
    $estimate;

cmp_ok $committed, '>', 100, 'sends were committed during that second';
cmp_ok $estimate, '>=', 0.75 * $committed,
    'the estimate is not below what was committed';
cmp_ok $estimate, '<=', 1.35 * $committed,
    'nor above it';

# everything was admitted (the budget is 30 s) and is stored
for my $s (@senders) {
    my ($ws) = @$s;
    my @r = $ws->responses([ map { "m$_" } 1 .. $n ], 60);
    is scalar(grep { code_of($_) eq 'ok' } @r), $n, 'every send stored';
}

$t->done_testing;
