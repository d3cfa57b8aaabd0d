#!/usr/bin/perl

# Several devices per user (docs/protocol.md "Connecting", "removeDevice",
# close codes 4001, 4004, the 403 of a fourth device): a message reaches every device of the
# recipient, an offline one when it connects; a fourth active device is
# refused with 403 before the upgrade, offline devices counting; removeDevice frees the slot
# at once, closes the removed device's connection with 4004 and drops its
# inbox; the same device connecting twice closes the older connection with
# 4001.

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

my %who;                 # "$ws" => [user, device]

# a connected and registered device (its first response means registered)
sub client {
    my ($user, $device) = @_;
    my $ws = $t->client($user, $device);
    $who{"$ws"} = [ $user, $device ];
    return $ws;
}

# true once $cond->() is, false if not within $timeout seconds
sub poll { ChatTest::poll($_[0], $_[1] // 5, 0.05) }

sub count { scalar $t->psql($_[0]) }

sub inbox_rows {
    my ($user, $device) = @_;
    return count("SELECT count(*) FROM inbox WHERE user_id = '$user'"
        . " AND device_id = '$device'");
}

sub active_devices {
    my ($user) = @_;
    return join ',', $t->psql("SELECT device_id FROM devices"
        . " WHERE user_id = '$user' AND active ORDER BY device_id");
}

# the connection is closed by the server with $code (its close frame and
# the end of the TCP connection)
sub closed_with {
    my ($ws, $code, $name) = @_;
    my ($c, $eof) = $ws->wait_closed(5);
    is $c, $code, "$name: closed with $code";
    ok $eof, "$name: TCP connection ended";
}

# a device over the limit: the upgrade is refused with 403 before any
# WebSocket exists (the 101 means registered)
sub refused {
    my ($user, $device, $name) = @_;
    my ($ws, $status, $h, $body) = ChatTest::WS->try_connect($t,
        user => $user, device => $device);
    ok !$ws, "$name: not upgraded";
    is $status, 403, "$name: 403";
    like $body // '', qr/"too_many_devices"/, "$name: too_many_devices";
}

# ack @events on $ws with an id: the response comes once their inbox
# rows are deleted, so later counts of inbox rows and later connections of
# the device do not race with the acks
sub ack_wait {
    my ($ws, @events) = @_;
    return unless @events;
    my ($user, $device) = @{ $who{"$ws"} };
    my $r = $ws->cmd('ack', eventIds => [ map { $_->{eventId} } @events ]);
    my $in = join ',', map { int $_->{eventId} } @events;
    ok $r && $r->{ok} && count("SELECT count(*) FROM inbox"
        . " WHERE user_id = '$user' AND device_id = '$device'"
        . " AND event_id IN ($in)") == 0,
        "$user/$device: ack answered, its rows gone";
}

# $n newMessage events on $ws, acked (ack_wait); returns them
sub take {
    my ($ws, $n) = @_;
    my @e;
    while (@e < $n) {
        my $e = $ws->next_event('newMessage', 5) or last;
        push @e, $e;
    }
    ack_wait($ws, @e);
    return @e;
}

sub send_ok {
    my ($ws, $chat, $cmid, $text) = @_;
    my $r = $ws->cmd('sendMessage', chatId => $chat,
        clientMessageId => $cmid, message => $text);
    ok $r && $r->{ok}, "sendMessage '$text'";
    return $r // {};
}

# --- bob has a phone and a laptop

my $alice = client('alice', 'phone');
my $phone = client('bob', 'phone');
my $laptop = client('bob', 'laptop');

my $r = $alice->cmd('createChat', participants => ['bob']);
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId} // 0;
for my $ws ($alice, $phone, $laptop) {
    my $e = $ws->next_event('chatUpdate', 5);
    ack_wait($ws, $e // ());
}
ok poll(sub { inbox_rows('bob', 'laptop') == 0 }),
    'laptop acked the chatUpdate';

# --- laptop offline, phone live; the laptop catches up later

is $laptop->close(1000), 1000, 'laptop goes offline';

my @sent = map { send_ok($alice, $chat, "m$_", "message $_") } 1 .. 3;
my @live = take($phone, 3);
is_deeply [ map { $_->{messageId} } @live ],
    [ map { $_->{messageId} } @sent ], 'the phone receives the 3 live';
is inbox_rows('bob', 'laptop'), 3, '3 inbox rows wait for the laptop';

# while the laptop is offline it still holds one of the 3 slots
my $tablet = client('bob', 'tablet');
refused('bob', 'desktop', 'a 4th device (one of the 3 offline)');
is active_devices('bob'), 'laptop,phone,tablet',
    'the refused device is not active';

$laptop = client('bob', 'laptop');
my @late = take($laptop, 3);
is_deeply [ map { $_->{messageId} } @late ],
    [ map { $_->{messageId} } @sent ],
    'the laptop, connecting, receives all 3, in order';
is_deeply [ map { $_->{seq} } @late ], [ 1, 2, 3 ], '... seq 1, 2, 3';

my $s = send_ok($alice, $chat, 'm4', 'message 4');
for my $c ([$phone, 'phone'], [$laptop, 'laptop'], [$tablet, 'tablet']) {
    my ($ws, $name) = @$c;
    my $e = $ws->next_event('newMessage', 5);
    is $e && $e->{messageId}, $s->{messageId},
        "bob/$name receives message 4 live";
    # the tablet keeps it unacked
    ack_wait($ws, $e) if $e && $ws != $tablet;
}

refused('bob', 'desktop', 'a 4th device (all 3 online)');

# --- removeDevice

ok inbox_rows('bob', 'tablet') > 0, 'the tablet has unacked events';

$r = $phone->cmd('removeDevice', deviceId => 'tablet');
ok $r && $r->{ok}, 'the phone removes the tablet';
closed_with($tablet, 4004, 'the removed tablet');
ok poll(sub { inbox_rows('bob', 'tablet') == 0 }),
    "the tablet's inbox rows are gone";
is active_devices('bob'), 'laptop,phone', 'two active devices left';

$r = $phone->cmd('removeDevice', deviceId => 'tablet');
is $r && $r->{error} && $r->{error}{code}, 'not_found',
    'removing it again: not_found';
$r = $phone->cmd('removeDevice', deviceId => 'never-seen');
is $r && $r->{error} && $r->{error}{code}, 'not_found',
    'removing an unknown device: not_found';

$s = send_ok($alice, $chat, 'm5', 'message 5');
take($_, 1) for $phone, $laptop;
is inbox_rows('bob', 'tablet'), 0,
    'a removed device gets no inbox rows for new messages';

# the slot is free at once
my $desktop = eval { client('bob', 'desktop') };
ok $desktop, 'a new device takes the freed slot (registered: ping answered)'
    or BAIL_OUT("the desktop was refused: $@");
$s = send_ok($alice, $chat, 'm6', 'message 6');
my ($e) = take($desktop, 1);
is $e && $e->{messageId}, $s->{messageId},
    'the desktop receives message 6 (the first message it gets)';
take($_, 1) for $phone, $laptop;

# the removed tablet's token no longer connects (docs/tokens.md
# "Revocation"): 403 device_removed
my ($tw, $tst, $th, $tbody) = ChatTest::WS->try_connect($t, user => 'bob',
    device => 'tablet');
ok !$tw && $tst == 403 && ($tbody // '') =~ /"device_removed"/,
    'the removed tablet with its old token: 403 device_removed';

# with a token issued after the removal it would be a 4th device
my ($tw2, $tst2, $th2, $tbody2) = ChatTest::WS->try_connect($t,
    token => $t->token(user => 'bob', device => 'tablet',
        claims => { iat => int(time) + 1 }));
ok !$tw2 && $tst2 == 403 && ($tbody2 // '') =~ /"too_many_devices"/,
    'the removed tablet with a new token: a 4th device, 403';

# --- the same device connecting twice

my $laptop2 = client('bob', 'laptop');
closed_with($laptop, 4001, 'the older laptop connection');
$s = send_ok($alice, $chat, 'm7', 'message 7');
($e) = take($laptop2, 1);
is $e && $e->{messageId}, $s->{messageId},
    'the newer laptop connection receives message 7';
take($_, 1) for $phone, $desktop;

# --- a device may remove itself

$r = $desktop->cmd('removeDevice', deviceId => 'desktop');
closed_with($desktop, 4004, 'the desktop removing itself');
is active_devices('bob'), 'laptop,phone', 'phone and laptop left';
ok poll(sub { inbox_rows('bob', 'desktop') == 0 }),
    "the desktop's inbox is gone";

# --- an offline device can be removed too: its inbox goes

is $laptop2->close(1000), 1000, 'the laptop goes offline';
$s = send_ok($alice, $chat, 'm8', 'message 8');
take($phone, 1);
is inbox_rows('bob', 'laptop'), 1, 'one row waits for the laptop';
$r = $phone->cmd('removeDevice', deviceId => 'laptop');
ok $r && $r->{ok}, 'the phone removes the offline laptop';
ok poll(sub { inbox_rows('bob', 'laptop') == 0 }),
    "the laptop's inbox is gone";
is active_devices('bob'), 'phone', 'only the phone is left';

is_deeply [ map { $_->violations } $alice, $phone, $laptop2 ], [],
    'server frames follow RFC 6455';
$_->close(1000) for $alice, $phone;

$t->done_testing;
