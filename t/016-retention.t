#!/usr/bin/perl

# Retention (docs/protocol.md "Delivery guarantees": nothing is kept longer
# than chat_retention): with chat_retention 3s and chat_sweep_interval 1s,
# messages and inbox rows nobody acked disappear from PostgreSQL after 3 s
# (not before), the device that was offline gets none of them when it
# connects, and the chat itself goes on working.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
$t->chat_conf(listen => ' reuseport', http => <<'EOF')->run;
    chat_retention 3s;
    chat_sweep_interval 1s;
    chat_ping_interval 600s;
EOF

# a connected and registered device (its first response means registered)
sub client { $t->client($_[0], $_[1] // 'phone') }

sub count { scalar $t->psql($_[0]) }

# bob's phone exists and is offline
my $bob = client('bob');
$bob->close(1000);

my $alice = client('alice');
my $t0 = time;
my $r = $alice->cmd('createChat', participants => ['bob'], name => 'old');
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId} // 0;

my @ids;
for my $i (1 .. 5) {
    $r = $alice->cmd('sendMessage', chatId => $chat,
        clientMessageId => "old-$i", message => "old $i");
    ok $r && $r->{ok}, "message $i stored";
    push @ids, $r->{messageId} if $r && $r->{ok};
}

my $msgs = "SELECT count(*) FROM messages WHERE chat_id = $chat";
my $inbox = "SELECT count(*) FROM inbox WHERE chat_id = $chat";
is count($msgs), 5, '5 messages rows';
is count($inbox), 7, '7 inbox rows: 5 messages and 1 chatUpdate for bob,'
    . ' the chatUpdate for alice';

# poll until both are empty; note when the first row went
my ($first_gone, $all_gone);
my $deadline = $t0 + 15;
while (time < $deadline) {
    my ($m, $i) = (count($msgs), count($inbox));
    my $now = time;
    $first_gone //= $now if $m < 5 || $i < 7;
    if ($m == 0 && $i == 0) {
        $all_gone = $now;
        last;
    }
    sleep 0.1;
}
ok $all_gone, 'the undelivered messages and inbox rows disappear';
note sprintf 'first row gone after %.1fs, all after %.1fs',
    ($first_gone // 0) - $t0, ($all_gone // 0) - $t0;
ok defined $first_gone && $first_gone - $t0 >= 2.5,
    'nothing went before the 3 s of retention';
ok !defined $all_gone || $all_gone - $t0 <= 3 + 1 + 5,
    'everything went within retention + sweep interval (+ slack)';

# bob connects: the expired events are not delivered; the chat works
$bob = client('bob');
$r = $alice->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'fresh', message => 'fresh');
ok $r && $r->{ok}, 'alice sends to the chat again';
my $e = $bob->next_event(undef, 5);
is $e && ($e->{message} // $e->{type}), 'fresh',
    "bob's first event is the fresh message: nothing expired is delivered";
is $e && $e->{seq}, 6, '... seq 6: the chat keeps its sequence';
$r = $bob->cmd('ack', eventIds => [ $e ? $e->{eventId} : () ]);
ok $r && $r->{ok}, 'bob acks it';

is_deeply [ map { $_->violations } $alice, $bob ], [],
    'server frames follow RFC 6455';
$_->close(1000) for $alice, $bob;

$t->done_testing;
