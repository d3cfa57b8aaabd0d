#!/usr/bin/perl

# A statement that outlives chat_db_timeout: its caller is answered at the
# deadline, and the PostgreSQL connection is kept (the server's own
# statement_timeout, set to the same time, cancels the statement), not
# closed and reopened.  Closing did not stop the statement on the server
# (it notices a closed client only when it writes), and under a
# PostgreSQL that is already behind every timeout cost a new session and
# its prepares (issue 15: 64 workers reconnecting over and over).
#
# One pooled connection, chat_db_timeout 1s, one send per batch, two
# batches at once: "hold" keeps the connection 0.6 s, so "stall" waits
# for it and starts 0.6 s into its second; its caller gives up at 1 s,
# the server cancels it at 1.6 s; "after", sent once "stall" was
# answered, runs on the same connection once the server has.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;

my $t = ChatTest->new(workers => 1);
$t->chat_conf(pool => 1, http => <<'CONF');
    chat_ping_interval 600s;
    chat_db_timeout 1s;
    chat_send_batch_size 1;
    chat_send_batches 2;
    chat_send_queue_time off;
CONF
$t->slow_messages(hold => 0.6, stall => 5);
$t->run;

*code_of = \&ChatTest::code_of;

my ($alice, $bob, $chat) = $t->two_in_a_chat;
ok $chat, 'alice and bob have a chat';
my $r;

ok $alice->send_json_burst(map { { type => 'sendMessage', id => $_,
    chatId => $chat, clientMessageId => $_, message => "$_ message" } }
    qw(hold stall)), 'a send that holds the connection, one that stalls';
my %got = map { ($_->{id} => code_of($_)) }
    $alice->responses([qw(hold stall)], 10);
is $got{hold}, 'ok', 'the first is stored';
is $got{stall}, 'unavailable', 'the stalled one is answered at the deadline';

ok $t->wait_log(qr/statement "chat_send_batch" timed out after 1000 ms; (?x)
    connection \s \#1 \s waits \s for \s the \s server \s to \s cancel/, 10),
    'the log says the connection waits for the server to cancel it';

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'after',
    message => 'after message', _timeout => 10);
is code_of($r), 'ok', 'the next send is stored';

my @msgs;
while (@msgs < 2) {
    my $e = $bob->next_event('newMessage', 10) or last;
    push @msgs, $e->{message};
}
is_deeply \@msgs, [ 'hold message', 'after message' ],
    'bob got what was stored, not the cancelled one';

my $stored = $t->psql("SELECT string_agg(body, ',' ORDER BY seq) FROM messages"
    . " WHERE chat_id = $chat");
like $stored, qr/^\s*hold message,after message\s*$/,
    'the cancelled statement stored nothing';

is scalar($t->grep_log(qr/postgresql connection #1 .* established/)), 1,
    'the connection was never closed and reopened';
is scalar($t->grep_log(qr/was not cancelled by the server|connection #1 lost/)),
    0, 'nor dropped';

$t->done_testing;
