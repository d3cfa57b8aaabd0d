#!/usr/bin/perl

# Media attachments through the S3 store (docs/media.md), end to end
# against npm s3rver, started here on loopback.
#
# s3rver (3.7.1) does NOT verify SigV4 signatures: it accepts any signature
# for a known access key and checks only that the X-Amz-* parameters are
# there and not expired.  So this file proves the flow (presigned PUT and
# GET usable by a plain HTTP client, the gateway's own asynchronous HEAD
# before a message may reference an upload, the size check, the DELETE at
# the end of the blob's life, S3 being down), not the signatures.  The
# signatures are checked in tests/unit (AWS's published example) and by
# tests/node/sigv4-oracle.js against @smithy/signature-v4; here the upload
# URL the module hands out is also re-signed with @smithy/signature-v4 and
# must match.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::SHA qw(sha256_hex sha256);
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS;
use ChatTest::S3rver;

my $why = ChatTest::S3rver::missing();
plan(skip_all => $why) if $why;

my $t = ChatTest->new;
my $dir = $t->dir;
# s3rver on loopback, stopped at the end (t/lib/ChatTest/S3rver.pm)
my $s3 = ChatTest::S3rver->new($t);
my $sport = $s3->port;

$s3->start;

$t->write_file('ak', "S3RVER\n");
$t->write_file('sk', "S3RVER\n");

$t->chat_conf(http => <<"EOF")->run;
    chat_media_store s3 endpoint=http://127.0.0.1:$sport region=us-east-1
                     bucket=media access_key_file=$dir/ak
                     secret_key_file=$dir/sk prefix=att/;
EOF

sub client { $t->client(@_) }

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.1) }

sub curl { $t->curl(@_) }

# s3rver keeps an object as <dir>/<bucket>/<key>._S3rver_object
sub stored { -e "$dir/s3/media/att/$_[0]._S3rver_object" }

my $data = join '', map { chr(($_ * 7) % 256) } 1 .. 300000;
$t->write_file('data.bin', $data);
my $sha = sha256_hex($data);

my $alice = client('alice', 'phone');
my $bob = client('bob', 'phone');
my $dave = client('dave', 'phone');

my $r = $alice->cmd('createChat', participants => ['bob']);
my $chat = $r->{chatId};
$bob->next_event('chatUpdate', 5);

# --- the presigned upload URL

$r = $alice->cmd('createAttachment', contentType => 'video/mp4',
    size => length $data, sha256 => $sha);
ok $r->{ok}, 'createAttachment';
my $id = $r->{attachmentId};
my $put = $r->{uploadUrl};
my $h = $r->{headers};
like $put, qr{^http://127\.0\.0\.1:$sport/media/att/$id
    \?X-Amz-Algorithm=AWS4-HMAC-SHA256
    &X-Amz-Credential=S3RVER%2F\d{8}%2Fus-east-1%2Fs3%2Faws4_request
    &X-Amz-Date=\d{8}T\d{6}Z&X-Amz-Expires=3600
    &X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost
        %3Bx-amz-checksum-sha256
    &X-Amz-Signature=[0-9a-f]{64}$}x,
    'path-style SigV4 presigned PUT, signing length, type and checksum';
is $h->{'Content-Type'}, 'video/mp4', 'Content-Type to send';
is $h->{'Content-Length'}, length($data), 'Content-Length to send';
is $h->{'x-amz-checksum-sha256'}, encode_base64(sha256($data), ''),
    'x-amz-checksum-sha256 to send';

# the same URL signed by @smithy/signature-v4: the signature must match
{
    my ($date) = $put =~ /X-Amz-Date=(\d{8}T\d{6}Z)/;
    my ($path) = $put =~ m{^http://[^/]+(/[^?]*)};
    my ($sig) = $put =~ /X-Amz-Signature=([0-9a-f]+)/;
    my $js = <<'JS';
const { SignatureV4 } = require('@smithy/signature-v4');
const crypto = require('crypto');
class H { constructor(k) { this.h = k ? crypto.createHmac('sha256', Buffer.from(k)) : crypto.createHash('sha256'); }
  update(d) { this.h.update(typeof d === 'string' ? Buffer.from(d) : d); }
  digest() { return Promise.resolve(new Uint8Array(this.h.digest())); } }
const [host, path, date, type, len, sum] = process.argv.slice(2);
const d = new Date(date.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
new SignatureV4({ credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  region: 'us-east-1', service: 's3', sha256: H, uriEscapePath: false })
.presign({ method: 'PUT', protocol: 'http:', hostname: host, path, query: {}, body: {},
  headers: { host, 'content-type': type, 'content-length': len, 'x-amz-checksum-sha256': sum } },
  { signingDate: d, expiresIn: 3600,
    unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
    signableHeaders: new Set(['content-length', 'content-type']) })
.then((r) => console.log(r.query['X-Amz-Signature']));
JS
    $t->write_file('resign.js', $js);
    local $ENV{NODE_PATH} = ChatTest::S3rver::node_dir() . "/node_modules";
    my $cmd = join ' ', 'node', "'$dir/resign.js'", "'127.0.0.1:$sport'",
        "'$path'", $date, 'video/mp4', length($data),
        "'$h->{'x-amz-checksum-sha256'}'";
    my $want = `$cmd 2>&1`;
    chomp $want;
    is $sig, $want, 'upload URL signature equals @smithy/signature-v4\'s';
}

# --- not uploaded yet: the HEAD finds nothing

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm1',
    message => 'early', attachments => [$id]);
is $r->{error}{code}, 'bad_request', 'not uploaded: refused';
like $r->{error}{message} // '', qr/$id/, '... naming the attachment';
is $t->psql("SELECT state FROM attachments WHERE id = '$id'"), 0,
    'still pending';

# --- the upload, straight to S3

my ($code, $out) = curl(method => 'PUT', url => $put, file => "$dir/data.bin",
    headers => $h);
is $code, 200, 'PUT to S3: 200';
ok stored($id), 'the object is in the bucket';

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm2',
    message => 'video', attachments => [$id]);
ok $r->{ok}, 'sendMessage once the HEAD confirmed the upload';
is $t->psql("SELECT state FROM attachments WHERE id = '$id'"), 1,
    'marked uploaded';

my $ev = $bob->next_event('newMessage', 5);
my $att = $ev->{attachments}[0] // {};
is $att->{attachmentId}, $id, 'bob gets the attachment';
like $att->{url} // '', qr{^http://127\.0\.0\.1:$sport/media/att/$id
    \?X-Amz-Algorithm=AWS4-HMAC-SHA256&.*
    X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{64}$}x,
    'with a presigned GET URL';
ok $att->{urlExpiresAt} > time * 1000, 'urlExpiresAt';

($code, $out) = curl(url => $att->{url});
is $code, 200, 'GET from S3: 200';
is sha256_hex($t->read_file($out) // ''), $sha, '... the bytes uploaded';

# --- a wrong size is caught by the gateway's HEAD

$t->write_file('short.bin', 'x' x 10);
$r = $alice->cmd('createAttachment', contentType => 'application/pdf',
    size => 20, sha256 => sha256_hex('x' x 20));
my $id2 = $r->{attachmentId};
my $h2 = { %{ $r->{headers} }, 'Content-Length' => 10 };
($code) = curl(method => 'PUT', url => $r->{uploadUrl},
    file => "$dir/short.bin", headers => $h2);
is $code, 200, 'a short upload (s3rver does not check the signed length)';
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm3',
    message => 'short', attachments => [$id2]);
is $r->{error}{code}, 'bad_request', 'refused: the object has the wrong size';
is $t->psql("SELECT state FROM attachments WHERE id = '$id2'"), 0,
    'not marked uploaded';

# --- getAttachmentUrl

$r = $bob->cmd('getAttachmentUrl', attachmentId => $id);
ok $r->{ok} && $r->{url} =~ /X-Amz-Signature=/, 'getAttachmentUrl: a URL';
($code) = curl(url => $r->{url});
is $code, 200, '... that works';
$r = $dave->cmd('getAttachmentUrl', attachmentId => $id);
is $r->{error}{code}, 'forbidden', 'refused to a non-participant';

# --- the end of the blob's life: ackAttachment, then DELETE

$r = $bob->cmd('ackAttachment', attachmentId => $id);
ok $r->{ok}, 'ackAttachment from the only recipient device';
ok poll(sub { !stored($id) }), 'the object is deleted from the bucket';
ok poll(sub { !defined $t->psql("SELECT 1 FROM attachments"
        . " WHERE id = '$id'") }), '... and its row';

# --- S3 down

$r = $alice->cmd('createAttachment', contentType => 'application/pdf',
    size => 10, sha256 => sha256_hex('x' x 10));
my $id3 = $r->{attachmentId};
($code) = curl(method => 'PUT', url => $r->{uploadUrl},
    file => "$dir/short.bin", headers => $r->{headers});
is $code, 200, 'uploaded';
$s3->stop;
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm4',
    message => 'down', attachments => [$id3]);
is $r->{error}{code}, 'bad_request', 'S3 down: the upload cannot be '
    . 'confirmed, the message is refused';
is $t->psql("SELECT state FROM attachments WHERE id = '$id3'"), 0,
    'nothing marked uploaded';
$s3->start;
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm4',
    message => 'down', attachments => [$id3]);
ok $r->{ok}, 'S3 back: the same send goes through';

$t->done_testing;
