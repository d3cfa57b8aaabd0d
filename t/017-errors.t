#!/usr/bin/perl

# Command errors (docs/protocol.md "Commands and responses", "Error
# codes"): malformed JSON, a missing or wrongly typed field of each command,
# an unknown command or chat, a message over chat_max_message_size; every
# error is one response with "ok":false, an error code and message, and the
# request id echoed with its JSON type; no error closes the connection or
# stores anything, and the connection stays usable.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new;
$t->chat_conf(http => <<'EOF')->run;
    chat_max_message_size 1000;
    chat_ping_interval 600s;
EOF

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub jtype {
    my $j = $JSON->encode($_[0]);
    return $j =~ /^"/ ? 'string' : $j =~ /^-?[0-9]/ ? 'number'
        : $j =~ /^[\[{]/ ? 'container' : $j;
}

# a connected and registered device (its first response means registered)
sub client { $t->client($_[0], 'phone') }

my $alice = client('alice');
my $bob = client('bob');

my $n = 0;

# send %$cmd with a fresh string id; the response must be an error with
# one of the codes @codes (the first is the expected one)
sub fails {
    my ($cmd, $name, @codes) = @_;
    my $id = 'e' . ++$n;
    $alice->send_json({ %$cmd, id => $id });
    my $r = $alice->response($id, 5);
    check_error($r, $name, @codes);
    is $r && $r->{id}, $id, "$name: id echoed";
    return $r;
}

sub check_error {
    my ($r, $name, @codes) = @_;
    if (!$r) {
        fail "$name: a response";
        return;
    }
    is jtype($r->{ok}), 'false', "$name: \"ok\":false";
    my $code = $r->{error} && $r->{error}{code} // 'none';
    if (@codes == 1) {
        is $code, $codes[0], "$name: $codes[0]";
    } else {
        ok grep({ $_ eq $code } @codes), "$name: one of @codes (got $code)";
    }
    is jtype($r->{error} && $r->{error}{message}), 'string',
        "$name: with a message";
}

# a raw text message; its error response (whatever its id)
sub raw_fails {
    my ($text, $name, @codes) = @_;
    $alice->send_text($text);
    my $r = $alice->next_event('response', 5);
    check_error($r, $name, @codes);
    return $r;
}

sub works {
    my ($name) = @_;
    my $r = $alice->cmd('ping');
    ok $r && $r->{ok}, "$name: the connection still works";
}

my $r = $alice->cmd('createChat', participants => ['bob'], name => 'errors');
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId} // 0;
my $unknown = '987654321';

# --- the envelope

raw_fails('{"type":"ping","id":"x"', 'truncated JSON', 'bad_request');
raw_fails('{"type":"ping",,"id":"x"}', 'invalid JSON', 'bad_request');
raw_fails('[1,2,3]', 'an array, not an object', 'bad_request');
raw_fails('"ping"', 'a string, not an object', 'bad_request');
raw_fails('', 'an empty message', 'bad_request');
works('after malformed JSON');

fails({}, 'no type', 'bad_request');
fails({ type => 5 }, 'type is a number', 'bad_request');
fails({ type => ['ping'] }, 'type is an array', 'bad_request');
fails({ type => 'fly' }, 'unknown command', 'unknown_type');

# the id comes back with its JSON type
$alice->send_text('{"type":"fly","id":42}');
$r = $alice->next_event('response', 5) // {};
is_deeply [ jtype($r->{id}), $r->{id} ], [ 'number', 42 ],
    'an integer id is echoed as an integer (error response)';
$alice->send_text('{"type":"ping","id":43}');
$r = $alice->next_event('response', 5) // {};
is_deeply [ jtype($r->{id}), $r->{id}, jtype($r->{ok}) ],
    [ 'number', 43, 'true' ], 'and in an ok response';
raw_fails('{"type":"ping","id":{"a":1}}', 'id is an object', 'bad_request');
raw_fails('{"type":"ping","id":true}', 'id is a boolean', 'bad_request');
raw_fails('{"type":"ping","id":"' . ('i' x 65) . '"}', 'id of 65 bytes',
    'bad_request');
$r = $alice->cmd('ping', id => 'i' x 64);
ok $r && $r->{ok}, 'an id of 64 bytes is fine';
$r = $alice->cmd('ping', whatever => [ 1, { a => 2 } ], x => undef);
ok $r && $r->{ok}, 'unknown fields are ignored';

# --- createChat

fails({ type => 'createChat' }, 'createChat without participants',
    'bad_request');
fails({ type => 'createChat', participants => 'bob' },
    'createChat, participants a string', 'bad_request');
fails({ type => 'createChat', participants => { bob => 1 } },
    'createChat, participants an object', 'bad_request');
fails({ type => 'createChat', participants => [ 'bob', 7 ] },
    'createChat, a participant is a number', 'bad_request');
fails({ type => 'createChat', participants => ['no spaces'] },
    'createChat, an invalid user id', 'bad_request');
fails({ type => 'createChat', participants => [ 'u' x 65 ] },
    'createChat, a 65-character user id', 'bad_request');
fails({ type => 'createChat', participants => [] },
    'createChat with nobody else (1 participant)', 'bad_request');
fails({ type => 'createChat', participants => [ 'alice', 'alice' ] },
    'createChat with only the creator, twice', 'bad_request');
fails({ type => 'createChat', participants => ['bob'], name => 5 },
    'createChat, name a number', 'bad_request');
fails({ type => 'createChat', participants => ['bob'], name => 'n' x 257 },
    'createChat, name of 257 bytes', 'bad_request', 'limit_exceeded');
$r = $alice->cmd('createChat', participants => ['bob'], name => 'n' x 256);
ok $r && $r->{ok}, 'createChat, name of 256 bytes: ok';
works('after createChat errors');

# --- modifyChatParticipants

my %mod = (type => 'modifyChatParticipants', chatId => $chat,
    userId => 'carol', operation => 'ADD');
for my $f (qw(chatId userId operation)) {
    my %c = %mod;
    delete $c{$f};
    fails(\%c, "modifyChatParticipants without $f", 'bad_request');
}
fails({ %mod, chatId => [$chat] }, 'modifyChatParticipants, chatId an'
    . ' array', 'bad_request');
fails({ %mod, chatId => JSON::PP::true }, 'modifyChatParticipants, chatId'
    . ' a boolean', 'bad_request');
fails({ %mod, userId => ['carol'] }, 'modifyChatParticipants, userId an'
    . ' array', 'bad_request');
fails({ %mod, userId => 'car ol' }, 'modifyChatParticipants, invalid'
    . ' userId', 'bad_request');
fails({ %mod, operation => 'DELETE' }, 'modifyChatParticipants, operation'
    . ' DELETE', 'bad_request');
fails({ %mod, operation => 1 }, 'modifyChatParticipants, operation a'
    . ' number', 'bad_request');
fails({ %mod, chatId => $unknown }, 'modifyChatParticipants, unknown chat',
    'not_found');
fails({ %mod, chatId => 'abc' }, 'modifyChatParticipants, chatId not'
    . ' digits', 'bad_request', 'not_found');
works('after modifyChatParticipants errors');

# --- sendMessage

my %send = (type => 'sendMessage', chatId => $chat,
    clientMessageId => 'bad', message => 'never stored');
for my $f (qw(chatId clientMessageId message)) {
    my %c = %send;
    delete $c{$f};
    fails(\%c, "sendMessage without $f", 'bad_request');
}
fails({ %send, chatId => { id => $chat } }, 'sendMessage, chatId an object',
    'bad_request');
fails({ %send, message => 5 }, 'sendMessage, message a number',
    'bad_request');
fails({ %send, message => ['x'] }, 'sendMessage, message an array',
    'bad_request');
fails({ %send, clientMessageId => [1] }, 'sendMessage, clientMessageId an'
    . ' array', 'bad_request');
fails({ %send, clientMessageId => '' }, 'sendMessage, empty'
    . ' clientMessageId', 'bad_request');
fails({ %send, clientMessageId => 'c' x 65 }, 'sendMessage,'
    . ' clientMessageId of 65 bytes', 'bad_request');
fails({ %send, attachments => 'x' }, 'sendMessage, attachments a string',
    'bad_request');
fails({ %send, attachments => [ { url => 'http://x/y' } ] },
    'sendMessage, attachments not empty (no media configured)',
    'bad_request');
fails({ %send, chatId => $unknown }, 'sendMessage, unknown chat',
    'not_found');
fails({ %send, message => 'x' x 1001 }, 'sendMessage, 1001 bytes'
    . ' (chat_max_message_size 1000)', 'limit_exceeded');
fails({ %send, message => "\x{e9}" x 501 }, 'sendMessage, 501 characters'
    . ' of 2 bytes', 'limit_exceeded');
works('after sendMessage errors');

is scalar $t->psql("SELECT count(*) FROM messages"), 0,
    'no message was stored by the failed sends';
is scalar $t->psql("SELECT count(*) FROM sent_keys"), 0,
    'no idempotency key either';

# the limits themselves are fine, and the clientMessageId used above is
# free
my $max = "\x{e9}" x 500;
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'bad',
    message => $max);
ok $r && $r->{ok}, 'sendMessage of exactly 1000 bytes: ok';
ok $r && !$r->{duplicate}, '... not a duplicate of a failed send';
$r = $alice->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'c' x 64, message => '', attachments => []);
ok $r && $r->{ok}, 'empty message, 64-byte clientMessageId, empty'
    . ' attachments: ok';

# --- ack

fails({ type => 'ack' }, 'ack without eventIds', 'bad_request');
fails({ type => 'ack', eventIds => '1' }, 'ack, eventIds a string',
    'bad_request');
fails({ type => 'ack', eventIds => ['abc'] }, 'ack, an id not digits',
    'bad_request');
fails({ type => 'ack', eventIds => [ JSON::PP::true ] },
    'ack, an id a boolean', 'bad_request');
fails({ type => 'ack', eventIds => [ ['1'] ] }, 'ack, an id an array',
    'bad_request');
fails({ type => 'ack', eventIds => [ map { "$_" } 1 .. 1001 ] },
    'ack of 1001 ids', 'bad_request', 'limit_exceeded');
$r = $alice->cmd('ack', eventIds => [ '999999999', 999999998 ]);
ok $r && $r->{ok}, 'ack of unknown ids, as string and integer: ok';
$r = $alice->cmd('ack', eventIds => [ map { "$_" } 1 .. 1000 ]);
ok $r && $r->{ok}, 'ack of 1000 ids: ok';
# an ack without id is not answered: the next response is the ping's
$alice->send_json({ type => 'ack', eventIds => ['1'] });
$r = $alice->cmd('ping');
ok $r && $r->{ok}, 'an ack without id is not answered';
is scalar(grep { ($_->{type} // '') eq 'response' } $alice->events), 0,
    '... nothing else came';

# --- getChats, removeDevice

$r = $alice->cmd('getChats', since => 'ignored');
ok $r && $r->{ok}, 'getChats with an unknown field: ok';
fails({ type => 'removeDevice' }, 'removeDevice without deviceId',
    'bad_request');
fails({ type => 'removeDevice', deviceId => 7 }, 'removeDevice, deviceId a'
    . ' number', 'bad_request');
fails({ type => 'removeDevice', deviceId => ['phone'] }, 'removeDevice,'
    . ' deviceId an array', 'bad_request');
fails({ type => 'removeDevice', deviceId => 'tablet' }, 'removeDevice of a'
    . ' device the user does not have', 'not_found');

# --- still usable: a message goes through to bob

works('at the end');
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'ok-1',
    message => 'still alive');
ok $r && $r->{ok}, 'a valid sendMessage';
my @got;
while (my $e = $bob->next_event('newMessage', 5)) {
    push @got, $e->{message};
    last if $e->{message} eq 'still alive';
}
is_deeply \@got, [ $max, '', 'still alive' ],
    'bob gets exactly the 3 valid messages';

is_deeply [ map { $_->violations } $alice, $bob ], [],
    'server frames follow RFC 6455';
is $alice->close(1000), 1000, 'alice closes normally';
is $bob->close(1000), 1000, 'bob closes normally';

$t->done_testing;
