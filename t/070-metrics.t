#!/usr/bin/perl

# chat_metrics (docs/operations.md): the Prometheus text of the metrics
# zone, summed over the workers.  Known traffic between two devices served
# by different workers must move every counter by exactly what was done:
# connects by outcome, commands by type and result, events delivered and
# acked, and one histogram observation per send, commit, delivery, drain
# and ack.  The text must pass a strict parser of the exposition format
# (t/lib/ChatTest/Prom.pm), and any worker must answer the same sums.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;
use ChatTest::Prom;

my $t = ChatTest->new(workers => 2);
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s;
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    limit_req_status 429;',
    server => <<'EOF')->run;
        location = /chat/metrics {
            chat_metrics;
        }

        # one upgrade a minute: the next is refused by limit_req, before
        # the module sees it
        location = /chat/limited {
            limit_req zone=one nodelay;
            chat_websocket;
        }
EOF

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.05) }

# one scrape, parsed strictly: the values by series key
sub scrape {
    my ($status, $h, $body) = $t->http('GET', '/chat/metrics');
    is $status, 200, 'metrics: 200';
    like $h->{'content-type'} // '', qr{^text/plain; version=0\.0\.4},
        'metrics: content type of the text format 0.0.4';
    my ($m, $err) = ChatTest::Prom::parse($body);
    ok !@$err, 'metrics: strict parse' or diag join "\n", @$err[0 .. 9];
    return $m;
}

# a scrape without the per-scrape tests, for polling
sub values_now { ChatTest::Prom::scrape($t) }

sub v { $_[0]{value}{$_[1]} // 0 }

ok poll(sub { $t->worker_pids == 2 }), 'two workers';

my $m0 = scrape();

# every family the operations guide documents is there, with HELP and TYPE
my %want = (
    ngx_chat_connections => 'gauge', ngx_chat_devices_online => 'gauge',
    ngx_chat_connects_total => 'counter', ngx_chat_commands_total => 'counter',
    ngx_chat_events_delivered_total => 'counter',
    ngx_chat_events_acked_total => 'counter',
    ngx_chat_send_commit_seconds => 'histogram',
    ngx_chat_delivery_seconds => 'histogram',
    ngx_chat_drain_seconds => 'histogram',
    ngx_chat_ack_seconds => 'histogram',
    ngx_chat_pg_queue_depth => 'gauge', ngx_chat_pg_errors_total => 'counter',
    ngx_chat_pg_reconnects_total => 'counter', ngx_chat_redis_up => 'gauge',
    ngx_chat_redis_reconnects_total => 'counter', ngx_chat_polling => 'gauge',
    ngx_chat_output_dropped_total => 'counter',
    ngx_chat_send_batch_size => 'histogram',
    ngx_chat_send_capacity_per_second => 'gauge',
    ngx_chat_poll_batch_size => 'histogram',
    ngx_chat_media_uploads_total => 'counter',
    ngx_chat_media_downloads_total => 'counter',
    ngx_chat_media_upload_bytes_total => 'counter',
    ngx_chat_media_download_bytes_total => 'counter',
);
is_deeply { map { $_ => $m0->{families}{$_}{type} } keys %want }, \%want,
    'every documented family, with its type';
ok !(grep { ($m0->{families}{$_}{help} // '') eq '' } keys %want),
    'every family has a HELP text';

# the buckets: 0.5 ms to 10 s, then +Inf
my @le = map { $_->[1]{le} } grep { $_->[0] =~ /_bucket$/ }
    @{ $m0->{families}{ngx_chat_delivery_seconds}{samples} };
is "@le", '0.000500 0.001000 0.002500 0.005000 0.010000 0.025000 0.050000 '
    . '0.100000 0.250000 0.500000 1.000000 2.500000 5.000000 10.000000 +Inf',
    'latency buckets from 0.5 ms to 10 s';

is v($m0, 'ngx_chat_connections'), 0, 'no connections yet';
ok poll(sub { (values_now()->{ngx_chat_redis_up} // 0) == 1 }),
    'redis_up is 1 once both workers are subscribed';

# --- alice and bob on different workers

# a registered device whose first drain (an empty inbox) is done: what
# comes after it is live; each connection's drain is timed once
sub client {
    my ($user, $device) = @_;
    my $before = values_now()->{ngx_chat_drain_seconds_count} // 0;
    my $ws = $t->client($user, $device);
    ok poll(sub { (values_now()->{ngx_chat_drain_seconds_count} // 0)
        == $before + 1 }), "$user/$device: its first drain is timed once";
    return $ws;
}

my $alice = client('alice', 'phone');
my $wa = $t->worker_of($alice);
my ($bob, $extra) = (undef, 0);
for (1 .. 40) {
    my $ws = client('bob', 'laptop');
    my $w = $t->worker_of($ws);
    if (defined $w && defined $wa && $w != $wa) {
        $bob = $ws;
        last;
    }
    # the same worker: try again (the same device replaces this one)
    $extra++;
    $ws->close(1000);
}
ok $bob, 'alice and bob are served by different workers';

my $m1 = scrape();
is v($m1, 'ngx_chat_connections'), 2,
    'connections: 2, one on each worker, summed';
is v($m1, 'ngx_chat_devices_online'), 2, 'devices online: 2';
my $ok = 'ngx_chat_connects_total{result="ok"}';
is v($m1, $ok) - v($m0, $ok), 2 + $extra, 'connects ok: one per upgrade';

# --- known traffic

my $N = 5;
my $r = $alice->cmd('createChat', participants => ['bob']);
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId};
my $live = 0;           # events the clients received

# the chatUpdate reaches both participants; each acks it
my $acked = 0;
for my $ws ($alice, $bob) {
    my $e = $ws->next_event('chatUpdate', 5);
    ok $e, 'a chatUpdate for each participant';
    next unless $e;
    $live++;
    my $a = $ws->cmd('ack', eventIds => [ $e->{eventId} ]);
    ok $a && $a->{ok}, 'ack of the chatUpdate';
    $acked++;
}

for my $i (1 .. $N) {
    $r = $alice->cmd('sendMessage', chatId => $chat,
        clientMessageId => "m$i", message => "hello $i");
    ok $r && $r->{ok}, "sendMessage $i";
}
for my $i (1 .. $N) {
    my $e = $bob->next_event('newMessage', 5) or last;
    $live++;
    my $a = $bob->cmd('ack', eventIds => [ $e->{eventId} ]);
    ok $a && $a->{ok}, "ack $i";
    $acked++;
}

# errors: a type nobody handles, text that is no JSON, a bad token
$r = $alice->cmd('nosuchCommand');
is $r && $r->{error}{code}, 'unknown_type', 'unknown type refused';
$alice->send_text('{not json');
$r = $alice->next_event('response', 5);
is $r && $r->{error}{code}, 'bad_request', 'bad JSON refused';
my (undef, $st) = ChatTest::WS->try_connect($t, token => 'x.y.z');
is $st, 401, 'a bad token: 401';

my $m2 = scrape();
sub delta { v($m2, $_[0]) - v($m1, $_[0]) }

# the series of commands_total{type,result}
sub cmd { qq(ngx_chat_commands_total{result="$_[1]",type="$_[0]"}) }
my $SEND_OK = cmd('sendMessage', 'ok');
is delta($SEND_OK), $N, 'sendMessage ok';
is delta(cmd('createChat', 'ok')), 1, 'createChat ok';
is $acked, $N + 2, 'every event acked';
is delta(cmd('ack', 'ok')), $acked, 'ack ok';
is delta(cmd('unknown', 'unknown_type')), 1,
    'unknown type counted';
is delta(cmd('invalid', 'bad_request')), 1,
    'bad JSON counted';
is delta('ngx_chat_connects_total{result="unauthorized"}'), 1,
    'unauthorized connect counted';
is delta('ngx_chat_connects_total{result="ok"}'), 0, 'no other connect';

is delta('ngx_chat_events_delivered_total{type="newMessage"}'), $N,
    'newMessage events delivered';
is delta('ngx_chat_events_delivered_total{type="chatUpdate"}'), 2,
    'chatUpdate events delivered';
is delta('ngx_chat_events_acked_total'), $acked, 'events acked';

is delta('ngx_chat_send_commit_seconds_count'), $N,
    'one commit observation per send';
is delta('ngx_chat_send_batch_size_sum'), $N,
    'batches carried the sends, each once';
ok delta('ngx_chat_send_batch_size_count') >= 1
    && delta('ngx_chat_send_batch_size_count') <= $N,
    'between 1 and N batches';
is delta('ngx_chat_delivery_seconds_count'), $live,
    'one delivery observation per live event';
is delta('ngx_chat_ack_seconds_count'), $acked,
    'one ack observation per acked event';
is delta('ngx_chat_drain_seconds_count'), 0, 'no drain meanwhile';
ok delta('ngx_chat_delivery_seconds_sum') > 0
    && delta('ngx_chat_delivery_seconds_sum') < 10 * $live,
    'delivery times are positive and plausible';
is delta('ngx_chat_delivery_seconds_bucket{le="+Inf"}'), $live,
    '+Inf bucket counts them all';
is v($m2, 'ngx_chat_pg_queue_depth'), 0, 'nothing waits for PostgreSQL';
is v($m2, 'ngx_chat_polling'), 0, 'not polling';

# any worker answers the same sums (the scrapes land on both)
my %seen;
for (1 .. 10) {
    my $v = values_now();
    $seen{$v->{$SEND_OK} // 'none'}++;
}
is_deeply [ keys %seen ], [ v($m2, $SEND_OK) ],
    'ten scrapes agree';

# --- upgrades nginx refused before the module (limit_req): rate_limited

my $m4 = scrape();
my ($ws1, $st1) = ChatTest::WS->try_connect($t, path => '/chat/limited',
    user => 'carol', device => 'tablet');
is $st1, 101, 'the first upgrade on the limited location passes';
my (undef, $st2) = ChatTest::WS->try_connect($t, path => '/chat/limited',
    user => 'carol', device => 'tablet');
is $st2, 429, 'the second is refused by limit_req';
$ws1->close(1000) if $ws1;
my $m5 = scrape();
is v($m5, 'ngx_chat_connects_total{result="rate_limited"}')
    - v($m4, 'ngx_chat_connects_total{result="rate_limited"}'), 1,
    'connects rate_limited counted';
is v($m5, $ok) - v($m4, $ok), 1, 'and the first as ok';

# --- closes: the gauges come down, the counters stay

$bob->close(1000);
ok poll(sub { (values_now()->{ngx_chat_connections} // -1) == 1 }),
    'connections: 1 after bob closed';
$alice->disconnect;
ok poll(sub { (values_now()->{ngx_chat_connections} // -1) == 0 }),
    'connections: 0 after alice dropped';
my $m3 = scrape();
is v($m3, 'ngx_chat_devices_online'), 0, 'no device online';
is v($m3, $SEND_OK),
    v($m2, $SEND_OK),
    'counters stay when connections go';

# one close line per connection, with user, device, code and duration
ok poll(sub { $t->grep_log(qr/connection closed, code 1000, .*user: bob/) }),
    'bob\'s close is logged with its code';
my @alice = $t->grep_log(qr/connection closed, code 1006, reason "client closed the connection", duration \d+ ms.*user: alice, device: phone/);
is scalar @alice, 1, 'alice\'s drop is logged once, with 1006 and why';
ok !$t->grep_log(qr/access_token=|\beyJ/), 'no token in error.log';

# a reload keeps the counts (the zone is reused)
ok $t->reload, 'reload';
ok poll(sub { (values_now()->{$SEND_OK}
    // 0) == v($m2, $SEND_OK) }),
    'counters survive a reload';

$t->done_testing;
