#!/usr/bin/perl

# Rate limits and fairness (docs/security.md "Rate limits and fairness",
# docs/protocol.md "Limits"): a connection over chat_command_rate gets
# rate_limited answers (with its request id and retryAfterMs) and, as it
# keeps on, the close 4008, while another user's connection on the same
# worker keeps getting ok and its messages delivered; a refused client
# that waits retryAfterMs is served again; chat_user_rate limits a user's
# createChat and modifyChatParticipants across the user's devices (kept in
# PostgreSQL); chat_max_inflight answers rate_limited at once for commands
# over the cap while a ping still passes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 1);
$t->chat_conf(http => <<'EOF')->run;
    chat_ping_interval 600s;
    chat_command_rate 20r/s burst=40;
    chat_user_rate createChat 1r/m burst=3;
    chat_user_rate modifyChatParticipants 1r/m burst=2;
    chat_max_inflight 8;
EOF

sub client { $t->client($_[0], $_[1] // 'phone') }

sub code_of {
    my ($r) = @_;
    return 'no response' unless $r;
    return 'ok' if $r->{ok};
    return $r->{error} && $r->{error}{code} // 'no code';
}

# n text frames of commands in one write; returns their ids
sub pipeline {
    my ($ws, $n, $make) = @_;
    my (@ids, $bytes);
    for my $i (1 .. $n) {
        my $id = $ws->next_id;
        push @ids, $id;
        $bytes .= ChatTest::WS::encode_frame(ChatTest::WS::OP_TEXT(),
            ChatTest->json->encode($make->($id)));
    }
    $ws->send_raw($bytes) or die "pipeline: write failed\n";
    return @ids;
}

# --- a flood over chat_command_rate, and a neighbour on the same worker

my $bob = client('bob');
my $carol = client('carol');
my $r = $bob->cmd('createChat', participants => ['carol'], name => 'calm');
ok $r && $r->{ok}, 'bob creates a chat with carol' or diag explain $r;
my $chat = $r->{chatId} // 0;
$_->next_event('chatUpdate', 5) for $bob, $carol;

my $mallory = client('mallory');
my @flood = pipeline($mallory, 400, sub { { type => 'ping', id => $_[0] } });

# bob sends while mallory's flood is being refused
my @sent;
for my $i (1 .. 5) {
    my $s = $bob->cmd('sendMessage', chatId => $chat,
        clientMessageId => "calm-$i", message => "calm $i", _timeout => 10);
    push @sent, code_of($s);
}
is_deeply \@sent, [ ('ok') x 5 ], 'bob: every send ok during the flood';
my @got;
for my $i (1 .. 5) {
    my $e = $carol->next_event('newMessage', 10);
    push @got, $e ? $e->{message} : undef;
}
is_deeply \@got, [ map { "calm $_" } 1 .. 5 ],
    'carol: every message delivered during the flood';

my ($code) = $mallory->wait_closed(10);
is $code, 4008, 'the flooding connection is closed with 4008';
my (%answer, @limited, @bad_limited);
for my $m ($mallory->events) {
    next unless ($m->{type} // '') eq 'response' && defined $m->{id};
    $answer{ $m->{id} } = $m;
    next if $m->{ok};
    if (code_of($m) eq 'rate_limited') {
        push @limited, $m;
        push @bad_limited, $m unless ($m->{error}{retryAfterMs} // 0) > 0;
    }
}
my $oks = grep { $_->{ok} } values %answer;
note sprintf 'flood of %d: %d ok, %d rate_limited, then closed %s',
    scalar @flood, $oks, scalar @limited, $code // 'no code';
cmp_ok $oks, '>=', 39, 'the burst of 40 was served (one went to the first ping)';
cmp_ok $oks, '<', 400, '... but not the whole flood';
cmp_ok scalar @limited, '>', 0, 'refused commands are answered rate_limited';
is scalar @bad_limited, 0, '... each with a positive retryAfterMs';
my %flood = map { $_ => 1 } @flood;
is scalar(grep { !$flood{ $_->{id} } } @limited), 0,
    '... and the request id of the refused command';
is $oks + @limited, scalar(keys %answer), 'no other answers';
ok $t->grep_log(qr/keeps exceeding chat_command_rate/),
    'the close is logged';

my $s = $bob->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'calm-after', message => 'calm after');
is code_of($s), 'ok', 'bob still sends after mallory is gone';

# --- refused a little, then waiting retryAfterMs: served again

my $eve = client('eve');
my @ids = pipeline($eve, 60, sub { { type => 'ping', id => $_[0] } });
my %resp;
for my $id (@ids) {
    my $x = $eve->response($id, 10);
    $resp{$id} = $x;
}
my @refused = grep { code_of($resp{$_}) eq 'rate_limited' } @ids;
cmp_ok scalar @refused, '>', 0, 'eve: 60 at once, some refused';
ok !$eve->eof, '... without being closed (fewer refusals than the burst)';
my $wait = 0;
$wait = $_->{error}{retryAfterMs} > $wait ? $_->{error}{retryAfterMs} : $wait
    for map { $resp{$_} } @refused;
cmp_ok $wait, '<=', 3000, "... retryAfterMs within reason ($wait ms)";
sleep($wait / 1000 + 0.05);
$r = $eve->cmd('ping');
is code_of($r), 'ok', 'after waiting retryAfterMs a command is served';

# --- chat_user_rate: createChat 1r/m burst=3, for the user on any device

my $alice = client('alice');
my $laptop = client('alice', 'laptop');
my @codes = map {
    code_of($alice->cmd('createChat', participants => ['bob'],
        name => "limit-$_"))
} 1 .. 3;
is_deeply \@codes, [ ('ok') x 3 ], 'alice: three createChat ok (the burst)';
$r = $alice->cmd('createChat', participants => ['bob'], name => 'limit-4');
is code_of($r), 'rate_limited', 'the fourth is rate_limited';
is $r && $r->{error}{retryAfterMs}, 60000, '... retryAfterMs 60000 (1r/m)';
$r = $laptop->cmd('createChat', participants => ['bob'], name => 'limit-5');
is code_of($r), 'rate_limited', '... and so is one from her other device';
is $t->psql("SELECT count(*) FROM chats WHERE name LIKE 'limit-%'"), 3,
    'three chats exist';
$r = $bob->cmd('createChat', participants => ['alice'], name => 'other');
is code_of($r), 'ok', 'another user is not limited by alice';
my $other = $r->{chatId} // 0;

# modifyChatParticipants 1r/m burst=2
@codes = map {
    code_of($bob->cmd('modifyChatParticipants', chatId => $other,
        userId => "m$_", operation => 'ADD'))
} 1 .. 3;
is_deeply \@codes, [ 'ok', 'ok', 'rate_limited' ],
    'modifyChatParticipants: two ok, the third rate_limited';
is $t->psql("SELECT count(*) FROM participants WHERE chat_id = $other"), 4,
    '... and only two were added';

# --- chat_max_inflight 8: queries over it are refused at once, ping passes

my $dave = client('dave');
@ids = pipeline($dave, 30, sub { { type => 'getChats', id => $_[0] } });
my ($ping) = pipeline($dave, 1, sub { { type => 'ping', id => $_[0] } });
%resp = ();
$resp{$_} = $dave->response($_, 10) for @ids, $ping;
is scalar(grep { !$resp{$_} } @ids, $ping), 0, 'every command answered';
my @ok = grep { code_of($resp{$_}) eq 'ok' } @ids;
my @busy = grep { code_of($resp{$_}) eq 'rate_limited' } @ids;
cmp_ok scalar @ok, '>=', 1, 'some getChats ran';
cmp_ok scalar @ok, '<=', 8, '... at most chat_max_inflight of them';
is scalar(@ok) + scalar(@busy), 30, 'the others: rate_limited';
like $busy[0] && $resp{ $busy[0] }{error}{message}, qr/chat_max_inflight/,
    '... naming chat_max_inflight';
is code_of($resp{$ping}), 'ok', 'a ping is not held by the in-flight cap';
$r = $dave->cmd('getChats');
is code_of($r), 'ok', 'once answered, getChats runs again';

$t->done_testing;
