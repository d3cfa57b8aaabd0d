#!/usr/bin/perl

# The S3 store over HTTPS: the gateway's own requests (the HEAD before a
# message references an upload, the DELETE at the end) go through nginx's
# TLS client code with SNI, certificate and host name verification against
# ca_file=, here a CA made by the test for an npm s3rver started on
# loopback with TLS.  As in t/041-media-s3.t: s3rver does NOT verify SigV4
# signatures, so this proves the TLS transport, not the signatures.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS;
use ChatTest::S3rver;

my $why = ChatTest::S3rver::missing();
plan(skip_all => $why) if $why;

my $t = ChatTest->new;
my $dir = $t->dir;
# s3rver on loopback, stopped at the end (t/lib/ChatTest/S3rver.pm)
my $s3 = ChatTest::S3rver->new($t,
    extra => [ '--key', "$dir/server.key",
    '--cert', "$dir/server.crt" ]);
my $sport = $s3->port;

# a CA and a certificate for "localhost" signed by it
sub openssl {
    my $out = `openssl @_ 2>&1`;
    die "openssl @_: $out" if $? != 0;
}
openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca"
    . " -keyout $dir/ca.key -out $dir/ca.crt");
openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost"
    . " -keyout $dir/server.key -out $dir/server.csr");
$t->write_file('ext', "subjectAltName=DNS:localhost\n");
openssl("x509 -req -in $dir/server.csr -CA $dir/ca.crt -CAkey $dir/ca.key"
    . " -CAcreateserial -days 2 -extfile $dir/ext -out $dir/server.crt");

$s3->start;

$t->write_file('ak', "S3RVER\n");
$t->write_file('sk', "S3RVER\n");

$t->chat_conf(http => <<"EOF")->run;
    chat_media_store s3 endpoint=https://localhost:$sport region=us-east-1
                     bucket=media access_key_file=$dir/ak
                     secret_key_file=$dir/sk ca_file=$dir/ca.crt;
EOF

sub client { $t->client(@_) }

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.1) }

# the status alone: the HTTPS checks only look at it
sub curl { scalar $t->curl(cacert => "$dir/ca.crt", @_) }

sub stored { -e "$dir/s3/media/$_[0]._S3rver_object" }

$t->write_file('data.bin', 'tls media bytes');

my $alice = client('alice', 'phone');
my $bob = client('bob', 'phone');
my $r = $alice->cmd('createChat', participants => ['bob']);
my $chat = $r->{chatId};

$r = $alice->cmd('createAttachment', contentType => 'audio/ogg',
    size => 15, sha256 => sha256_hex('tls media bytes'));
my $id = $r->{attachmentId};
like $r->{uploadUrl}, qr{^https://localhost:$sport/media/$id\?X-Amz-},
    'an https upload URL (no prefix: the key is the id)';
is curl(method => 'PUT', url => $r->{uploadUrl}, file => "$dir/data.bin",
    headers => $r->{headers}), 200, 'PUT over TLS';

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm1',
    message => 'tls', attachments => [$id]);
ok $r->{ok}, 'the gateway\'s HEAD over TLS confirmed the upload';

my $ev = $bob->next_event('newMessage', 5);
is curl(url => $ev->{attachments}[0]{url} // ''), 200, 'GET over TLS';

$r = $bob->cmd('ackAttachment', attachmentId => $id);
ok $r->{ok}, 'ackAttachment';
ok poll(sub { !stored($id) }), 'the gateway\'s DELETE over TLS';

is scalar($t->grep_log(qr/certificate|SSL_/)), 0,
    'no certificate or TLS errors logged';

$t->done_testing;
