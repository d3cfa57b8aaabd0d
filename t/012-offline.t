#!/usr/bin/perl

# Offline delivery (docs/protocol.md "Connecting", "ack", "Delivery
# guarantees"): 1000 messages sent to an offline device wait in its inbox;
# when it connects it gets all of them exactly once and in seq order while
# acking in batches; once everything is acked the chat's inbox and
# messages rows are gone.  Events delivered but not acked when the
# connection drops are delivered again on the next connection, acked ones
# are not.

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

# a connected and registered device (its first response means registered)
sub client { $t->client($_[0], $_[1] // 'phone', timeout => 10) }

# true once $cond->() is, false if not within $timeout seconds
sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.1) }

sub count { scalar $t->psql($_[0]) }

# the events acked with an id have left bob/phone's inbox: the ack's
# response comes once their rows are deleted (checked before a connection
# is dropped, so that only events really not acked can come back)
sub acked_gone {
    my (@ids) = @_;
    return 1 unless @ids;
    my $in = join ',', map { int } @ids;
    return count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
        . " AND device_id = 'phone' AND event_id IN ($in)") == 0;
}

# send messages "$prefix-1".."$prefix-$n" to $chat, pipelined 100 at a
# time; "unavailable" is retried with the same clientMessageId, as the
# protocol asks (those numbers are listed in $retried{$prefix}).  Returns
# the responses by number (1..$n), or dies.
my %retried;

sub send_many {
    my ($ws, $chat, $prefix, $n) = @_;
    my %resp;
    my @todo = (1 .. $n);
    my $tries = 0;
    while (@todo) {
        die "sendMessage keeps failing\n" if ++$tries > 50;
        my @batch = splice @todo, 0, 100;
        my %id;
        for my $i (@batch) {
            $id{$i} = $ws->next_id;
            $ws->send_json({ type => 'sendMessage', id => $id{$i},
                chatId => $chat, clientMessageId => "$prefix-$i",
                message => "$prefix message $i" })
                or die "sendMessage $i: write failed\n";
        }
        for my $i (@batch) {
            my $r = $ws->response($id{$i}, 10)
                or die "sendMessage $i: no response\n";
            if ($r->{ok}) {
                $resp{$i} = $r;
            } elsif (($r->{error}{code} // '') eq 'unavailable') {
                push @todo, $i;
                $retried{$prefix}{$i} = 1;
            } else {
                die "sendMessage $i: $r->{error}{code}\n";
            }
        }
    }
    return \%resp;
}

# the chatUpdate's eventId, acked (with an answer) by $ws
sub ack_update {
    my ($ws, $name) = @_;
    my $e = $ws->next_event('chatUpdate', 5);
    ok $e, "$name: chatUpdate";
    my $r = $ws->cmd('ack', eventIds => [ $e ? $e->{eventId} : () ]);
    ok $r && $r->{ok}, "$name: chatUpdate acked";
}

# --- bob's phone exists (it connected once) and goes offline

my $bob = client('bob');
$bob->close(1000);

my $alice = client('alice');
my $r = $alice->cmd('createChat', participants => ['bob'], name => 'backlog');
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId} // 0;
ack_update($alice, 'alice');

# --- 1000 messages to the offline phone

my $start = time;
my $sent = send_many($alice, $chat, 'm', 1000);
note sprintf '1000 sendMessage in %.1fs', time - $start;
# within one connection sends keep their order (those resent after
# "unavailable" excepted)
my %again = %{ $retried{m} // {} };
diag scalar(keys %again) . ' sends retried after "unavailable"' if %again;
my @first = grep { !$again{$_} } 1 .. 1000;
my @out = grep { $sent->{ $first[$_] }{seq} <= $sent->{ $first[$_ - 1] }{seq} }
    1 .. $#first;
is scalar @out, 0, 'pipelined sends got increasing seq in sending order'
    or diag 'out of order after: ', join ' ', map { $first[$_ - 1] }
        @out[0 .. ($#out < 9 ? $#out : 9)];
is_deeply [ sort { $a <=> $b } map { $_->{seq} } values %$sent ],
    [ 1 .. 1000 ], '1000 messages stored, seq 1..1000';
my %by_seq = map { $_->{seq} => $_ } values %$sent;
my %text_of = map { $sent->{$_}{seq} => "m message $_" } keys %$sent;

is count("SELECT count(*) FROM messages WHERE chat_id = $chat"), 1000,
    '1000 rows in messages';
is count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND device_id = 'phone' AND chat_id = $chat AND kind = 1"), 1000,
    '1000 inbox rows for bob/phone';

# --- bob connects and gets everything, acking every 50 events

$start = time;
$bob = client('bob');
my (@seqs, %times, @bad, @pending, $update);
my $deadline = time + 40;
while (@seqs < 1000 && time < $deadline) {
    my $e = $bob->next_event(undef, 10) or last;
    if (($e->{type} // '') eq 'chatUpdate') {
        $update = $e;
    } elsif (($e->{type} // '') eq 'newMessage') {
        my $s = $by_seq{ $e->{seq} // 0 };
        push @bad, $e unless $s && $e->{chatId} eq $chat
            && $e->{messageId} eq $s->{messageId}
            && $e->{message} eq $text_of{ $e->{seq} }
            && $e->{senderId} eq 'alice' && $e->{sentAt} == $s->{sentAt};
        push @seqs, $e->{seq};
        $times{ $e->{eventId} }++;
    } else {
        push @bad, $e;
    }
    push @pending, $e->{eventId} if defined $e->{eventId};
    if (@pending >= 50) {
        $bob->send_json({ type => 'ack', eventIds => [ @pending ] });
        @pending = ();
    }
}
note sprintf '1000 events drained in %.1fs', time - $start;
is scalar @seqs, 1000, 'bob received 1000 messages';
is_deeply \@seqs, [ 1 .. 1000 ], '... in seq order, each once';
is scalar(grep { $times{$_} > 1 } keys %times), 0, 'no eventId twice';
is_deeply \@bad, [], 'every event is the message that was sent';
ok $update && $update->{chatId} eq $chat,
    'the chatUpdate of the creation was waiting too';

# nothing more comes: the next message of the chat is the next event
# (events of a chat arrive in seq order)
my $m = $alice->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'marker', message => 'marker');
ok $m && $m->{ok}, 'one more message';
my $e = $bob->next_event(undef, 5);
is $e && $e->{messageId}, $m->{messageId},
    'it is the next event bob gets: nothing was delivered twice';
push @pending, $e->{eventId} if $e;
$r = $bob->cmd('ack', eventIds => [ @pending ]);
ok $r && $r->{ok}, 'the last ack is answered';

ok poll(sub {
    count("SELECT count(*) FROM inbox WHERE chat_id = $chat") == 0 }),
    'no inbox row of the chat is left';
ok poll(sub {
    count("SELECT count(*) FROM messages WHERE chat_id = $chat") == 0 }),
    'no messages row of the chat is left';

# --- delivered, not acked, connection dropped: delivered again

$r = $alice->cmd('createChat', participants => ['bob'], name => 'drops');
ok $r && $r->{ok}, 'second chat';
my $chat2 = $r->{chatId} // 0;
ack_update($alice, 'alice');
ack_update($bob, 'bob');

my $live = send_many($alice, $chat2, 'live', 5);
my @got;
for (1 .. 5) {
    my $ev = $bob->next_event('newMessage', 5) or last;
    push @got, $ev;
}
is_deeply [ map { $_->{seq} } @got ], [ 1 .. 5 ],
    'bob gets 5 live messages, in seq order'
    or diag 'got seqs: ', join ' ', map { $_->{seq} } @got;

$r = $bob->cmd('ack', eventIds => [ map { $_->{eventId} } @got[0, 1] ]);
ok $r && $r->{ok}, 'bob acks the first two (answered)';
ok acked_gone(map { $_->{eventId} } @got[0, 1]),
    '... their inbox rows are gone when the response comes';
$bob->disconnect;                          # no Close, no ack of 3..5

$bob = client('bob');
my @again;
for (1 .. 3) {
    my $ev = $bob->next_event('newMessage', 5) or last;
    push @again, $ev;
}
is_deeply [ map { $_->{eventId} } @again ],
    [ map { $_->{eventId} } @got[2 .. 4] ],
    'after reconnecting: the 3 unacked events again, same eventIds, in order';
is_deeply [ map { $_->{message} } @again ],
    [ map { $_->{message} } @got[2 .. 4] ], '... with their messages';

$m = $alice->cmd('sendMessage', chatId => $chat2,
    clientMessageId => 'marker2', message => 'marker 2');
$e = $bob->next_event('newMessage', 5);
is $e && $e->{message}, 'marker 2',
    'then the next new message: the acked ones did not come back';

my @ids = map { $_->{eventId} } @again, $e // ();
$r = $bob->cmd('ack', eventIds => \@ids);
ok $r && $r->{ok}, 'bob acks everything';
ok acked_gone(@ids), '... the rows are gone when the response comes';
$bob->disconnect;
$bob = client('bob');
$m = $alice->cmd('sendMessage', chatId => $chat2,
    clientMessageId => 'marker3', message => 'marker 3');
$e = $bob->next_event('newMessage', 5);
is $e && $e->{message}, 'marker 3',
    'after another reconnect nothing acked is delivered again';
$r = $bob->cmd('ack', eventIds => [ $e ? $e->{eventId} : () ]);
ok $r && $r->{ok}, 'and it is acked';
ok acked_gone($e ? $e->{eventId} : ()),
    '... its row is gone when the response comes';

# --- a drop in the middle of a backlog larger than the in-flight window

$bob->close(1000);
my $backlog = send_many($alice, $chat2, 'bl', 300);
my $first = (sort { $a <=> $b } map { $_->{seq} } values %$backlog)[0];
$bob = client('bob');
my @part;
while (@part < 120) {
    my $ev = $bob->next_event(undef, 5) or last;
    next unless ($ev->{type} // '') eq 'newMessage';
    push @part, $ev;
}
is scalar @part, 120, '120 events of the backlog received';
is_deeply [ map { $_->{seq} } @part ], [ $first .. $first + 119 ],
    '... in seq order';
$r = $bob->cmd('ack', eventIds => [ map { $_->{eventId} } @part[0 .. 99] ]);
ok $r && $r->{ok}, 'the first 100 acked (answered)';
ok acked_gone(map { $_->{eventId} } @part[0 .. 99]),
    '... their rows are gone when the response comes';
$bob->disconnect;

$bob = client('bob');
my @rest;
$deadline = time + 20;
while (@rest < 200 && time < $deadline) {
    my $ev = $bob->next_event(undef, 5) or last;
    next unless ($ev->{type} // '') eq 'newMessage';
    push @rest, $ev;
    $bob->send_json({ type => 'ack', eventIds => [ $ev->{eventId} ] })
        if @rest % 20 == 0 || @rest > 180;
}
is_deeply [ map { $_->{seq} } @rest ], [ $first + 100 .. $first + 299 ],
    'after the drop: exactly the 200 unacked events, in seq order';
$r = $bob->cmd('ack', eventIds => [ map { $_->{eventId} } @rest ]);
ok $r && $r->{ok}, 'all acked';

ok poll(sub {
    count("SELECT count(*) FROM inbox WHERE user_id = 'bob'") == 0 }),
    'bob/phone has an empty inbox';

is_deeply [ map { $_->violations } $alice, $bob ], [],
    'server frames follow RFC 6455';
$_->close(1000) for $alice, $bob;

$t->done_testing;
