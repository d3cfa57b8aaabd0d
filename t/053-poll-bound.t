#!/usr/bin/perl

# Bounded polling (chat_poll_batch, docs/directives.md): while Redis is
# down a worker reads the inboxes of at most chat_poll_batch connections
# per poll, going on each time from where it stopped, so that every
# connection is read within ceil(connections / chat_poll_batch) polls.
# 200 receivers and a sender on one worker, chat_poll_batch 50, Redis
# stopped: ngx_chat_poll_batch_size shows no poll above 50 (and some well
# above 20: the bound is what cuts them), enough polls to cover everyone,
# and every receiver gets the message, once; with Redis back, the next
# message is pushed live to all of them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use POSIX qw(ceil);
use ChatTest;
use ChatTest::Prom;

my $N = 200;            # receivers
my $BATCH = 50;         # chat_poll_batch (a bucket bound of the histogram)
my $INTERVAL = 0.25;    # chat_poll_interval

my $t = ChatTest->new(workers => 1);
my $rd = $t->private_redis;
$t->chat_conf(redis => $rd->conf, http => <<"EOF", server => <<'EOF')->run;
    chat_ping_interval 600s;
    chat_poll_interval 250ms;
    chat_poll_batch $BATCH;
    chat_max_participants 300;
EOF
        location = /chat/metrics {
            chat_metrics;
        }
EOF

sub metrics { ChatTest::Prom::scrape($t) }

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.05) }

my $H = 'ngx_chat_poll_batch_size';

ok poll(sub { (metrics()->{ngx_chat_redis_up} // 0) == 1 }),
    'the subscriber is up';

my $alice = $t->client('alice', 'phone');
my @rcv = map { $t->client("r$_", 'phone') } 1 .. $N;
is scalar(@rcv), $N, "$N receivers connected";

my $r = $alice->cmd('createChat', participants => [ map { "r$_" } 1 .. $N ],
    _timeout => 15);
ok $r && $r->{ok}, "a chat of alice and the $N" or diag explain $r;
my $chat = $r->{chatId} // 0;

my %copies;     # "receiver message" => copies

# each receiver's next newMessage of the chat (others skipped), acked;
# the number that got $text before $deadline
sub collect {
    my ($text, $deadline) = @_;
    my ($got, $last) = (0, 0);
    for my $i (0 .. $#rcv) {
        while (1) {
            my $left = $deadline - time;
            last if $left <= 0;
            my $e = $rcv[$i]->next_event('newMessage', $left) or last;
            next unless $e->{chatId} eq $chat;
            $rcv[$i]->send_json({ type => 'ack',
                eventIds => [ $e->{eventId} ] });
            $copies{"$i $e->{message}"}++;
            next unless $e->{message} eq $text;
            $got++;
            $last = time;
            last;
        }
    }
    return ($got, $last);
}

# --- Redis goes away: the worker polls

ok $rd->stop, 'Redis stopped';
ok $t->wait_log(qr/redis subscriber down, inboxes are polled every 250 ms,/
    . qr/ at most $BATCH connections at a time/, 10),
    'the worker polls, and says how';

my $m0 = metrics();
my $t_sent = time;
$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'p1',
    message => 'polled');
ok $r && $r->{ok}, 'a message to the chat, stored';

my ($got, $last) = collect('polled', time + 30);
is $got, $N, "all $N receivers got it by polling";
my $took = $last - $t_sent;
my $polls_needed = ceil(($N + 1) / $BATCH);
cmp_ok $took, '<', $polls_needed * $INTERVAL + 3, sprintf('the last within'
    . ' %.2f s (%d polls of %d connections cover %d)', $took,
    $polls_needed, $BATCH, $N + 1);

my $m1 = metrics();
sub delta { ($m1->{ $_[0] } // 0) - ($m0->{ $_[0] } // 0) }
my $polls = delta("${H}_count");
my $polled = delta("${H}_sum");
diag "$polls polls read $polled inboxes";
cmp_ok $polls, '>=', ceil($N / $BATCH), 'enough polls to cover everyone';
cmp_ok $polled, '>=', $N, 'and they read every receiver\'s inbox';
is delta(qq(${H}_bucket{le="$BATCH"})), $polls,
    "no poll read more than $BATCH inboxes";
cmp_ok delta(qq(${H}_bucket{le="20"})), '<', $polls,
    'some read more than 20: the bound is what cut them';

# --- Redis back: pushed live again

ok $rd->start, 'Redis started again';
ok poll(sub { (metrics()->{ngx_chat_redis_up} // 0) == 1 }, 20),
    'the worker resubscribed';
my $before = metrics()->{"${H}_count"} // 0;

$r = $alice->cmd('sendMessage', chatId => $chat, clientMessageId => 'p2',
    message => 'live');
ok $r && $r->{ok}, 'a second message, stored';
($got) = collect('live', time + 15);
is $got, $N, "all $N receivers got it";
is metrics()->{"${H}_count"} // 0, $before, 'not by polling';

is scalar(grep { $copies{$_} != 1 } keys %copies), 0,
    'each receiver got each message once';
is scalar(keys %copies), 2 * $N, 'and nothing else';

$_->close for @rcv;
$t->done_testing;
