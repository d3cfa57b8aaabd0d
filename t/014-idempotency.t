#!/usr/bin/perl

# Idempotent sendMessage (docs/protocol.md "sendMessage"): the same
# clientMessageId from the same device, again on the same connection,
# pipelined, after a reconnect, or after the message was delivered and
# acked, yields one message: the same messageId and seq with
# "duplicate":true, delivered once.  Another device's identical
# clientMessageId is another message.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
# idle clients (not reading while the test talks to others) must not be
# disconnected for missing PONGs, even on a loaded machine
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s;')->run;

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub jtype {
    my $j = $JSON->encode($_[0]);
    return $j =~ /^"/ ? 'string' : $j =~ /^-?[0-9]/ ? 'number' : $j;
}

# a connected and registered device (its first response means registered)
sub client { $t->client(@_) }

# true once $cond->() is, false if not within $timeout seconds
sub poll { ChatTest::poll($_[0], $_[1] // 5, 0.05) }

sub count { scalar $t->psql($_[0]) }

my $chat;

sub send_msg {
    my ($ws, $cmid, $text) = @_;
    return $ws->cmd('sendMessage', chatId => $chat,
        clientMessageId => $cmid, message => $text) // {};
}

# the newMessage events $ws gets up to and including the one with text
# $last (events of a chat arrive in seq order, so anything delivered twice
# before it shows up here); all acked
sub until_text {
    my ($ws, $last) = @_;
    my @e;
    while (my $e = $ws->next_event('newMessage', 5)) {
        push @e, $e;
        last if $e->{message} eq $last;
    }
    $ws->cmd('ack', eventIds => [ map { $_->{eventId} } @e ]) if @e;
    return map { $_->{message} } @e;
}

my $alice = client('alice', 'phone');
my $bob = client('bob', 'phone');
my $r = $alice->cmd('createChat', participants => ['bob']);
ok $r && $r->{ok}, 'createChat';
$chat = $r->{chatId} // 0;

# --- twice on the same connection

my $r1 = send_msg($alice, 'cm-1', 'first');
ok $r1->{ok}, 'sendMessage cm-1';
is jtype($r1->{duplicate}), 'false', '"duplicate":false the first time';

my $r2 = send_msg($alice, 'cm-1', 'first');
ok $r2->{ok}, 'sendMessage cm-1 again';
is jtype($r2->{duplicate}), 'true', '"duplicate":true the second time';
is_deeply [ $r2->{messageId}, $r2->{seq} ], [ $r1->{messageId}, $r1->{seq} ],
    'same messageId and seq';

# a different text with the same id is still the same message
my $r3 = send_msg($alice, 'cm-1', 'first, edited');
ok $r3->{ok} && $r3->{duplicate}, 'same id, other text: a duplicate';
is $r3->{messageId}, $r1->{messageId}, '... of the same message';

my $m = send_msg($alice, 'cm-2', 'second');
is $m->{seq}, $r1->{seq} + 1, 'the next message takes the next seq';
is_deeply [ until_text($bob, 'second') ], [ 'first', 'second' ],
    'bob got "first" once, then "second"';

# --- after a reconnect

$alice->disconnect;
$alice = client('alice', 'phone');
my $r4 = send_msg($alice, 'cm-2', 'second');
ok $r4->{ok}, 'cm-2 again after a reconnect';
is jtype($r4->{duplicate}), 'true', '... "duplicate":true';
is_deeply [ $r4->{messageId}, $r4->{seq} ], [ $m->{messageId}, $m->{seq} ],
    '... same messageId and seq';

# cm-1 was delivered and acked by bob (its message row may be gone): the
# key is remembered for chat_retention all the same
ok poll(sub { count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND event_id = $r1->{messageId}") == 0 }),
    'cm-1 was acked by bob';
my $r5 = send_msg($alice, 'cm-1', 'first');
ok $r5->{ok} && $r5->{duplicate}, 'cm-1 again after delivery and ack:'
    . ' a duplicate';
is_deeply [ $r5->{messageId}, $r5->{seq} ], [ $r1->{messageId}, $r1->{seq} ],
    '... same messageId and seq';

$m = send_msg($alice, 'cm-3', 'third');
is $m->{seq}, $r1->{seq} + 2, 'no seq was used by the duplicates';
is_deeply [ until_text($bob, 'third') ], [ 'third' ],
    'bob gets nothing more than "third"';

# --- pipelined: the same id twice in a row without waiting

$alice->send_json({ type => 'sendMessage', id => 'p1', chatId => $chat,
    clientMessageId => 'cm-4', message => 'fourth' });
$alice->send_json({ type => 'sendMessage', id => 'p2', chatId => $chat,
    clientMessageId => 'cm-4', message => 'fourth' });
my $p1 = $alice->response('p1', 5) // {};
my $p2 = $alice->response('p2', 5) // {};
ok $p1->{ok} && $p2->{ok}, 'both pipelined sends answered ok';
is_deeply [ $p2->{messageId}, $p2->{seq} ], [ $p1->{messageId}, $p1->{seq} ],
    '... with the same messageId and seq';
is_deeply [ map { jtype($_->{duplicate}) } $p1, $p2 ],
    [ 'false', 'true' ], '... the second one (sends keep their order) a'
    . ' duplicate';
send_msg($alice, 'cm-5', 'fifth');
is_deeply [ until_text($bob, 'fifth') ], [ 'fourth', 'fifth' ],
    'bob got "fourth" once';
is count("SELECT count(*) FROM sent_keys WHERE user_id = 'alice'"
    . " AND client_message_id = 'cm-4'"), 1, 'one idempotency key';

# --- another device's identical clientMessageId is another message

my $laptop = client('alice', 'laptop');
my $l = send_msg($laptop, 'cm-1', 'from the laptop');
ok $l->{ok}, 'the laptop sends with clientMessageId cm-1';
is jtype($l->{duplicate}), 'false', '... not a duplicate';
isnt $l->{messageId}, $r1->{messageId}, '... a new messageId';
is_deeply [ until_text($bob, 'from the laptop') ], [ 'from the laptop' ],
    'bob gets it';

is_deeply [ map { $_->violations } $alice, $bob, $laptop ], [],
    'server frames follow RFC 6455';
$_->close(1000) for $alice, $bob, $laptop;

$t->done_testing;
