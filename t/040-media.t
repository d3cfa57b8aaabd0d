#!/usr/bin/perl

# Media attachments through the local store (docs/media.md): createAttachment
# answers a signed PUT URL; curl uploads a 10 MiB file through nginx, which
# checks the signature, the length and the SHA-256 before the file is in
# place; tampered, expired, replayed and wrong uploads are refused and leave
# nothing behind; sendMessage refuses attachments that are not uploaded or
# not the sender's; recipients get per-device signed download URLs in
# newMessage, served by nginx with Range support; an offline recipient gets
# the message later and can still download after acking the event;
# getAttachmentUrl is for participants only; the blob is deleted once every
# recipient device has downloaded it or sent ackAttachment (removed devices
# no longer count), and an upload never sent is swept after the grace
# period.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::SHA qw(sha256_hex hmac_sha256);
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS;

system('curl --version >/dev/null 2>&1') == 0
    or plan(skip_all => 'curl is not installed');

my $t = ChatTest->new;
my $media = $t->dir . '/media';
my $port = $t->port;

$t->chat_conf(http => <<"EOF", server => <<'EOF')->run;
    sendfile on;
    chat_sweep_interval 1s;
    chat_media_store local $media url=http://127.0.0.1:$port/media/;
    chat_media_max_size 20m;
    chat_media_grace 6s;
EOF
        location /media/ {
            chat_media;
        }
EOF

my $dir = $t->dir;

sub client { $t->client(@_) }

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.1) }

sub curl { $t->curl(@_) }

sub obj_path { my ($id) = @_; "$media/" . substr($id, 0, 2) . "/$id" }

sub tmp_files { my @f = glob "$media/.tmp/*"; scalar @f }

# a 10 MiB file of pseudo-random bytes
my $blob = '';
{
    my $x = 12345;
    my $chunk = join '', map { $x = ($x * 1103515245 + 12345) % 2**31;
                               pack 'N', $x } 1 .. 16384;
    $blob .= $chunk for 1 .. 160;
}
is length($blob), 10 * 1024 * 1024, '10 MiB test file';
$t->write_file('blob.bin', $blob);
my $sha = sha256_hex($blob);

my $alice = client('alice', 'phone');
my $bob = client('bob', 'phone');
my $carol = client('carol', 'phone');

# bob's laptop exists (registered once) but is offline when the message
# is sent
client('bob', 'laptop')->close(1000);

my $r = $alice->cmd('createChat', participants => [ 'bob', 'carol' ]);
ok $r->{ok}, 'chat created';
my $chat = $r->{chatId};
$_->next_event('chatUpdate', 5) for $alice, $bob, $carol;

# --- createAttachment

$r = $alice->cmd('createAttachment', contentType => 'image/png',
    size => 21 * 1024 * 1024, sha256 => $sha);
is $r->{error}{code}, 'limit_exceeded', 'over chat_media_max_size';

$r = $alice->cmd('createAttachment', contentType => 'text/html',
    size => 10, sha256 => $sha);
is $r->{error}{code}, 'bad_request', 'type not in the allow-list';

$r = $alice->cmd('createAttachment', contentType => 'image/png',
    size => 10, sha256 => 'abc');
is $r->{error}{code}, 'bad_request', 'malformed sha256';

$r = $alice->cmd('createAttachment', contentType => 'Image/PNG',
    size => length $blob, sha256 => uc $sha);
ok $r->{ok}, 'createAttachment';
my $id = $r->{attachmentId};
like $id, qr/^[0-9a-f]{32}$/, 'attachment id';
is $r->{method}, 'PUT', 'method';
is $r->{headers}{'Content-Type'}, 'image/png', 'content type lowercased';
is $r->{headers}{'Content-Length'}, length($blob), 'Content-Length header';
ok $r->{expiresAt} > time * 1000 && $r->{expiresAt} < (time + 3700) * 1000,
    'expiresAt in ms, within the URL ttl';
my $put = $r->{uploadUrl};
like $put, qr{^http://127\.0\.0\.1:$port/media/$id\?op=put&}, 'upload URL';

# --- sendMessage before the upload

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm0',
    message => 'early', attachments => [$id]);
is $r->{error}{code}, 'bad_request', 'not uploaded yet: refused';
like $r->{error}{message}, qr/$id/, '... naming the attachment';

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm0b',
    message => 'x', attachments => [ ('0' x 32) x 11 ]);
is $r->{error}{code}, 'limit_exceeded', 'more than 10 attachments';

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm0c',
    message => 'x', attachments => ['../etc/passwd']);
is $r->{error}{code}, 'bad_request', 'malformed attachment id';

# --- refused uploads leave nothing behind

my ($code, $out);

(my $bad = $put) =~ s/sig=(.)/'sig=' . ($1 eq 'A' ? 'B' : 'A')/e;
($code) = curl(method => 'PUT', url => $bad, file => "$dir/blob.bin");
is $code, 403, 'tampered signature: 403';

($bad = $put) =~ s/size=(\d+)/'size=' . ($1 + 1)/e;
($code) = curl(method => 'PUT', url => $bad, file => "$dir/blob.bin");
is $code, 403, 'tampered size: 403';

($bad = $put) =~ s{/media/[0-9a-f]{32}}{'/media/' . ('f' x 32)}e;
($code) = curl(method => 'PUT', url => $bad, file => "$dir/blob.bin");
is $code, 403, 'URL replayed for another object: 403';

($code) = curl(url => $put);
is $code, 403, 'upload URL used for a GET: 403';

# an expired URL, signed here with the documented key and format
{
    my $key = hmac_sha256('ngx_chat media url key v1', $t->secret);
    my $exp = int(time) - 10;
    my $msg = join "\n", 'ngx_chat-media-v1', 'put', $id, 'image/png',
        length($blob), $sha, 'alice', 'phone', $exp;
    my $sig = encode_base64(hmac_sha256($msg, $key), '');
    $sig =~ tr{+/}{-_};
    $sig =~ s/=+$//;
    my $q = "op=put&type=image%2Fpng&size=" . length($blob)
        . "&sha256=$sha&user=alice&dev=phone&exp=$exp&sig=$sig";
    ($code) = curl(method => 'PUT', file => "$dir/blob.bin",
        url => "http://127.0.0.1:$port/media/$id?$q");
    is $code, 403, 'expired URL: 403';

    # the same, unexpired: proves the format documented in docs/media.md
    $exp += 3600;
    $msg = join "\n", 'ngx_chat-media-v1', 'put', $id, 'image/png', 3, $sha,
        'alice', 'phone', $exp;
    $sig = encode_base64(hmac_sha256($msg, $key), '');
    $sig =~ tr{+/}{-_};
    $sig =~ s/=+$//;
    $q = "op=put&type=image%2Fpng&size=3&sha256=$sha&user=alice&dev=phone"
        . "&exp=$exp&sig=$sig";
    $t->write_file('three.bin', 'abc');
    ($code) = curl(method => 'PUT', file => "$dir/three.bin",
        url => "http://127.0.0.1:$port/media/$id?$q");
    is $code, 400, 'URL signed by the test itself is accepted, hash refused';
}

$t->write_file('short.bin', substr($blob, 0, length($blob) - 1));
($code, $out) = curl(method => 'PUT', url => $put, file => "$dir/short.bin");
is $code, 400, 'wrong size: 400';
like $t->read_file($out), qr/"code":"bad_request"/, '... with a JSON error';

my $other = $blob;
substr($other, 5000, 1) = chr(ord(substr($other, 5000, 1)) ^ 1);
$t->write_file('other.bin', $other);
($code, $out) = curl(method => 'PUT', url => $put, file => "$dir/other.bin");
is $code, 400, 'wrong hash (one bit): 400';
like $t->read_file($out), qr/sha256/, '... saying so';

# a client that goes away in the middle of its upload
{
    my ($path) = $put =~ m{^http://[^/]+(/.*)$};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "PUT $path HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
        . length($blob) . "\r\n\r\n" . substr($blob, 0, 3 * 1024 * 1024);
    sleep 0.3;
    close $s;
}

ok poll(sub { tmp_files() == 0 }, 5), 'no temp file left';
ok !-e obj_path($id), 'nothing at the object path';
is $t->psql("SELECT state FROM attachments WHERE id = '$id'"), 0,
    'still pending';

# --- the upload

($code, $out) = curl(method => 'PUT', url => $put, file => "$dir/blob.bin",
    headers => ['Content-Type: image/png']);
is $code, 200, 'upload: 200';
like $t->read_file($out), qr/"attachmentId":"$id"/, '... answering the id';
is -s obj_path($id), length($blob), 'the file is in place';
is sha256_hex($t->read_file(obj_path($id)) // ''), $sha, '... with the right bytes';
is $t->psql("SELECT state FROM attachments WHERE id = '$id'"), 1,
    'marked uploaded';
is tmp_files(), 0, 'no temp file left';

($code) = curl(method => 'PUT', url => $put, file => "$dir/blob.bin");
is $code, 200, 'the same upload again is harmless';

# --- sendMessage with it

my $dave = client('dave', 'phone');
$r = $dave->cmd('createAttachment', contentType => 'application/pdf',
    size => 3, sha256 => sha256_hex('abc'));
my $daves = $r->{attachmentId};
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm1',
    message => 'x', attachments => [$daves]);
is $r->{error}{code}, 'bad_request', "another user's attachment refused";

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm2',
    message => 'look', attachments => [$id]);
ok $r->{ok}, 'sendMessage with the attachment';

my $ev = $bob->next_event('newMessage', 5);
ok $ev, 'bob gets newMessage';
my $att = $ev->{attachments}[0] // {};
is $att->{attachmentId}, $id, 'attachmentId';
is $att->{contentType}, 'image/png', 'contentType';
is $att->{size}, length($blob), 'size';
is $att->{sha256}, $sha, 'sha256';
like $att->{url}, qr{^http://127\.0\.0\.1:$port/media/$id\?op=get&.*dev=phone},
    'a download URL for bob\'s phone';
ok $att->{urlExpiresAt} > time * 1000, 'urlExpiresAt';

my $cev = $carol->next_event('newMessage', 5);
ok $cev && $cev->{attachments}[0]{url} ne $att->{url},
    'carol gets her own URL';

# --- downloads

($code, $out) = curl(url => $att->{url}, range => '1000-1999');
is $code, 206, 'Range request: 206';
is $t->read_file($out), substr($blob, 1000, 1000), '... the right bytes';
like $t->read_file("$out.h"), qr{Content-Range: bytes 1000-1999/10485760}i,
    '... Content-Range';

is $t->psql("SELECT count(*) FROM attachment_receipts"
    . " WHERE attachment_id = '$id'"), 3, 'three recipient devices wait';

($code, $out) = curl(url => $att->{url});
is $code, 200, 'download: 200';
is sha256_hex($t->read_file($out) // ''), $sha, '... the whole file';
my $hdr = $t->read_file("$out.h") // '';
like $hdr, qr{Content-Type: image/png}i, '... Content-Type';
like $hdr, qr{ETag: "}i, '... ETag';
like $hdr, qr{Accept-Ranges: bytes}i, '... Accept-Ranges';

ok poll(sub { $t->psql("SELECT count(*) FROM attachment_receipts"
        . " WHERE attachment_id = '$id'") == 2 }),
    'bob\'s phone has it now (its receipt is gone)';

($bad = $att->{url}) =~ s/dev=phone/dev=laptop/;
($code) = curl(url => $bad);
is $code, 403, 'a download URL with another device: 403';

# --- the offline recipient: the event, acked, then the download

$bob->send_json({ type => 'ack', eventIds => [ $ev->{eventId} ] });

my $laptop = client('bob', 'laptop');
my $lev = $laptop->next_event('newMessage', 5);
ok $lev, 'the laptop gets the message when it connects';
my $lurl = $lev->{attachments}[0]{url} // '';
like $lurl, qr/dev=laptop/, '... with a URL for the laptop';
$r = $laptop->cmd('ack', eventIds => [ $lev->{eventId} ]);
ok $r->{ok}, 'the laptop acks the event';

ok poll(sub { $t->psql("SELECT count(*) FROM inbox WHERE user_id = 'bob'"
        . " AND device_id = 'laptop' AND event_id = $lev->{eventId}") == 0 }),
    'its inbox row is gone';
is $t->psql("SELECT count(*) FROM attachment_receipts"
    . " WHERE attachment_id = '$id' AND device_id = 'laptop'"), 1,
    'acking the event is not receiving the attachment';

$r = $laptop->cmd('getAttachmentUrl', attachmentId => $id);
ok $r->{ok}, 'getAttachmentUrl for a participant';
like $r->{url}, qr/dev=laptop/, '... for this device';
($code, $out) = curl(url => $r->{url});
is $code, 200, 'still downloadable after the event was acked';
is sha256_hex($t->read_file($out) // ''), $sha, '... the whole file';

ok poll(sub { $t->psql("SELECT count(*) FROM attachment_receipts"
        . " WHERE attachment_id = '$id'") == 1 }), 'only carol waits now';
ok -e obj_path($id), 'so the file is still there';

# --- getAttachmentUrl rights

$r = $dave->cmd('getAttachmentUrl', attachmentId => $id);
is $r->{error}{code}, 'forbidden', 'refused to a non-participant';
$r = $dave->cmd('getAttachmentUrl', attachmentId => 'f' x 32);
is $r->{error}{code}, 'not_found', 'unknown attachment';
$r = $dave->cmd('getAttachmentUrl', attachmentId => 'xyz');
is $r->{error}{code}, 'bad_request', 'malformed attachment id';

# --- carol acks instead of downloading: the last one

$r = $carol->cmd('ackAttachment', attachmentId => $id);
ok $r->{ok}, 'ackAttachment';
ok poll(sub { !-e obj_path($id) }), 'the file is deleted once every '
    . 'recipient device has it';
ok poll(sub { !defined $t->psql("SELECT 1 FROM attachments"
        . " WHERE id = '$id'") }), '... and its row';
($code) = curl(url => $att->{url});
is $code, 404, 'a download after that: 404';
$r = $bob->cmd('getAttachmentUrl', attachmentId => $id);
is $r->{error}{code}, 'not_found', 'getAttachmentUrl after that: not_found';

# --- removed devices no longer count

$t->write_file('small.bin', 'hello media');
$r = $alice->cmd('createAttachment', contentType => 'application/pdf',
    size => 11, sha256 => sha256_hex('hello media'));
my $id2 = $r->{attachmentId};
($code) = curl(method => 'PUT', url => $r->{uploadUrl},
    file => "$dir/small.bin");
is $code, 200, 'second upload';
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'm3',
    message => 'doc', attachments => [$id2]);
ok $r->{ok}, 'sent';
$r = $bob->cmd('ackAttachment', attachmentId => $id2);
$r = $carol->cmd('ackAttachment', attachmentId => $id2);
ok -e obj_path($id2), 'kept while the laptop has not received it';
$r = $laptop->cmd('removeDevice', deviceId => 'laptop');
ok $r->{ok}, 'bob removes the laptop';
ok poll(sub { !-e obj_path($id2) }, 10),
    'the blob goes once the removed device no longer counts';

# --- grace: an upload never sent is swept

$r = $alice->cmd('createAttachment', contentType => 'application/pdf',
    size => 11, sha256 => sha256_hex('hello media'));
my $id3 = $r->{attachmentId};
($code) = curl(method => 'PUT', url => $r->{uploadUrl},
    file => "$dir/small.bin");
is $code, 200, 'third upload, never sent';
ok -e obj_path($id3), 'in place';
ok poll(sub { !-e obj_path($id3) }, 15),
    'swept after chat_media_grace';
ok poll(sub { !defined $t->psql("SELECT 1 FROM attachments"
        . " WHERE id = '$id3'") }), '... with its row';

$t->done_testing;
