#!/usr/bin/perl

# Load shedding when capacity drops (docs/protocol.md "Overload"): the
# rate a worker measures lags a sudden drop in PostgreSQL's speed, so a
# new send is also refused at once while the oldest waiting send has
# waited longer than chat_send_queue_time.  PostgreSQL is made to stall
# 300 ms on each of three sends by a trigger in the test's own database;
# no rate has been measured yet (nothing would be refused by the
# estimate), so what refuses the sends behind them is the waiting time
# alone.  No timing is asserted beyond what the stall guarantees.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 1);
$t->chat_conf(pool => 2, http => <<'CONF');
    chat_ping_interval 600s;
    chat_db_timeout 30s;
    chat_send_batch_size 1;
    chat_send_batches 1;
    chat_send_queue_time 100ms;
CONF

$t->slow_messages(stall => 0.3);

$t->run;

*code_of = \&ChatTest::code_of;

my ($alice, $bob, $chat) = $t->two_in_a_chat;
ok $chat, 'alice and bob have a chat';
my $r;

# all frames in one write, so the gateway reads them in one go
sub burst {
    my ($body, @ids) = @_;
    return $alice->send_json_burst(map { { type => 'sendMessage', id => $_,
        chatId => $chat, clientMessageId => $_, message => "$body $_" } }
        @ids);
}

sub answers { return $alice->responses([ @_ ], 30) }

ok burst('stall', qw(t1 t2 t3)), 'three sends that PostgreSQL stalls on';
my ($t1) = answers('t1');
is code_of($t1), 'ok', 'the first stalled send is stored';

# t2 is in PostgreSQL now; t3 has waited 300 ms, three times the budget
ok burst('fast', qw(p1 p2 p3)), 'three more sends behind them';
my @p = answers(qw(p1 p2 p3));
is_deeply [ map { code_of($_) } @p ], [ ('unavailable') x 3 ],
    'refused at once: the oldest waiting send is older than the budget';
is scalar(grep { ($_->{error}{retryAfterMs} // 0) > 0 } @p), 3,
    'each refusal carries retryAfterMs';

my @rest = answers(qw(t2 t3));
is_deeply [ map { $_->{id} . ' ' . code_of($_) } @rest ],
    [ 't2 ok', 't3 ok' ], 'the sends queued before are stored, in order';

# once the queue is empty again, a send is admitted
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'p1',
    message => 'fast p1', _timeout => 30);
is code_of($r), 'ok', 'a refused send retried later is stored';

my @got;
while (@got < 4) {
    my $e = $bob->next_event('newMessage', 30) or last;
    push @got, $e->{message};
}
is_deeply \@got, [ 'stall t1', 'stall t2', 'stall t3', 'fast p1' ],
    'bob got every stored message once, in order';

ok $t->grep_log(qr/chat: overloaded: \d+ sends refused at once/),
    'the refusals are logged';

$t->done_testing;
