#!/usr/bin/perl

# Operator surfaces (issue 11 finding 11, docs/tokens.md "Presenting the
# token", docs/security.md): a token given as ?access_token= lands in no
# log.  The sample configuration's log format (conf/chat.conf) has no
# query string at all, and the module replaces the token by "-" in what
# nginx logs of its WebSocket location ($request, $request_uri, $args,
# $arg_access_token, the "request:" of error.log lines), whether the
# token is good, bad or the request no upgrade at all.
#
# The local media store's sweep unlinks its blobs synchronously: one event
# loop pass unlinks at most 50 (and stops after 2 ms), so 120 blobs to
# delete take at least 3 passes, and all of them go.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::MD5 qw(md5_hex);
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 1);

# the log_format of the sample configuration, as it is written there
my $sample = $t->read_file("$FindBin::Bin/../conf/chat.conf") // '';
my ($format) = $sample =~ /^\s*(log_format\s+chat\s.*?;)\s*$/ms;
ok $format, 'conf/chat.conf has a log_format "chat"';
like $sample, qr/^\s*access_log\s+\S+\s+chat;/m,
    'conf/chat.conf logs with it';
$format //= 'log_format chat $request;';

# the harness's own access.log uses nginx's "combined" format ($request)
my $media = $t->dir . '/media';
$t->chat_conf(http => "    $format\n" . <<'EOF')->run;
    chat_sweep_interval 1s;
    chat_media_store local %%TESTDIR%%/media url=http://127.0.0.1/media/;
    log_format every '$request|$request_uri|$args|$arg_access_token|'
                     '$query_string|$uri';
    access_log %%TESTDIR%%/chat.log chat;
    access_log %%TESTDIR%%/every.log every;
EOF

my @tokens;

sub token {
    my (%o) = @_;
    my $tok = $t->token(%o);
    push @tokens, $tok;
    return $tok;
}

# a good token in the query
my $ws = ChatTest::WS->connect($t, user => 'alice', auth => 'query',
    token => token(user => 'alice'));
my $r = $ws->cmd('ping');
ok $r && $r->{ok}, 'connected with ?access_token=';

# the name in another case and among other arguments
my $ws2 = ChatTest::WS->connect($t, user => 'bob', auth => 'none',
    query => 'a=1&ACCESS_TOKEN=' . token(user => 'bob') . '&b=2');
$r = $ws2->cmd('ping');
ok $r && $r->{ok}, 'connected with ?a=1&ACCESS_TOKEN=...&b=2';

# a token signed with another secret: 401, logged at info with the request
my ($bad, $status) = ChatTest::WS->try_connect($t, auth => 'query',
    token => token(user => 'carol', secret => 'x' x 40));
is $status, 401, 'a bad token in the query: 401';
ok $t->wait_log(qr/access token refused.*request: "GET \/chat\?access_token=- /),
    'error.log names the request, without the token';

# no WebSocket at all, twice the argument
my ($st) = $t->http('GET', '/chat?access_token=' . token(user => 'dave')
    . '&access_token=' . token(user => 'erin'));
is $st, 426, 'a plain GET with tokens: 426';

# a request is logged when it ends: a WebSocket's at the takeover (before
# its first answer), a plain one's after its response, maybe after the
# client read it: wait (bounded) until every log has its four lines
sub wait_lines {
    my ($file, $n) = @_;
    my $deadline = time + 10;
    my @l;
    while (1) {
        @l = $t->grep_log(qr/./, $file);
        return scalar @l if @l >= $n || time > $deadline;
        select undef, undef, undef, 0.05;
    }
}

is wait_lines('access.log', 4), 4, 'access.log (combined): four requests';
is wait_lines('chat.log', 4), 4, 'chat.log: four requests';
is wait_lines('every.log', 4), 4, 'every.log: four requests';
like $t->read_file('access.log'),
    qr{"GET /chat\?a=1&ACCESS_TOKEN=-&b=2 HTTP/1.1" 101 },
    'access.log: the argument is there, its value is "-"';
like $t->read_file('access.log'),
    qr{"GET /chat\?access_token=-&access_token=- HTTP/1.1" 426 },
    'access.log: both values of a repeated argument are "-"';
is scalar $t->grep_log(qr{"GET /chat HTTP/1.1"}, 'chat.log'), 4,
    'chat.log (the sample format): no query string';
like $t->read_file('every.log'), qr{^GET /chat\?access_token=- HTTP/1.1\|/chat\?access_token=-\|access_token=-\|-\|access_token=-\|/chat$}m,
    'every.log: $request, $request_uri, $args, $arg_access_token, '
    . '$query_string all hide it';

# no token, nor its signature, in any log
for my $file (qw(access.log chat.log every.log error.log)) {
    my $log = $t->read_file($file) // '';
    my @found = grep { index($log, (split /\./, $_)[2]) >= 0 } @tokens;
    is scalar @found, 0, "$file: none of the " . @tokens . ' tokens';
}

$ws->close(1000);
$ws2->close(1000);

# --- the media sweep: 120 blobs to delete, in passes of at most 50

# the workers (maybe not our user) unlink: the folders are writable
my @ids = map { md5_hex("blob $_") } 1 .. 120;
for my $id (@ids) {
    my $sub = "$media/" . substr($id, 0, 2);
    mkdir $sub;
    chmod 0777, $sub;
    $t->write_file("$sub/$id", 'blob');
}
is scalar(grep { -e "$media/" . substr($_, 0, 2) . "/$_" } @ids), 120,
    '120 blobs in the local store';
# one statement: the sweep sees all of them or none
$t->psql("INSERT INTO attachments (id, owner_id, owner_device, content_type,"
    . " size, sha256, state) SELECT id, 'x', 'd', 'image/png', 4,"
    . " repeat('0', 64), 2 FROM unnest(ARRAY['" . join("','", @ids)
    . "']) AS id");

my $line = $t->wait_log(
    qr/chat media: sweep went through \d+ of 120 blobs in \d+ passes/, 30);
my ($through, $passes) = ($line // '') =~ /through (\d+) of 120 .* (\d+) passes/;
is $through, 120, 'the sweep went through the 120 blobs' or diag $line;
ok $passes && $passes >= 3, 'in 3 passes or more (' . ($passes // 0)
    . '), at most 50 unlinks each';
is scalar(grep { -e "$media/" . substr($_, 0, 2) . "/$_" } @ids), 0,
    'all 120 blobs are gone';
ok ChatTest::poll(sub { $t->psql('SELECT count(*) FROM attachments') == 0 },
    10), 'and their rows';

$t->done_testing;
