#!/usr/bin/perl

# PostgreSQL back means service back (docs/scaling.md "PostgreSQL
# outages"): a private PostgreSQL is stopped (immediate shutdown, SIGQUIT)
# under steady sends, one every 20 ms, each answered "ok" or
# "unavailable"; it stays down long enough for the reconnect backoff to
# reach its 5 s maximum, then starts again.  The test polls pg_isready
# between sends and records the first moment PostgreSQL accepts
# connections: the first "ok" must come within 1 s of it.  Nothing
# acknowledged is lost: bob (live, then by a drain after reconnecting)
# gets every message answered "ok", each stored once.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use ChatTest;
use ChatTest::WS;

my $PERIOD = 0.02;
my $OUTAGE = 7;
my $RECOVERY = 1;

my $t = ChatTest->new(workers => 2);
my $pg = $t->private_pg;
$t->chat_conf(pg => $pg->conninfo, listen => ' reuseport',
    http => "chat_ping_interval 600s;\n    chat_db_timeout 2s;")->run;

my $alice = $t->client('alice', 'phone');
my $bob = $t->client('bob', 'phone');
my $r = $alice->cmd('createChat', participants => ['bob']);
ok $r && $r->{ok}, 'createChat';
my $chat = $r->{chatId} // 0;

my $n = 0;
my $next = time;
my %sent;           # request id -> [time sent, text]
my @answers;        # [time sent, time answered, ok/error code, text, id]
my %bob_got;        # eventId -> text, live or drained

sub ready {
    system("$ChatTest::PGBIN/pg_isready", '-q', '-h', $pg->dir, '-p',
        $pg->port, '-U', 'postgres', '-d', 'chat', '-t', '1') == 0;
}

# reads what has come (responses to alice, events to bob; bob acks them)
sub read_all {
    while (my $m = $alice->read_json(0.002)) {
        next unless ($m->{type} // '') eq 'response';
        my $s = delete $sent{ $m->{id} // '' } or next;
        push @answers, [ $s->[0], time,
            $m->{ok} ? 'ok' : $m->{error}{code} // $m->{code} // 'error',
            $s->[1], $m->{messageId} ];
    }
    my @ids;
    while (my $m = $bob->read_json(0.002)) {
        next unless ($m->{type} // '') eq 'newMessage';
        $bob_got{ $m->{eventId} } = $m->{message};
        push @ids, $m->{eventId};
    }
    $bob->send_json({ type => 'ack', eventIds => \@ids }) if @ids;
}

# one send every $PERIOD while $cond->() is false, for at most $max s;
# returns the value of $cond
sub pump {
    my ($cond, $max) = @_;
    my $deadline = time + $max;
    while (time < $deadline) {
        if (time >= $next) {
            $n++;
            $alice->send_json({ type => 'sendMessage', id => "s$n",
                chatId => $chat, clientMessageId => "cm-$n",
                message => "m$n" });
            $sent{"s$n"} = [ time, "m$n" ];
            $next += $PERIOD;
            $next = time if $next < time - 1;
        }
        read_all();
        my $v = $cond->();
        return $v if $v;
    }
    return 0;
}

sub oks { grep { $_->[2] eq 'ok' && $_->[1] > $_[0] } @answers }

pump(sub { 0 }, 2);
cmp_ok scalar(oks(0)), '>', 20, 'steady sends answered ok ('
    . scalar(oks(0)) . ')';

# --- immediate shutdown

my $t_stop = time;
ok $pg->kill('QUIT'), 'PostgreSQL stopped (immediate shutdown, SIGQUIT)';
ok pump(sub { !$pg->pid || !kill 0, $pg->pid }, 30), '... and gone';
ok pump(sub { grep { $_->[2] eq 'unavailable' && $_->[0] > $t_stop }
    @answers }, 10), 'sends answer "unavailable"';
pump(sub { 0 }, $t_stop + $OUTAGE - time);
my @ok_down = grep { $_->[0] > time - $OUTAGE / 2 } oks($t_stop + 1);
is scalar(@ok_down), 0, 'no "ok" while PostgreSQL is down';

# --- started again, in the background; pg_isready between the sends

my $t_start = time;
my $child = fork // die "fork: $!";
if ($child == 0) {
    open STDOUT, '>', '/dev/null';
    exec "$ChatTest::REPO/scripts/services", 'start', $pg->dir, 'pg';
    exit 127;
}
my ($t_ready, $exit);
ok pump(sub {
    if (!defined $exit && waitpid($child, WNOHANG) == $child) {
        $exit = $?;
    }
    $t_ready //= time if ready();
    return defined $t_ready && defined $exit;
}, 60), 'PostgreSQL accepts connections again';
is $exit, 0, 'scripts/services start succeeded';
$t_ready //= 0;

ok pump(sub { oks($t_start) }, 30), 'sends answer "ok" again';
my ($first) = sort { $a->[1] <=> $b->[1] } oks($t_start);
$first //= [ 0, 1e10 ];
my $unavailable = grep { $_->[2] ne 'ok' && $_->[1] > $t_ready } @answers;
diag sprintf 'stopped at 0, started at %.3f, accepting connections at'
    . ' %.3f, first ok at %.3f (%d failed sends after that)',
    $t_start - $t_stop, $t_ready - $t_stop, $first->[1] - $t_stop,
    $unavailable;
cmp_ok $first->[1] - $t_ready, '<=', $RECOVERY,
    "the first ok within $RECOVERY s of PostgreSQL accepting connections";

pump(sub { 0 }, 1);
read_all() for 1 .. 3;

# every request answered (within chat_db_timeout)
ok pump(sub { !%sent }, 10), 'every send was answered' or
    diag 'unanswered: ' . join ' ', sort keys %sent;

# --- nothing acknowledged is lost

# (a worker that had no request during the outage may still be in its
# reconnect backoff: its first handshake is refused with 503 and brings
# the reconnect forward)
$bob->close(1000);
my ($ws, $status, $tries);
for (1 .. 50) {
    $tries++;
    ($ws, $status) = ChatTest::WS->try_connect($t, user => 'bob',
        device => 'phone');
    last if $ws || ($status // 0) != 503;
    pump(sub { 0 }, 0.1);
}
ok $ws, "bob reconnected ($tries tries)" or diag "HTTP " . ($status // '');
$bob = $ws // $bob;
my $fin = $alice->cmd('sendMessage', chatId => $chat,
    clientMessageId => 'cm-last', message => 'last', _timeout => 10) // {};
ok $fin->{ok}, 'a final message';
my $got_last = 0;
while (my $m = $bob->next_event('newMessage', 10)) {
    $bob_got{ $m->{eventId} } = $m->{message};
    $bob->send_json({ type => 'ack', eventIds => [ $m->{eventId} ] });
    if ($m->{message} eq 'last') {
        $got_last = 1;
        last;
    }
}
ok $got_last, 'bob drained his inbox and got the final message';

my @acked = grep { $_->[2] eq 'ok' } @answers;
my @lost = grep { !defined $_->[4] || ($bob_got{ $_->[4] } // '') ne $_->[3] }
    @acked;
is scalar(@lost), 0, 'bob got each of the ' . scalar(@acked)
    . ' messages answered ok' or diag 'lost: '
    . join ' ', map { $_->[3] } @lost[0 .. ($#lost < 9 ? $#lost : 9)];

my %by_text;
$by_text{$_}++ for values %bob_got;
is_deeply [ grep { $by_text{$_} > 1 } sort keys %by_text ], [],
    'each message stored once (one eventId per text)';

is_deeply [ map { $_->violations } $alice, $bob ], [],
    'server frames follow RFC 6455';
$_->close(1000) for $alice, $bob;

$t->stop;
$pg->stop;
$t->done_testing;
