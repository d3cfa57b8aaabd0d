#!/usr/bin/perl

# Ids out of range are refused at the edge (issue 11, findings 2 and 3;
# docs/protocol.md "Ids", docs/security.md "Input bounds and batch
# isolation"): chatId and every eventIds item must be an id PostgreSQL can
# hold as a bigint, 1 to 9223372036854775807, without sign or leading zeros.
# A bad one is a bad_request for that request only: an attacker pipelining
# sends with chatId 99999999999999999999, or acks of 18446744073709551615,
# on the same worker as honest users, makes none of their sends or acks
# fail, and is told bad_request, not unavailable.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 1);
$t->chat_conf(http => <<'EOF')->run;
    chat_ping_interval 600s;
EOF

my $JSON = JSON::PP->new->canonical->allow_nonref;

my $alice = $t->client('alice', 'phone');
my $bob = $t->client('bob', 'phone');
my $mallory = $t->client('mallory', 'phone');

my $r = $alice->cmd('createChat', participants => ['bob'], name => 'honest');
ok $r && $r->{ok}, 'alice and bob have a chat';
my $chat = $r->{chatId} // 0;
$r = $mallory->cmd('createChat', participants => ['eve'], name => 'evil');
ok $r && $r->{ok}, 'mallory has a chat of her own';
my $mchat = $r->{chatId} // 0;

my $n = 0;

# a command as raw JSON text (to send numbers Perl cannot hold); returns
# the response to its id
sub raw_cmd {
    my ($ws, $type, $fields) = @_;
    my $id = 'b' . ++$n;
    $ws->send_text(qq({"type":"$type","id":"$id",$fields})) or return undef;
    return $ws->response($id, 10);
}

sub code_of { my $r = shift; $r ? ($r->{error} ? $r->{error}{code} : 'ok')
    : 'no response' }

# --- each bad id alone: bad_request, with the request's id

my $huge = '9' x 400;
my @bad = ('99999999999999999999', '"99999999999999999999"', '0', '"0"',
    '9223372036854775808', '"9223372036854775808"', '18446744073709551615',
    '"18446744073709551615"', '"007"', '"00"', '-1', '"-1"', '"+1"', '-0',
    '1e3', '1.0', '"1 "', '" 1"', '"0x1"', '""', $huge, qq("$huge"));

for my $v (@bad) {
    my $show = length $v > 24 ? substr($v, 0, 12) . '...' : $v;
    $r = raw_cmd($mallory, 'sendMessage', qq("chatId":$v,)
        . '"clientMessageId":"c' . $n . '","message":"x"');
    is code_of($r), 'bad_request', "sendMessage chatId $show: bad_request";
    $r = raw_cmd($mallory, 'modifyChatParticipants', qq("chatId":$v,)
        . '"userId":"eve","operation":"ADD"');
    is code_of($r), 'bad_request',
        "modifyChatParticipants chatId $show: bad_request";
    $r = raw_cmd($mallory, 'ack', qq("eventIds":[$v]));
    is code_of($r), 'bad_request', "ack eventIds [$show]: bad_request";
}

$r = raw_cmd($mallory, 'ack', '"eventIds":[1,2,18446744073709551615]');
is code_of($r), 'bad_request', 'one bad event id fails the whole ack';

# the largest id passes the edge and is simply unknown
$r = raw_cmd($mallory, 'sendMessage', '"chatId":9223372036854775807,'
    . '"clientMessageId":"max","message":"x"');
is code_of($r), 'not_found', 'chatId 9223372036854775807: not_found';
$r = raw_cmd($mallory, 'sendMessage', '"chatId":"9223372036854775807",'
    . '"clientMessageId":"max2","message":"x"');
is code_of($r), 'not_found', 'chatId "9223372036854775807": not_found';
$r = raw_cmd($mallory, 'modifyChatParticipants',
    '"chatId":9223372036854775807,"userId":"eve","operation":"ADD"');
is code_of($r), 'not_found',
    'modifyChatParticipants chatId 9223372036854775807: not_found';
$r = raw_cmd($mallory, 'ack',
    '"eventIds":[9223372036854775807,"9223372036854775807",1]');
is code_of($r), 'ok', 'ack of event 9223372036854775807: ok';

# --- finding 2: pipelined bad sends do not fail an honest user's sends

my @bad_chat = ('99999999999999999999', '"99999999999999999999"',
    '18446744073709551615', '9223372036854775808', '0');
my (@mids, @aids);
for my $i (1 .. 30) {
    # three bad sends and one honest one, as close together as we can
    my $frames = '';
    for my $k (1 .. 3) {
        my $id = 'm' . scalar(@mids);
        my $v = $bad_chat[@mids % @bad_chat];
        push @mids, $id;
        $frames .= ChatTest::WS::encode_frame(ChatTest::WS::OP_TEXT(),
            qq({"type":"sendMessage","id":"$id","chatId":$v,)
            . qq("clientMessageId":"$id","message":"boom"}));
    }
    $mallory->send_raw($frames);
    my $id = "a$i";
    push @aids, $id;
    $alice->send_json({ type => 'sendMessage', id => $id, chatId => $chat,
        clientMessageId => "honest-$i", message => "honest $i" });
}

my (%acodes, @seqs);
for my $id (@aids) {
    $r = $alice->response($id, 20);
    $acodes{ code_of($r) }++;
    push @seqs, $r->{seq} if $r && $r->{ok};
}
is_deeply \%acodes, { ok => 30 }, 'all 30 honest sends answered ok'
    or diag explain \%acodes;
is_deeply \@seqs, [ sort { $a <=> $b } @seqs ], 'in order';

my %mcodes;
$mcodes{ code_of($mallory->response($_, 20)) }++ for @mids;
is_deeply \%mcodes, { bad_request => 90 },
    'the attacker is told bad_request, every time'
    or diag explain \%mcodes;

my @got;
while (@got < 30) {
    my $e = $bob->next_event('newMessage', 10) or last;
    push @got, $e;
}
is_deeply [ map { $_->{message} } @got ], [ map { "honest $_" } 1 .. 30 ],
    'bob got the 30 honest messages, in order';
is $t->psql("SELECT count(*) FROM messages WHERE chat_id = $chat"), 30,
    'and they are stored';

# --- finding 3: bad acks do not stall an honest device's acks

my $before = $t->psql("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND device_id = 'phone' AND kind = 1");
is $before, 30, "bob's 30 inbox rows are there";

my @bids;
my @events = map { $_->{eventId} } @got;
while (my @part = splice @events, 0, 5) {
    # bad acks before and after each honest one, with and without an id
    $mallory->send_raw(join '', map {
        ChatTest::WS::encode_frame(ChatTest::WS::OP_TEXT(), $_)
    } '{"type":"ack","eventIds":[18446744073709551615]}',
      '{"type":"ack","eventIds":["18446744073709551615",1]}',
      '{"type":"ack","id":"x' . ++$n . '","eventIds":[18446744073709551615]}');
    my $id = 'k' . ++$n;
    push @bids, $id;
    $bob->send_json({ type => 'ack', id => $id, eventIds => \@part });
    $mallory->send_text('{"type":"ack","eventIds":[0,-1]}');
}

my %bcodes;
$bcodes{ code_of($bob->response($_, 20)) }++ for @bids;
is_deeply \%bcodes, { ok => 6 }, "all of bob's acks answered ok"
    or diag explain \%bcodes;
is $t->psql("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
    . " AND device_id = 'phone' AND kind = 1"), 0,
    "bob's inbox rows are deleted";

# the worker still works for everyone
$r = $mallory->cmd('ping');
ok $r && $r->{ok}, 'the attacker is still connected';
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'after',
    message => 'after');
ok $r && $r->{ok}, 'alice sends after the attack';
ok !$t->grep_log(qr/chat_send_batch|chat_ack_batch/),
    'no batch statement failed' or diag $t->log_tail;

$t->done_testing;
