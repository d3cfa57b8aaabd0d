#!/usr/bin/perl

# A device that connects again must keep its newest connection
# (docs/protocol.md, close code 4001).  Each connection of a device tells
# every worker, through Redis, to close the device's other connections.
# That message can arrive after the device has connected once more: it
# must close only the connections that came before the one that sent it.
# The test holds Redis's publishes back (CLIENT PAUSE WRITE) so that the
# first connection's message is still on its way when the second one
# connects; on the code before the fix the second connection was closed
# with 4001 (the cause of t/012-offline.t's occasional stall).
#
# Also the lifecycle rule: a close started by the server (4001 here, a
# binary frame below) leaves the connection's identity readable by the
# callbacks still on their way (createAttachment's query in the same
# write as the binary frame): no worker may die.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 1);
my $rd = $t->private_redis;
my $media = $t->dir . '/media';
my $port = $t->port;

$t->chat_conf(redis => $rd->conf, http => <<"EOF",
    chat_ping_interval 600s;
    chat_media_store local $media url=http://127.0.0.1:$port/media/;
EOF
    server => "location /media/ { chat_media; }\n")->run;

# one Redis command on a fresh connection; returns the first reply line
sub redis {
    my (@args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $rd->addr, Timeout => 5)
        or die "redis: $!";
    my $cmd = '*' . @args . "\r\n";
    $cmd .= '$' . length($_) . "\r\n$_\r\n" for @args;
    print $s $cmd;
    my $line = <$s>;
    close $s;
    return $line // '';
}

my $alice = $t->client('alice', 'phone');
my $r = $alice->cmd('createChat', participants => ['bob'], name => 'k');
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId};

for my $try (1 .. 5) {
    like redis('CLIENT', 'PAUSE', '3000', 'WRITE'), qr/^\+OK/,
        "try $try: Redis holds publishes back";

    my $old = $t->client('bob', 'phone');
    my $new = $t->client('bob', 'phone');
    $old->wait_closed(5);
    is $old->close_code, 4001, "try $try: the older connection gets 4001";

    like redis('CLIENT', 'UNPAUSE'), qr/^\+OK/, "try $try: publishes flow";

    # alice's message is published after the old connection's kick, on
    # the same Redis connection: once bob has it, the kick was handled
    my $m = $alice->cmd('sendMessage', chatId => $chat,
        clientMessageId => "k$try", message => "after kick $try");
    ok $m && $m->{ok}, "try $try: alice sends";
    my $e;
    while (my $x = $new->next_event(undef, 10)) {
        $new->send_json({ type => 'ack', eventIds => [ $x->{eventId} ] });
        if (($x->{messageId} // '') eq ($m->{messageId} // '-')) {
            $e = $x;
            last;
        }
    }
    ok $e, "try $try: the newer connection gets the message";
    my $p = $new->cmd('ping');
    ok $p && $p->{ok}, "try $try: and is still open";
    ok !defined $new->close_code, "try $try: no close code";
    $new->close(1000);
}

# createAttachment and a binary frame in one write: the binary frame
# closes the connection (1003) while the attachment's query is out

for my $try (1 .. 30) {
    my $ws = ChatTest::WS->connect($t, user => "carol$try", device => 'phone');
    my $cmd = $t->json->encode({ type => 'createAttachment', id => 1,
        contentType => 'image/png', size => 10,
        sha256 => 'a' x 64 });
    $ws->send_raw(ChatTest::WS::encode_frame(1, $cmd)
        . ChatTest::WS::encode_frame(2, 'xx'));
    $ws->wait_closed(5);
}
my $w = $t->client('dave', 'phone');
ok $w->cmd('ping')->{ok}, 'the worker still serves after 30 close races';
is scalar(grep { /exited on signal/ } $t->grep_log(qr/signal/)), 0,
    'no worker exited on a signal';

$t->done_testing;
