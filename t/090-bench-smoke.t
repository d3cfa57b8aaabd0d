#!/usr/bin/perl

# The load generator (tests/load/chat-bench) against a test nginx, each
# scenario tiny and brief: the tool must complete and report zero loss, no
# errors and (where messages flow) some deliveries.  No performance number
# is asserted here: docs/benchmarks.md and scripts/bench are for that.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use ChatTest;

my $load = "$ChatTest::REPO/tests/load";
my $bench = "$load/chat-bench";

# build it if needed (or stale): the Makefile knows
{
    my $out = `make -s -C '$load' 2>&1`;
    plan(skip_all => "chat-bench does not build:\n$out") if $? != 0;
}

my $t = ChatTest->new(workers => 2);

# wss:// for the --tls runs: a self-signed certificate made here
my $tls_port = ChatTest::free_port();
my $dir = $t->dir;
system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
    . " -nodes -days 2 -subj /CN=localhost -keyout '$dir/tls.key'"
    . " -out '$dir/tls.crt' 2>/dev/null") == 0
    or BAIL_OUT('openssl could not make a certificate');
$t->chat_conf(listen => ' reuseport',
    server => '        location = /ka { return 204; }', http => <<EOF)->run;
    server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $dir/tls.crt;
        ssl_certificate_key $dir/tls.key;
        location = /chat { chat_websocket; }
        location = /ka { return 204; }
    }
EOF

is system("'$bench' --selftest >/dev/null"), 0, 'selftest (codecs, histogram)';

# run(@args): the parsed JSON result and the exit status
sub run {
    my @args = ('--port', $t->port, '--secret-file', $t->secret_file,
        '--nginx-pid', $t->pid, '--quiet', '--procs', 1,
        '--phase-timeout', 30, '--drain-timeout', 15, @_);
    my $cmd = join ' ', map { "'$_'" } $bench, @args;
    my $json = `$cmd 2>'${\ $t->dir}/bench.err'`;
    my $status = $? >> 8;
    my $r = eval { JSON::PP->new->decode($json) };
    diag("chat-bench @_: no JSON result ($@):\n$json\n"
        . ($t->read_file('bench.err') // '')) unless $r;
    return ($r // {}, $status);
}

sub clean {
    my ($r, $status, $what) = @_;
    is $status, 0, "$what: exit status 0";
    ok $r->{complete}, "$what: complete"
        or diag("$what: $r->{incomplete_reason}");
    ok $r->{zero_loss}, "$what: zero loss";
    is $r->{messages}{lost}, 0, "$what: nothing lost";
    is $r->{errors_total}, 0, "$what: no errors"
        or diag(JSON::PP->new->canonical->encode($r->{errors} // {}));

    # order and exactly-once are the server's business (t/010-t/012 test
    # them); a smoke test of the tool only reports them
    for my $k (qw(duplicates reorders)) {
        diag("$what: chat-bench saw $r->{messages}{$k} $k")
            if $r->{messages}{$k};
    }
}

my ($r, $st);

($r, $st) = run(qw(--scenario idle --conns 20 --duration 0.5));
clean($r, $st, 'idle');
is $r->{connections}{ready}, 20, 'idle: every connection registered';
ok $r->{latency_ms}{connect}{count} >= 20, 'idle: connect latency sampled';

# the transports of the idle TLS runs (scripts/bench): wss://, and nginx's
# own keep-alive connection over HTTP and HTTPS
($r, $st) = run(qw(--scenario idle --conns 10 --duration 0.3 --tls
    --port), $tls_port);
clean($r, $st, 'idle --tls');
is $r->{connections}{ready}, 10, 'idle --tls: every connection registered';

for my $tls (0, 1) {
    my $what = $tls ? 'idle --http --tls' : 'idle --http';
    ($r, $st) = run(qw(--scenario idle --conns 10 --duration 0.3 --http
        --path /ka), $tls ? ('--tls', '--port', $tls_port) : ());
    clean($r, $st, $what);
    is $r->{connections}{ready}, 10, "$what: every connection answered";
}

($r, $st) = run(qw(--scenario chat --users 12 --background 4 --rate 40
    --duration 1 --group-share 0.3 --big-share 0));
clean($r, $st, 'chat');
ok $r->{messages}{acked} > 0, 'chat: sends acknowledged';
ok $r->{messages}{delivered} > 0, 'chat: messages delivered';
is $r->{messages}{delivered}, $r->{messages}{expected_deliveries},
    'chat: every delivery owed arrived';
ok $r->{latency_ms}{e2e}{count} > 0, 'chat: end-to-end latency sampled';

($r, $st) = run(qw(--scenario offline --messages 30 --reps 2));
clean($r, $st, 'offline');
is $r->{messages}{offline_drains}, 2, 'offline: two drains';
is $r->{messages}{delivered}, 60, 'offline: all queued messages received';

($r, $st) = run(qw(--scenario storm --conns 6 --unacked 1));
clean($r, $st, 'storm');
is $r->{messages}{redelivered}, 6,
    'storm: unacked events delivered again after reconnecting';

$t->done_testing;
