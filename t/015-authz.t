#!/usr/bin/perl

# Authorization (docs/protocol.md "modifyChatParticipants", "sendMessage",
# "ack", "removeDevice"): a non-participant can neither send to, modify nor
# see a chat, nor receive its events; a removed participant gets a
# chatUpdate without themself and nothing after it; only the admin removes
# others; when the admin leaves, the longest-standing participant becomes
# admin; acks and removeDevice act only on the caller's own inbox and
# devices.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
# idle clients (not reading while the test talks to others) must not be
# disconnected for missing PONGs, even on a loaded machine
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s;')->run;

# a connected and registered device (its first response means registered)
sub client { $t->client($_[0], $_[1] // 'phone') }

sub count { scalar $t->psql($_[0]) }

sub code_of {
    my ($r) = @_;
    return 'no response' unless $r;
    return 'ok' if $r->{ok};
    return $r->{error} && $r->{error}{code} // 'no code';
}

sub create {
    my ($ws, $name, @users) = @_;
    my $r = $ws->cmd('createChat', participants => \@users, name => $name);
    ok $r && $r->{ok}, "createChat $name";
    return $r ? $r->{chatId} // 0 : 0;
}

sub modify {
    my ($ws, $chat, $user, $op) = @_;
    return code_of($ws->cmd('modifyChatParticipants', chatId => $chat,
        userId => $user, operation => $op));
}

sub send_msg {
    my ($ws, $chat, $text) = @_;
    return $ws->cmd('sendMessage', chatId => $chat,
        clientMessageId => "$chat-$text", message => $text);
}

# the events (any type) $ws gets up to the newMessage with text $last,
# a marker sent after what $ws must not get.  Only the order within a
# chat is promised, so a marker in another chat bounds the wait without
# proving absence: the inbox (committed before the send's response) is
# checked as well.
sub events_until {
    my ($ws, $last) = @_;
    my @e;
    while (my $e = $ws->next_event(undef, 5)) {
        push @e, $e;
        last if ($e->{type} // '') eq 'newMessage' && $e->{message} eq $last;
    }
    return @e;
}

sub chat_ids { sort map { $_->{chatId} } @{ $_[0] && $_[0]{chats} || [] } }

my $alice = client('alice');
my $bob = client('bob');
my $carol = client('carol');
my $dave = client('dave');
my $tablet = client('alice', 'tablet');

my $x = create($alice, 'x', 'bob');                 # alice, bob
my $y = create($alice, 'y', 'carol');               # alice, carol
my $w = create($alice, 'w', 'bob');                 # alice, bob

# --- a non-participant

is code_of(send_msg($carol, $x, 'intrusion')), 'forbidden',
    'carol sends to x: forbidden';
is modify($carol, $x, 'carol', 'ADD'), 'forbidden',
    'carol adds herself to x: forbidden';
is modify($carol, $x, 'dave', 'ADD'), 'forbidden',
    'carol adds dave to x: forbidden';
is modify($carol, $x, 'bob', 'REMOVE'), 'forbidden',
    'carol removes bob from x: forbidden';
is modify($carol, $x, 'carol', 'REMOVE'), 'forbidden',
    'carol "leaves" x: forbidden';

my $r = $carol->cmd('getChats');
ok $r && $r->{ok}, 'carol: getChats';
is_deeply [ chat_ids($r) ], [ $y ], 'carol sees only y';
$r = $bob->cmd('getChats');
is_deeply [ chat_ids($r) ], [ sort $x, $w ], 'bob sees x and w';
my ($cx) = grep { $_->{chatId} eq $x } @{ $r->{chats} // [] };
is_deeply [ sort @{ $cx->{participants} // [] } ], [ 'alice', 'bob' ],
    'x still has alice and bob';

ok send_msg($alice, $x, 'secret')->{ok}, 'alice sends to x';
ok send_msg($alice, $y, 'for carol')->{ok}, 'alice sends to y';
my @ce = events_until($carol, 'for carol');
is_deeply [ grep { $_->{chatId} ne $y } @ce ], [],
    'carol got no event of x (nor of w)';
is count("SELECT count(*) FROM inbox WHERE user_id = 'carol'"
    . " AND chat_id IN ($x, $w)"), 0, 'carol has no inbox row of x or w';
is_deeply [ map { $_->{message} // $_->{type} } @ce ],
    [ 'chatUpdate', 'for carol' ], 'carol got the chatUpdate and message'
    . ' of y';

my @be = events_until($bob, 'secret');
is_deeply [ map { $_->{message} } grep { $_->{type} eq 'newMessage' } @be ],
    [ 'secret' ], 'bob got the message of x';
$bob->cmd('ack', eventIds => [ map { $_->{eventId} } @be ]);

# --- a removed participant

is modify($bob, $x, 'alice', 'REMOVE'), 'forbidden',
    'bob (not admin) removes alice from x: forbidden';
is modify($alice, $x, 'bob', 'REMOVE'), 'ok', 'alice (admin) removes bob';

my $u = $bob->next_event('chatUpdate', 5) // {};
is $u->{chatId}, $x, 'bob gets a chatUpdate of x';
is_deeply $u->{participants}, ['alice'], '... without himself';
$u = $alice->next_event('chatUpdate', 5) // {};
$u = $alice->next_event('chatUpdate', 5) // {} while ($u->{chatId} // $x)
    ne $x || grep({ $_ eq 'bob' } @{ $u->{participants} // [] });
is_deeply $u->{participants}, ['alice'], 'alice gets it too';

ok send_msg($alice, $x, 'after removal')->{ok}, 'alice sends to x';
ok send_msg($alice, $w, 'marker w')->{ok}, 'alice sends to w';
@be = events_until($bob, 'marker w');
is_deeply [ grep { $_->{chatId} eq $x } @be ], [],
    'bob no longer receives x';
is code_of(send_msg($bob, $x, 'still here?')), 'forbidden',
    'bob sends to x: forbidden';
is modify($bob, $x, 'bob', 'ADD'), 'forbidden',
    'bob adds himself back to x: forbidden';
is_deeply [ chat_ids($bob->cmd('getChats')) ], [ $w ],
    'bob no longer sees x';
is count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND chat_id = $x AND kind = 1"), 0, 'no inbox row for bob in x';

# --- only the admin removes others; anybody adds; anybody leaves

my $z = create($alice, 'z', 'bob', 'carol');
is modify($bob, $z, 'carol', 'REMOVE'), 'forbidden',
    'bob (not admin) removes carol: forbidden';
is modify($bob, $z, 'dave', 'ADD'), 'ok', 'bob (participant) adds dave';
is modify($dave, $z, 'dave', 'REMOVE'), 'ok', 'dave leaves';
is modify($dave, $z, 'bob', 'REMOVE'), 'forbidden',
    'dave, gone, removes bob: forbidden';

# the admin leaves: the longest-standing participant (bob, there since the
# creation) becomes admin; carol joins later than bob
my $v = create($alice, 'v', 'bob');
is modify($alice, $v, 'carol', 'ADD'), 'ok', 'carol joins v later';
is modify($alice, $v, 'alice', 'REMOVE'), 'ok', 'the admin alice leaves v';
$r = $bob->cmd('getChats');
my ($cv) = grep { $_->{chatId} eq $v } @{ $r->{chats} // [] };
is $cv && $cv->{admin}, 'bob', 'bob, the longest-standing, is admin of v';
is modify($carol, $v, 'bob', 'REMOVE'), 'forbidden',
    'carol removes the new admin: forbidden';
is modify($bob, $v, 'carol', 'REMOVE'), 'ok', 'the new admin removes carol';

# --- acks act on the caller's own inbox only

ok send_msg($alice, $w, 'unacked')->{ok}, 'alice sends to w';
my ($m) = grep { $_->{type} eq 'newMessage' } events_until($bob, 'unacked');
ok $m, 'bob received it (and does not ack it)';
my $eid = $m ? $m->{eventId} : 0;

ok send_msg($alice, $y, 'carol ack')->{ok}, 'alice sends to y';
my ($cm) = grep { $_->{type} eq 'newMessage' }
    events_until($carol, 'carol ack');
my $own = $cm ? $cm->{eventId} : 0;
ok count("SELECT count(*) FROM inbox WHERE user_id = 'carol'"
    . " AND event_id = $own") == 1, 'carol has her own event unacked';

# carol acks bob's event together with her own one: hers is gone when the
# response comes, bob's must still be there
$r = $carol->cmd('ack', eventIds => [ $eid, $own ]);
ok $r && $r->{ok}, "carol acks bob's event id (no error)";
is count("SELECT count(*) FROM inbox WHERE user_id = 'carol'"
    . " AND event_id = $own"), 0,
    'her own event left her inbox (rows deleted before the response)';
is count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND device_id = 'phone' AND event_id = $eid"), 1,
    "bob's inbox row is still there";

# the sender (a participant of w) cannot ack it for bob either; a chatUpdate
# has one event id for every recipient: alice acking hers leaves bob's
my $d = create($alice, 'd', 'bob');
my $ua = $alice->next_event('chatUpdate', 5);
$ua = $alice->next_event('chatUpdate', 5)
    while $ua && $ua->{chatId} ne $d;
my $ub = $bob->next_event('chatUpdate', 5);
$ub = $bob->next_event('chatUpdate', 5) while $ub && $ub->{chatId} ne $d;
ok $ua && $ub, 'alice and bob get the chatUpdate of d';
$r = $alice->cmd('ack', eventIds => [ $eid, $ua ? $ua->{eventId} : 0 ]);
ok $r && $r->{ok}, "alice acks bob's message and her chatUpdate";
is count("SELECT count(*) FROM inbox WHERE user_id = 'alice'"
    . " AND device_id = 'phone' AND chat_id = $d"), 0,
    "alice/phone's chatUpdate left her inbox";
is count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND event_id = $eid"), 1, "bob's message row is still there";
is count("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND chat_id = $d"), 1, "bob's chatUpdate row is still there";
is count("SELECT count(*) FROM inbox WHERE user_id = 'alice'"
    . " AND device_id = 'tablet' AND chat_id = $d"), 1,
    "so is alice/tablet's (another device of the same user)";
is count("SELECT count(*) FROM inbox WHERE user_id = 'alice'"
    . " AND device_id = 'tablet' AND event_id = $eid"), 1,
    "and alice/tablet's row of the message alice/phone sent";

# and the event is still delivered to bob on his next connection
$bob->disconnect;
$bob = client('bob');
my @again;
while (my $e = $bob->next_event(undef, 5)) {
    push @again, $e;
    last if ($e->{eventId} // '') eq $eid;
}
ok grep({ ($_->{eventId} // '') eq $eid } @again),
    'bob, reconnecting, still gets the message';

# --- removeDevice acts on the caller's own devices only

$r = $carol->cmd('removeDevice', deviceId => 'tablet');
is code_of($r), 'not_found', "carol removes alice's tablet: not_found";
$r = $tablet->cmd('ping');
ok $r && $r->{ok}, "alice's tablet is still connected";
is count("SELECT count(*) FROM devices WHERE user_id = 'alice'"
    . " AND device_id = 'tablet' AND active"), 1, '... and active';
is count("SELECT count(*) FROM devices WHERE user_id = 'carol'"
    . " AND device_id = 'tablet'"), 0, 'carol got no tablet either';
$r = $bob->cmd('ping');
ok $r && $r->{ok}, 'bob/phone still connected';

is_deeply [ map { $_->violations } $alice, $bob, $carol, $dave, $tablet ],
    [], 'server frames follow RFC 6455';
$_->close(1000) for $alice, $bob, $carol, $dave, $tablet;

$t->done_testing;
