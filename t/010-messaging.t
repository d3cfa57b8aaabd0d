#!/usr/bin/perl

# Live messaging across workers (docs/protocol.md "sendMessage",
# "newMessage", "chatUpdate"): two users whose connections are served by
# different nginx workers exchange messages in both directions; the
# sendMessage response carries messageId, a per-chat seq that grows by one
# and sentAt in milliseconds; every event carries an eventId; a message
# reaches the sender's other device but not the sending device.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
# reuseport: each worker accepts on its own socket, so connections spread
# over both workers (which one serves a client is checked below anyway);
# a long ping interval: idle clients (not reading while the test talks to
# others) must not be disconnected for missing PONGs on a loaded machine;
# tiny send batches, one at a time: the 10 pipelined sends below need four
# transactions one after another and must keep their order across them
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s; chat_send_batch_size 3; '
        . 'chat_send_batches 1;')->run;

my $JSON = JSON::PP->new->canonical->allow_nonref;

# "string", "number", "true"/"false", ...: the JSON type a decoded value
# had (call it before the value is used as a string or a number)
sub jtype {
    my $j = $JSON->encode($_[0]);
    return $j =~ /^"/ ? 'string' : $j =~ /^-?[0-9]/ ? 'number' : $j;
}

# a connected and registered device (its first response means registered)
sub client { $t->client(@_) }

# the pid of the nginx worker serving this client
sub worker_of { $t->worker_of(@_) }

# true once $cond->() is, false if not within $timeout seconds
sub poll { ChatTest::poll($_[0], $_[1] // 5, 0.05) }

my %got;                # "$ws" => event ids it received

# check the sendMessage response of a message sent now: returns it
sub sent_ok {
    my ($r, $name, $t0) = @_;
    if (!$r || !$r->{ok}) {
        fail "$name: sendMessage ok";
        diag explain $r;
        return undef;
    }
    my %type = map { $_ => jtype($r->{$_}) }
        qw(messageId seq sentAt duplicate);
    is_deeply \%type, { messageId => 'string', seq => 'number',
        sentAt => 'number', duplicate => 'false' },
        "$name: messageId string, seq and sentAt numbers, duplicate false";
    like $r->{messageId}, qr/^[0-9]+$/, "$name: messageId is digits";
    my $now = time;
    ok $r->{sentAt} >= int($t0 * 1000) - 2000
        && $r->{sentAt} <= int($now * 1000) + 2000,
        "$name: sentAt is now in milliseconds";
    return $r;
}

# the next newMessage on $ws, checked against the sendMessage response
sub receives {
    my ($ws, $chat, $sent, $from, $dev, $text, $name) = @_;
    my $e = $ws->next_event('newMessage', 5);
    if (!$e) {
        fail "$name: newMessage arrives";
        return undef;
    }
    is jtype($e->{eventId}), 'string', "$name: eventId is a string";
    is jtype($e->{seq}), 'number', "$name: seq is a number";
    is jtype($e->{sentAt}), 'number', "$name: sentAt is a number";
    like $e->{eventId}, qr/^[0-9]+$/, "$name: eventId is digits";
    push @{ $got{"$ws"} }, $e->{eventId};
    my %got = map { $_ => $e->{$_} }
        qw(chatId messageId seq senderId senderDevice message attachments
           sentAt);
    is_deeply \%got, {
        chatId => $chat,
        messageId => $sent->{messageId},
        seq => $sent->{seq},
        senderId => $from,
        senderDevice => $dev,
        message => $text,
        attachments => [],
        sentAt => $sent->{sentAt},
    }, "$name: newMessage fields";
    return $e;
}

# --- alice and bob on different workers

# the master listens before it forks the workers: wait for them
ok poll(sub { $t->worker_pids == 2 }), 'two workers';

my $alice = client('alice', 'phone');
my $wa = worker_of($alice);
ok $wa, "alice/phone is served by worker " . ($wa // '?');

my ($bob, $wb);
for (1 .. 40) {
    my $ws = client('bob', 'phone');
    my $w = worker_of($ws);
    if (defined $w && defined $wa && $w != $wa) {
        ($bob, $wb) = ($ws, $w);
        last;
    }
    $ws->close(1000);
}
ok $bob, 'bob/phone is served by the other worker (' . ($wb // '?') . ')';
$bob //= client('bob', 'phone');

my $laptop = client('alice', 'laptop');

# --- a chat

my $r = $alice->cmd('createChat', participants => ['bob'], name => 'pair');
ok $r && $r->{ok}, 'createChat';
is jtype($r->{chatId}), 'string', 'chatId is a string';
like $r->{chatId}, qr/^[0-9]+$/, 'chatId is digits';
my $chat = $r->{chatId};

for my $c ([$alice, 'alice/phone'], [$laptop, 'alice/laptop'],
    [$bob, 'bob/phone'])
{
    my ($ws, $name) = @$c;
    my $e = $ws->next_event('chatUpdate', 5);
    ok $e, "$name: chatUpdate for the new chat";
    $e //= {};
    is jtype($e->{eventId}), 'string', "$name: chatUpdate has an eventId";
    like $e->{eventId} // '', qr/^[0-9]+$/, "$name: eventId is digits";
    push @{ $got{"$ws"} }, $e->{eventId} if defined $e->{eventId};
    is_deeply [ $e->{chatId}, $e->{name}, [ sort @{ $e->{participants}
        // [] } ], $e->{admin} ], [ $chat, 'pair', [ 'alice', 'bob' ],
        'alice' ], "$name: chatUpdate fields";
}

# --- alice -> bob (and alice's laptop), texts that need JSON escaping

my @texts = ('hello bob', "h\x{e9}llo \x{2713} \x{1F600}",
    "quote \" backslash \\ slash / newline \n tab \t ctrl \x{01} del \x{7f}");
my @sent;
my $t0 = time;
for my $i (0 .. $#texts) {
    my $s = sent_ok($alice->cmd('sendMessage', chatId => $chat,
        clientMessageId => "a-$i", message => $texts[$i]),
        "alice message $i", $t0) // {};
    push @sent, $s;
}
is_deeply [ map { $_->{seq} } @sent ], [ 1, 2, 3 ],
    'seq of the chat: 1, 2, 3';
ok $sent[0]{messageId} < $sent[1]{messageId}
    && $sent[1]{messageId} < $sent[2]{messageId},
    'messageIds grow';

for my $i (0 .. $#texts) {
    receives($bob, $chat, $sent[$i], 'alice', 'phone', $texts[$i],
        "bob gets alice message $i");
}
for my $i (0 .. $#texts) {
    receives($laptop, $chat, $sent[$i], 'alice', 'phone', $texts[$i],
        "alice/laptop gets alice/phone message $i");
}

# --- bob -> alice: the sending device never sees its own messages, so
# the first newMessage alice/phone gets is bob's (seq order)

my @back;
$t0 = time;
for my $i (0 .. 1) {
    push @back, sent_ok($bob->cmd('sendMessage', chatId => $chat,
        clientMessageId => "b-$i", message => "reply $i"),
        "bob message $i", $t0) // {};
}
is_deeply [ map { $_->{seq} } @back ], [ 4, 5 ],
    'seq goes on in the other direction: 4, 5';
for my $i (0 .. 1) {
    receives($alice, $chat, $back[$i], 'bob', 'phone', "reply $i",
        "alice/phone gets bob message $i (and not its own before)");
    receives($laptop, $chat, $back[$i], 'bob', 'phone', "reply $i",
        "alice/laptop gets bob message $i");
}

# and bob did not get his own: his next newMessage is alice's next one
my $s = sent_ok($alice->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'a-next', message => 'next'), 'alice next', time);
receives($bob, $chat, $s, 'alice', 'phone', 'next',
    'bob gets alice next (and not his own before)');
receives($laptop, $chat, $s, 'alice', 'phone', 'next',
    'alice/laptop gets alice next');

# --- the laptop sends: alice/phone (the sender's other device) and bob
# get it, the laptop does not

$s = sent_ok($laptop->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'l-0', message => 'from the laptop'), 'laptop', time);
is $s->{seq}, 7, 'the laptop message has seq 7';
receives($alice, $chat, $s, 'alice', 'laptop', 'from the laptop',
    'alice/phone gets the laptop message');
receives($bob, $chat, $s, 'alice', 'laptop', 'from the laptop',
    'bob gets the laptop message');
my $s2 = sent_ok($bob->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'b-last', message => 'last'), 'bob last', time);
receives($laptop, $chat, $s2, 'bob', 'phone', 'last',
    'alice/laptop: next newMessage is bob last (not its own)');
receives($alice, $chat, $s2, 'bob', 'phone', 'last',
    'alice/phone gets bob last');

# --- pipelined sends keep their order: increasing seq in sending order,
# delivered in that order

my @pipe;
for my $i (1 .. 10) {
    my $id = "pipe-$i";
    push @pipe, $id;
    $alice->send_json({ type => 'sendMessage', id => $id, chatId => $chat,
        clientMessageId => $id, message => "pipelined $i" });
}
my @pr = map { $alice->response($_, 5) // {} } @pipe;
is scalar(grep { $_->{ok} } @pr), 10, '10 pipelined sends answered ok';
is_deeply [ map { $_->{seq} } @pr ], [ 9 .. 18 ],
    '... with seq 9..18 in sending order';
for my $c ([$bob, 'bob'], [$laptop, 'alice/laptop']) {
    my ($ws, $name) = @$c;
    my @m;
    while (@m < 10) {
        my $e = $ws->next_event('newMessage', 5) or last;
        push @{ $got{"$ws"} }, $e->{eventId};
        push @m, $e->{message};
    }
    is_deeply \@m, [ map { "pipelined $_" } 1 .. 10 ],
        "$name receives them in that order";
}
my $lastseq = 18;

# --- seq is per chat: a second chat starts at 1

$r = $bob->cmd('createChat', participants => ['alice']);
ok $r && $r->{ok}, 'second chat';
my $chat2 = $r->{chatId} // '';
isnt $chat2, $chat, 'a new chatId';
$s = sent_ok($bob->cmd('sendMessage', chatId => $chat2,
    clientMessageId => 'b2-0', message => 'other chat'), 'chat 2', time);
is $s->{seq}, 1, 'seq of the second chat starts at 1';
receives($alice, $chat2, $s, 'bob', 'phone', 'other chat',
    'alice/phone gets the message of the second chat');
receives($laptop, $chat2, $s, 'bob', 'phone', 'other chat',
    'alice/laptop gets the message of the second chat');
$s = sent_ok($alice->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'a-after', message => 'first chat again'),
    'first chat again', time);
is $s->{seq}, $lastseq + 1, 'the first chat goes on where it was';
receives($bob, $chat, $s, 'alice', 'phone', 'first chat again',
    'bob gets it');
receives($laptop, $chat, $s, 'alice', 'phone', 'first chat again',
    'alice/laptop gets it');

# --- every event a device got has its own eventId; acking them all
# empties these rows of the inbox

for my $c ([$alice, 'alice', 'phone'], [$bob, 'bob', 'phone'],
    [$laptop, 'alice', 'laptop'])
{
    my ($ws, $user, $dev) = @$c;
    # the second chat's chatUpdate
    my $ev = $ws->next_event('chatUpdate', 5) // {};
    is $ev->{chatId}, $chat2, "$user/$dev: chatUpdate of the second chat";
    push @{ $got{"$ws"} }, $ev->{eventId} if defined $ev->{eventId};
    is_deeply [ $ws->events ], [], "$user/$dev: no other event";
    my @ids = @{ $got{"$ws"} // [] };
    my %n;
    $n{$_}++ for @ids;
    is_deeply [ grep { $n{$_} > 1 } sort keys %n ], [],
        "$user/$dev: no eventId twice (" . scalar(@ids) . ' events)';
    $r = $ws->cmd('ack', eventIds => \@ids);
    ok $r && $r->{ok}, "$user/$dev: ack with an id is answered";
    my $in = join ',', map { int } @ids;
    is scalar $t->psql("SELECT count(*) FROM inbox WHERE user_id = '$user'"
        . " AND device_id = '$dev' AND event_id IN ($in)"), 0,
        "$user/$dev: the acked rows are gone when the response comes";
}

# --- getChats sees both chats, with their lastSeq

$r = $bob->cmd('getChats');
ok $r && $r->{ok}, 'getChats';
my %last = map { $_->{chatId} => $_->{lastSeq} } @{ $r->{chats} // [] };
is_deeply \%last, { $chat => $lastseq + 1, $chat2 => 1 },
    'getChats: lastSeq per chat';

is_deeply [ map { $_->violations } $alice, $bob, $laptop ], [],
    'server frames follow RFC 6455';
is $_->close(1000), 1000, 'close' for $alice, $bob, $laptop;

$t->done_testing;
