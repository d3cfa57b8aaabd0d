#!/usr/bin/perl

# Live newMessage events of one chat reach a device in seq order
# (docs/protocol.md "Order"), even when they reach the gateway the other
# way round: two senders' messages are published by whichever worker stored
# them, after its own commit.  The test plays such a bus by publishing
# events to the user's Redis channel itself, in the gateway's bus format
# (ngx_chat_bus.c), and checks what the device receives:
#   - seq 12 published before 11: the device gets 11, then 12;
#   - a gap that is never filled (13 never comes): 14 and 15 still arrive,
#     in order, after the hold (NGX_CHAT_ORDER_HOLD), and a late 13 too;
#   - an event without chat and seq (an older gateway's) comes at once;
#   - chats are independent: a gap in one does not hold another;
#   - real traffic: two users sending to one chat over two workers, every
#     device gets the chat in seq order.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s;')->run;

my $JSON = JSON::PP->new->canonical;

# PUBLISH over a plain RESP connection; returns the receiver count
sub publish {
    my ($channel, $msg) = @_;
    my ($host, $port) = split /:/, $t->redis_addr;
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
        Timeout => 5) or die "redis: $!";
    my @a = ('PUBLISH', $channel, $msg);
    print $s '*' . @a . "\r\n" . join '',
        map { '$' . length($_) . "\r\n$_\r\n" } @a;
    my $reply = <$s> // '';
    close $s;
    return $reply =~ /^:(\d+)/ ? $1 : -1;
}

my $next_id = 9_000_000_000;

# a newMessage of (chat, seq) for user's channel; $plain: no order field
sub event_for {
    my ($user, $chat, $seq, $plain) = @_;
    my $id = $next_id++;
    my $json = $JSON->encode({ type => 'newMessage', eventId => "$id",
        chatId => "$chat", messageId => "$id", seq => $seq,
        senderId => 'zed', senderDevice => 'z1', message => "m$seq",
        attachments => [], sentAt => 1 });
    my $order = $plain ? '' : "$chat:$seq|";
    my $n = publish($t->redis_prefix . "u:$user", "e|$id||$order$json");
    return $n;
}

my $alice = $t->client('alice', 'phone');

# Right after registration the device drains its inbox, and live events
# that arrive meanwhile are left to that drain (they are in the inbox):
# these synthetic ones are not, so wait until a probe comes through live.
my $probed = ChatTest::poll(sub {
    event_for('alice', 555, 1, 'plain');
    my $e = $alice->next_event('newMessage', 0.2);
    return $e && $e->{chatId} eq '555';
}, 10, 0);
ok $probed, 'the initial drain is over: a probe event came live';

# --- swapped: 10, 12, 11

ok event_for('alice', 777, 10) >= 1, 'the user channel has a subscriber';
event_for('alice', 777, 12);
event_for('alice', 777, 11);
is_deeply $alice->chat_seqs('777', 3), [10, 11, 12],
    'published 10, 12, 11: delivered 10, 11, 12';

# --- a gap never filled, and another chat meanwhile

event_for('alice', 777, 14);
event_for('alice', 777, 15);
event_for('alice', 888, 1);
my $e = $alice->next_event('newMessage', 5);
is $e && "$e->{chatId}/$e->{seq}", '888/1',
    'another chat is not held behind the gap in chat 777';
is_deeply $alice->chat_seqs('777', 2), [14, 15],
    '13 never comes: 14 and 15 arrive after the hold, in order';
event_for('alice', 777, 13);
is_deeply $alice->chat_seqs('777', 1), [13], 'a late 13 is delivered too';

# --- an event without order field (older gateway): at once, as it comes

event_for('alice', 777, 20);
event_for('alice', 777, 17, 'plain');
is_deeply $alice->chat_seqs('777', 1), [17],
    'without chat and seq it is not held (20 waits for 16..19)';
is_deeply $alice->chat_seqs('777', 1), [20], '... and 20 comes after the hold';

# --- real traffic over two workers: both users send, all devices in order

my $bob = $t->client('bob', 'phone');
my $bob2 = $t->client('bob', 'tablet');
my $carol = $t->client('carol', 'phone');
my $r = $alice->cmd('createChat', participants => [ 'bob', 'carol' ]);
ok $r && $r->{ok}, 'a chat of three';
my $chat = $r->{chatId};
for my $ws ($alice, $bob, $bob2, $carol) {
    $ws->next_event('chatUpdate', 5);
}

my %sent;                                   # device => its seqs
my @ids;
for my $i (1 .. 40) {
    for my $s ([$alice, 'alice'], [$bob, 'bob'], [$carol, 'carol']) {
        my ($ws, $name) = @$s;
        my $id = "$name-$i";
        push @ids, [ $ws, $id, $name ];
        $ws->send_json({ type => 'sendMessage', id => $id, chatId => $chat,
            clientMessageId => $id, message => "$name $i" });
    }
}
for my $x (@ids) {
    my ($ws, $id, $name) = @$x;
    my $a = $ws->response($id, 10) // {};
    push @{ $sent{$name} }, $a->{seq} if $a->{ok};
}
is scalar(map { @$_ } values %sent), 120, '120 messages stored';

for my $d ([$alice, 'alice', 'phone'], [$bob, 'bob', 'phone'],
           [$bob2, 'bob', 'tablet'], [$carol, 'carol', 'phone'])
{
    my ($ws, $name, $dev) = @$d;
    # a device gets every message but those it sent itself
    my $n = 120 - ($dev eq 'tablet' ? 0 : scalar @{ $sent{$name} });
    my $got = $ws->chat_seqs($chat, $n, 10);
    is scalar(@$got), $n, "$name/$dev receives its $n messages";
    is_deeply $got, [ sort { $a <=> $b } @$got ],
        "$name/$dev receives them in seq order";
}

$t->done_testing;
