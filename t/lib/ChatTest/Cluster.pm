package ChatTest::Cluster;

# ChatTest::Cluster: the scale-out test helpers (t/02*-fault-*.t).
#
#   ChatTest::Cluster            N gateway instances (separate nginx
#                                processes, each with its own folder, port
#                                and error.log) over the SAME database,
#                                Redis channel prefix and JWT secret, plus an
#                                optional L4 load balancer (nginx stream,
#                                least_conn) in front of them
#   ChatTest::Cluster::Node      a ChatTest that can share another one's
#                                database/prefix/secret, raise
#                                worker_connections and tolerate expected
#                                error.log alerts (a worker killed on purpose)
#   ChatTest::Cluster::LB        the load balancer, a ChatTest without the
#                                chat module and with a stream{} conf
#   ChatTest::Cluster::Traffic   M simulated devices in one process (one
#                                IO::Select-style loop, non-blocking
#                                sockets): steady sends with unique
#                                clientMessageIds, reconnect with jittered
#                                backoff, resend of unacknowledged sends,
#                                acks, per-device receipt records, and the
#                                end-of-test accounting
#
#   my $c = ChatTest::Cluster->new(instances => 2, workers => 2);
#   $c->conf(http => 'chat_ping_interval 60s;')->run;
#   my $tr = ChatTest::Cluster::Traffic->new(t => $c->t,
#       ports => [ $c->lb_port ], users => 10, rate => 2);
#   ok $tr->start(timeout => 30), 'traffic set up';
#   $tr->pump(3);
#   ... a fault, while $tr->pump / $tr->pump_until keeps the clients alive
#   $tr->check($c);                        # the accounting (several tests)
#   $tr->close_all;
#   $c->done_testing;
#
# Nothing sleeps to synchronise: every wait is a loop on an observable
# event with a deadline, and the traffic loop keeps running meanwhile.

use strict;
use warnings;

use ChatTest;
use ChatTest::WS;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(time sleep);

my %live_clusters;

# ChatTest::Cluster->new(instances => 2, workers => 2,
#     worker_connections => 4096, lb => 1)
sub new {
    my ($class, %o) = @_;
    my $n = $o{instances} // 2;
    my @nodes;
    for my $i (1 .. $n) {
        my $node = ChatTest::Cluster::Node->new(workers => $o{workers} // 2,
            worker_connections => $o{worker_connections});
        $node->share_with($nodes[0]) if @nodes;
        push @nodes, $node;
    }
    my $self = bless {
        nodes => \@nodes,
        o => \%o,
        lb => ($o{lb} // 1) ? ChatTest::Cluster::LB->new(%o) : undef,
    }, $class;
    $live_clusters{"$self"} = $self;
    return $self;
}

# the first node: the test's ChatTest (tokens, database, services)
sub t { $_[0]{nodes}[0] }
sub nodes { @{ $_[0]{nodes} } }
sub node { $_[0]{nodes}[$_[1] - 1] }
sub ports { map { $_->port } @{ $_[0]{nodes} } }
sub lb { $_[0]{lb} }
sub lb_port { $_[0]{lb} ? $_[0]{lb}->port : undef }

# private services shared by every node (they belong to the first node,
# which stops them at the end)
sub private_pg {
    my ($self, %o) = @_;
    return $self->{pg} = $self->t->private_pg(%o);
}

sub private_redis {
    my ($self, %o) = @_;
    return $self->{redis} = $self->t->private_redis(%o);
}

sub pg_conninfo {
    my ($self) = @_;
    return $self->{pg} ? $self->{pg}->conninfo : $self->t->pg_conninfo;
}

sub redis_conf {
    my ($self) = @_;
    return $self->{redis} ? $self->{redis}->conf : $self->t->redis_conf;
}

# $c->conf(%o): chat_conf(%o) for every node (the options of
# ChatTest::chat_conf; pg and redis default to the shared ones)
sub conf {
    my ($self, %o) = @_;
    my $pg = $o{pg} // $self->pg_conninfo;
    my $redis = $o{redis} // $self->redis_conf;
    # ports are chosen now, after the services started (their start-up
    # takes ports too), to narrow the window in which another socket can
    # take one before nginx binds it
    for my $x ($self->nodes, $self->{lb} // ()) {
        $x->{port} = ChatTest::free_port() unless $x->{ran}++;
    }
    for my $node ($self->nodes) {
        $node->chat_conf(%o, pg => $pg, redis => $redis);
    }
    return $self;
}

# start the nodes, then the load balancer over their ports (written now:
# ChatTest::run may move a node to another port when its own was taken)
sub run {
    my ($self) = @_;
    $_->run for $self->nodes;
    if ($self->{lb}) {
        $self->{lb}->lb_conf($self->ports);
        $self->{lb}->run;
    }
    return $self;
}

# a non-blocking check that node $i (signalled by the test) has exited:
# reaps it and its group like ChatTest::stop; 1 once it is gone
sub node_exited {
    my ($self, $i) = @_;
    my $node = $self->node($i);
    my $pid = $node->{pid} or return 1;
    my $r = waitpid($pid, WNOHANG);
    return 0 unless $r == $pid || $r == -1;
    delete $node->{pid};
    $node->{exit_status} = $?;
    $node->reap_group($pid);
    return 1;
}

# psql on the shared database (the private PostgreSQL when there is one)
sub psql {
    my ($self, $sql) = @_;
    if (my $pg = $self->{pg}) {
        return ChatTest::run_psql($pg->dir, $pg->port, 'postgres', 'chat',
            $sql);
    }
    return $self->t->psql($sql);
}

# the argv that runs scripts/services $cmd on a private service, for
# ChatTest::Cluster::Traffic::run_cmd (the traffic goes on meanwhile)
sub service_cmd {
    my ($self, $svc, $cmd) = @_;
    return ["$ChatTest::REPO/scripts/services", $cmd, $svc->dir,
        $svc->{kind}];
}

# the hard limit of open files (worker_rlimit_nofile may not exceed it
# without CAP_SYS_RESOURCE)
sub nofile_hard {
    if (open my $fh, '<', '/proc/self/limits') {
        while (<$fh>) {
            return $2 eq 'unlimited' ? 1048576 : $2
                if /^Max open files\s+(\S+)\s+(\S+)/;
        }
    }
    return 1024;
}

sub nofile_for {
    my ($connections) = @_;
    my $want = $connections * 2 + 256;
    my $hard = nofile_hard();
    return $want < $hard ? $want : $hard;
}

# worker pid of node $i holding the most sockets (its clients)
sub busiest_worker {
    my ($self, $i) = @_;
    my ($best, $most) = (undef, -1);
    for my $pid ($self->node($i)->worker_pids) {
        my $n = socket_count($pid);
        ($best, $most) = ($pid, $n) if $n > $most;
    }
    return wantarray ? ($best, $most) : $best;
}

sub socket_count {
    my ($pid) = @_;
    my $n = 0;
    opendir my $dh, "/proc/$pid/fd" or return 0;
    for my $fd (readdir $dh) {
        my $l = readlink "/proc/$pid/fd/$fd" // next;
        $n++ if $l =~ /^socket:/;
    }
    closedir $dh;
    return $n;
}

# kill -9 a worker of node $i (the busiest unless $pid is given); the
# master's "[alert] worker process N exited on signal 9" is expected
sub kill_worker {
    my ($self, $i, $pid) = @_;
    $pid //= $self->busiest_worker($i) or return undef;
    my $node = $self->node($i);
    $node->allow_log(qr/worker process $pid exited on signal 9/);
    kill 'KILL', $pid or return undef;
    return $pid;
}

# VmRSS of a process, in KiB
sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return 0;
}

# the sum of the VmRSS of node $i's workers, in KiB
sub workers_rss_kb {
    my ($self, $i) = @_;
    my $sum = 0;
    $sum += rss_kb($_) for $self->node($i)->worker_pids;
    return $sum;
}

# stop the load balancer and the nodes (the first one last: it drops the
# database and stops the services), with their error.log checks
sub finish {
    my ($self) = @_;
    return if $self->{finished}++;
    delete $live_clusters{"$self"};
    $self->{lb}->finish if $self->{lb};
    my @n = $self->nodes;
    $_->finish for reverse @n;
}

sub done_testing {
    my ($self) = @_;
    $self->finish;
    Test::More::done_testing();
}

END {
    # before ChatTest's END (defined earlier, so run later): the order of
    # the nodes matters
    for my $c (values %live_clusters) {
        local $?;
        $c->{lb}->DESTROY if $c->{lb};
        $_->DESTROY for reverse $c->nodes;
        delete $live_clusters{"$c"};
    }
}

# ==========================================================================

package ChatTest::Cluster::Node;

# A ChatTest that may share another one's database, Redis prefix, services
# and JWT secret (share_with), raises worker_connections (and
# worker_rlimit_nofile) in its conf, and filters alerts it was told to
# expect out of its error.log checks (allow_log).

use strict;
use warnings;

our @ISA = ('ChatTest');

sub new {
    my ($class, %o) = @_;
    my $self = ChatTest::new($class, workers => $o{workers} // 1);
    $self->{worker_connections} = $o{worker_connections};
    $self->{allowed} = [];
    return $self;
}

sub share_with {
    my ($self, $primary) = @_;
    $self->{primary} = $primary;
    $self->{secret} = $primary->secret;
    $self->write_file('secret', $self->{secret} . "\n");
    chmod 0644, $self->secret_file;
    $self->{prefix} = $primary->redis_prefix;
    return $self;
}

sub primary { $_[0]{primary} }

sub services {
    my ($self) = @_;
    return $self->{primary} ? $self->{primary}->services
        : $self->SUPER::services;
}

sub db {
    my ($self) = @_;
    return $self->{primary} ? $self->{primary}->db : $self->SUPER::db;
}

sub conf {
    my ($self, $http, %o) = @_;
    my $wc = $self->{worker_connections};
    if ($wc) {
        $o{main} = ($o{main} // '') . "\nworker_rlimit_nofile "
            . ChatTest::Cluster::nofile_for($wc) . ";\n";
    }
    $self->SUPER::conf($http, %o);
    if ($wc) {
        my $c = $self->read_file('nginx.conf');
        $c =~ s/worker_connections\s+\d+;/worker_connections $wc;/;
        $self->write_file('nginx.conf', $c);
    }
    return $self;
}

# error.log lines matching one of these are left out of every grep_log,
# hence out of the "no alerts" check
sub allow_log {
    my ($self, $re) = @_;
    push @{ $self->{allowed} }, $re;
    return $self;
}

sub grep_log {
    my ($self, $re, $file) = @_;
    my @l = $self->SUPER::grep_log($re, $file);
    my @allowed = @{ $self->{allowed} // [] };
    return @l unless @allowed;
    return grep {
        my $line = $_;
        !grep { $line =~ $_ } @allowed;
    } @l;
}

# ==========================================================================

package ChatTest::Cluster::LB;

# The L4 load balancer: Debian's nginx with the stream module only,
# least_conn over the gateways; a gateway that refuses connections is
# skipped (proxy_next_upstream), so clients land on the others.

use strict;
use warnings;

our @ISA = ('ChatTest');

our $STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

sub new {
    my ($class, %o) = @_;
    my $self = ChatTest::new($class, no_module_ok => 1);
    $self->{module} = '';
    $self->{lb_connections} = $o{lb_connections} // 8192;
    return $self;
}

sub lb_conf {
    my ($self, @ports) = @_;
    my $dir = $self->dir;
    my $wc = $self->{lb_connections};
    my $nofile = ChatTest::Cluster::nofile_for($wc);
    my $servers = join '', map {
        "        server 127.0.0.1:$_ max_fails=1 fail_timeout=2s;\n"
    } @ports;
    $self->write_file('nginx.conf', <<EOF);
# generated by t/lib/ChatTest/Cluster.pm: the L4 load balancer
load_module $STREAM_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $nofile;
worker_shutdown_timeout 3s;
pid $dir/nginx.pid;
error_log $dir/error.log notice;

events {
    worker_connections $wc;
}

stream {
    upstream chat_gateways {
        least_conn;
$servers    }

    server {
        listen 127.0.0.1:$self->{port} backlog=4096;
        proxy_pass chat_gateways;
        proxy_connect_timeout 1s;
        proxy_timeout 10m;
        proxy_next_upstream on;
    }
}
EOF
    return $self;
}

# ==========================================================================

package ChatTest::Cluster::Traffic;

# Simulated clients, all in this process.  Users "<tag>u<i>" (every other
# one with two devices "d1", "d2"), 1:1 chats between neighbours (a ring)
# and groups of three; plus optional idle devices "<tag>i<k>/d1" that only
# stay connected.  Each active device sends `rate` messages a second, round
# robin over its chats, whether connected or not (an outbox); a send is
# retried with the same clientMessageId until it gets ok (after
# "unavailable": with a short backoff; after a lost connection: on the
# next one).  Received events are recorded per device, then acked (with
# an id: a failed ack is retried).  Closed connections reconnect after
# 0-2 s (1001) or a jittered exponential backoff.
#
# new(t => $chattest (tokens), ports => [port, ...] (devices spread over
# them), users => 8, two_devices => sub { $i % 2 == 0 }, pairs => 1 (the
# ring of 1:1 chats), groups => int(users / 3), chats => [[user, ...],
# ...] (instead of the generated ones), rate => 2 (per device and second),
# window => 4 (sends in flight per device), size => 0 (message padding),
# idle => 0, idle_ports => ports, rcvbuf => {"user/dev" => bytes},
# quiet => ["user/dev", ...] (devices that send only bursts),
# backoff => 0.5, backoff_max => 4, max_connecting => 100,
# req_timeout => 15 (an unanswered command: reconnect), tag => "tr")
#
# Driving it (every wait pumps the loop, so clients keep reading, acking
# and reconnecting while the test waits or a fault is injected):
#   start(timeout => 30)      connect all, wait for each first answer,
#                             create the chats, start sending
#   pump($secs), pump_until($cond, $timeout), run_cmd(\@argv, $timeout)
#   sending(0|1), burst($dev, $chat, $n), pause($dev), resume($dev)
#   dev("user/dev"), devices, chat_of(@users), messages (count stored)
#   all_ready, dropped_since($t), closes_since($t) (code => count)
#   latency($from, $to)       (max, n, median) of end-to-end latencies
#   responses($from, $to)     [t_sent, t_answer, kind, code] of commands
#   drain($timeout), missing, pending, acks_pending, stats
#   check($cluster, name => ..., drain => 30, inbox => 20)   the tests
#   close_all($timeout)

use strict;
use warnings;

use Errno qw(EINPROGRESS EAGAIN EWOULDBLOCK EINTR);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG);
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF SO_ERROR
    IPPROTO_TCP TCP_NODELAY pack_sockaddr_in inet_aton);
use Test::More ();
use Time::HiRes qw(time);

my $JSON = JSON::PP->new->utf8->canonical;

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        t => $o{t} // die("t => ChatTest required"),
        ports => $o{ports} // [ $o{t}->port ],
        rate => $o{rate} // 2,
        window => $o{window} // 4,
        size => $o{size} // 0,
        backoff0 => $o{backoff} // 0.5,
        backoff_max => $o{backoff_max} // 4,
        max_connecting => $o{max_connecting} // 100,
        req_timeout => $o{req_timeout} // 15,
        hs_timeout => $o{hs_timeout} // 10,
        tag => $o{tag} // 'tr',
        devs => [],
        by_name => {},
        users => {},           # user => [dev, ...]
        chats => [],
        fds => {},             # fileno => dev
        msgs => {},            # messageId => {cmid, chat, dev, seq, sent_at}
        cmid_mid => {},
        evinfo => {},          # messageId => the first newMessage seen
        errors => [],          # unexpected responses / events
        resp => [],            # [t_sent, t_answer, kind, code]
        lat => [],             # [sentAt (s), t_received, dev] first receipts
        closes => {},          # close code (or "eof", "error") => count
        hs_fail => {},         # handshake answers other than 101
        timeouts => 0,
        sending => 0,
        stopping => 0,
        nsent => 0,
        nreq => 0,
    }, $class;

    my $nusers = $o{users} // 8;
    my $two = $o{two_devices} // sub { $_[0] % 2 == 0 };
    my @users = map { "$self->{tag}u$_" } 1 .. $nusers;
    for my $i (1 .. $nusers) {
        my $u = $users[$i - 1];
        $self->add_device($u, 'd1', %o, idle => 0);
        $self->add_device($u, 'd2', %o, idle => 0) if $two->($i);
    }
    for my $k (1 .. ($o{idle} // 0)) {
        $self->add_device("$self->{tag}i$k", 'd1', %o, idle => 1,
            ports => $o{idle_ports} // $self->{ports});
    }

    my @chats;
    if ($o{chats}) {
        @chats = @{ $o{chats} };
    } else {
        if ($o{pairs} // 1) {
            if ($nusers == 2) {
                push @chats, [ @users ];
            } elsif ($nusers > 2) {
                push @chats, [ $users[$_], $users[($_ + 1) % $nusers] ]
                    for 0 .. $nusers - 1;
            }
        }
        my $groups = $o{groups} // int($nusers / 3);
        for my $g (0 .. $groups - 1) {
            my %m;
            $m{ $users[($g * 3 + $_ * 2) % $nusers] } = 1 for 0 .. 2;
            push @chats, [ sort keys %m ] if keys %m >= 2;
        }
    }
    for my $members (@chats) {
        $self->add_chat(@$members);
    }
    return $self;
}

sub add_device {
    my ($self, $user, $dev, %o) = @_;
    my $name = "$user/$dev";
    my @ports = @{ $o{ports} // $self->{ports} };
    my $d = {
        name => $name,
        user => $user,
        dev => $dev,
        idx => scalar @{ $self->{devs} },
        idle => $o{idle} ? 1 : 0,
        quiet => (grep { $_ eq $name } @{ $o{quiet} // [] }) ? 1 : 0,
        rcvbuf => ($o{rcvbuf} // {})->{$name},
        state => 'down',
        next_connect => 0,
        backoff => $self->{backoff0},
        queue => [],            # jobs ready to go out
        later => [],            # jobs waiting for their retry time
        req => {},              # request id => job
        ackq => [],
        ack_retry_at => 0,
        got => {},              # messageId => times received
        chats => [],
        rr => 0,
        n => 0,
        connects => 0,
        hellos => 0,
        close_log => [],        # [time, code]
        rbuf => '',
        wbuf => '',
    };
    $d->{port} = $ports[$d->{idx} % @ports];
    push @{ $self->{devs} }, $d;
    $self->{by_name}{$name} = $d;
    push @{ $self->{users}{$user} }, $d;
    return $d;
}

sub add_chat {
    my ($self, @members) = @_;
    my $c = { idx => scalar @{ $self->{chats} }, members => [ @members ] };
    push @{ $self->{chats} }, $c;
    for my $u (@members) {
        push @{ $_->{chats} }, $c for @{ $self->{users}{$u} // [] };
    }
    return $c;
}

# the chat with exactly these members
sub chat_of {
    my ($self, @members) = @_;
    my $want = join ',', sort @members;
    for my $c (@{ $self->{chats} }) {
        return $c if join(',', sort @{ $c->{members} }) eq $want;
    }
    return undef;
}

sub devices { @{ $_[0]{devs} } }
sub dev { $_[0]{by_name}{$_[1]} }
sub chats { @{ $_[0]{chats} } }
sub idle_devices { grep { $_->{idle} } @{ $_[0]{devs} } }
sub active_devices { grep { !$_->{idle} } @{ $_[0]{devs} } }
sub messages { scalar keys %{ $_[0]{msgs} } }

# the devices a message of chat $c from device $d must reach
sub recipients {
    my ($self, $c, $sender) = @_;
    return grep { $_->{name} ne $sender }
        map { @{ $self->{users}{$_} // [] } } @{ $c->{members} };
}

# --------------------------------------------------------------------------
# the loop

# connect everything, wait until every device answered its first command
# (registered), create the chats, then start sending; 1 on success
sub start {
    my ($self, %o) = @_;
    my $timeout = $o{timeout} // 30;
    my $deadline = time + $timeout;
    my $now = time;
    $_->{next_connect} = $now for @{ $self->{devs} };
    my $ok = $self->pump_until(sub {
        !grep { !$_->{hellos} } @{ $self->{devs} };
    }, $deadline - time);
    if (!$ok) {
        my @late = grep { !$_->{hellos} } @{ $self->{devs} };
        Test::More::diag(scalar(@late) . ' devices not registered: '
            . join(' ', map { "$_->{name}($_->{state})" }
                @late[0 .. ($#late < 9 ? $#late : 9)]));
        return 0;
    }
    for my $c (@{ $self->{chats} }) {
        my $creator = $self->{users}{ $c->{members}[0] }[0];
        push @{ $creator->{queue} }, { kind => 'create', chat => $c };
    }
    $ok = $self->pump_until(sub {
        !grep { !defined $_->{id} } @{ $self->{chats} };
    }, $deadline - time);
    if (!$ok) {
        Test::More::diag('chats not created: '
            . scalar(grep { !defined $_->{id} } @{ $self->{chats} }));
        return 0;
    }
    $self->sending(1) unless $o{quiet};
    return 1;
}

# start (1) or stop (0) generating messages
sub sending {
    my ($self, $on) = @_;
    my $now = time;
    if ($on && !$self->{sending}) {
        for my $d (@{ $self->{devs} }) {
            next if $d->{idle} || $d->{quiet} || !@{ $d->{chats} }
                || !$self->{rate};
            $d->{next_send} = $now + rand(1 / $self->{rate});
        }
    }
    $self->{sending} = $on ? 1 : 0;
    return $self;
}

# pump the loop for $secs seconds
sub pump {
    my ($self, $secs) = @_;
    my $deadline = time + $secs;
    while ((my $left = $deadline - time) > 0) {
        $self->step($left < 0.05 ? $left : 0.05);
    }
    return $self;
}

# pump until $cond->() is true (1) or $timeout seconds pass (0); the
# condition is evaluated at most every 50 ms
sub pump_until {
    my ($self, $cond, $timeout) = @_;
    my $deadline = time + ($timeout // 30);
    while (1) {
        return 1 if $cond->();
        return 0 if time > $deadline;
        my $until = time + 0.05;
        while ((my $left = $until - time) > 0) {
            $self->step($left);
        }
    }
}

# run a command (argv) in the background, pumping meanwhile; returns its
# exit status (-1 after $timeout: then it is killed) and its output
sub run_cmd {
    my ($self, $argv, $timeout) = @_;
    my $out = "$self->{t}{dir}/cmd.out." . ++$self->{ncmd};
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        { exec @$argv };
        POSIX::_exit(127);
    }
    my $status;
    my $done = $self->pump_until(sub {
        my $r = waitpid($pid, WNOHANG);
        $status = $? if $r == $pid;
        return $r == $pid || $r == -1;
    }, $timeout // 60);
    if (!$done) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $status = -1;
    }
    my $text = $self->{t}->read_file($out) // '';
    return wantarray ? ($status, $text) : $status;
}

sub step {
    my ($self, $wait) = @_;
    my $now = time;
    $self->timers($now);

    my ($rin, $win) = ('', '');
    my $fds = $self->{fds};
    my $any = 0;
    for my $fd (keys %$fds) {
        my $d = $fds->{$fd};
        next if $d->{paused};
        if ($d->{state} eq 'connecting') {
            vec($win, $fd, 1) = 1;
        } else {
            vec($rin, $fd, 1) = 1;
            vec($win, $fd, 1) = 1 if length $d->{wbuf};
        }
        $any = 1;
    }
    if (!$any) {
        select(undef, undef, undef, $wait) if $wait > 0;
        return;
    }
    my ($rout, $wout) = ($rin, $win);
    my $n = select($rout, $wout, undef, $wait);
    return if !$n || $n < 0;
    for my $fd (keys %$fds) {
        my $d = $fds->{$fd} or next;
        next if $d->{paused};
        if (length $wout && vec($wout, $fd, 1)) {
            $self->writable($d);
        }
        if ($self->{fds}{$fd} && length $rout && vec($rout, $fd, 1)) {
            $self->readable($d);
        }
    }
    $self->flush_acks;
}

sub timers {
    my ($self, $now) = @_;

    # (re)connections, at most max_connecting handshakes at a time
    my $connecting = $self->{nconnecting} // 0;
    if (!$self->{stopping}) {
        for my $d (@{ $self->{devs} }) {
            last if $connecting >= $self->{max_connecting};
            next unless $d->{state} eq 'down' && !$d->{paused}
                && defined $d->{next_connect} && $d->{next_connect} <= $now;
            $self->connect_dev($d, $now);
            $connecting++ if $d->{state} ne 'down';
        }
    }

    for my $d (@{ $self->{devs} }) {
        # new messages
        if ($self->{sending} && defined $d->{next_send}) {
            if ($d->{next_send} < $now - 1) {
                $d->{next_send} = $now;       # no catch-up bursts
            }
            while ($d->{next_send} <= $now) {
                $self->new_message($d, $now);
                $d->{next_send} += 1 / $self->{rate};
            }
        }
        # retries whose time has come
        if (@{ $d->{later} }) {
            my @keep;
            for my $j (@{ $d->{later} }) {
                if ($j->{retry_at} <= $now) {
                    push @{ $d->{queue} }, $j;
                } else {
                    push @keep, $j;
                }
            }
            $d->{later} = \@keep;
        }
        next if $d->{paused};
        if ($d->{state} eq 'open') {
            $self->flush_jobs($d, $now);
            # requests without an answer: the connection is broken
            for my $r (values %{ $d->{req} }) {
                if ($now - $r->{t} > $self->{req_timeout}) {
                    $self->{timeouts}++;
                    Test::More::diag(sprintf "%s: no answer to %s in %.1fs:"
                        . " reconnecting", $d->{name}, $r->{kind},
                        $now - $r->{t});
                    $self->drop($d, 'timeout');
                    last;
                }
            }
        } elsif ($d->{state} eq 'connecting'
            || $d->{state} eq 'handshake')
        {
            if ($now - $d->{t_connect} > $self->{hs_timeout}) {
                $self->{hs_fail}{timeout}++;
                $self->drop($d, 'hs_timeout');
            }
        } elsif ($d->{state} eq 'closing') {
            $self->drop($d, $d->{close_code})
                if $now - $d->{t_closing} > 2;
        }
    }
}

sub new_message {
    my ($self, $d, $now) = @_;
    my @c = grep { defined $_->{id} } @{ $d->{chats} } or return;
    my $c = $c[ $d->{rr}++ % @c ];
    my $cmid = "$d->{user}.$d->{dev}." . ++$d->{n};
    my $text = "m:$cmid";
    $text .= ' ' . ('x' x ($self->{size} - length($text) - 1))
        if $self->{size} > length($text) + 1;
    push @{ $d->{queue} }, { kind => 'send', chat => $c, cmid => $cmid,
        text => $text, created => $now, tries => 0 };
    $self->{nsent}++;
}

# queue $n messages of device $dev to chat $c now (a burst)
sub burst {
    my ($self, $dev, $c, $n) = @_;
    my $d = ref $dev ? $dev : $self->dev($dev);
    my $now = time;
    my @saved = @{ $d->{chats} };
    $d->{chats} = [ $c ];
    $self->new_message($d, $now) for 1 .. $n;
    $d->{chats} = \@saved;
}

sub flush_jobs {
    my ($self, $d, $now) = @_;
    return unless @{ $d->{queue} };
    my $inflight = grep { $_->{kind} ne 'ack' && $_->{kind} ne 'hello' }
        values %{ $d->{req} };
    while ($inflight < $self->{window} && @{ $d->{queue} }) {
        my $j = shift @{ $d->{queue} };
        my $id = 'r' . ++$self->{nreq};
        my %cmd;
        if ($j->{kind} eq 'send') {
            %cmd = (type => 'sendMessage', id => $id,
                chatId => $j->{chat}{id}, clientMessageId => $j->{cmid},
                message => $j->{text});
        } elsif ($j->{kind} eq 'create') {
            %cmd = (type => 'createChat', id => $id,
                participants => $j->{chat}{members},
                name => "chat$j->{chat}{idx}");
        } else {
            die "unknown job $j->{kind}";
        }
        $j->{t} = $now;
        $j->{tries}++;
        $d->{req}{$id} = $j;
        $self->send_json($d, \%cmd);
        $inflight++;
        return unless $d->{state} eq 'open';
    }
}

sub flush_acks {
    my ($self) = @_;
    my $now = time;
    for my $d (@{ $self->{devs} }) {
        next unless @{ $d->{ackq} } && $d->{state} eq 'open'
            && !$d->{paused} && $d->{ack_retry_at} <= $now;
        my $inflight = grep { $_->{kind} eq 'ack' } values %{ $d->{req} };
        next if $inflight >= 2;
        my @ids = splice @{ $d->{ackq} }, 0, 1000;
        my $id = 'a' . ++$self->{nreq};
        $d->{req}{$id} = { kind => 'ack', ids => \@ids, t => $now };
        $self->send_json($d, { type => 'ack', id => $id, eventIds => \@ids });
    }
}

# --------------------------------------------------------------------------
# connections

sub connect_dev {
    my ($self, $d, $now) = @_;
    my $s;
    if (!socket($s, PF_INET, SOCK_STREAM, 0)) {
        Test::More::diag("socket: $!");
        $d->{next_connect} = $now + 1;
        return;
    }
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, $d->{rcvbuf}) if $d->{rcvbuf};
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $fl = fcntl($s, F_GETFL, 0);
    fcntl($s, F_SETFL, $fl | O_NONBLOCK);
    $d->{connects}++;
    $d->{t_connect} = $now;
    if (!connect($s, pack_sockaddr_in($d->{port}, inet_aton('127.0.0.1')))
        && $! != EINPROGRESS)
    {
        $self->{hs_fail}{"connect: $!"}++;
        close $s;
        $self->schedule($d, $now, undef);
        return;
    }
    $d->{sock} = $s;
    $d->{fd} = fileno $s;
    $self->{fds}{ $d->{fd} } = $d;
    $d->{state} = 'connecting';
    $self->{nconnecting}++;
    $d->{rbuf} = '';
    $d->{wbuf} = '';
    $d->{frag} = undef;
    $d->{close_code} = undef;
    $d->{registered} = 0;
    $d->{write_failed} = undef;
    $d->{salvaging} = 0;
    my $token = $self->{t}->token(user => $d->{user}, device => $d->{dev});
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    $d->{wbuf} = "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:$d->{port}\r\n"
        . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n"
        . "Authorization: Bearer $token\r\n\r\n";
}

# the next connection attempt of a device that just lost one
sub schedule {
    my ($self, $d, $now, $code) = @_;
    $d->{state} = 'down';
    if (defined $code && $code eq '1001') {
        $d->{next_connect} = $now + rand 2;
    } else {
        $d->{next_connect} = $now + $d->{backoff} * (0.5 + rand);
        $d->{backoff} *= 2;
        $d->{backoff} = $self->{backoff_max}
            if $d->{backoff} > $self->{backoff_max};
    }
}

# forget the connection: requests in flight go back to the queue, acks
# in flight back to the ack queue
sub drop {
    my ($self, $d, $why) = @_;
    my $now = time;
    if ($d->{sock}) {
        delete $self->{fds}{ $d->{fd} };
        close $d->{sock};
        $d->{sock} = undef;
    }
    $self->{nconnecting}--
        if $d->{state} eq 'connecting' || $d->{state} eq 'handshake';
    my $code = $d->{close_code} // $why // 'eof';
    $self->{closes}{$code}++;
    push @{ $d->{close_log} }, [ $now, $code ];
    my @back;
    for my $id (sort { substr($a, 1) <=> substr($b, 1) }
        keys %{ $d->{req} })
    {
        my $r = $d->{req}{$id};
        if ($r->{kind} eq 'ack') {
            unshift @{ $d->{ackq} }, @{ $r->{ids} };
        } elsif ($r->{kind} ne 'hello') {
            push @back, $r;
        }
    }
    unshift @{ $d->{queue} }, @back;
    $d->{req} = {};
    $d->{rbuf} = '';
    $d->{wbuf} = '';
    if ($self->{stopping}) {
        $d->{state} = 'down';
        $d->{next_connect} = undef;
        return;
    }
    $self->schedule($d, $now, $code);
}

sub writable {
    my ($self, $d) = @_;
    if ($d->{state} eq 'connecting') {
        my $err = unpack 'i', getsockopt($d->{sock}, SOL_SOCKET, SO_ERROR)
            // pack('i', 0);
        if ($err) {
            local $! = $err;
            $self->{hs_fail}{"connect: $!"}++;
            $self->drop($d, 'connect');
            return;
        }
        $d->{state} = 'handshake';
    }
    $self->write_out($d);
}

sub write_out {
    my ($self, $d) = @_;
    return unless length $d->{wbuf} && $d->{sock};
    return if $d->{salvaging};
    return if $d->{state} eq 'connecting';
    my $n = syswrite $d->{sock}, $d->{wbuf};
    if (!defined $n) {
        return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        if ($d->{in_parse}) {
            # parse() is walking rbuf: salvage when it is done
            $d->{write_failed} //= "write: $!";
            $d->{wbuf} = '';
            return;
        }
        $self->salvage($d, "write: $!");
        return;
    }
    substr $d->{wbuf}, 0, $n, '';
}

# the connection failed on a write: what the server sent before (its
# Close frame, answers) may still wait in the receive buffer: read it,
# then drop the connection
sub salvage {
    my ($self, $d, $why) = @_;
    my $s = $d->{sock};
    if ($s && ($d->{state} eq 'open' || $d->{state} eq 'closing')) {
        $d->{wbuf} = '';
        $d->{salvaging} = 1;
        while (1) {
            my $n = sysread $s, $d->{rbuf}, 262144, length $d->{rbuf};
            last unless $n;
        }
        $self->parse($d);
        $d->{salvaging} = 0;
    }
    $self->drop($d, $d->{close_code} // $why) if $d->{sock};
}

sub send_frame {
    my ($self, $d, $op, $payload) = @_;
    $d->{wbuf} .= ChatTest::WS::encode_frame($op, $payload);
    $self->write_out($d);
}

sub send_json {
    my ($self, $d, $obj) = @_;
    $self->send_frame($d, 0x1, $JSON->encode($obj));
}

sub readable {
    my ($self, $d) = @_;
    my $n = sysread $d->{sock}, $d->{rbuf}, 262144, length $d->{rbuf};
    if (!defined $n) {
        return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        $self->drop($d, $d->{close_code} // "read: $!");
        return;
    }
    if ($n == 0) {
        # what was read before the end still counts
        $self->parse($d) if $d->{state} eq 'open';
        $self->drop($d, $d->{close_code} // ($d->{state} eq 'handshake'
            ? 'hs_eof' : 'eof'));
        return;
    }
    if ($d->{state} eq 'handshake') {
        my $i = index $d->{rbuf}, "\r\n\r\n";
        return if $i < 0;
        my $head = substr $d->{rbuf}, 0, $i + 4, '';
        my ($status) = $head =~ m{^HTTP/1\.1 (\d{3})};
        $self->{nconnecting}--;
        if (($status // 0) != 101) {
            $self->{hs_fail}{ $status // 'garbage' }++;
            $d->{state} = 'closing';
            $self->drop($d, 'hs_' . ($status // 'garbage'));
            return;
        }
        $d->{state} = 'open';
        $d->{t_open} = time;
        my $id = 'h' . ++$self->{nreq};
        $d->{req}{$id} = { kind => 'hello', t => time };
        $self->send_json($d, { type => 'ping', id => $id });
        return unless $d->{state} eq 'open';
        $self->flush_jobs($d, time);
    }
    $self->parse($d) if $d->{state} eq 'open' || $d->{state} eq 'closing';
}

# server frames out of rbuf
sub parse {
    my ($self, $d) = @_;
    $d->{in_parse} = 1;
    $self->parse_frames($d);
    $d->{in_parse} = 0;
    if (my $why = delete $d->{write_failed}) {
        $self->salvage($d, $why) unless $d->{salvaging};
    }
}

sub parse_frames {
    my ($self, $d) = @_;
    my $off = 0;
    my $len_all = length $d->{rbuf};
    while (1) {
        my $l = $len_all - $off;
        last if $l < 2;
        my ($b1, $b2) = unpack 'CC', substr($d->{rbuf}, $off, 2);
        my $len = $b2 & 0x7f;
        my $h = 2;
        if ($len == 126) {
            last if $l < 4;
            $len = unpack 'n', substr($d->{rbuf}, $off + 2, 2);
            $h = 4;
        } elsif ($len == 127) {
            last if $l < 10;
            $len = unpack 'Q>', substr($d->{rbuf}, $off + 2, 8);
            $h = 10;
        }
        if ($b2 & 0x80) {
            push @{ $self->{errors} }, "$d->{name}: masked server frame";
            $h += 4;
        }
        last if $l < $h + $len;
        my $payload = substr $d->{rbuf}, $off + $h, $len;
        $off += $h + $len;
        my $op = $b1 & 0xf;
        my $fin = $b1 & 0x80;
        if ($op == 0x0) {
            $d->{frag} .= $payload if defined $d->{frag};
            if ($fin && defined $d->{frag}) {
                my $m = $d->{frag};
                $d->{frag} = undef;
                $self->message($d, $m);
            }
        } elsif ($op == 0x1) {
            if ($fin) {
                $self->message($d, $payload);
            } else {
                $d->{frag} = $payload;
            }
        } elsif ($op == 0x8) {
            my $code = length $payload >= 2 ? unpack('n', $payload) : 1005;
            $d->{close_code} = $code;
            if ($d->{state} eq 'open') {
                # echo it, then wait (briefly) for the end of the stream
                $self->send_frame($d, 0x8, pack 'n', $code);
                $d->{state} = 'closing';
                $d->{t_closing} = time;
            }
            last;
        } elsif ($op == 0x9) {
            $self->send_frame($d, 0xA, $payload)
                if $d->{state} eq 'open';
        }
        last unless $d->{sock};
        last if $d->{state} eq 'closing';
    }
    substr($d->{rbuf}, 0, $off, '') if $d->{sock};
}

sub message {
    my ($self, $d, $text) = @_;
    return unless $d->{state} eq 'open';
    my $m = eval { $JSON->decode($text) };
    if (!$m || ref $m ne 'HASH') {
        push @{ $self->{errors} }, "$d->{name}: not JSON: $text";
        return;
    }
    my $type = $m->{type} // '';
    my $now = time;
    if ($type eq 'response') {
        my $r = delete $d->{req}{ $m->{id} // '' };
        if (!$r) {
            push @{ $self->{errors} }, "$d->{name}: unexpected response"
                . " $text";
            return;
        }
        $self->response($d, $r, $m, $now);
    } elsif ($type eq 'newMessage') {
        my $mid = $m->{messageId} // '';
        if (!$d->{got}{$mid}++) {
            push @{ $self->{lat} }, [ ($m->{sentAt} // 0) / 1000, $now,
                $d->{name} ];
            $self->{evinfo}{$mid} //= {
                chatId => $m->{chatId}, seq => $m->{seq},
                senderId => $m->{senderId},
                senderDevice => $m->{senderDevice},
                message => $m->{message}, eventId => $m->{eventId},
            };
        } else {
            $self->{dups}++;
        }
        push @{ $d->{ackq} }, $m->{eventId};
    } elsif ($type eq 'chatUpdate') {
        $d->{updates}++;
        push @{ $d->{ackq} }, $m->{eventId};
    } else {
        push @{ $self->{errors} }, "$d->{name}: unexpected message $text";
    }
}

sub response {
    my ($self, $d, $r, $m, $now) = @_;
    my $code = $m->{ok} ? 'ok' : ($m->{error}{code} // 'bad');
    if ($r->{kind} eq 'hello') {
        if ($m->{ok}) {
            $d->{hellos}++;
            $d->{registered} = 1;
            $d->{backoff} = $self->{backoff0};
            $d->{t_ready} = $now;
        } else {
            push @{ $self->{errors} }, "$d->{name}: ping: $code";
        }
        return;
    }
    if ($r->{kind} eq 'ack') {
        return if $m->{ok};
        unshift @{ $d->{ackq} }, @{ $r->{ids} };
        $d->{ack_retry_at} = $now + 0.3 + rand 0.4;
        $self->{ack_retries}++;
        push @{ $self->{errors} }, "$d->{name}: ack: $code"
            if $code ne 'unavailable';
        return;
    }
    push @{ $self->{resp} }, [ $r->{t}, $now, $r->{kind}, $code ];
    if ($code eq 'unavailable') {
        # the same command again, with a backoff
        $r->{retry_at} = $now + ($r->{tries} < 4 ? 0.1 * 2 ** $r->{tries}
            : 1.6) * (0.5 + rand);
        push @{ $d->{later} }, $r;
        $self->{unavailable}++;
        return;
    }
    if (!$m->{ok}) {
        push @{ $self->{errors} }, "$d->{name}: $r->{kind}: "
            . $JSON->encode($m);
        $r->{failed} = $code;
        return;
    }
    if ($r->{kind} eq 'create') {
        $r->{chat}{id} = $m->{chatId};
        return;
    }
    # a send: stored
    my $mid = $m->{messageId} // '';
    my $cmid = $r->{cmid};
    $self->{dup_answers}++ if $m->{duplicate};
    if (defined $self->{cmid_mid}{$cmid}) {
        push @{ $self->{errors} }, "$d->{name}: $cmid stored twice:"
            . " $self->{cmid_mid}{$cmid} and $mid"
            if $self->{cmid_mid}{$cmid} ne $mid;
        return;
    }
    if ($self->{msgs}{$mid}) {
        push @{ $self->{errors} }, "$d->{name}: messageId $mid for both"
            . " $self->{msgs}{$mid}{cmid} and $cmid";
        return;
    }
    $self->{cmid_mid}{$cmid} = $mid;
    $self->{msgs}{$mid} = { cmid => $cmid, chat => $r->{chat},
        dev => $d->{name}, user => $d->{user}, devid => $d->{dev},
        seq => $m->{seq}, sent_at => ($m->{sentAt} // 0) / 1000,
        text => $r->{text}, tries => $r->{tries},
        duplicate => $m->{duplicate} ? 1 : 0,
        t_ok => $now, created => $r->{created} };
}

# --------------------------------------------------------------------------
# control

# stop reading from a device (a client that never reads)
sub pause {
    my ($self, $dev) = @_;
    my $d = ref $dev ? $dev : $self->dev($dev);
    $d->{paused} = 1;
}

# read again: what is buffered, and after the end of the connection a new
# one right away (with the default receive buffer)
sub resume {
    my ($self, $dev) = @_;
    my $d = ref $dev ? $dev : $self->dev($dev);
    $d->{paused} = 0;
    $d->{rcvbuf} = undef;           # new connections: the default buffer
    $d->{backoff} = $self->{backoff0};
    $d->{next_connect} = time if $d->{state} eq 'down';
}

# devices whose connection is open and answered its first command
sub ready_devices {
    my ($self) = @_;
    return grep { $_->{state} eq 'open' && $_->{registered} }
        @{ $self->{devs} };
}

sub all_ready {
    my ($self) = @_;
    return !grep { !($_->{state} eq 'open' && $_->{registered}) }
        @{ $self->{devs} };
}

# devices that lost a connection after time $since (and the close codes)
sub dropped_since {
    my ($self, $since) = @_;
    return grep { grep { $_->[0] >= $since } @{ $_->{close_log} } }
        @{ $self->{devs} };
}

# close codes (or eof, error, ...) seen after time $since: code => count
sub closes_since {
    my ($self, $since) = @_;
    my %c;
    for my $d (@{ $self->{devs} }) {
        $c{ $_->[1] }++ for grep { $_->[0] >= $since } @{ $d->{close_log} };
    }
    return \%c;
}

# jobs (sends, chat creations) not done yet
sub pending {
    my ($self) = @_;
    my $n = 0;
    for my $d (@{ $self->{devs} }) {
        $n += @{ $d->{queue} } + @{ $d->{later} }
            + grep { $_->{kind} ne 'ack' && $_->{kind} ne 'hello' }
              values %{ $d->{req} };
    }
    return $n;
}

sub acks_pending {
    my ($self) = @_;
    my $n = 0;
    for my $d (@{ $self->{devs} }) {
        $n += @{ $d->{ackq} }
            + grep { $_->{kind} eq 'ack' } values %{ $d->{req} };
    }
    return $n;
}

# [message, device] pairs not received yet
sub missing {
    my ($self) = @_;
    my @miss;
    for my $mid (sort { $a <=> $b } keys %{ $self->{msgs} }) {
        my $m = $self->{msgs}{$mid};
        for my $r ($self->recipients($m->{chat}, $m->{dev})) {
            push @miss, [ $mid, $r->{name} ] unless $r->{got}{$mid};
        }
    }
    return @miss;
}

sub deliveries_expected {
    my ($self) = @_;
    my $n = 0;
    for my $m (values %{ $self->{msgs} }) {
        $n += () = $self->recipients($m->{chat}, $m->{dev});
    }
    return $n;
}

# stop sending; pump until every send got ok, every message reached every
# recipient device and every ack was answered; 1 on success
sub drain {
    my ($self, $timeout) = @_;
    $self->sending(0);
    my $next = 0;
    return $self->pump_until(sub {
        return 0 if $self->pending || $self->acks_pending;
        return 0 if grep { $_->{paused} } @{ $self->{devs} };
        # the full check is costlier: at most every 200 ms
        return 0 if time < $next;
        $next = time + 0.2;
        return !$self->missing;
    }, $timeout // 60);
}

# the maximum and the number of end-to-end latencies (receipt time minus
# the server's sentAt) of first receipts of messages stored in [from, to)
sub latency {
    my ($self, $from, $to) = @_;
    my ($max, $n, @all) = (0, 0);
    for my $l (@{ $self->{lat} }) {
        next if $l->[0] < $from || $l->[0] >= $to;
        my $x = $l->[1] - $l->[0];
        $max = $x if $x > $max;
        $n++;
        push @all, $x;
    }
    @all = sort { $a <=> $b } @all;
    my $median = @all ? $all[ int($#all / 2) ] : 0;
    return wantarray ? ($max, $n, $median) : $max;
}

# responses to commands sent in [from, to): ([t_sent, t_answer, kind,
# code], ...)
sub responses {
    my ($self, $from, $to) = @_;
    return grep { $_->[0] >= $from && $_->[0] < $to } @{ $self->{resp} };
}

sub stats {
    my ($self) = @_;
    my $dups = $self->{dups} // 0;
    my %c = %{ $self->{closes} };
    my $reconnects = 0;
    $reconnects += $_->{connects} - 1 for @{ $self->{devs} };
    return sprintf('%d devices, %d chats, %d messages stored (%d generated),'
        . ' %d deliveries expected, %d duplicates dropped, %d unavailable,'
        . ' %d duplicate answers, %d reconnects, closes: %s%s',
        scalar @{ $self->{devs} }, scalar @{ $self->{chats} },
        scalar keys %{ $self->{msgs} }, $self->{nsent},
        $self->deliveries_expected, $dups, $self->{unavailable} // 0,
        $self->{dup_answers} // 0, $reconnects,
        join(' ', map { "$_=$c{$_}" } sort keys %c) || 'none',
        %{ $self->{hs_fail} } ? '; handshake failures: ' . join(' ',
            map { "$_=$self->{hs_fail}{$_}" } sort keys %{ $self->{hs_fail} })
            : '');
}

# the accounting, as tests: drain, then every send stored, every message
# received exactly once (after dedupe) by every recipient device and by
# no other, no error answers, and no inbox row left.  $c: the cluster (or
# anything with psql).  %o: drain => seconds, inbox => seconds, name.
sub check {
    my ($self, $c, %o) = @_;
    my $name = defined $o{name} ? "$o{name}: " : '';
    my $drained = $self->drain($o{drain} // 30);
    Test::More::ok($drained, "${name}traffic drained: every send answered,"
        . ' every message delivered, every ack answered')
        or Test::More::diag(sprintf '%d sends pending, %d acks pending,'
            . ' %d deliveries missing', $self->pending, $self->acks_pending,
            scalar $self->missing);

    my $stored = keys %{ $self->{msgs} };
    my $failed = 0;
    Test::More::ok($stored > 0 && !$self->pending,
        "${name}every send stored ($stored messages)")
        or Test::More::diag($self->pending . ' sends never got ok');

    my @errors = @{ $self->{errors} };
    Test::More::ok(!@errors, "${name}no error answers but unavailable")
        or Test::More::diag(join "\n", 'errors:',
            @errors[0 .. ($#errors < 19 ? $#errors : 19)]);

    my @miss = $self->missing;
    my $expected = $self->deliveries_expected;
    Test::More::ok(!@miss, "${name}every message reached every recipient"
        . " device ($expected deliveries)")
        or Test::More::diag(scalar(@miss) . " missing, e.g.:\n" . join "\n",
            map {
                my $m = $self->{msgs}{ $_->[0] };
                sprintf "  message %s (%s, chat %s seq %s, from %s,"
                    . " stored at %.3f, ok after %d tries%s) not received"
                    . " by %s",
                    $_->[0], $m->{cmid}, $m->{chat}{id}, $m->{seq},
                    $m->{dev}, $m->{sent_at}, $m->{tries},
                    $m->{duplicate} ? ', "duplicate":true' : '', $_->[1];
            } @miss[0 .. ($#miss < 19 ? $#miss : 19)]);

    # nothing that was not meant for a device, nothing unknown, and each
    # event what was sent
    my @bad;
    for my $d (@{ $self->{devs} }) {
        for my $mid (keys %{ $d->{got} }) {
            my $m = $self->{msgs}{$mid};
            if (!$m) {
                push @bad, "$d->{name} got message $mid that no send"
                    . ' stored';
                next;
            }
            push @bad, "$d->{name} got message $mid ($m->{cmid}) not"
                . ' meant for it'
                unless grep { $_ == $d } $self->recipients($m->{chat},
                    $m->{dev});
        }
    }
    for my $mid (keys %{ $self->{msgs} }) {
        my $m = $self->{msgs}{$mid};
        my $e = $self->{evinfo}{$mid} or next;
        push @bad, "message $mid: event says " . $JSON->encode($e)
            . " but $m->{cmid} was sent by $m->{dev} to chat"
            . " $m->{chat}{id} (seq $m->{seq})"
            unless ($e->{chatId} // '') eq $m->{chat}{id}
                && ($e->{senderId} // '') eq $m->{user}
                && ($e->{senderDevice} // '') eq $m->{devid}
                && ($e->{message} // '') eq $m->{text}
                && ($e->{seq} // '') eq $m->{seq}
                && ($e->{eventId} // '') eq $mid;
    }
    Test::More::ok(!@bad, "${name}no stray or altered deliveries")
        or Test::More::diag(join "\n", @bad[0 .. ($#bad < 19 ? $#bad : 19)]);

    my $dups = 0;
    my %per;
    for my $d (@{ $self->{devs} }) {
        for my $n (values %{ $d->{got} }) {
            next unless $n > 1;
            $dups += $n - 1;
            $per{ $d->{name} } += $n - 1;
        }
    }
    Test::More::diag("${name}$dups duplicate deliveries dropped by"
        . " messageId: " . join(' ', map { "$_=$per{$_}" } sort keys %per))
        if $dups;

    # every ack was answered: nothing may be left in the inbox
    my $left;
    my $gone = $self->pump_until(sub {
        $left = eval { $c->psql('SELECT count(*) FROM inbox') } // -1;
        return $left eq '0';
    }, $o{inbox} // 20);
    Test::More::ok($gone, "${name}no inbox row left after the final acks")
        or Test::More::diag("inbox rows left: $left; e.g.\n"
            . join "\n", eval { $c->psql('SELECT user_id, device_id,'
                . ' event_id, kind FROM inbox ORDER BY event_id LIMIT 10') });
    Test::More::diag("${name}" . $self->stats);
    return $drained && !@miss && !@bad && !@errors && $gone;
}

# close every connection with 1000 and wait (bounded) for the ends
sub close_all {
    my ($self, $timeout) = @_;
    $self->{stopping} = 1;
    $self->{sending} = 0;
    for my $d (@{ $self->{devs} }) {
        $d->{paused} = 0;
        if ($d->{state} eq 'open') {
            $self->send_frame($d, 0x8, pack 'n', 1000);
            $d->{state} = 'closing';
            $d->{t_closing} = time;
        } elsif ($d->{sock}) {
            $self->drop($d, 'stop');
        }
    }
    $self->pump_until(sub { !%{ $self->{fds} } }, $timeout // 10);
    $self->drop($_, 'stop') for grep { $_->{sock} } @{ $self->{devs} };
}

1;
