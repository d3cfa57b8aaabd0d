#!/usr/bin/perl

# The events a worker holds back for live per-chat order (ngx_chat_order.c,
# t/018-live-order.t) are capped in bytes for the whole worker by
# chat_order_hold_limit (here 2k).  An event that does not fit is delivered
# at once, out of order, never dropped:
#   - a small event after a gap is still held (1, 3, 2 arrives 1, 2, 3),
#     many times over: what was held is counted out again when released;
#   - an event larger than the limit is not held: published 1, 3, 2 (3 of
#     4 KB) arrives 1, 3, 2, all three of them.
# As in t/018, the test publishes to the user's Redis channel itself, in
# the gateway's bus format; the events of one case go in one write to
# Redis, so the hold time (50 ms) does not run out between them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 1);
$t->chat_conf(http => <<'EOF')->run;
    chat_ping_interval 600s;
    chat_order_hold_limit 2k;
EOF

my $JSON = JSON::PP->new->canonical;
my $next_id = 9_100_000_000;

# PUBLISH each [channel, message] pipelined over one RESP connection;
# returns the receiver count of the first
sub publish {
    my (@msgs) = @_;
    my ($host, $port) = split /:/, $t->redis_addr;
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
        Timeout => 5) or die "redis: $!";
    my $out = '';
    for my $m (@msgs) {
        my @a = ('PUBLISH', @$m);
        $out .= '*' . @a . "\r\n" . join '',
            map { '$' . length($_) . "\r\n$_\r\n" } @a;
    }
    print $s $out;
    my @replies = map { scalar(<$s>) // '' } @msgs;
    close $s;
    return $replies[0] =~ /^:(\d+)/ ? $1 : -1;
}

# the bus message of a newMessage of (chat, seq) for user, with a text of
# $size bytes; $plain: no order field
sub event_for {
    my ($user, $chat, $seq, $size, $plain) = @_;
    my $id = $next_id++;
    my $json = $JSON->encode({ type => 'newMessage', eventId => "$id",
        chatId => "$chat", messageId => "$id", seq => $seq,
        senderId => 'zed', senderDevice => 'z1',
        message => 'm' x ($size // 10), attachments => [], sentAt => 1 });
    my $order = $plain ? '' : "$chat:$seq|";
    return [ $t->redis_prefix . "u:$user", "e|$id||$order$json" ];
}

my $alice = $t->client('alice', 'phone');

# live events that arrive during the initial drain are left to it: wait
# until a probe comes through live (as t/018 does)
my $probed = ChatTest::poll(sub {
    publish(event_for('alice', 555, 1, 10, 'plain'));
    my $e = $alice->next_event('newMessage', 0.2);
    return $e && $e->{chatId} eq '555';
}, 10, 0);
ok $probed, 'the initial drain is over: a probe event came live';

# --- small events are held, again and again

my $chat = 700;
for my $round (1 .. 10) {
    $chat++;
    ok publish(event_for('alice', $chat, 1), event_for('alice', $chat, 3),
        event_for('alice', $chat, 2)) >= 1, "round $round: published";
    is_deeply $alice->chat_seqs($chat, 3), [1, 2, 3],
        "round $round: 1, 3, 2 (small) delivered 1, 2, 3";
}

# --- an event over the limit is delivered at once

publish(event_for('alice', 800, 1), event_for('alice', 800, 3, 4096),
    event_for('alice', 800, 2));
is_deeply $alice->chat_seqs(800, 3), [1, 3, 2],
    '1, 3, 2 with 3 over chat_order_hold_limit: delivered as they came';

# and holding works as before afterwards
publish(event_for('alice', 801, 1), event_for('alice', 801, 3),
    event_for('alice', 801, 2));
is_deeply $alice->chat_seqs(801, 3), [1, 2, 3],
    'then a small one is held again';

# several held at once up to the limit: the one that does not fit is
# delivered at once, the others wait for the gap
publish(event_for('alice', 802, 1),
    (map { event_for('alice', 802, $_, 700) } 3 .. 6),
    event_for('alice', 802, 2));
my $got = $alice->chat_seqs(802, 6);
is scalar(@$got), 6, 'six events of 800 bytes: all delivered';
is $got->[0], 1, '... 1 first';
isnt join(',', @$got), '1,2,3,4,5,6', '... not all of them held for 2';
is_deeply [ sort { $a <=> $b } @$got ], [1 .. 6], '... none twice';

$t->done_testing;
