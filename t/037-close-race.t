#!/usr/bin/perl

# The close race (issue 11, finding 1): a server-initiated close (here a
# binary frame, answered with 1003) while a media database callback is
# still pending.  createAttachment and a binary frame arrive in one write,
# so the close starts before PostgreSQL answers the INSERT; the callback
# must then find a connection it may still read.  Repeated 50 times, with
# the client echoing the server's Close at once or never (so the socket
# lingers for the server's close timeout), and dropping the TCP connection
# right after the write.  Pass: no worker exits on a signal (nor, under
# AddressSanitizer, with an error code), every connection waited for ends
# with 1003, and a fresh client is still served by the same worker.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::SHA qw(sha256_hex);
use ChatTest;
use ChatTest::WS qw(:op);

my $t = ChatTest->new;
my $media = $t->dir . '/media';
my $port = $t->port;

$t->chat_conf(http => <<"EOF", server => <<'EOF')->run;
    chat_media_store local $media url=http://127.0.0.1:$port/media/;
    chat_ping_interval 600s;
EOF
        location /media/ {
            chat_media;
        }
EOF

my @workers = $t->worker_pids;
is scalar @workers, 1, 'one worker';

my $JSON = JSON::PP->new->canonical;
my $tries = 50;
my ($closed_1003, $dropped) = (0, 0);

for my $i (1 .. $tries) {
    my $ws = eval { $t->client('alice', 'phone') };
    if (!$ws) {
        fail "try $i: connect: $@";
        last;
    }
    my $mode = $i % 3;          # 0: echo the Close, 1: never, 2: drop TCP
    $ws->auto_close($mode == 0 ? 1 : 0);
    my $cmd = $JSON->encode({ type => 'createAttachment', id => "a$i",
        contentType => 'image/png', size => 1000 + $i,
        sha256 => sha256_hex("blob $i") });
    my $bytes = ChatTest::WS::encode_frame(OP_TEXT, $cmd)
        . ChatTest::WS::encode_frame(OP_BINARY, "\x01\x02\x03");
    $ws->send_raw($bytes) or fail "try $i: write";
    if ($mode == 2) {
        $ws->disconnect;
        $dropped++;
        next;
    }
    my ($code) = $ws->wait_closed(5);
    $closed_1003++ if defined $code && $code == 1003;
    $ws->disconnect;
}

is $closed_1003, $tries - $dropped, 'every waited-for connection closed 1003';

# the worker is still the same process and still answers
my $ws = eval { $t->client('bob', 'phone') };
ok $ws, 'a fresh client is served afterwards';
my $r = $ws && $ws->cmd('createAttachment', contentType => 'image/png',
    size => 10, sha256 => sha256_hex('x'));
ok $r && $r->{ok}, 'createAttachment still works';
is_deeply [ $t->worker_pids ], \@workers, 'the worker did not change';

# a crash is "exited on signal 11"; under AddressSanitizer (which catches
# the SEGV and exits) it is "exited with code 1", logged at notice
my @sig = $t->grep_log(qr/exited on signal|exited with code [1-9]/);
is scalar @sig, 0, 'no worker exited on a signal (or an ASan abort)'
    or diag scalar(@sig) . " of $tries tries crashed a worker:\n"
        . join "\n", @sig[0 .. ($#sig > 9 ? 9 : $#sig)];

$t->done_testing;
