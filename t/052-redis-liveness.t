#!/usr/bin/perl

# Redis liveness (chat_redis_timeout, docs/directives.md): a worker's Redis
# links are alive while anything at all comes from Redis, and are dropped
# only once nothing has been read from them for chat_redis_timeout (here
# 12 s; PINGs go out every 3 s).
#   (a) Redis frozen with SIGSTOP for 6.5 s (more than two PING periods:
#       the old rule, a PING unanswered at the next 3 s tick, dropped it):
#       the links stay, nothing is polled, and the messages sent during the
#       freeze are pushed live once Redis runs again, each exactly once;
#   (b) frozen for longer than the deadline: the links are dropped between
#       9 s (12 s minus the up to 3 s since the last PONG) and 12 s after the
#       freeze, the worker polls, the messages sent meanwhile arrive by
#       polling while Redis is still frozen, and after SIGCONT the worker
#       reconnects and pushes again; nothing lost, nothing twice after
#       dedupe by eventId.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::Prom;

my $DEADLINE = 12;     # chat_redis_timeout
my $PING = 3;          # NGX_CHAT_REDIS_PING_INTERVAL
my $FREEZE_A = 6.5;

my $t = ChatTest->new(workers => 1);
my $rd = $t->private_redis;
$t->chat_conf(redis => $rd->conf, http => <<"EOF", server => <<'EOF')->run;
    chat_ping_interval 600s;
    chat_poll_interval 1s;
    chat_redis_timeout ${DEADLINE}s;
EOF
        location = /chat/metrics {
            chat_metrics;
        }
EOF

sub metric { ChatTest::Prom::scrape($t)->{ $_[0] } // 0 }

sub poll { ChatTest::poll($_[0], $_[1] // 10, 0.05) }

sub lost_lines { scalar $t->grep_log(qr/redis (sub|cmd): connection .* lost/) }
sub down_lines { scalar $t->grep_log(qr/redis subscriber down/) }
sub up_lines { scalar $t->grep_log(qr/redis sub: connected to/) }

ok poll(sub { metric('ngx_chat_redis_up') == 1 }), 'the subscriber is up';

my ($alice, $bob, $chat) = $t->two_in_a_chat;
ok $chat, 'alice and bob in a chat';

my $n = 0;
my %sent;       # messageId => text, of everything alice sent
my %got;        # eventId => copies bob got
my %got_msg;    # messageId => 1, of what bob got

sub send_one {
    my ($text) = @_;
    my $r = $alice->cmd('sendMessage', chatId => $chat,
        clientMessageId => 'm' . ++$n, message => $text);
    return 0 unless $r && $r->{ok};
    $sent{ $r->{messageId} } = $text;
    return 1;
}

# bob's newMessage events until each text of @$want came or $timeout
# passed, each acked; returns (\%count by text of the new events, number
# of copies of events bob already had)
sub receive {
    my ($want, $timeout) = @_;
    my %left = map { ($_ => 1) } @$want;
    my (%count, $dups);
    $dups = 0;
    my $deadline = time + $timeout;
    while (%left) {
        my $wait = $deadline - time;
        last if $wait <= 0;
        my $e = $bob->next_event('newMessage', $wait) or last;
        next unless $e->{chatId} eq $chat;
        $bob->send_json({ type => 'ack', eventIds => [ $e->{eventId} ] });
        is $sent{ $e->{messageId} } // '(not sent)', $e->{message},
            "event $e->{eventId} is a message alice sent";
        $got_msg{ $e->{messageId} } = 1;
        if ($got{ $e->{eventId} }++) {
            $dups++;
            next;
        }
        $count{ $e->{message} }++;
        delete $left{ $e->{message} };
    }
    return (\%count, $dups);
}

ok send_one('before'), 'a message before any freeze';
my ($c, $dups) = receive(['before'], 5);
is_deeply $c, { before => 1 }, 'delivered live';

my $polls = metric('ngx_chat_poll_batch_size_count');
my $reconnects = metric('ngx_chat_redis_reconnects_total');
my ($lost, $down, $up) = (lost_lines(), down_lines(), up_lines());

# --- (a) frozen for less than the deadline, more than two PING periods

my $t_stop = time;
ok $rd->kill('STOP'), 'Redis frozen (SIGSTOP)';
ok send_one("a$_"), "a$_ sent and stored while Redis is frozen"
    for 1 .. 3;

# nothing may reach bob while Redis is frozen: not live (Redis runs
# nothing) and not by polling (the subscriber must not have been dropped)
my $e = $bob->next_event('newMessage', $t_stop + $FREEZE_A - time);
ok !$e, 'nothing delivered during the freeze (no poll)'
    or diag "got $e->{message}";
ok $rd->kill('CONT'), 'Redis runs again';
my $frozen = time - $t_stop;
cmp_ok $frozen, '>', 2 * $PING, sprintf('it was frozen %.1f s, more than'
    . ' two PING periods', $frozen);

($c, $dups) = receive([qw(a1 a2 a3)], 5);
is_deeply $c, { a1 => 1, a2 => 1, a3 => 1 },
    'the three messages are pushed live after SIGCONT';
is $dups, 0, 'each exactly once (no fault happened)';
is lost_lines(), $lost, 'no Redis link was dropped';
is down_lines(), $down, 'no "redis subscriber down"';
is metric('ngx_chat_poll_batch_size_count'), $polls, 'no inbox was polled';
is metric('ngx_chat_redis_reconnects_total'), $reconnects,
    'no reconnect counted';
is metric('ngx_chat_redis_up'), 1, 'redis_up stayed 1';

ok send_one('after-a'), 'a message after the short freeze';
($c, $dups) = receive(['after-a'], 5);
is_deeply $c, { 'after-a' => 1 }, 'delivered live';
is $dups, 0, 'once';

# --- (b) frozen for longer than the deadline

$t_stop = time;
ok $rd->kill('STOP'), 'Redis frozen again';
my $line = $t->wait_log(qr/redis sub: connection .* lost: nothing read/,
    $DEADLINE + 5);
my $after = time - $t_stop;
ok $line, 'the subscriber is dropped' or diag $t->log_tail(20);
diag $line // '';
cmp_ok $after, '>=', $DEADLINE - $PING - 0.5,
    sprintf('not before the deadline (%.1f s after the freeze)', $after);
cmp_ok $after, '<=', $DEADLINE + 1.5, 'nor long after it';
ok $t->wait_log(qr/redis subscriber down/, 2), '"redis subscriber down"';

my $t_sent = time;
ok send_one("b$_"), "b$_ sent and stored, Redis still frozen" for 1 .. 3;
($c, $dups) = receive([qw(b1 b2 b3)], 5);
is_deeply $c, { b1 => 1, b2 => 1, b3 => 1 },
    sprintf('delivered by polling within %.1f s, Redis still frozen',
        time - $t_sent);
cmp_ok metric('ngx_chat_poll_batch_size_count'), '>', $polls,
    'inboxes were polled';
is metric('ngx_chat_redis_up'), 0, 'redis_up 0';

ok $rd->kill('CONT'), 'Redis runs again';
ok poll(sub { metric('ngx_chat_redis_reconnects_total') > $reconnects }, 15),
    'the worker reconnected';
ok poll(sub { metric('ngx_chat_redis_up') == 1 }, 5), 'redis_up 1 again';

# anything late (the frozen Redis ran the PUBLISHes of the dropped link, or
# the backlog replays) is a duplicate the client drops by eventId; the
# drain after resubscribing skips what bob already has in flight
ok send_one("c$_"), "c$_ sent after the reconnect" for 1 .. 2;
my $d;
($c, $d) = receive([qw(c1 c2)], 5);
$dups += $d;
is_deeply $c, { c1 => 1, c2 => 1 }, 'pushed live again';
my $polls_back = metric('ngx_chat_poll_batch_size_count');

# late copies (of the b messages) may still come for a moment: all must be
# duplicates (receive() fails on anything new)
($c, $d) = receive(['none'], 1.5);
$dups += $d;
is_deeply $c, {}, 'nothing new after that';
diag "copies delivered twice around the outage (dropped by eventId): $dups";

is_deeply [ sort values %sent ],
    [ sort qw(before a1 a2 a3 after-a b1 b2 b3 c1 c2) ], 'ten messages sent';
is_deeply [ sort { $a <=> $b } keys %got_msg ],
    [ sort { $a <=> $b } keys %sent ],
    'bob got every one of them: exactly once after dedupe by eventId';
is metric('ngx_chat_poll_batch_size_count'), $polls_back,
    'no more polling once Redis is back';

$t->done_testing;
