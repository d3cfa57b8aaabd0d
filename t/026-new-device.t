#!/usr/bin/perl

# The 101 means registered (docs/protocol.md "Connecting"): a brand-new
# device that sends nothing, added to a chat and sent to the moment its
# upgrade is answered, gets the chatUpdate and the newMessage, each once.
# Before registration moved ahead of the upgrade, 9 of 20 such devices
# never got the chatUpdate (they were not recipients yet).  Also:
# removeDevice revokes the device's tokens (docs/tokens.md "Revocation").

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
# alice creates a chat per try: past chat_user_rate's default
$t->chat_conf(listen => ' reuseport', http => 'chat_ping_interval 600s;'
    . ' chat_user_rate createChat off;')->run;

my $alice = $t->client('alice', 'phone');
my $tries = $ENV{CHAT_NEW_DEVICE_TRIES} // 200;
my ($ok, @bad) = (0);

for my $i (1 .. $tries) {
    my $user = "new$i";
    my $ws = ChatTest::WS->connect($t, user => $user, device => 'phone');

    # the chat and the message right behind the 101, nothing from the
    # new device first
    my $c = $alice->cmd('createChat', participants => [$user],
        name => "n$i");
    my $m = $c && $c->{ok} && $alice->cmd('sendMessage',
        chatId => $c->{chatId}, clientMessageId => "n$i",
        message => "hello $user");
    unless ($m && $m->{ok}) {
        push @bad, "$i: alice's commands failed";
        next;
    }

    my (%seen, $dup);
    while (!$seen{chatUpdate} || !$seen{newMessage}) {
        my $e = $ws->next_event(undef, 5) or last;
        $dup++ if $seen{ $e->{type} }++;
        $ws->send_json({ type => 'ack', eventIds => [ $e->{eventId} ] });
    }
    # a ping round trip: anything sent twice would be queued before it
    my $p = $ws->cmd('ping');
    $dup++ if grep { ($_->{type} // '') ne 'response' } $ws->events;
    if ($seen{chatUpdate} && $seen{newMessage} && !$dup && $p && $p->{ok}) {
        $ok++;
    } else {
        push @bad, "$i: chatUpdate " . ($seen{chatUpdate} // 0)
            . ", newMessage " . ($seen{newMessage} // 0)
            . ($dup ? ", duplicates" : '');
    }
    $ws->close(1000);
    $alice->events;     # alice's own chatUpdates are not needed
    @{ $alice->{events} } = ();
}

is $ok, $tries, "$tries new devices got the chatUpdate and the newMessage,"
    . ' once each' or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];

# --- revocation: removeDevice refuses the device's older tokens

my $phone = $t->client('bob', 'phone');
my $old = $t->token(user => 'bob', device => 'tablet',
    claims => { iat => int(time) - 5 });
my $tablet = ChatTest::WS->connect($t, token => $old);
ok $tablet->cmd('ping')->{ok}, 'the tablet connects';
my $r = $phone->cmd('removeDevice', deviceId => 'tablet');
ok $r && $r->{ok}, 'the phone removes the tablet';
$tablet->wait_closed(5);
is $tablet->close_code, 4004, 'the tablet is closed with 4004';

for my $auth (qw(header query)) {
    my ($w, $st, $h, $body) = ChatTest::WS->try_connect($t, token => $old,
        auth => $auth);
    ok !$w && $st == 403 && ($body // '') =~ /"device_removed"/,
        "its old token ($auth): 403 device_removed";
}
my $noiat = $t->token(user => 'bob', device => 'tablet',
    claims => { iat => undef });
my ($w, $st) = ChatTest::WS->try_connect($t, token => $noiat);
is $st, 403, 'a token without iat: 403';

my $new = $t->token(user => 'bob', device => 'tablet',
    claims => { iat => int(time) + 1 });
my ($tablet2, $st2, $h2, $body2) = ChatTest::WS->try_connect($t,
    token => $new);
ok $tablet2 && $tablet2->cmd('ping')->{ok},
    'a token issued after the removal connects'
    or BAIL_OUT('refused: ' . ($st2 // 'none') . ' ' . ($body2 // ''));
my $c = $alice->cmd('createChat', participants => ['bob'], name => 'rv');
my $s = $alice->cmd('sendMessage', chatId => $c->{chatId},
    clientMessageId => 'rv', message => 'back');
my %got;
for (1 .. 2) {
    my $e = $tablet2->next_event(undef, 5) or last;
    $got{ $e->{type} }++;
}
is_deeply \%got, { chatUpdate => 1, newMessage => 1 },
    'and gets what is sent from then on';

$t->done_testing;
