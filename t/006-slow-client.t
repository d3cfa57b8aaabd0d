#!/usr/bin/perl

# A client that stops reading while output piles up beyond
# chat_output_limit is disconnected (and the server says why in error.log);
# other clients are not affected.  Output is made to pile up with many ping
# commands carrying 64-character ids, a small client receive buffer and a
# small server send buffer.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::WS qw(:op);
use ChatTest::Prom;

my $t = ChatTest->new;
$t->chat_conf(listen => ' sndbuf=4k',
    server => '        location = /chat/metrics { chat_metrics; }',
    http => <<'EOF')->run;
    chat_output_limit 16k;
    chat_max_frame_size 12k;
    chat_max_message_size 8k;
    chat_send_timeout 60s;
    chat_ping_interval 60s;
EOF

# ngx_chat_output_dropped_total now
sub dropped {
    return ChatTest::Prom::scrape($t)->{ngx_chat_output_dropped_total};
}
is dropped(), 0, 'no connection dropped yet';

my $good = ChatTest::WS->connect($t, user => 'bob', device => 'laptop');
my $r = $good->cmd('ping');
ok $r && $r->{ok}, 'well-behaved client connected';

my $slow = ChatTest::WS->connect($t, user => 'alice', device => 'phone',
    rcvbuf => 4096);
$r = $slow->cmd('ping');
ok $r && $r->{ok}, 'slow client connected';

# 3000 commands whose answers (about 110 bytes each, 330 KB in all) far
# exceed the limit plus both socket buffers
my $n = 3000;
my $batch = '';
for my $i (1 .. $n) {
    my $id = sprintf '%064d', $i;
    $batch .= ChatTest::WS::encode_frame(OP_TEXT,
        qq({"type":"ping","id":"$id"}));
}
my $sent = $slow->write_some($batch, time + 10);
cmp_ok $sent, '>', 0, "slow client wrote $sent of " . length($batch)
    . ' bytes without reading';

# the server acts while we still are not reading
my $line = $t->wait_log(qr/output limit/, 10);
ok $line, 'error.log says the output limit was hit' or diag $t->log_tail;
is dropped(), 1, 'ngx_chat_output_dropped_total counts it';
ok $t->wait_log(qr/connection closed, code 1006, reason "output limit/
    . qr/ exceeded".*user: alice, device: phone/),
    'its close line names the reason, the user and the device';

# now read: what was buffered, then the end of the connection
my ($code, $eof) = $slow->wait_closed(10);
ok $eof, 'slow client disconnected';
my $answers = grep { ($_->{type} // '') eq 'response' } $slow->events;
cmp_ok $answers, '<', $n, "it got only $answers of $n answers";

# the other client did not notice
$r = $good->cmd('ping');
ok $r && $r->{ok}, 'well-behaved client still served';
is $good->close(1000), 1000, 'and closes normally';

# and new clients are served too
my $new = ChatTest::WS->connect($t, user => 'alice', device => 'phone');
$r = $new->cmd('ping');
ok $r && $r->{ok}, 'slow client can reconnect';
is $new->close(1000), 1000, 'and close normally';

is_deeply [ map { $_->violations } $good, $slow, $new ], [],
    'server frames follow RFC 6455';

$t->done_testing;
