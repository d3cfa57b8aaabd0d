#!/usr/bin/perl

# A full group (docs/protocol.md "createChat", "modifyChatParticipants",
# chat_max_participants, default 100): the creator and 99 others, every
# one connected (spread over two workers); one message reaches every
# participant but the sending device; a 101st participant is refused with
# limit_exceeded by createChat and by modifyChatParticipants ADD, and a
# freed place can be taken again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
# idle clients (not reading while the test talks to others) must not be
# disconnected for missing PONGs, even on a loaded machine
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s;')->run;

# a connected and registered device (its first response means registered)
sub client { $t->client($_[0], $_[1] // 'phone', timeout => 10) }

# the nginx workers serving these clients, in one pass (see worker_of in
# t/010-messaging.t): the server side of each TCP connection in
# /proc/net/tcp, then the worker holding that socket
sub workers_of {
    my (@ws) = @_;
    my $local = sprintf '0100007F:%04X', $t->port;
    my %inode;                              # client port => socket inode
    open my $fh, '<', '/proc/net/tcp' or return ();
    while (my $line = <$fh>) {
        my @f = split ' ', $line;
        next unless @f > 9 && $f[1] eq $local
            && $f[2] =~ /^0100007F:([0-9A-F]{4})$/;
        $inode{ hex $1 } = $f[9];
    }
    close $fh;
    my %pid_of;                             # socket inode => worker pid
    for my $pid ($t->worker_pids) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink $fd // next;
            $pid_of{$1} = $pid if $l =~ /^socket:\[(\d+)\]$/;
        }
    }
    return map { $pid_of{ $inode{ $_->socket->sockport } // '' } } @ws;
}

my @others = map { sprintf 'u%03d', $_ } 1 .. 99;
my $extra = 'u100';

my $owner = client('owner');
my %ws = map { $_ => client($_) } @others;
my $late = client($extra);
my @all = ($owner, map { $ws{$_} } @others);

my %per_worker;
$per_worker{ $_ // 'unknown' }++ for workers_of(@all);
is scalar(grep { $_ ne 'unknown' } keys %per_worker), 2,
    '100 clients, on both workers: '
    . join(', ', map { "$_: $per_worker{$_}" } sort keys %per_worker);

# --- a 101-participant chat is refused

my $r = $owner->cmd('createChat', participants => [ @others, $extra ],
    name => 'too big');
ok $r && !$r->{ok}, 'createChat with 101 participants refused';
is $r && $r->{error} && $r->{error}{code}, 'limit_exceeded',
    '... with limit_exceeded';

# --- the creator and 99 others

$r = $owner->cmd('createChat', participants => \@others, name => 'all',
    _timeout => 10);
ok $r && $r->{ok}, 'createChat with 100 participants (creator + 99)'
    or diag explain $r;
my $chat = $r->{chatId} // '';

my $updates = 0;
my @want = sort 'owner', @others;
for my $ws (@all) {
    my $e = $ws->next_event('chatUpdate', 10) or next;
    $updates++ if $e->{chatId} eq $chat
        && (join ' ', sort @{ $e->{participants} // [] }) eq "@want"
        && $e->{admin} eq 'owner' && defined $e->{eventId};
}
is $updates, 100, 'all 100 participants get the chatUpdate, with all'
    . ' 100 listed';

# --- one message reaches all connected participants

my $s = $owner->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'hello-all', message => 'hello everybody',
    _timeout => 10);
ok $s && $s->{ok}, 'owner sends to the group' or diag explain $s;
is $s->{seq}, 1, 'seq 1';

my (@missing, %eids);
for my $u (@others) {
    my $e = $ws{$u}->next_event('newMessage', 10);
    if ($e && $e->{messageId} eq $s->{messageId}
        && $e->{message} eq 'hello everybody' && $e->{senderId} eq 'owner')
    {
        $eids{$u} = $e->{eventId};
    } else {
        push @missing, $u;
    }
}
is_deeply \@missing, [], 'all 99 others received the message';

# everybody acks; the last ack deletes the message
for my $u (@others) {
    $ws{$u}->send_json({ type => 'ack', eventIds => [ $eids{$u} // () ] });
}

# the sending device did not get its own message: its next newMessage is
# the answer of u001
$s = $ws{u001}->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'answer', message => 'hi owner');
ok $s && $s->{ok}, 'u001 answers';
my $e = $owner->next_event('newMessage', 10);
is $e && $e->{message}, 'hi owner',
    'the owner gets the answer, and did not get its own message';

# --- a 101st participant is refused by ADD

$r = $ws{u050}->cmd('modifyChatParticipants', chatId => $chat,
    userId => $extra, operation => 'ADD');
ok $r && !$r->{ok}, 'ADD of a 101st participant refused';
is $r && $r->{error} && $r->{error}{code}, 'limit_exceeded',
    '... with limit_exceeded';

$r = $ws{u050}->cmd('getChats');
my ($c) = grep { $_->{chatId} eq $chat } @{ $r->{chats} // [] };
is scalar @{ $c->{participants} // [] }, 100,
    'the chat still has 100 participants';

# a place freed by a REMOVE can be taken
$r = $owner->cmd('modifyChatParticipants', chatId => $chat,
    userId => 'u099', operation => 'REMOVE');
ok $r && $r->{ok}, 'the admin removes u099';
$r = $ws{u050}->cmd('modifyChatParticipants', chatId => $chat,
    userId => $extra, operation => 'ADD');
ok $r && $r->{ok}, 'then the ADD of u100 is accepted' or diag explain $r;

$e = $late->next_event('chatUpdate', 10);
ok $e && $e->{chatId} eq $chat
    && grep({ $_ eq $extra } @{ $e->{participants} // [] }),
    'u100 gets the chatUpdate with itself in the chat';
is scalar @{ $e->{participants} // [] }, 100, '... 100 participants';

$s = $owner->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'welcome', message => 'welcome u100');
ok $s && $s->{ok}, 'owner sends again';
$e = $late->next_event('newMessage', 10);
is $e && $e->{message}, 'welcome u100',
    'u100 receives it (and nothing sent before it joined)';

# the duplicate of the creator in participants is ignored: 100 in all
$r = $owner->cmd('createChat', participants => [ 'owner', @others ],
    _timeout => 10);
ok $r && $r->{ok}, 'createChat listing the creator too: 100 participants,'
    . ' accepted';

is_deeply [ map { $_->violations } @all, $late ], [],
    'server frames follow RFC 6455';
$_->close(1000) for @all, $late;

$t->done_testing;
