#!/usr/bin/perl

# Commands of one connection take effect in the order the connection sent
# them (docs/protocol.md "Order of commands"), also when they are
# pipelined: sends are batched, a membership change runs as a statement of
# its own, and neither may overtake the other.  Each try writes 41
# commands in one write:
#   (a) sends 1-20, modifyChatParticipants REMOVE bob, sends 21-40:
#       bob receives exactly messages 1-20;
#   (b) sends 1-19, modifyChatParticipants ADD bob, sends 20-40:
#       bob receives exactly messages 20-40 (nothing written before he was
#       a member).
# What bob receives is checked twice: his device's inbox in PostgreSQL
# (written in the transaction of each message: exact, whatever the timing)
# and the newMessage events that reach his connection live.  Every
# command is answered ok.  CHAT_ORDER_TRIES (default 100) sets the tries.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $tries = $ENV{CHAT_ORDER_TRIES} // 100;

my $t = ChatTest->new(workers => 2);
$t->chat_conf(listen => ' reuseport', pool => 4,
    http => 'chat_ping_interval 600s;
    chat_command_rate off;
    chat_user_rate createChat off;
    chat_user_rate modifyChatParticipants off;')->run;

my $JSON = JSON::PP->new->canonical;

my $alice = $t->client('alice', 'phone');
my $bob = $t->client('bob', 'phone');

my $r = $alice->cmd('createChat', participants => [ 'bob', 'carol' ]);
ok $r && $r->{ok}, 'a chat of alice, bob and carol';
my $chat = $r->{chatId};

# 41 commands in one write; returns the ids of their requests
sub pipeline {
    my ($tag, $at, $op) = @_;
    my ($bytes, @ids) = ('');
    for my $k (1 .. 40) {
        if ($k == $at) {
            my $id = "$tag-op";
            push @ids, $id;
            $bytes .= ChatTest::WS::encode_frame(ChatTest::WS::OP_TEXT(),
                $JSON->encode({ type => 'modifyChatParticipants', id => $id,
                    chatId => $chat, userId => 'bob', operation => $op }));
        }
        my $id = "$tag-$k";
        push @ids, $id;
        $bytes .= ChatTest::WS::encode_frame(ChatTest::WS::OP_TEXT(),
            $JSON->encode({ type => 'sendMessage', id => $id, chatId => $chat,
                clientMessageId => $id, message => $id }));
    }
    $alice->send_raw($bytes) or return;
    return @ids;
}

# the messages of this try in bob's inbox, by their number
sub inbox_of {
    my ($tag) = @_;
    my @rows = $t->psql("SELECT m.body FROM inbox i JOIN messages m"
        . " ON m.chat_id = i.chat_id AND m.id = i.event_id"
        . " WHERE i.user_id = 'bob' AND i.device_id = 'phone'"
        . " AND i.kind = 1 AND i.chat_id = $chat"
        . " AND m.body LIKE '$tag-%'");
    return join ',', sort { $a <=> $b }
        map { /-(\d+)$/ ? $1 : () } @rows;
}

# bob's live newMessage events of this try, until he has $n of them
sub live_of {
    my ($tag, $n) = @_;
    my (@got, @acks);
    my $deadline = time + 10;
    while (@got < $n && time < $deadline) {
        my $e = $bob->next_event('newMessage', $deadline - time) or last;
        push @acks, $e->{eventId};
        next unless $e->{chatId} eq $chat
            && $e->{message} =~ /^\Q$tag\E-(\d+)$/;
        push @got, $1;
    }
    $bob->send_json({ type => 'ack', eventIds => \@acks }) if @acks;
    return join ',', sort { $a <=> $b } @got;
}

my %bad = (a => 0, b => 0);
my %unanswered = (a => 0, b => 0);
my %first;

for my $i (1 .. $tries) {
    for my $case ([ 'a', 21, 'REMOVE', [ 1 .. 20 ] ],
                  [ 'b', 20, 'ADD', [ 20 .. 40 ] ])
    {
        my ($c, $at, $op, $want) = @$case;
        my $tag = "t$i$c";
        my @ids = pipeline($tag, $at, $op);
        my $ok = 0;
        for my $id (@ids) {
            my $a = $alice->response($id, 15);
            $ok++ if $a && $a->{ok};
        }
        $unanswered{$c}++ if $ok != 41;

        my $want_s = join ',', @$want;
        my $inbox = inbox_of($tag);
        my $live = $inbox eq $want_s ? live_of($tag, scalar @$want) : '-';
        if ($inbox ne $want_s || $live ne $want_s) {
            $bad{$c}++;
            $first{$c} //= "try $i: inbox [$inbox] live [$live]";
        }
    }
    last if $bad{a} + $bad{b} + $unanswered{a} + $unanswered{b} >= 5;
}

is $unanswered{a}, 0, "(a) every one of the 41 commands answered ok";
is $bad{a}, 0, "(a) removed after message 20: bob receives exactly 1-20"
    . " in each of $tries tries" . ($first{a} ? " (first bad: $first{a})" : '');
is $unanswered{b}, 0, "(b) every one of the 41 commands answered ok";
is $bad{b}, 0, "(b) added before message 20: bob receives exactly 20-40"
    . " in each of $tries tries" . ($first{b} ? " (first bad: $first{b})" : '');

# a connection that closes with commands still waiting for their turn:
# they are dropped, and the worker goes on (no alert, the sends below)

{
    my $tablet = $t->client('alice', 'tablet');
    my $bytes = '';
    for my $k (1 .. 30) {
        my $j = $k == 10
            ? { type => 'modifyChatParticipants', id => "gone-op",
                chatId => $chat, userId => 'dave', operation => 'ADD' }
            : { type => 'sendMessage', id => "gone-$k", chatId => $chat,
                clientMessageId => "gone-$k", message => "gone-$k" };
        $bytes .= ChatTest::WS::encode_frame(ChatTest::WS::OP_TEXT(),
            $JSON->encode($j));
    }
    ok $tablet->send_raw($bytes), 'a pipeline written, then the close';
    $tablet->disconnect;
}

# plain sends still go (nothing is left waiting after the tries)

my @ids;
for my $k (1 .. 5) {
    push @ids, "tail-$k";
    $alice->send_json({ type => 'sendMessage', id => "tail-$k",
        chatId => $chat, clientMessageId => "tail-$k", message => "x$k" });
}
my $ok = grep { my $a = $alice->response($_, 15); $a && $a->{ok} } @ids;
is $ok, 5, 'plain sends after the tries: all ok';

$t->done_testing;
