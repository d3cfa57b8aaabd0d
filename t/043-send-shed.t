#!/usr/bin/perl

# Load shedding (issue 12 item 5; docs/protocol.md "Overload"): a send
# that would find more work queued ahead of it than chat_send_queue_time
# can cover is refused at once with "unavailable" and retryAfterMs, while
# the sends already queued complete.  No timing is asserted: PostgreSQL is
# made slow for these sends by a trigger in the test's own database
# (pg_sleep 50 ms per message, one send per batch), so the rate the
# gateway measures is at most 20 sends/s whatever the box's load, and
# with a budget of 100 ms at most 3 sends of a burst can be admitted.

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

$t->slow_messages(slow => 0.05);

$t->run;

*code_of = \&ChatTest::code_of;

my ($alice, $bob, $chat) = $t->two_in_a_chat;
ok $chat, 'alice and bob have a chat';
my $r;

# all frames in one write, so the gateway reads them in one go
sub burst {
    my ($prefix, $n) = @_;
    return $alice->send_json_burst(map { { type => 'sendMessage',
        id => "$prefix$_", chatId => $chat, clientMessageId => "$prefix$_",
        message => "slow $prefix$_" } } 1 .. $n);
}

# the answers to $prefix1..$prefix$n, in the order they came
sub answers {
    my ($prefix, $n) = @_;
    return $alice->responses([ map { "$prefix$_" } 1 .. $n ], 30);
}

# the first burst finds no rate measured yet: all queued, all stored,
# and the gateway measures how slowly
ok burst('w', 6), 'a first burst of 6 sends';
my @w = answers('w', 6);
is_deeply [ map { code_of($_) } @w ], [ ('ok') x 6 ],
    'all of them stored (no rate known yet: nothing refused)';

ok burst('s', 20), 'a burst of 20 sends';
my @s = answers('s', 20);
is scalar(@s), 20, 'every send of the burst is answered';
my @ok = grep { code_of($_) eq 'ok' } @s;
my @refused = grep { code_of($_) eq 'unavailable' } @s;
is @ok + @refused, 20, 'each one ok or unavailable'
    or diag explain [ map { code_of($_) } @s ];
cmp_ok scalar(@refused), '>=', 15,
    'the sends beyond the budget are refused';
cmp_ok scalar(@ok), '>=', 2, 'the first ones are admitted';
is scalar(grep { ($_->{error}{retryAfterMs} // 0) > 0 } @refused),
    scalar(@refused), 'each refusal carries retryAfterMs';

# refused at once: every refusal came before the first admitted send
# (which waits 50 ms in PostgreSQL) was answered
my ($first_ok) = grep { code_of($s[$_]) eq 'ok' } 0 .. $#s;
$first_ok //= 0;
is scalar(grep { code_of($s[$_]) eq 'unavailable' } $first_ok .. $#s), 0,
    'all refusals were answered before the first stored send';

# what was admitted is stored and delivered, in order
my @seq = map { $_->{seq} } @ok;
is_deeply \@seq, [ sort { $a <=> $b } @seq ], 'the stored ones in order';
my %admitted = map { ($_->{id} => 1) } @ok;
my @want = ((map { "slow w$_" } 1 .. 6),
    map { "slow $_" } grep { $admitted{$_} } map { "s$_" } 1 .. 20);
my @got;
while (@got < @want) {
    my $e = $bob->next_event('newMessage', 30) or last;
    push @got, $e->{message};
}
is_deeply \@got, \@want, 'bob got every stored message, and only those';

# a refused send retried (same clientMessageId) once the queue is empty
# is stored
my $again = $refused[0] ? $refused[0]{id} : 's20';
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => $again,
    message => "slow $again", _timeout => 30);
is code_of($r), 'ok', 'a refused send retried later is stored';
is $r && $r->{duplicate} ? 1 : 0, 0, 'as a new message';

ok $t->grep_log(qr/chat: overloaded: \d+ sends refused at once/),
    'the refusals are logged';

$t->done_testing;
