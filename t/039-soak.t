#!/usr/bin/perl

# The adversarial soak (issue 11 "Prove it"; docs/security.md, "The
# adversarial soak").  For CHAT_SOAK_SECONDS (default 30) a seeded random
# hostile client keeps about 40 WebSocket connections of 6 users (so more
# than chat_max_devices devices per user, replaced devices, removed
# devices) busy with a mix of valid commands (createChat,
# modifyChatParticipants, sendMessage, ack, getChats, removeDevice,
# createAttachment, getAttachmentUrl, ackAttachment, uploads and downloads
# through the local media store), invalid JSON, wrong types, out-of-range
# and huge ids, huge frames, thousands of small fragments, floods, binary
# frames, bad UTF-8, unmasked and malformed frames, bad handshakes, slow
# readers, abrupt closes (FIN or RST) mid-frame and mid-command, reconnects,
# and commands followed by a binary frame or a Close in the same write.
# Meanwhile an honest pair of users (their own chat, out of the hostile
# users' reach) keeps sending and acking.  At the end nginx is stopped
# gracefully with the hostile connections (and 20 fresh ones, half of them
# not reading) still open.
#
# Pass: no worker exits on a signal (or, under AddressSanitizer, with an
# error code) and the workers are the ones started; no sanitizer report and
# no [alert] in error.log or nginx's stderr (ChatTest's finish); every
# honest send answered ok, each message delivered exactly once to the
# honest recipient, every honest ack answered, the honest connections never
# closed; nginx stops within 20 s of SIGQUIT.  The honest send latency
# (p50/p99/max) is reported, not asserted.
#
# Runs only with CHAT_SOAK=1 (scripts/test runs it against the module
# built with AddressSanitizer: `scripts/test soak`, and in `make test`).
#   CHAT_SOAK_SEED=n     replay the hostile client's choices of a run (the
#                        seed is printed at the start; timing still varies)
#   CHAT_SOAK_SECONDS=n  attack duration (default 30; the long run is 600)
#   CHAT_SOAK_CONNS=n    hostile connections kept open (default 40)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Digest::SHA qw(sha256_hex);
use Errno ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER SO_RCVBUF IPPROTO_TCP TCP_NODELAY
    SOCK_STREAM inet_aton pack_sockaddr_in);
use Time::HiRes qw(time sleep);
use ChatTest;
use ChatTest::WS qw(:op);

plan(skip_all => 'the adversarial soak runs only with CHAT_SOAK=1'
    . ' (scripts/test soak; make test runs it with the ASan module)')
    unless $ENV{CHAT_SOAK};

my $seed = $ENV{CHAT_SOAK_SEED} // int(rand(2**31)) ^ $$;
$seed = int $seed;
my $seconds = $ENV{CHAT_SOAK_SECONDS} // 30;
my $conns = $ENV{CHAT_SOAK_CONNS} // 40;
diag "soak seed $seed, ${seconds}s, $conns hostile connections"
    . " (replay: CHAT_SOAK_SEED=$seed CHAT_SOAK_SECONDS=$seconds"
    . " scripts/test soak)";

my $t = ChatTest->new(workers => 2);
my $media = $t->dir . '/media';
my $port = $t->port;

$t->chat_conf(http => <<"EOF", server => <<'EOF')->run;
    chat_sweep_interval 1s;
    chat_media_store local $media url=http://127.0.0.1:$port/media/;
    chat_media_max_size 1m;
    chat_media_grace 2s;
EOF
        location /media/ {
            chat_media;
        }
EOF

my @workers;
ChatTest::poll(sub { @workers = sort { $a <=> $b } $t->worker_pids;
    @workers == 2 }, 10);
is scalar @workers, 2, 'two workers';

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
my $dir = $t->dir;

# the hostile client's state (set before the fork, below)
my (%st, %byfd, @live, @chats, @eventids, @atts, @downloads, $sel_r, $sel_w);
my @users = map { "evil$_" } 0 .. 5;      # 6 devices each: over the limit
my @devices = map { "d$_" } 0 .. 5;
my $idn = 0;
my $lingering;
my $start = time;
my $deadline = $start + $seconds;

# --------------------------------------------------------------------------
# children: the honest pair and the hostile client; each writes its
# results as JSON into the test folder and leaves with _exit (no END
# blocks: those would stop nginx).  The hostile client writes its results
# at the end of the attack, then keeps its connections open (slow readers
# with output pending, Closes never echoed) until it is killed after
# nginx has stopped: the graceful stop closes them all.

my $result_written;

sub result {
    my ($name, $res) = @_;
    open my $fh, '>', "$dir/$name.json.tmp" or return;
    print $fh $JSON->encode($res);
    close $fh;
    rename "$dir/$name.json.tmp", "$dir/$name.json";
    $result_written = 1;
}

sub spawn {
    my ($name, $code) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    return $pid if $pid;
    my $res = eval { $code->() };
    result($name, $res // { died => "$@" }) unless $result_written;
    POSIX::_exit(0);
}

my %kids = (
    honest => spawn('honest', \&honest),
    hostile => spawn('hostile', \&hostile),
);

my $wait_until = $deadline + 90;
while (waitpid($kids{honest}, POSIX::WNOHANG()) == 0) {
    if (time > $wait_until) {
        kill 'KILL', $kids{honest};
        waitpid $kids{honest}, 0;
        last;
    }
    sleep 0.1;
}
ChatTest::poll(sub { -e "$dir/hostile.json"
    || waitpid($kids{hostile}, POSIX::WNOHANG()) != 0 },
    $wait_until - time, 0.1);

my %res;
for my $name (sort keys %kids) {
    my $j = $t->read_file("$name.json");
    $res{$name} = $j ? eval { $JSON->decode($j) } : undef;
    ok $res{$name} && !$res{$name}{died}, "$name client finished"
        or diag "$name: " . ($res{$name} ? $res{$name}{died} : 'no result');
}

# --------------------------------------------------------------------------
# verdict

my $h = $res{honest} // {};
my $x = $res{hostile} // {};

diag sprintf 'hostile: %d actions (%.0f/s), %d connections opened,'
    . ' %d http requests', $x->{actions} // 0,
    ($x->{actions} // 0) / ($seconds || 1), $x->{opened} // 0,
    $x->{http} // 0;
diag "hostile: $x->{open_at_stop} connections open at the stop,"
    . " $x->{deaf_at_stop} of them not reading" if $x->{open_at_stop};
diag 'hostile actions: ' . join ' ', map { "$_=$x->{kinds}{$_}" }
    sort keys %{ $x->{kinds} // {} };
diag 'hostile close codes: ' . join ' ', map { "$_=$x->{closes}{$_}" }
    sort keys %{ $x->{closes} // {} };
diag 'hostile handshake statuses: ' . join ' ',
    map { "$_=$x->{statuses}{$_}" } sort keys %{ $x->{statuses} // {} };
diag 'hostile responses: ' . join ' ', map { "$_=$x->{errors}{$_}" }
    sort keys %{ $x->{errors} // {} };

my @lat = sort { $a <=> $b } @{ $h->{latency} // [] };
sub pct {
    my ($p) = @_;
    return 0 unless @lat;
    my $i = int($p / 100 * $#lat + 0.5);
    return $lat[$i] * 1000;
}
# what the server logged at error level and above, by kind (a hint for
# the lead reading a failure; not asserted)
my %errs;
for ($t->grep_log(qr/\[(?:error|crit|alert|emerg)\]/)) {
    (my $k = $_) =~ s/^.*?\[(\w+)\] \d+#\d+: (?:\*\d+ )?/[$1] /;
    $k =~ s/\d+/N/g;
    $k =~ s/ while .*| CONTEXT: .*//;
    $errs{ substr $k, 0, 150 }++;
}
diag "error.log: $errs{$_} x $_" for (sort { $errs{$b} <=> $errs{$a} }
    keys %errs)[0 .. (keys %errs > 15 ? 14 : keys(%errs) - 1)];

diag sprintf 'honest: %d sends, latency ms p50 %.1f p99 %.1f max %.1f',
    scalar @lat, pct(50), pct(99), pct(100);
diag "honest: $h->{rate_limited} rate_limited answers obeyed"
    if $h->{rate_limited};

ok(($h->{sent} // 0) > 0, 'the honest client sent messages');
is_deeply $h->{send_errors} // ['no result'], [],
    'every honest send answered ok';
is_deeply $h->{delivery_errors} // ['no result'], [],
    'every honest message delivered exactly once';
is_deeply $h->{ack_errors} // ['no result'], [],
    'every honest ack answered ok';
is_deeply $h->{conn_errors} // ['no result'], [],
    'the honest connections stayed open';

is_deeply [ sort { $a <=> $b } $t->worker_pids ], \@workers,
    'the workers are the ones started';

# a graceful stop with the hostile connections still open
ok $t->stop, 'nginx stops (SIGQUIT) with hostile connections open';
kill 'TERM', $kids{hostile};
waitpid $kids{hostile}, 0;

# a crash is "exited on signal N"; under AddressSanitizer (which catches
# the SEGV and exits) it is "exited with code 1", logged at notice
my @dead = $t->grep_log(qr/exited on signal|exited with code [1-9]/);
is scalar @dead, 0, 'no worker exited on a signal (or an ASan abort)'
    or diag join "\n", @dead[0 .. ($#dead > 19 ? 19 : $#dead)];

diag "soak seed $seed (CHAT_SOAK_SEED=$seed to replay)"
    unless Test::More->builder->is_passing;

$t->done_testing;

# --------------------------------------------------------------------------
# the honest pair: honest_a sends to honest_b in their own chat, one send
# at a time; honest_b reads everything and acks it with an id

sub honest {
    my %r = (sent => 0, latency => [], send_errors => [],
        delivery_errors => [], ack_errors => [], conn_errors => []);
    my $ha = $t->client('honest_a', 'phone', timeout => 20);
    my $hb = $t->client('honest_b', 'phone', timeout => 20);
    my $c = $ha->cmd('createChat', participants => ['honest_b']);
    die 'honest createChat failed' unless $c && $c->{ok};
    my $chat = $c->{chatId};

    my (%sent, %events, %pending_ack, @to_ack);
    my $acks = 0;

    my $drain = sub {
        my ($timeout) = @_;
        while (my $e = $hb->recv_json($timeout)) {
            my $type = $e->{type} // '';
            if ($type eq 'newMessage') {
                my $ev = $e->{eventId};
                push @to_ack, $ev;
                $events{ $e->{messageId} }{$ev}++;
            } elsif ($type eq 'chatUpdate') {
                push @to_ack, $e->{eventId};
            } elsif ($type eq 'response') {
                my $id = $e->{id} // '';
                if (delete $pending_ack{$id}) {
                    push @{ $r{ack_errors} }, "ack $id: "
                        . ($e->{error}{code} // '?') unless $e->{ok};
                }
            }
            $timeout = 0.001;
        }
        if (@to_ack) {
            my $id = 'k' . ++$acks;
            $pending_ack{$id} = time;
            $hb->send_json({ type => 'ack', id => $id,
                eventIds => [ splice @to_ack ] });
        }
    };

    # A phone's pace: at most 100 sends a second (the default
    # chat_command_rate is 200/s with a burst of 2000; an honest client
    # that sent faster for long would be told rate_limited, as designed),
    # and a rate_limited answer is obeyed: the same send after retryAfterMs.
    my $i = 0;
    my $next = time;
    while (time < $deadline) {
        $i++;
        my $wait = $next - time;
        sleep $wait if $wait > 0;
        $next = time + 0.01;
        my ($t0, $resp) = (time);
        for my $try (1 .. 5) {
            $resp = $ha->cmd('sendMessage', chatId => $chat,
                clientMessageId => "h$i", message => "honest $i",
                _timeout => 20);
            last unless $resp && !$resp->{ok}
                && ($resp->{error}{code} // '') eq 'rate_limited';
            $r{rate_limited}++;
            sleep(($resp->{error}{retryAfterMs} // 100) / 1000);
        }
        push @{ $r{latency} }, time - $t0;
        if (!$resp) {
            push @{ $r{send_errors} }, "send $i: no response in 20s";
            last;
        }
        if (!$resp->{ok}) {
            push @{ $r{send_errors} }, "send $i: "
                . ($resp->{error}{code} // '?');
        } else {
            $sent{ $resp->{messageId} } = $i;
        }
        $r{sent}++;
        $drain->(0.001);
        last if $ha->eof || $hb->eof;
    }

    # the rest of the deliveries and ack answers, bounded
    my $until = time + 20;
    while (time < $until && !$hb->eof) {
        last if !grep({ !$events{$_} } keys %sent) && !%pending_ack
            && !@to_ack;
        $drain->(0.2);
    }
    for my $m (sort { $sent{$a} <=> $sent{$b} } keys %sent) {
        my $ev = $events{$m};
        if (!$ev) {
            push @{ $r{delivery_errors} }, "message $m (h$sent{$m})"
                . ' never delivered';
            next;
        }
        my @e = keys %$ev;
        my $n = 0;
        $n += $_ for values %$ev;
        push @{ $r{delivery_errors} }, "message $m (h$sent{$m}) delivered"
            . " $n times as events @e" if $n != 1;
    }
    for my $m (keys %events) {
        push @{ $r{delivery_errors} }, "message $m delivered, never sent"
            unless $sent{$m};
    }
    push @{ $r{ack_errors} }, map { "ack $_: no answer" } sort keys
        %pending_ack;
    for my $ws ([a => $ha], [b => $hb]) {
        push @{ $r{conn_errors} }, "honest_$ws->[0] closed ("
            . ($ws->[1]->close_code // 'no Close') . ')' if $ws->[1]->eof;
    }
    $r{violations} = [ $ha->violations, $hb->violations ];
    push @{ $r{conn_errors} }, map { "server frame: $_" }
        @{ $r{violations} };
    return \%r;
}

# --------------------------------------------------------------------------
# the hostile client: one process, non-blocking sockets, one select loop


sub pick { $_[ int rand @_ ] }
sub chance { rand() < $_[0] }

sub rstr {
    my ($n, $set) = @_;
    $set //= [ 'a' .. 'z', '0' .. '9' ];
    return join '', map { $set->[ rand @$set ] } 1 .. $n;
}

sub hostile {
    srand $seed;
    %st = (actions => 0, opened => 0, http => 0, kinds => {}, closes => {},
        statuses => {}, errors => {});
    $sel_r = IO::Select->new;
    $sel_w = IO::Select->new;
    my $last_diag = time;
    while (time < $deadline) {
        open_ws() while @live < $conns && chance(0.5);
        for (1 .. 1 + int rand 3) {
            my @open = grep { $_->{state} eq 'open' && !$_->{closing} }
                @live;
            last unless @open;
            act(pick(@open));
        }
        pump(0.005);
    }
    # let the last writes go; the results; then linger with the
    # connections open (deaf ones stay deaf) until the parent, having
    # stopped nginx, kills us (bounded anyway)
    pump(0.01) for 1 .. 20;
    # and fresh users' connections for the stop: half never read, after
    # asking for more than their socket buffers hold
    for my $i (1 .. 20) {
        open_ws(user => "stop$i", device => 'phone', plain => 1) or next;
        my $c = $live[-1];
        deafen($c) if $i % 2;
        $c->{echo_close} = 0 if $i % 4 == 0;
        queue($c, ChatTest::WS::encode_frame(OP_PING, 'p' x 125) x 2000)
            if $c->{deaf};
    }
    my $until = time + 5;
    pump(0.01) while time < $until
        && grep { $_->{state} eq 'hs' && !$_->{deaf} } @live;
    $st{open_at_stop} = scalar grep { $_->{state} ne 'http' } @live;
    $st{deaf_at_stop} = scalar grep { $_->{deaf} } @live;
    result('hostile', \%st);
    $SIG{TERM} = sub { POSIX::_exit(0) };
    $lingering = 1;
    $until = time + 120;
    pump(0.05) while time < $until;
    return undef;
}

# a new connection, usually a WebSocket handshake (with pipelined frames
# now and then), sometimes a broken one or a raw HTTP request
sub open_ws {
    my (%o) = @_;
    my $user = $o{user} // pick(@users);
    my $dev = $o{device} // pick(@devices);
    my $c = new_conn() or return;
    @$c{qw(user dev state)} = ($user, $dev, 'hs');
    deafen($c) if chance(0.03);
    $c->{echo_close} = chance(0.7);
    $c->{life} = time + ($o{life} // rand(8));
    if ($o{plain}) {
        $c->{wbuf} .= handshake($c, $t->token(user => $user,
            device => $dev), 'header');
        $sel_w->add($c->{sock});
        return $c;
    }

    my $tok = $t->token(user => $user, device => $dev);
    my $r = rand;
    my $kind = 'hs_ok';
    if ($r < 0.03) {
        $tok = $t->token(user => $user, device => $dev, exp => time - 5);
        $kind = 'hs_expired';
    } elsif ($r < 0.06) {
        $tok = $t->token(user => $user, device => $dev, secret => 'nope');
        $kind = 'hs_badsig';
    } elsif ($r < 0.08) {
        $tok = $t->token(user => rstr(300), device => $dev);
        $kind = 'hs_longuser';
    } elsif ($r < 0.10) {
        $tok = rstr(40, [ 'a' .. 'z', '.', '-', '_' ]);
        $kind = 'hs_garbage_token';
    }
    my $req = handshake($c, $tok, chance(0.3) ? 'query' : 'header');
    $r = rand;
    if ($r < 0.02) {
        $req =~ s/Sec-WebSocket-Version: 13/Sec-WebSocket-Version: 8/;
        $kind = 'hs_version';
    } elsif ($r < 0.04) {
        $req = "GET /chat HTTP/1.1\r\nHost: x\r\n" . ("X-" . rstr(8)
            . ": " . rstr(200) . "\r\n") x (1 + int rand 60) . "\r\n";
        $kind = 'hs_noupgrade';
    } elsif ($r < 0.06) {
        $req = substr $req, 0, int rand length $req;
        $c->{close_after_flush} = 1;
        $kind = 'hs_partial_close';
    } elsif ($r < 0.07) {
        $req = rstr(1 + int rand 3000, [ map { chr } 0 .. 255 ]);
        $kind = 'hs_binary_garbage';
    } elsif ($r < 0.17) {
        # frames pipelined behind the handshake, in the same write
        $req .= gen_frames($c) for 1 .. 1 + int rand 3;
        $kind = 'hs_pipelined';
    }
    count($kind);
    $c->{wbuf} .= $req;
    $sel_w->add($c->{sock});
}

# a slow reader: never reads again, with a small receive buffer
sub deafen {
    my ($c) = @_;
    $c->{deaf} = 1;
    $c->{sock}->setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);
}

sub handshake {
    my ($c, $tok, $how) = @_;
    my $key = encode_base64(join('', map { chr rand 256 } 1 .. 16), '');
    my $path = '/chat';
    my $auth = "Authorization: Bearer $tok\r\n";
    if ($how eq 'query') {
        $path .= "?access_token=$tok";
        $auth = '';
    }
    return "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n"
        . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n"
        . $auth . "\r\n";
}

sub new_conn {
    my $s = IO::Socket::INET->new(Proto => 'tcp', Type => SOCK_STREAM)
        or return undef;
    $s->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    $s->connect(pack_sockaddr_in($port, inet_aton('127.0.0.1')))
        or return undef;
    $s->blocking(0);
    my $c = { sock => $s, rbuf => '', wbuf => '', fd => fileno $s,
        born => time };
    $st{opened}++;
    push @live, $c;
    $byfd{ $c->{fd} } = $c;
    $sel_r->add($s);
    return $c;
}

sub count { $st{kinds}{ $_[0] }++ }

sub drop {
    my ($c, $why, %o) = @_;
    return if $c->{dead}++;
    if ($o{rst} && $c->{sock}) {
        setsockopt($c->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    }
    $sel_r->remove($c->{sock});
    $sel_w->remove($c->{sock});
    delete $byfd{ $c->{fd} };
    close $c->{sock};
    @live = grep { $_ != $c } @live;
}

# one round of I/O on every socket, waiting at most $timeout
sub pump {
    my ($timeout) = @_;
    my @r = grep { my $c = $byfd{ fileno $_ }; $c && !$c->{deaf} }
        $sel_r->handles;
    my $rs = IO::Select->new(@r);
    my ($rr, $ww) = IO::Select->select($rs, $sel_w, undef, $timeout);
    for my $s (@{ $ww // [] }) {
        my $fd = fileno $s;
        my $c = defined $fd && $byfd{$fd} or next;
        next if $c->{dead};
        my $n = syswrite $s, $c->{wbuf}, 262144;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            drop($c, 'write error');
            next;
        }
        substr $c->{wbuf}, 0, $n, '';
        if ($c->{wbuf} eq '') {
            $sel_w->remove($s);
            drop($c, 'close after flush', rst => $c->{rst})
                if $c->{close_after_flush};
        }
    }
    for my $s (@{ $rr // [] }) {
        my $fd = fileno $s;
        my $c = defined $fd && $byfd{$fd} or next;
        next if $c->{dead};
        my $n = sysread $s, $c->{rbuf}, 262144, length $c->{rbuf};
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            drop($c, 'read error');
            next;
        }
        if ($n == 0) {
            drop($c, 'eof');
            next;
        }
        parse_in($c);
    }
    for my $c (@{ [@live] }) {
        next if $c->{dead} || $lingering;
        if ($c->{state} ne 'open' || $c->{closing}) {
            # handshakes, HTTP requests and closes get a few seconds
            drop($c, 'late') if time > ($c->{closing} ? $c->{life}
                : $c->{born} + 10);
            next;
        }
        if (time > $c->{life}) {
            # the end of a life: a clean Close, a FIN or a RST
            my $r = rand;
            if ($r < 0.4) {
                queue($c, ChatTest::WS::encode_frame(OP_CLOSE,
                    pack('n', 1000)));
                $c->{closing} = 1;
                $c->{life} = time + 2;
                count('close_clean');
            } else {
                count($r < 0.7 ? 'close_fin' : 'close_rst');
                drop($c, 'life', rst => $r >= 0.7);
            }
        }
    }
}

sub queue {
    my ($c, $bytes) = @_;
    return if $c->{dead};
    $sel_w->add($c->{sock}) if $c->{wbuf} eq '';
    $c->{wbuf} .= $bytes;
}

# what the server sent: the handshake answer, then frames; learn chat,
# event and attachment ids from them
sub parse_in {
    my ($c) = @_;
    if ($c->{state} eq 'hs') {
        my $i = index $c->{rbuf}, "\r\n\r\n";
        return if $i < 0;
        my $head = substr $c->{rbuf}, 0, $i + 4, '';
        my ($status) = $head =~ m{^HTTP/1\.1 (\d{3})};
        $st{statuses}{ $status // 'none' }++;
        if (($status // 0) != 101) {
            drop($c, 'refused');
            return;
        }
        $c->{state} = 'open';
    }
    if ($c->{state} eq 'http') {
        if (!$c->{status} && $c->{rbuf} =~ m{^HTTP/1\.1 (\d{3})}) {
            $c->{status} = $1;
            $st{statuses}{"http_$1"}++;
        }
        $c->{rbuf} = '' if length $c->{rbuf} > 65536;
        return;
    }
    while (length $c->{rbuf} >= 2) {
        my ($b1, $b2) = unpack 'CC', $c->{rbuf};
        my $len = $b2 & 0x7f;
        my $off = 2;
        if ($len == 126) {
            return if length $c->{rbuf} < 4;
            $len = unpack 'n', substr $c->{rbuf}, 2, 2;
            $off = 4;
        } elsif ($len == 127) {
            return if length $c->{rbuf} < 10;
            $len = unpack 'Q>', substr $c->{rbuf}, 2, 8;
            $off = 10;
        }
        return if length $c->{rbuf} < $off + $len;
        substr $c->{rbuf}, 0, $off, '';
        my $payload = substr $c->{rbuf}, 0, $len, '';
        my $op = $b1 & 0xf;
        if ($op == OP_CLOSE) {
            my $code = length $payload >= 2 ? unpack('n', $payload) : 1005;
            $st{closes}{$code}++;
            if ($c->{echo_close} && !$c->{closing}) {
                queue($c, ChatTest::WS::encode_frame(OP_CLOSE,
                    pack('n', $code)));
            }
            $c->{closing} = 1;
            $c->{life} = time + 2;
            next;
        }
        if ($op == OP_PING) {
            queue($c, ChatTest::WS::encode_frame(OP_PONG, $payload))
                if chance(0.8);
            next;
        }
        next unless $op == OP_TEXT;
        my $m = eval { $JSON->decode($payload) } or next;
        learn($c, $m);
    }
}

sub learn {
    my ($c, $m) = @_;
    my $type = $m->{type} // '';
    if ($type eq 'response') {
        $st{errors}{ $m->{ok} ? 'ok' : $m->{error}{code} // '?' }++;
        keep(\@chats, $m->{chatId}, 200) if $m->{chatId};
        if ($m->{attachmentId} && $m->{uploadUrl}) {
            my $att = delete $c->{att}{ $m->{id} // '' };
            keep(\@atts, { id => $m->{attachmentId},
                url => $m->{uploadUrl}, blob => $att ? $att->{blob} : 'x' },
                100);
        }
        keep(\@downloads, $m->{url}, 100) if $m->{url};
        if ($m->{chats}) {
            keep(\@chats, $_->{chatId}, 200) for @{ $m->{chats} };
        }
    } elsif ($m->{eventId}) {
        keep(\@eventids, $m->{eventId}, 2000);
        keep(\@chats, $m->{chatId}, 200) if $m->{chatId};
        for my $att (@{ $m->{attachments} // [] }) {
            keep(\@downloads, $att->{url}, 100) if ref $att && $att->{url};
        }
        # acked at once most of the time, as a client should
        if (chance(0.7)) {
            queue($c, text({ type => 'ack', eventIds => [ $m->{eventId} ] }));
        }
    }
}

sub keep {
    my ($list, $v, $max) = @_;
    push @$list, $v;
    splice @$list, 0, @$list - $max if @$list > $max;
}

sub text {
    my ($obj, %o) = @_;
    return ChatTest::WS::encode_frame(OP_TEXT,
        ref $obj ? $JSON->encode($obj) : $obj, %o);
}

sub rid {
    my $r = rand;
    return 'x' . ++$idn if $r < 0.8;
    return ++$idn if $r < 0.9;
    return pick(rstr(65), -1, 1.5, undef, [], {}, '', 'x' x 64, 1e30);
}

sub some_chat {
    return pick(@chats) if @chats && chance(0.85);
    return bad_id();
}

# an id that is not one: out of range half of the time
sub bad_id {
    return pick('99999999999999999999', '9223372036854775808',
        '18446744073709551615', 9223372036854775808, 1e20,
        '9223372036854775807', 9223372036854775807) if chance(0.5);
    return pick('0', '-1', -5, 0, '00000000000000000001', '', 'abc', '1 ',
        '+1', '0x10', 1.5, '1e3', 1 + int rand 1000000);
}

sub some_user {
    return pick(@users) if chance(0.8);
    return pick('', rstr(1 + int rand 300), 'nobody', "bad\x{1}name",
        "\x{e9}t\x{e9}", 'honest_x');
}

# a random JSON value of a random type: for wrong-type fields
sub junk {
    my $r = int rand 9;
    return pick(undef, JSON::PP::true, JSON::PP::false) if $r == 0;
    return rand(1e6) - 5e5 if $r == 1;
    return rstr(int rand 100) if $r == 2;
    return [ map { junk_leaf() } 1 .. rand 5 ] if $r == 3;
    return { a => junk_leaf(), b => [ junk_leaf() ] } if $r == 4;
    return 'x' x (1000 + int rand 60000) if $r == 5;
    return [ map { bad_id() } 1 .. rand 20 ] if $r == 6;
    return -1e308 if $r == 7;
    return bad_id();
}

sub junk_leaf { pick(1, 'a', undef, [], {}, -1e9, JSON::PP::true) }

# one valid-looking command, sometimes with a field broken
sub gen_cmd {
    my ($c) = @_;
    my $r = int rand 14;
    my %m;
    if ($r == 0) {
        %m = (type => 'ping');
    } elsif ($r == 1 || $r == 2) {
        %m = (type => 'createChat',
            participants => [ map { some_user() } 0 .. int rand 4 ]);
        $m{name} = chance(0.1) ? rstr(300) : rstr(8) if chance(0.5);
    } elsif ($r == 3) {
        %m = (type => 'modifyChatParticipants', chatId => some_chat(),
            userId => some_user(),
            operation => pick('ADD', 'ADD', 'REMOVE', 'add', 'DROP'));
    } elsif ($r <= 6) {
        %m = (type => 'sendMessage', chatId => some_chat(),
            clientMessageId => chance(0.2) ? 'dup' . int rand 5
                : rstr(1 + int rand 20),
            message => chance(0.05) ? 'y' x (60000 + int rand 10000)
                : rstr(int rand 200));
        if (@atts && chance(0.2)) {
            $m{attachments} = [ map { $_->{id} } pick(@atts) ];
        }
    } elsif ($r == 7) {
        my @ids = map { pick(@eventids) } 1 .. 1 + rand 20;
        @ids = map { bad_id() } 1 .. 1 + rand 5 if !@eventids || chance(0.2);
        %m = (type => 'ack', eventIds => \@ids);
        delete $m{id};
    } elsif ($r == 8) {
        %m = (type => 'getChats');
    } elsif ($r == 9) {
        %m = (type => 'removeDevice', deviceId => chance(0.9)
            ? pick(@devices) : rstr(int rand 100));
    } elsif ($r <= 11) {
        my $blob = rstr(1 + int rand 2000);
        %m = (type => 'createAttachment',
            contentType => pick('image/png', 'image/jpeg', 'text/html',
                'application/pdf', 'IMAGE/PNG', ''),
            size => chance(0.9) ? length $blob
                : pick(0, -1, 2**53, 1e300, 2 * 1024 * 1024, '12'),
            sha256 => chance(0.9) ? sha256_hex($blob) : rstr(64));
        $m{id} = 'x' . ++$idn;
        $c->{att}{ $m{id} } = { blob => $blob };
    } elsif ($r == 12) {
        %m = (type => 'getAttachmentUrl', attachmentId => @atts
            && chance(0.8) ? pick(@atts)->{id} : rstr(32, [0 .. 9, 'a'..'f']));
    } else {
        %m = (type => 'ackAttachment', attachmentId => @atts
            && chance(0.8) ? pick(@atts)->{id} : rstr(int rand 40));
    }
    $m{id} //= rid() if $m{type} ne 'ack' || chance(0.5);
    if (chance(0.15)) {
        # a field of the wrong type or out of range
        my $f = pick(qw(chatId participants userId operation eventIds
            clientMessageId message attachments deviceId size sha256
            contentType attachmentId name type id));
        $m{$f} = junk();
    }
    delete $m{type} if chance(0.01);
    return \%m;
}

# one or more frames of a random kind, as bytes
sub gen_frames {
    my ($c) = @_;
    my $r = rand;
    if ($r < 0.55) {
        count('cmd');
        return text(gen_cmd($c));
    }
    if ($r < 0.62) {
        count('bad_json');
        return text(pick('{', '{"type":', '[' x (1 + int rand 20000),
            '{"type":"ping","id":"1"}{}', 'null', '[]', '"x"', '1e999',
            '{"type":"ping","id":"1","id":"2"}', rstr(1 + int rand 500),
            '{"type":"sendMessage","chatId":' . ('9' x 400) . '}',
            '{"type":"ping","id":"\ud800"}', "{\"type\":\"ping\"\x00}",
            '{"a":' x 500 . '1' . '}' x 500));
    }
    if ($r < 0.66) {
        count('flood');
        my $n = 10 + int rand 200;
        my $one = chance(0.5) ? ChatTest::WS::encode_frame(OP_PING, 'p')
            : text(gen_cmd($c));
        return $one x $n;
    }
    if ($r < 0.70) {
        count('fragments');
        my $msg = $JSON->encode(gen_cmd($c));
        $msg .= ' ' x int rand 4000 if chance(0.3);
        my $n = 1 + int rand(chance(0.2) ? 3000 : 20);
        if (chance(0.05)) {
            # tens of thousands of one-byte fragments (reassembly cost)
            $msg .= ' ' x (20000 + int rand 40000);
            $n = length $msg;
        }
        my $size = int(length($msg) / $n) || 1;
        my @parts = unpack "(a$size)*", $msg;
        my $out = '';
        for my $i (0 .. $#parts) {
            $out .= ChatTest::WS::encode_frame($i ? OP_CONT : OP_TEXT,
                $parts[$i], fin => $i == $#parts ? 1 : 0);
            $out .= ChatTest::WS::encode_frame(OP_PING, 'mid')
                if chance(0.01);
            $out .= text('{"type":"ping"}') if chance(0.002);
        }
        return $out;
    }
    if ($r < 0.72) {
        count('huge_frame');
        return text('z' x (128 * 1024 + 1 + int rand 100000))
            if chance(0.5);
        return ChatTest::WS::encode_frame(OP_TEXT, 'z' x 100,
            length => pick(2**63 - 1, 2**40, 200000, 2**31), len_bytes => 8);
    }
    if ($r < 0.74) {
        count('binary');
        return ChatTest::WS::encode_frame(OP_BINARY, rstr(int rand 100));
    }
    if ($r < 0.76) {
        count('bad_utf8');
        my $bad = pick("\xff\xfe", "\xe2\x82", "\xc0\xaf", "\xed\xa0\x80",
            "\xf4\x90\x80\x80", "\x80");
        my $json = '{"type":"sendMessage","id":"u","chatId":"1",'
            . '"clientMessageId":"u","message":"' . $bad . '"}';
        return ChatTest::WS::encode_frame(OP_TEXT, $json) if chance(0.7);
        # split inside a valid sequence (allowed), then broken
        return ChatTest::WS::encode_frame(OP_TEXT, "\"\xe2", fin => 0)
            . ChatTest::WS::encode_frame(OP_CONT, "\x82\xac$bad\"");
    }
    if ($r < 0.78) {
        count('unmasked');
        return ChatTest::WS::encode_frame(OP_TEXT, '{"type":"ping","id":1}',
            masked => 0);
    }
    if ($r < 0.81) {
        count('bad_control');
        return pick(
            ChatTest::WS::encode_frame(OP_PING, 'q' x 126),
            ChatTest::WS::encode_frame(OP_PING, 'frag', fin => 0),
            ChatTest::WS::encode_frame(OP_PONG, 'unsolicited'),
            ChatTest::WS::encode_frame(OP_CLOSE, "\x03"),
            ChatTest::WS::encode_frame(OP_CLOSE, pack('n', pick(0, 999,
                1004, 1005, 1006, 1015, 2999, 5000, 65535))),
            ChatTest::WS::encode_frame(OP_CLOSE, pack('n', 1000) . "\xff"),
            ChatTest::WS::encode_frame(pick(3 .. 7, 0xB .. 0xF), 'r'),
            ChatTest::WS::encode_frame(OP_TEXT, '{}', rsv => 1 + int rand 7),
            ChatTest::WS::encode_frame(OP_CONT, 'orphan'),
            ChatTest::WS::encode_frame(OP_TEXT, '{"type":"ping"}',
                len_bytes => 8),
        );
    }
    count('cmd');
    return text(gen_cmd($c));
}

# one action on an open connection
sub act {
    my ($c) = @_;
    $st{actions}++;
    my $r = rand;
    if ($r < 0.70) {
        queue($c, gen_frames($c));
    } elsif ($r < 0.76) {
        # a command the server answers asynchronously, then a binary
        # frame or a Close in the same write (server-initiated close while
        # a database callback is pending)
        count('cmd_then_close');
        my %m = %{ gen_cmd($c) };
        if (chance(0.5)) {
            my $blob = rstr(10);
            %m = (type => 'createAttachment', id => 'x' . ++$idn,
                contentType => 'image/png', size => 10,
                sha256 => sha256_hex($blob));
        }
        my $tail = chance(0.6) ? ChatTest::WS::encode_frame(OP_BINARY, 'b')
            : chance(0.5) ? ChatTest::WS::encode_frame(OP_CLOSE,
                pack('n', 1000))
            : ChatTest::WS::encode_frame(OP_TEXT, "\xff");
        queue($c, text(\%m) . $tail);
        $c->{closing} = 1;
        $c->{life} = time + 2;
        $c->{close_after_flush} = chance(0.3);
        $c->{rst} = chance(0.5);
    } elsif ($r < 0.80) {
        # a command, then the TCP connection dropped (FIN or RST)
        count('cmd_then_drop');
        queue($c, text(gen_cmd($c)));
        $c->{close_after_flush} = 1;
        $c->{rst} = chance(0.5);
        $c->{closing} = 1;
    } elsif ($r < 0.83) {
        # half a frame, then gone
        count('mid_frame_drop');
        my $f = gen_frames($c);
        queue($c, substr($f, 0, 1 + int rand(length($f) - 1 || 1)));
        $c->{close_after_flush} = 1;
        $c->{rst} = chance(0.5);
        $c->{closing} = 1;
    } elsif ($r < 0.86) {
        # the same device again (the old one is replaced: 4001)
        count('reconnect_same_device');
        open_ws(user => $c->{user}, device => $c->{dev});
    } elsif ($r < 0.88) {
        # a slow reader asking for big answers
        count('slow_reader');
        deafen($c);
        queue($c, text({ type => 'getChats', id => 'g' . ++$idn })
            x (20 + int rand 100));
    } elsif ($r < 0.94) {
        http_media();
    } else {
        count('idle');
    }
}

# an upload or a download through the local store, often cut short
sub http_media {
    my ($req, $kind);
    if (@atts && chance(0.6)) {
        my $att = pick(@atts);
        my ($path) = $att->{url} =~ m{^http://[^/]+(/.*)$} or return;
        my $body = $att->{blob};
        $body = rstr(length $body) if chance(0.1);
        $path =~ s/sig=./sig=A/ if chance(0.1);
        $req = "PUT $path HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            . "Content-Type: image/png\r\nContent-Length: "
            . length($att->{blob}) . "\r\nConnection: close\r\n\r\n" . $body;
        $kind = 'http_put';
    } elsif (@downloads && chance(0.7)) {
        my ($path) = pick(@downloads) =~ m{^http://[^/]+(/.*)$} or return;
        $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            . (chance(0.3) ? 'Range: bytes=' . int(rand 100) . "-\r\n" : '')
            . "Connection: close\r\n\r\n";
        $kind = 'http_get';
    } else {
        $req = pick('PUT', 'GET', 'POST', 'DELETE') . ' /media/'
            . rstr(32, [ 0 .. 9, 'a' .. 'f' ]) . '?op=put&size=-1&sig=x'
            . " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n"
            . 'hello';
        $kind = 'http_bad';
    }
    my $c = new_conn() or return;
    $st{http}++;
    count($kind);
    $c->{state} = 'http';
    $c->{life} = time + 5;
    if (chance(0.3)) {
        $req = substr $req, 0, int rand length $req;
        $c->{close_after_flush} = 1;
        $c->{rst} = chance(0.5);
    }
    queue($c, $req);
}
