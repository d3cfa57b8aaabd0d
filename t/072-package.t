#!/usr/bin/perl

# The Debian package and make install (docs/operations.md "Installing"):
#   - `make deb` builds libnginx-mod-chat with dpkg-deb; its control names
#     the nginx ABI the module was built against (nginx-dev's
#     libnginx-mod.abisubstvars) and the libraries it links; it holds the
#     module, the modules-available snippet, the SQL and the migrate
#     command, the documentation and the sample configuration;
#   - the package is extracted into a temporary root (the machine's nginx
#     is not touched), its migrate command builds a database, and Debian's
#     nginx runs the sample configuration with the package's load_module
#     line: a device connects and is answered, health and metrics answer;
#   - `make install DESTDIR=...` installs the same files, which run the
#     same way.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Temp qw(tempdir);
use ChatTest;
use ChatTest::WS;
use ChatTest::Prom;

my $repo = $ChatTest::REPO;
my $tmp = tempdir('chat-pkg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;

sub sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

# --- the package

my ($rc, $out) = sh("cd '$repo' && make -s deb 2>&1");
is $rc, 0, 'make deb' or diag $out;
my ($deb) = $out =~ m{^(/\S+\.deb)$}m;
ok $deb && -f $deb, 'it names the .deb it built';
$deb //= '';

my %ctl = map { /^(\S+): (.*)$/ ? ($1, $2) : () }
    split /\n/, scalar `dpkg-deb -f '$deb' 2>/dev/null`;
is $ctl{Package}, 'libnginx-mod-chat', 'Package: libnginx-mod-chat';
is $ctl{Architecture}, scalar(`dpkg --print-architecture` =~ s/\s+//gr),
    'Architecture: this machine\'s';
my ($abi) = `cat /usr/share/nginx/src/debian/libnginx-mod.abisubstvars`
    =~ /^nginx:abi=(\S+)/m;
like $ctl{Depends} // '', qr/^\Q$abi\E, /,
    "Depends: first the nginx ABI built against ($abi)";
like $ctl{Depends} // '', qr/libpq5.*libssl3|libssl3.*libpq5/,
    'Depends: the shared libraries (dpkg-shlibdeps)';
my $provides = `dpkg-query -W -f='\${Provides}' nginx 2>/dev/null`;
like $provides, qr/\Q$abi\E/, "Debian's nginx provides $abi: it installs";

my @files = sort grep { m{^\./.*[^/]$} } map { (split ' ', $_, 6)[5] }
    split /\n/, scalar `dpkg-deb -c '$deb'`;
my %has = map { $_ => 1 } @files;
for my $f (qw(./usr/lib/nginx/modules/ngx_chat_module.so
              ./usr/share/nginx/modules-available/mod-http-chat.conf
              ./usr/sbin/ngx-chat-migrate ./usr/share/ngx-chat/bin/migrate
              ./usr/share/ngx-chat/sql/001_schema.sql
              ./usr/share/ngx-chat/sql/900_functions.sql
              ./usr/share/doc/libnginx-mod-chat/directives.md
              ./usr/share/doc/libnginx-mod-chat/operations.md
              ./usr/share/doc/libnginx-mod-chat/copyright
              ./usr/share/doc/libnginx-mod-chat/examples/chat.conf
              ./usr/share/doc/libnginx-mod-chat/examples/health-check.conf))
{
    ok $has{$f}, "the package holds $f";
}
my @sql = map { s{.*/}{}r } glob "$repo/sql/*.sql";
is scalar(grep { m{^\./usr/share/ngx-chat/sql/} } @files), scalar @sql,
    'every sql/*.sql file';

my $scripts = `dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./postinst`;
like $scripts, qr{ln -sf /usr/share/nginx/modules-available/mod-http-chat.conf}
    , 'postinst enables the module like Debian\'s dh_nginx';

my $pkgroot = "$tmp/pkg";
($rc, $out) = sh("dpkg-deb -x '$deb' '$pkgroot'");
is $rc, 0, 'extracted into a temporary root' or diag $out;

# --- make install with DESTDIR

my $destdir = "$tmp/destdir";
($rc, $out) = sh("cd '$repo' && make -s install DESTDIR='$destdir'");
is $rc, 0, 'make install DESTDIR=...' or diag $out;
my @installed = sort map { s{^\Q$destdir\E}{.}r }
    split /\n/, scalar `find '$destdir' -type f`;
is_deeply \@installed,
    [ grep { !m{/(copyright|changelog\.Debian\.gz)$} } @files ],
    'make install holds the files of the package (less its Debian notes)';

# --- each root serves the sample configuration with Debian's nginx

for my $root ($pkgroot, $destdir) {
    my $what = $root eq $pkgroot ? 'package' : 'make install';
    my $t = ChatTest->new(workers => 1);
    my $dir = $t->dir;
    my $s = $t->services;

    # the schema by the installed migrate command, into a new database
    my $db = "pkg_$$" . "_$t->{n}";
    $t->admin_psql(qq{CREATE DATABASE "$db"});
    @$t{qw(db db_created)} = ($db, 1);      # dropped at the end
    ($rc, $out) = sh("'$root/usr/share/ngx-chat/bin/migrate'"
        . " 'host=$s->{pghost} port=$s->{pgport} user=$s->{pguser}"
        . " dbname=$db'");
    is $rc, 0, "$what: its migrate command builds the schema" or diag $out;
    is scalar $t->psql("SELECT count(*) FROM schema_migrations"
        . " WHERE version IS NOT NULL") > 0, 1, "$what: migrations recorded";

    # nginx's prefix holds modules/ -> the root's /usr/lib/nginx/modules,
    # as Debian's /usr/share/nginx/modules does
    symlink "$root/usr/lib/nginx/modules", "$dir/modules" or die $!;
    my $conf = $t->read_file(
        "$root/usr/share/doc/libnginx-mod-chat/examples/chat.conf")
        // '';
    my $snippet = "$root/usr/share/nginx/modules-available/mod-http-chat.conf";
    like $t->read_file($snippet) // '',
        qr{^load_module modules/ngx_chat_module\.so;$}m,
        "$what: the snippet loads modules/ngx_chat_module.so";
    $conf =~ s{^load_module %%MODULE%%;}{include $snippet;}m
        or fail "$what: the sample has its load_module line";
    $conf =~ s/%%VAR%%/$dir/g;
    $conf =~ s/%%PORT%%/$t->port/ge;
    $conf =~ s/%%PGHOST%%/$s->{pghost}/g;
    $conf =~ s/%%PGPORT%%/$s->{pgport}/g;
    $conf =~ s/%%REDISPORT%%/$s->{redis_port}/g;
    $conf =~ s/dbname=chat user=postgres/dbname=$db user=$s->{pguser}/;
    $conf =~ s/^worker_processes auto;/worker_processes 2;/m;
    $t->write_file('nginx.conf', $conf);
    $t->write_file('jwt.secret', $t->secret . "\n");
    mkdir "$dir/$_" for qw(body proxy fastcgi uwsgi scgi);

    ($rc, $out) = sh("$ChatTest::NGINX -t -q -p '$dir/' -c '$dir/nginx.conf'"
        . " -e '$dir/error.log'");
    is $rc, 0, "$what: nginx -t accepts the sample configuration"
        or diag $out;
    $t->run;

    my $ws = $t->client('alice', 'phone');
    my $r = $ws->cmd('getChats');
    ok $r && $r->{ok}, "$what: a device connects and is answered";

    my ($status, undef, $body) = $t->http('GET', '/chat/health');
    ok ChatTest::poll(sub {
        ($status, undef, $body) = $t->http('GET', '/chat/health');
        $status == 200 }, 10), "$what: /chat/health 200";
    ($status, undef, $body) = $t->http('GET', '/chat/metrics');
    my ($m, $err) = ChatTest::Prom::parse($body);
    ok $status == 200 && !@$err && $m->{value}{ngx_chat_connections} == 1,
        "$what: /chat/metrics parses and counts the connection";

    ($status, undef, $body) = $t->http('POST', '/chat/admin/token', [],
        '{"user":"bob","device":"laptop"}');
    is $status, 200, "$what: the sample's token endpoint mints on loopback";

    $ws->close(1000);
    $t->finish;
}

done_testing;
