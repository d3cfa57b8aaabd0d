#!/usr/bin/perl

# An idempotent resend of an answered send delivers nothing again
# (docs/protocol.md "sendMessage", "Idempotent resends").  200 tries of:
# alice sends, bob gets the newMessage and acks it, and alice sends the
# same clientMessageId again at once (answered "duplicate":true), while
# bob's ack is still on its way to PostgreSQL: bob gets each message once.
# Two workers; alice's resends come over the same connection as the first
# send.  Before each try is counted, bob's connection is drained with a
# PING round trip, and the next try's message (published after the
# resend's answer, by the same worker, through the same Redis) comes after
# any copy of the previous one; a final message and PING end the run.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $TRIES = 200;

my $t = ChatTest->new(workers => 2);
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s;')->run;

my $alice = $t->client('alice', 'phone');
my $bob = $t->client('bob', 'phone');
my $r = $alice->cmd('createChat', participants => ['bob']);
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId} // 0;

my %got;            # eventId -> copies bob received
my @late;           # newMessage events that came after their try

# moves bob's queued newMessage events into %got
sub take {
    my @keep;
    for my $e (splice @{ $bob->{events} }) {
        if (($e->{type} // '') eq 'newMessage') {
            $got{ $e->{eventId} }++;
            push @late, $e;
        } else {
            push @keep, $e;
        }
    }
    @{ $bob->{events} } = @keep;
}

sub send_msg {
    my ($cmid, $text) = @_;
    return $alice->cmd('sendMessage', chatId => $chat,
        clientMessageId => $cmid, message => $text, _timeout => 10) // {};
}

my ($sent, $dups, $first, $bad) = (0, 0, 0, '');
my %ids;

for my $i (1 .. $TRIES) {
    my $s = send_msg("cm-$i", "m$i");
    if (!$s->{ok} || $s->{duplicate}) {
        $bad ||= "try $i: the first send answered "
            . ChatTest::json()->encode($s);
        last;
    }
    $sent++;
    $ids{ $s->{messageId} } = 1;

    # (a late copy of an earlier message may come first: counted)
    my $e;
    while ($e = $bob->next_event('newMessage', 10)) {
        $got{ $e->{eventId} }++;
        last if $e->{eventId} eq $s->{messageId};
        push @late, $e;
    }
    if (!$e) {
        $bad ||= "try $i: bob did not get m$i";
        last;
    }
    $first++;

    # the ack goes first, the resend right behind it
    $bob->send_json({ type => 'ack', eventIds => [ $e->{eventId} ] });
    my $d = send_msg("cm-$i", "m$i");
    if (!$d->{ok} || !$d->{duplicate}
        || $d->{messageId} ne $s->{messageId})
    {
        $bad ||= "try $i: the resend answered "
            . ChatTest::json()->encode($d);
        last;
    }
    $dups++;

    $bob->ping("p$i");
    if (!defined $bob->wait_pong(10)) {
        $bad ||= "try $i: no PONG from bob's connection";
        last;
    }
    take();
}

is $bad, '', 'every send answered ok, every resend "duplicate":true'
    . " with the same messageId ($sent sends, $dups resends)";
is $first, $TRIES, "bob got each of the $TRIES messages";

# a final message: anything published before it came before it
my $f = send_msg('cm-last', 'last');
ok $f->{ok}, 'a final message';
my $e;
while ($e = $bob->next_event('newMessage', 10)) {
    $got{ $e->{eventId} }++;
    last if $e->{message} eq 'last';
    push @late, $e;
}
is $e && $e->{message}, 'last', '... reaches bob';
$bob->send_json({ type => 'ack', eventIds => [ $e->{eventId} ] }) if $e;
$bob->ping('final');
ok defined $bob->wait_pong(10), 'bob drained with a PING round trip';
take();

my @twice = grep { $got{$_} > 1 } sort keys %got;
is scalar(@twice), 0, 'bob got each message exactly once'
    or diag scalar(@twice) . " delivered again: @twice[0 .. ($#twice < 9
        ? $#twice : 9)]";
is_deeply [ grep { !$ids{$_} } map { $_->{eventId} } grep {
        $_->{message} ne 'last' } @late ], [],
    'nothing but those messages reached bob';

is_deeply [ map { $_->violations } $alice, $bob ], [],
    'server frames follow RFC 6455';
$_->close(1000) for $alice, $bob;

$t->done_testing;
