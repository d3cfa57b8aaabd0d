package ChatTest;

# ChatTest: the integration test harness for ngx_chat_module, in the spirit
# of nginx-tests' Test::Nginx (which we cannot install).  It owns a temporary
# folder per test file, writes nginx.conf around an http{} snippet, starts
# and stops Debian's nginx with the module loaded, gives every test its own
# PostgreSQL database (from the template "chat_template") and Redis channel
# prefix, mints JWTs, speaks raw HTTP/1.1, and at the end checks error.log
# (and nginx's stderr) for [alert]/[emerg] lines and sanitizer reports.
#
#   my $t = ChatTest->new(workers => 1);
#   $t->conf(<<'EOF')->run;
#       chat_jwt_secret_file %%SECRET%%;
#       chat_postgres "%%PG%%";
#       chat_redis %%REDIS%%;
#       server { listen 127.0.0.1:%%PORT%%;
#                location = /chat { chat_websocket; } }
#   EOF
#   # or, the usual server (/chat, /chat/admin/token) with extra directives:
#   $t->chat_conf(http => 'chat_ping_interval 1s;')->run;
#   ...
#   $t->done_testing;          # or $t->plan(N) first (adds 2 tests)
#
# Placeholders in conf(): %%PORT%% %%TESTDIR%% %%SECRET%% (secret file)
# %%PG%% (conninfo of this test's own database) %%REDIS%% ("127.0.0.1:port
# prefix=t<pid>_<n>:") %%REDIS_ADDR%% %%REDIS_PREFIX%%.
# Also: stop (SIGQUIT, bounded wait), reload (SIGHUP), signal, wait_exit,
# worker_pids, psql($sql) on the test database, private_pg/private_redis
# (instances of this test's own, with start/stop/kill), token(...) and
# decode_token, http(...), grep_log/wait_log.  Clients: ChatTest::WS.
#
# Environment:
#   CHAT_MODULE           path of ngx_chat_module.so ("" or "none": load
#                         no module, to test the harness on plain nginx)
#   CHAT_TEST_NGINX       nginx binary (default /usr/sbin/nginx)
#   CHAT_TEST_LEAVE=1     keep the temporary folder
#   CHAT_TEST_DEBUG=1     error_log at debug level
#   CHAT_TEST_PRELOAD     LD_PRELOAD for nginx only (ASan runs)
#   CHAT_TEST_PGHOST, CHAT_TEST_PGPORT, CHAT_TEST_PGUSER,
#   CHAT_TEST_REDIS_PORT  shared services (scripts/test); without them each
#                         test file starts its own with scripts/services
#   CHAT_TEST_VERBOSE=1   diag what the harness does

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256);
use Errno qw(EINTR);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Test::More ();
use Test2::API ();
use Time::HiRes qw(time sleep);

our $VERSION = '0.1';

our $REPO = abs_path(dirname(__FILE__) . '/../..');
our $NGINX = $ENV{CHAT_TEST_NGINX} || '/usr/sbin/nginx';
our $PGBIN = '/usr/lib/postgresql/15/bin';

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
my $instances = 0;
my %live;                 # ChatTest objects not yet finished, for END

$SIG{PIPE} = 'IGNORE';

sub json { $JSON }

sub verbose { diag_(@_) if $ENV{CHAT_TEST_VERBOSE} }
sub diag_ { Test::More::diag(join '', @_) }

sub module_path {
    return $ENV{CHAT_MODULE} if defined $ENV{CHAT_MODULE};
    return "$REPO/build/nginx/objs/ngx_chat_module.so";
}

sub new {
    my ($class, %args) = @_;

    my $self = bless {
        workers  => $args{workers} // 1,
        n        => ++$instances,
        services => undef,
        private  => [],
        checked  => 0,
        reloads  => 0,
    }, $class;

    my $module = module_path();
    $module = '' if $module eq 'none';
    if ($module ne '' && !-f $module && !$args{no_module_ok}) {
        Test::More::plan(skip_all => "module not built: $module "
            . '(make module, or CHAT_MODULE=path)');
    }
    $self->{module} = $module;

    $self->{dir} = tempdir('chat-test-XXXXXX', TMPDIR => 1,
        CLEANUP => !$ENV{CHAT_TEST_LEAVE});
    # nginx workers run as nobody and the services' unix sockets live in
    # subfolders: let everyone traverse
    chmod 0755, $self->{dir};
    Test::More::diag("test dir: $self->{dir}") if $ENV{CHAT_TEST_LEAVE};

    $self->{port} = free_port();

    # the JWT secret: 48 printable bytes, written with a trailing newline
    # that the module must strip
    my $raw = '';
    if (open my $rnd, '<:raw', '/dev/urandom') {
        read $rnd, $raw, 36;
        close $rnd;
    }
    $raw .= chr(int rand 256) while length $raw < 36;
    $self->{secret} = encode_base64($raw, '');
    $self->{secret} =~ tr{+/}{-_};
    $self->write_file('secret', $self->{secret} . "\n");
    chmod 0644, "$self->{dir}/secret";

    $self->{prefix} = "t$$" . "_$self->{n}:";

    $live{"$self"} = $self;
    return $self;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }
sub secret { $_[0]{secret} }
sub secret_file { "$_[0]{dir}/secret" }
sub error_log { "$_[0]{dir}/error.log" }
sub redis_prefix { $_[0]{prefix} }
sub has_module { $_[0]{module} ne '' }
sub pid { $_[0]{pid} }

# --------------------------------------------------------------------------
# Test::More plumbing: like nginx-tests, plan() adds the error.log checks

sub plan {
    my ($self, $n) = @_;
    Test::More::plan(tests => $n + 2);
    return $self;
}

sub done_testing {
    my ($self) = @_;
    $self->finish;
    Test::More::done_testing();
}

# stop nginx, run the error.log checks, drop the database, stop private
# services; idempotent
sub finish {
    my ($self) = @_;
    return if $self->{checked}++;
    delete $live{"$self"};

    $self->stop if $self->{pid};

    my @bad = $self->grep_log(qr/\[(?:alert|emerg)\]/);
    Test::More::ok(!@bad, 'no alerts in error.log')
        or diag_("error.log:\n", map { "  $_\n" } @bad[0 .. min(19, $#bad)]);

    my @san = $self->sanitizer_lines;
    Test::More::ok(!@san, 'no sanitizer reports in error.log')
        or diag_("sanitizer:\n", map { "  $_\n" } @san[0 .. min(39, $#san)]);

    $self->cleanup;
}

sub min { $_[0] < $_[1] ? $_[0] : $_[1] }

my $SANITIZER = qr/AddressSanitizer|LeakSanitizer|ThreadSanitizer|
    UndefinedBehaviorSanitizer|runtime\ error:|Sanitizer|^\s+\#\d+\ 0x/x;

# sanitizer reports (with their stack frames) in error.log and in nginx's
# own stderr (ASan writes to fd 2, which is not always error.log)
sub sanitizer_lines {
    my ($self) = @_;
    return ($self->grep_log($SANITIZER), $self->grep_log($SANITIZER, 'stderr'));
}

sub bad_log_lines {
    my ($self) = @_;
    my @l = ($self->grep_log(qr/\[(?:alert|emerg)\]/), $self->sanitizer_lines);
    return @l[0 .. min(39, $#l)];
}

sub cleanup {
    my ($self) = @_;

    $self->kill_nginx if $self->{pid};

    if ($self->{db} && $self->{db_created}) {
        eval { $self->admin_psql("DROP DATABASE IF EXISTS \"$self->{db}\""
            . " WITH (FORCE)") };
        diag_("dropping $self->{db}: $@") if $@;
        $self->{db_created} = 0;
    }
    for my $svc (@{ $self->{private} }) {
        eval { $svc->kill(q{CONT}, all => 1); $svc->stop };
    }
    $self->{private} = [];
    if ($self->{own_services}) {
        my $out = `'$REPO/scripts/services' stop '$self->{own_services}' 2>&1`;
        diag_("scripts/services stop failed: $out") if $? != 0;
        delete $self->{own_services};
    }
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    return if $self->{destroyed}++;
    return if $self->{checked};

    # finish() was not called (the test died, or is at an end without
    # $t->done_testing): run the checks when tests may still be added,
    # otherwise clean up and show what the checks would have found
    my $plan = eval { Test2::API::test2_stack()->top->plan };
    my $tb = Test::More->builder;
    if (defined $plan && ($plan eq 'SKIP'
        || ($plan =~ /^\d+$/ && $tb->current_test >= $plan)))
    {
        $self->{checked} = 1;
        $self->stop if $self->{pid};
        my @bad = $self->bad_log_lines;
        diag_("error.log problems:\n", map { "  $_\n" } @bad) if @bad;
        $self->cleanup;
        return;
    }
    $self->finish;
}

END {
    for my $self (values %live) {
        local $?;
        $self->DESTROY;
    }
}

# --------------------------------------------------------------------------
# files and ports

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '>:raw', $path or die "can't write $path: $!";
    print $fh $content;
    close $fh or die "can't write $path: $!";
    return $path;
}

sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $c = <$fh>;
    close $fh;
    return $c;
}

# lines of error.log matching $re
sub grep_log {
    my ($self, $re, $file) = @_;
    my $log = $self->read_file($file // 'error.log') // '';
    return grep { $_ =~ $re } split /\n/, $log;
}

# bounded wait until error.log has a line matching $re; returns the line
sub wait_log {
    my ($self, $re, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        my @l = $self->grep_log($re);
        return $l[0] if @l;
        return undef if time > $deadline;
        sleep 0.05;
    }
}

# a free TCP port on 127.0.0.1 in 20000-45000, checked with a bind
sub free_port {
    for (1 .. 500) {
        my $p = 20000 + int rand 25001;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $p, Proto => 'tcp', Listen => 1,
            ReuseAddr => 1);
        next unless $s;
        close $s;
        # and nothing listens there on another address either
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $p, Proto => 'tcp', Timeout => 1);
        next if $c;
        return $p;
    }
    die "no free port";
}

# --------------------------------------------------------------------------
# services: the shared ones from the environment, or our own

sub services {
    my ($self) = @_;
    return $self->{services} if $self->{services};

    if ($ENV{CHAT_TEST_PGPORT} && $ENV{CHAT_TEST_REDIS_PORT}) {
        $self->{services} = {
            pghost => $ENV{CHAT_TEST_PGHOST} || '127.0.0.1',
            pgport => $ENV{CHAT_TEST_PGPORT},
            pguser => $ENV{CHAT_TEST_PGUSER} || 'postgres',
            redis_port => $ENV{CHAT_TEST_REDIS_PORT},
        };
        return $self->{services};
    }

    my $dir = "$self->{dir}/services";
    verbose("starting private services in $dir");
    my $out = `'$REPO/scripts/services' start '$dir' 2>&1`;
    if ($? != 0) {
        die "scripts/services start failed:\n$out";
    }
    $self->{own_services} = $dir;
    my %env = read_env("$dir/env");
    $self->{services} = {
        pghost => $env{CHAT_TEST_PGHOST},
        pgport => $env{CHAT_TEST_PGPORT},
        pguser => $env{CHAT_TEST_PGUSER},
        redis_port => $env{CHAT_TEST_REDIS_PORT},
    };
    return $self->{services};
}

sub read_env {
    my ($file) = @_;
    my %env;
    open my $fh, '<', $file or die "can't read $file: $!";
    while (<$fh>) {
        chomp;
        $env{$1} = $2 if /^(\w+)=(.*)$/;
    }
    return %env;
}

sub redis_port { $_[0]->services->{redis_port} }
sub redis_addr { '127.0.0.1:' . $_[0]->services->{redis_port} }

# the %%REDIS%% expansion: address plus this test's channel prefix
sub redis_conf {
    my ($self) = @_;
    return $self->redis_addr . " prefix=$self->{prefix}";
}

# the per-test database, created on first use from chat_template
sub db {
    my ($self) = @_;
    return $self->{db} if $self->{db_created};
    my $s = $self->services;
    $self->ensure_template;
    my $db = "t_$$" . "_$self->{n}";
    my $deadline = time + 30;
    while (1) {
        my $err = eval {
            $self->admin_psql("CREATE DATABASE \"$db\" TEMPLATE chat_template");
            1;
        } ? '' : $@;
        last if $err eq '';
        # the template is briefly busy while another test clones it
        die "CREATE DATABASE $db: $err"
            if $err !~ /being accessed by other users/ || time > $deadline;
        sleep 0.1;
    }
    $self->{db} = $db;
    $self->{db_created} = 1;
    return $db;
}

sub pg_conninfo {
    my ($self) = @_;
    my $s = $self->services;
    my $db = $self->db;
    return "host=$s->{pghost} port=$s->{pgport} user=$s->{pguser}"
        . " dbname=$db";
}

# psql on the service's "postgres" database
sub admin_psql {
    my ($self, $sql) = @_;
    my $s = $self->services;
    return run_psql($s->{pghost}, $s->{pgport}, $s->{pguser}, 'postgres',
        $sql);
}

# $t->psql($sql): rows of the test database, "|"-separated in list context;
# the first row in scalar context; dies on error
sub psql {
    my ($self, $sql) = @_;
    my $s = $self->services;
    return run_psql($s->{pghost}, $s->{pgport}, $s->{pguser}, $self->db,
        $sql);
}

# slow_messages(prefix => seconds, ...): PostgreSQL sleeps that long on
# every message whose body starts with prefix (a trigger in the test's
# own database), to make the gateway's sends slow without timing them
sub slow_messages {
    my ($self, %delay) = @_;
    my $cases = join '', map {
        sprintf "    IF NEW.body LIKE '%s%%' THEN\n"
            . "        PERFORM pg_sleep(%s);\n    END IF;\n",
            $_, $delay{$_} } sort keys %delay;
    return $self->psql(<<SQL);
CREATE FUNCTION t_slow_messages() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
$cases    RETURN NEW;
END \$\$;
CREATE TRIGGER t_slow_messages BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION t_slow_messages();
SQL
}

sub run_psql {
    my ($host, $port, $user, $db, $sql) = @_;
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec "$PGBIN/psql", '-X', '-A', '-t', '-q', '-F', '|',
            '-v', 'ON_ERROR_STOP=1', '-h', $host, '-p', $port, '-U', $user,
            '-d', $db, '-c', $sql;
        exit 127;
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    die "psql: $out" if $? != 0;
    my @rows = split /\n/, $out;
    return wantarray ? @rows : $rows[0];
}

# chat_template exists and is migrated; created under a file lock so that
# parallel test files (prove -j) do it once
sub ensure_template {
    my ($self) = @_;
    my $s = $self->services;
    my $exists = sub {
        scalar $self->admin_psql(
            "SELECT 1 FROM pg_database WHERE datname = 'chat_template'");
    };
    return if $exists->();

    # beside the PostgreSQL socket when that is a folder (it goes away with
    # the services), else in /tmp
    my $lockfile = $s->{pghost} =~ m{^/} && -d $s->{pghost} && -w _
        ? "$s->{pghost}/chat_template.lock"
        : "/tmp/chat-test-template-$s->{pgport}.lock";
    open my $lock, '>>', $lockfile or die "can't open $lockfile: $!";
    flock $lock, LOCK_EX or die "flock: $!";
    if (!$exists->()) {
        verbose("creating chat_template");
        $self->admin_psql('DROP DATABASE IF EXISTS chat_template_new');
        $self->admin_psql('CREATE DATABASE chat_template_new');
        migrate($s->{pghost}, $s->{pgport}, $s->{pguser},
            'chat_template_new');
        $self->admin_psql('ALTER DATABASE chat_template_new'
            . ' RENAME TO chat_template');
        $self->admin_psql('ALTER DATABASE chat_template IS_TEMPLATE true');
    }
    close $lock;
}

# run scripts/migrate on a database; without it (not written yet), apply
# sql/*.sql in order
sub migrate {
    my ($host, $port, $user, $db) = @_;
    local $ENV{PGHOST} = $host;
    local $ENV{PGPORT} = $port;
    local $ENV{PGUSER} = $user;
    local $ENV{PGDATABASE} = $db;
    if (-x "$REPO/scripts/migrate") {
        my $out = `'$REPO/scripts/migrate' 2>&1`;
        die "scripts/migrate failed:\n$out" if $? != 0;
        return;
    }
    my @sql = sort glob "$REPO/sql/*.sql";
    diag_("scripts/migrate missing: applying sql/*.sql directly");
    for my $f (@sql) {
        my $out = `'$PGBIN/psql' -X -q -v ON_ERROR_STOP=1 -f '$f' 2>&1`;
        die "psql -f $f failed:\n$out" if $? != 0;
    }
}

# --------------------------------------------------------------------------
# nginx

sub expand {
    my ($self, $text) = @_;
    $text =~ s/%%PORT%%/$self->{port}/g;
    $text =~ s/%%TESTDIR%%/$self->{dir}/g;
    $text =~ s/%%SECRET%%/$self->secret_file/ge;
    $text =~ s/%%PG%%/$self->pg_conninfo/ge;
    $text =~ s/%%REDIS%%/$self->redis_conf/ge;
    $text =~ s/%%REDIS_ADDR%%/$self->redis_addr/ge;
    $text =~ s/%%REDIS_PREFIX%%/$self->{prefix}/g;
    return $text;
}

# $t->conf($http_snippet, main => $main_snippet)
sub conf {
    my ($self, $http, %o) = @_;
    my $dir = $self->{dir};
    my $level = $ENV{CHAT_TEST_DEBUG} ? 'debug' : 'info';
    my $load = $self->{module} ne '' ? "load_module $self->{module};\n" : '';
    my $main = $o{main} // '';
    my $workers = $o{workers} // $self->{workers};
    my $conf = <<EOF;
# generated by t/lib/ChatTest.pm
$load
daemon off;
master_process on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log $level;
$main

events {
    worker_connections 1024;
}

http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;

$http
}
EOF
    $self->write_file('nginx.conf', $self->expand($conf));
    return $self;
}

# $t->chat_conf(%o): conf() with the usual chat server:
#   http => extra http{} directives, server => extra server{} directives,
#   listen => extra listen parameters (" sndbuf=4k"),
#   pg => conninfo (default %%PG%%), pool => N (default 2),
#   redis => "host:port prefix=..." (default %%REDIS%%),
#   main => main-context directives, workers => N
sub chat_conf {
    my ($self, %o) = @_;
    my $pg = $o{pg} // '%%PG%%';
    my $redis = $o{redis} // '%%REDIS%%';
    my $pool = $o{pool} // 2;
    my $http = $o{http} // '';
    my $server = $o{server} // '';
    my $listen = $o{listen} // '';
    return $self->conf(<<EOF, main => $o{main}, workers => $o{workers});
    chat_jwt_secret_file %%SECRET%%;
    chat_postgres "$pg" pool=$pool;
    chat_redis $redis;
$http
    server {
        listen 127.0.0.1:%%PORT%%$listen;
        server_name localhost;

        location = /chat {
            chat_websocket;
        }

        location = /chat/admin/token {
            chat_admin_token;
        }

        location / {
            return 404;
        }
$server
    }
EOF
}

# $t->sample_conf(%o): nginx.conf made from conf/chat.conf, the sample
# configuration `make run` uses (media, the web chat at /, the SDK at
# /sdk/, the token endpoint), with this test's port, folder, database and
# Redis prefix.  The served files (clients/web, clients/js/src) are copied
# into the test folder, which nginx's workers can read wherever the
# repository is.  o: workers => N (instead of "auto")
sub sample_conf {
    my ($self, %o) = @_;
    my $dir = $self->{dir};
    my $conf = $self->read_file("$REPO/conf/chat.conf")
        // die "can't read conf/chat.conf";
    for my $sub ('clients/web', 'clients/js/src') {
        system('mkdir', '-p', "$dir/top/$sub") == 0 or die "mkdir failed";
        system("cp -R '$REPO/$sub/.' '$dir/top/$sub/'") == 0
            or die "cp $sub failed";
    }
    system('chmod', '-R', 'a+rX', "$dir/top") == 0 or die "chmod failed";
    my $pg = 'chat_postgres "' . $self->pg_conninfo . '"';
    my $redis = 'chat_redis ' . $self->redis_conf . ';';
    $conf =~ s/%%MODULE%%/$self->{module}/g;
    $conf =~ s/%%VAR%%/$dir/g;
    $conf =~ s/%%TOP%%/$dir\/top/g;
    $conf =~ s/%%PORT%%/$self->{port}/g;
    $conf =~ s/chat_postgres "[^"]*"/$pg/ or die "no chat_postgres";
    $conf =~ s/chat_redis [^;]*;/$redis/ or die "no chat_redis";
    my $secret = 'chat_jwt_secret_file ' . $self->secret_file . ';';
    $conf =~ s/chat_jwt_secret_file [^;]*;/$secret/ or die "no secret";
    $conf =~ s/worker_processes auto;/worker_processes $o{workers};/
        if $o{workers};
    die "placeholders left in conf/chat.conf" if $conf =~ /%%\w+%%/;
    $self->write_file('nginx.conf', $conf);
    return $self;
}

# $t->node_tests(dir => DIR, files => [...], env => {...}, min => N,
#     timeout => seconds): runs Node's test runner (node --test, TAP
# reporter, one file at a time) in DIR and reports each of its top-level
# tests as one test here, with the failure's details as diag.  Fails when
# a test is skipped, when fewer than min tests ran, or when node fails.
sub node_tests {
    my ($self, %o) = @_;
    my $out = "$self->{dir}/node-tests.tap";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        chdir $o{dir} or die "chdir $o{dir}: $!";
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} // {} };
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or die "$out: $!";
        open STDERR, '>&', \*STDOUT;
        exec 'timeout', '-k', '10', $o{timeout} // 600, 'node', '--test',
            '--test-reporter=tap', '--test-concurrency=1', @{ $o{files} };
        exit 127;
    }
    waitpid $pid, 0;
    my $status = $? >> 8;
    my @lines = split /\n/, $self->read_file($out) // '';
    my ($n, $detail) = (0, undef);
    my $report = sub {
        return unless $detail;
        my ($ok, $name, @why) = @$detail;
        Test::More::ok($ok, "node: $name")
            or diag_(join "\n", grep { !/^\s*(?:at |duration_ms)/ } @why);
        $detail = undef;
    };
    for my $l (@lines) {
        if ($l =~ /^(not )?ok \d+ - (.*?)(\s+# (SKIP|TODO)\b.*)?$/) {
            $report->();
            $n++;
            $detail = [ !$1 && !$3, $2 . ($3 ? ' (skipped: fails)' : '') ];
        } elsif ($detail && $l =~ /^\s+\S/) {
            push @$detail, $l;
        } else {
            $report->();
        }
    }
    $report->();
    Test::More::cmp_ok($n, '>=', $o{min} // 1, "node ran $n tests");
    Test::More::is($status, 0, 'node --test exited with 0')
        or diag_(join "\n", @lines[-(@lines > 30 ? 30 : @lines) .. -1]);
    return $self;
}

# start nginx; dies (failing the test) with the log tail when it can't
sub run {
    my ($self) = @_;
    die "nginx already running" if $self->{pid};
    my $dir = $self->{dir};
    unlink "$dir/nginx.pid";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/stderr";
        open STDERR, '>>', "$dir/stderr";
        $ENV{LD_PRELOAD} = $ENV{CHAT_TEST_PRELOAD}
            if $ENV{CHAT_TEST_PRELOAD};
        exec $NGINX, '-p', "$dir/", '-c', "$dir/nginx.conf",
            '-e', "$dir/error.log";
        exit 127;
    }
    $self->{pid} = $pid;

    my $deadline = time + 15;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $st = $?;
            delete $self->{pid};
            # this machine's ephemeral range covers every port: a client
            # socket may have taken ours since we picked it; pick again
            if (($self->{port_retries} // 0) < 5
                && $self->read_file("$dir/stderr") =~ /Address already in use/)
            {
                $self->{port_retries}++;
                my $old = $self->{port};
                my $new = free_port();
                my $conf = $self->read_file("$dir/nginx.conf");
                $conf =~ s/127\.0\.0\.1:$old\b/127.0.0.1:$new/g;
                $self->write_file('nginx.conf', $conf);
                $self->{port} = $new;
                for my $f ("$dir/stderr", "$dir/error.log") {
                    open my $fh, '>', $f;
                    close $fh;
                }
                verbose("port $old was taken, retrying on $new");
                return $self->run;
            }
            die "nginx exited at start (status $st):\n" . $self->log_tail;
        }
        if (-s "$dir/nginx.pid") {
            my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $self->{port}, Proto => 'tcp');
            if ($c) {
                close $c;
                last;
            }
        }
        if (time > $deadline) {
            $self->kill_nginx;
            die "nginx did not listen on $self->{port} in 15s:\n"
                . $self->log_tail;
        }
        sleep 0.02;
    }
    verbose("nginx $pid listening on $self->{port}");
    return $self;
}

# like run, but skip the whole test file when nginx does not start
sub try_run {
    my ($self, $why) = @_;
    eval { $self->run };
    if ($@) {
        Test::More::plan(skip_all => "$why: $@");
    }
    return $self;
}

sub log_tail {
    my ($self) = @_;
    my $out = '';
    for my $f (qw(stderr error.log)) {
        my $c = $self->read_file($f) // next;
        my @l = split /\n/, $c;
        @l = @l[-20 .. -1] if @l > 20;
        $out .= "--- $f\n" . join('', map { "$_\n" } @l);
    }
    return $out;
}

sub signal {
    my ($self, $sig) = @_;
    return 0 unless $self->{pid};
    return kill $sig, $self->{pid};
}

# graceful stop: SIGQUIT, then wait (bounded); SIGKILL and a failing test
# when nginx does not exit in time
sub stop {
    my ($self, %o) = @_;
    my $pid = $self->{pid} or return 1;
    my $timeout = $o{timeout} // 20;
    kill 'QUIT', $pid unless $o{no_signal};
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) {
            delete $self->{pid};
            $self->{exit_status} = $?;
            $self->reap_group($pid);
            return 1;
        }
        sleep 0.02;
    }
    Test::More::ok(0, "nginx exits within ${timeout}s of SIGQUIT");
    $self->kill_nginx;
    return 0;
}

# wait for an already-signalled nginx to exit; returns 1 if it did
sub wait_exit {
    my ($self, $timeout) = @_;
    return $self->stop(timeout => $timeout, no_signal => 1);
}

sub kill_nginx {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'KILL', -$pid;
    kill 'KILL', $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        last if $r == $pid || $r == -1;
        sleep 0.02;
    }
    $self->reap_group($pid);
}

# workers left behind by a master that died: kill the process group
sub reap_group {
    my ($self, $pgid) = @_;
    my $deadline = time + 5;
    while (kill 0, -$pgid) {
        if (time > $deadline) {
            kill 'KILL', -$pgid;
            last;
        }
        sleep 0.02;
    }
}

# SIGHUP and wait until the master has started the new workers
sub reload {
    my ($self, %o) = @_;
    my $before = () = $self->grep_log(qr/reconfiguring/);
    $self->signal('HUP') or die "no nginx to reload";
    my $deadline = time + ($o{timeout} // 10);
    while (1) {
        my $n = () = $self->grep_log(qr/reconfiguring/);
        return 1 if $n > $before;
        return 0 if time > $deadline;
        sleep 0.02;
    }
}

# pids of the worker processes (children of the master)
sub worker_pids {
    my ($self) = @_;
    my $pid = $self->{pid} or return ();
    my @w;
    for my $st (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $st or next;
        my $l = <$fh> // next;
        close $fh;
        # pid (comm) state ppid
        push @w, $1 if $l =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $pid;
    }
    return @w;
}

# the pid of the nginx worker serving this client: the server side of the
# TCP connection in /proc/net/tcp, then the worker holding that socket
sub worker_of {
    my ($self, $ws) = @_;
    my $local = sprintf '0100007F:%04X', $self->{port};
    my $peer = sprintf '0100007F:%04X', $ws->socket->sockport;
    my $inode;
    open my $fh, '<', '/proc/net/tcp' or return undef;
    while (my $line = <$fh>) {
        my @f = split ' ', $line;
        next unless @f > 9 && $f[1] eq $local && $f[2] eq $peer;
        $inode = $f[9];
        last;
    }
    close $fh;
    return undef unless $inode;
    for my $pid ($self->worker_pids) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink $fd // next;
            return $pid if $l eq "socket:[$inode]";
        }
    }
    return undef;
}

# --------------------------------------------------------------------------
# tokens

# a connected and registered device: its first response means the device
# row is written, so events committed from then on reach it
# two_in_a_chat(): alice/phone and bob/phone, connected, and the id of a
# chat alice created with bob (0 if that failed: the caller's test fails)
sub two_in_a_chat {
    my ($self) = @_;
    my $alice = $self->client('alice', 'phone');
    my $bob = $self->client('bob', 'phone');
    my $r = $alice->cmd('createChat', participants => ['bob']);
    return ($alice, $bob, $r && $r->{ok} ? $r->{chatId} : 0);
}

# code_of($response): "ok", the error code, or "no response"
sub code_of {
    my ($r) = @_;
    return $r ? ($r->{error} ? $r->{error}{code} : 'ok') : 'no response';
}

sub client {
    my ($self, $user, $device, %o) = @_;
    require ChatTest::WS;
    my $ws = ChatTest::WS->connect($self, user => $user, device => $device,
        %o);
    my $r = $ws->cmd('ping');
    die "$user/$device: no answer to the first ping\n"
        unless $r && $r->{ok};
    return $ws;
}

# $t->curl(%o): an HTTP request by the curl command line tool (the media
# tests' plain HTTP client); returns (status, file with the body), or the
# status alone in scalar context.  o: url, method, file (the body to
# upload), headers ({name => value} or ["Name: value", ...]), range, out
# (the body file; default a new one in the test folder, with the response
# headers in <out>.h), cacert
sub curl {
    my ($self, %o) = @_;
    my $out = $o{out} // "$self->{dir}/curl." . ++$self->{curls};
    my @cmd = ('curl', '-s', '-o', $out, '-w', '%{http_code}',
        '--max-time', '30');
    push @cmd, '--cacert', $o{cacert} if $o{cacert};
    push @cmd, '-X', $o{method} if $o{method};
    push @cmd, '--data-binary', "\@$o{file}" if $o{file};
    push @cmd, '-r', $o{range} if $o{range};
    my $h = $o{headers} // [];
    push @cmd, '-H', $_ for ref $h eq 'HASH'
        ? map { "$_: $h->{$_}" } sort keys %$h : @$h;
    push @cmd, '-D', "$out.h", $o{url};
    open my $fh, '-|', @cmd or die "curl: $!";
    local $/;
    my $code = <$fh>;
    close $fh;
    return wantarray ? ($code, $out) : $code;
}

# true once $cond->() is, false if not within $timeout seconds: a bounded
# wait on state the test can observe (the database, a log), checked every
# $step seconds
sub poll {
    my ($cond, $timeout, $step) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        return 1 if $cond->();
        return 0 if time > $deadline;
        sleep($step // 0.05);
    }
}

sub b64url {
    my ($s) = @_;
    my $b = encode_base64($s, '');
    $b =~ tr{+/}{-_};
    $b =~ s/=+$//;
    return $b;
}

sub b64url_decode {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

# $t->token(user => 'alice', device => 'phone', exp => time + 3600,
#     secret => ..., claims => {...extra or overriding...},
#     header => {...}, payload => 'raw json', signature => 'raw b64')
# Claims set to undef in "claims" are left out.
sub token {
    my ($self, %o) = @_;
    my $secret = exists $o{secret} ? $o{secret} : $self->{secret};
    my %claims = (
        sub => $o{user} // 'alice',
        dev => $o{device} // 'phone',
        exp => $o{exp} // int(time) + 3600,
    );
    if ($o{claims}) {
        for my $k (keys %{ $o{claims} }) {
            if (defined $o{claims}{$k}) {
                $claims{$k} = $o{claims}{$k};
            } else {
                delete $claims{$k};
            }
        }
    }
    my $header = $o{header} // { alg => 'HS256', typ => 'JWT' };
    my $h = b64url(ref $header ? $JSON->encode($header) : $header);
    my $p = b64url($o{payload} // $JSON->encode(\%claims));
    my $sig = exists $o{signature} ? $o{signature}
        : b64url(hmac_sha256("$h.$p", $secret));
    return "$h.$p.$sig";
}

# ($header, $claims, $signature_ok) of a JWT, checked with our secret
sub decode_token {
    my ($self, $jwt, $secret) = @_;
    my ($h, $p, $s) = split /\./, $jwt // '', -1;
    return () unless defined $s;
    my $header = eval { $JSON->decode(b64url_decode($h)) };
    my $claims = eval { $JSON->decode(b64url_decode($p)) };
    my $ok = b64url(hmac_sha256("$h.$p", $secret // $self->{secret})) eq $s;
    return ($header, $claims, $ok ? 1 : 0);
}

# --------------------------------------------------------------------------
# raw HTTP/1.1

# $t->http($method, $path, \@headers_or_\%headers, $body, %opt)
#   -> ($status, \%headers (lowercase names, repeated ones joined with
#      ", "), $body)
# A 101 answer returns right after the header.  %opt: timeout, raw (send
# these bytes as the whole request), host.
sub http {
    my ($self, $method, $path, $headers, $body, %o) = @_;
    my $req = $o{raw};
    if (!defined $req) {
        my @h = ref $headers eq 'HASH' ? %$headers : @{ $headers // [] };
        my %have;
        for (my $i = 0; $i < @h; $i += 2) { $have{lc $h[$i]} = 1 }
        $req = "$method $path HTTP/1.1\r\n";
        $req .= "Host: " . ($o{host} // "127.0.0.1:$self->{port}") . "\r\n"
            unless $have{host};
        $req .= "Connection: close\r\n" unless $have{connection};
        $req .= "Content-Length: " . length($body) . "\r\n"
            if defined $body && !$have{'content-length'};
        for (my $i = 0; $i < @h; $i += 2) {
            $req .= "$h[$i]: $h[$i + 1]\r\n";
        }
        $req .= "\r\n";
        $req .= $body if defined $body;
    }

    my $timeout = $o{timeout} // 10;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $o{port} // $self->{port}, Proto => 'tcp',
        Timeout => $timeout) or die "connect: $!";
    $s->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    my $deadline = time + $timeout;
    write_all($s, $req, $deadline) or die "http: write failed: $!";

    my $sel = IO::Select->new($s);
    my $buf = '';
    my ($status, %h, $hlen);
    while (1) {
        if (!defined $hlen && (my $i = index($buf, "\r\n\r\n")) >= 0) {
            $hlen = $i + 4;
            my @lines = split /\r\n/, substr($buf, 0, $i);
            my $sl = shift @lines;
            ($status) = $sl =~ m{^HTTP/1\.[01] (\d{3})}
                or die "bad status line: $sl";
            for (@lines) {
                my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
                $k = lc $k;
                $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
            }
            last if $status == 101;
            last if $method eq 'HEAD' || $status == 204 || $status == 304;
            if (defined $h{'content-length'}
                && length($buf) - $hlen >= $h{'content-length'})
            {
                last;
            }
        }
        my $left = $deadline - time;
        last if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $s, $buf, 65536, length $buf;
        last if !$n;
    }
    close $s;
    return (undef, {}, $buf) unless defined $status;

    my $b = substr $buf, $hlen;
    if ($status != 101 && ($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($b =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr $b, 0, $len, '';
            $b =~ s/^\r\n//;
        }
        $b = $out;
    } elsif (defined $h{'content-length'}) {
        $b = substr $b, 0, $h{'content-length'};
    }
    $b = '' if $status == 101;
    return ($status, \%h, $b);
}

# write everything before the deadline on a (possibly non-blocking) socket
sub write_all {
    my ($s, $data, $deadline) = @_;
    my $sel = IO::Select->new($s);
    my $off = 0;
    while ($off < length $data) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite $s, $data, length($data) - $off, $off;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            return 0;
        }
        $off += $n;
    }
    return 1;
}

# --------------------------------------------------------------------------
# private service instances, for tests that stop and restart them

sub private_pg {
    my ($self, %o) = @_;
    my $svc = ChatTest::Service->new($self, 'pg', %o);
    push @{ $self->{private} }, $svc;
    return $svc;
}

sub private_redis {
    my ($self, %o) = @_;
    my $svc = ChatTest::Service->new($self, $o{cluster} ? 'rcluster'
        : 'redis', %o);
    push @{ $self->{private} }, $svc;
    return $svc;
}

package ChatTest::Service;

# One private PostgreSQL or Redis for a single test, driven by
# scripts/services in its own folder.  PostgreSQL gets a migrated database
# "chat".  Methods: start, stop, kill($sig[, all => 1]), pid, pids, port,
# conninfo (pg), addr (redis), conf (what %%PG%%/%%REDIS%% would expand to).
# Kind "rcluster": a Redis Cluster of 3 primaries and 3 replicas
# (private_redis(cluster => 1)); ports (all six, the first
# three are the primaries at start), node_pid($i) (1-based), conf (the
# primaries as seeds, cluster=on).

use strict;
use warnings;
use Time::HiRes qw(time sleep);

my $count = 0;

sub new {
    my ($class, $t, $kind, %o) = @_;
    my $self = bless {
        t => $t,
        kind => $kind,
        dir => "$t->{dir}/$kind" . '_private' . ++$count,
    }, $class;
    $self->start;
    if ($kind eq 'pg') {
        my %env = ChatTest::read_env("$self->{dir}/env");
        $self->{port} = $env{CHAT_TEST_PGPORT};
        ChatTest::run_psql($self->{dir}, $self->{port}, 'postgres',
            'postgres', 'CREATE DATABASE chat');
        ChatTest::migrate($self->{dir}, $self->{port}, 'postgres', 'chat')
            unless $o{no_migrate};
    } elsif ($kind eq 'rcluster') {
        my %env = ChatTest::read_env("$self->{dir}/env");
        ($env{CHAT_TEST_REDIS_CLUSTER_PORTS} // '') =~ /^"([\d ]+)"$/
            or die "no cluster ports in $self->{dir}/env";
        $self->{ports} = [ split / /, $1 ];
        $self->{port} = $self->{ports}[0];
    } else {
        my %env = ChatTest::read_env("$self->{dir}/env");
        $self->{port} = $env{CHAT_TEST_REDIS_PORT};
    }
    return $self;
}

sub ports { @{ $_[0]{ports} // [ $_[0]{port} ] } }

sub node_pid {
    my ($self, $i) = @_;
    open my $fh, '<', "$self->{dir}/rcluster/$i/redis.pid" or return undef;
    my $pid = <$fh> // return undef;
    close $fh;
    return $pid =~ /^(\d+)/ ? $1 : undef;
}

sub port { $_[0]{port} }
sub dir { $_[0]{dir} }

sub conninfo {
    my ($self) = @_;
    return "host=$self->{dir} port=$self->{port} user=postgres dbname=chat";
}

sub addr { "127.0.0.1:$_[0]{port}" }

sub conf {
    my ($self) = @_;
    return $self->conninfo if $self->{kind} eq 'pg';
    return join(' ', map { "127.0.0.1:$_" } @{ $self->{ports} }[0 .. 2])
        . " cluster=on prefix=$self->{t}{prefix}"
        if $self->{kind} eq 'rcluster';
    return $self->addr . " prefix=$self->{t}{prefix}";
}

sub services {
    my ($self, $cmd) = @_;
    my $out = `'$ChatTest::REPO/scripts/services' $cmd '$self->{dir}' $self->{kind} 2>&1`;
    die "scripts/services $cmd $self->{kind} failed:\n$out" if $? != 0;
    ChatTest::verbose($out);
    return 1;
}

sub start { $_[0]->services('start') }
sub stop { $_[0]->services('stop') }

sub pid {
    my ($self) = @_;
    my $f = $self->{kind} eq 'pg' ? "$self->{dir}/pg/postmaster.pid"
        : "$self->{dir}/redis.pid";
    open my $fh, '<', $f or return undef;
    my $pid = <$fh>;
    close $fh;
    return undef unless defined $pid;
    chomp $pid;
    return $pid =~ /^(\d+)$/ ? $1 : undef;
}

# the main process and (PostgreSQL) its backends and auxiliary processes
sub pids {
    my ($self) = @_;
    my $pid = $self->pid or return ();
    my @p = ($pid);
    for my $st (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $st or next;
        my $l = <$fh> // next;
        close $fh;
        push @p, $1 if $l =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $pid;
    }
    return @p;
}

# kill($sig): the main process; kill($sig, all => 1): every process of the
# instance (e.g. STOP/CONT to make PostgreSQL hang)
sub kill {
    my ($self, $sig, %o) = @_;
    my @p = $o{all} ? $self->pids : ($self->pid // ());
    return 0 unless @p;
    return CORE::kill($sig, @p);
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    return if $self->{stopped}++;
    # a STOPped instance cannot shut down
    eval { $self->kill('CONT', all => 1) };
}

1;
