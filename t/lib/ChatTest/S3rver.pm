package ChatTest::S3rver;

# npm s3rver on loopback for the S3 media tests (t/041, t/042): in its own
# process group, logging to <test dir>/s3rver.log, data in <test dir>/s3,
# bucket "media", stopped by its PID at the end (stop() or program exit).
#
#   my $why = ChatTest::S3rver::missing();   # undef, or why to skip
#   my $s3 = ChatTest::S3rver->new($t, extra => [ '--key', ..., ... ]);
#   $s3->start; $s3->port; $s3->stop;

use strict;
use warnings;

use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use ChatTest;

my $node_dir = "$ChatTest::REPO/tests/node";
my $bin = "$node_dir/node_modules/.bin/s3rver";
my @running;

sub node_dir { $node_dir }

# undef when curl, node and s3rver are there, else the reason to skip
sub missing {
    return 'curl is not installed'
        unless system('curl --version >/dev/null 2>&1') == 0;
    return 'npm s3rver not installed (cd tests/node && npm ci)'
        unless -x $bin && system('node --version >/dev/null 2>&1') == 0;
    return undef;
}

sub new {
    my ($class, $t, %o) = @_;
    my $self = bless { t => $t, port => ChatTest::free_port(),
        extra => $o{extra} // [] }, $class;
    push @running, $self;
    return $self;
}

sub port { $_[0]{port} }

sub start {
    my ($self) = @_;
    my $dir = $self->{t}->dir;
    mkdir "$dir/s3";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/s3rver.log";
        open STDERR, '>>', "$dir/s3rver.log";
        exec 'node', $bin, '-d', "$dir/s3", '-a', '127.0.0.1',
            '-p', $self->{port}, '--configure-bucket', 'media',
            @{ $self->{extra} };
        exit 127;
    }
    $self->{pid} = $pid;
    my $deadline = time + 20;
    while (time < $deadline) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{port});
        return 1 if $c;
        sleep 0.1;
    }
    die "s3rver did not start:\n"
        . ($self->{t}->read_file('s3rver.log') // '');
}

sub stop {
    my ($self) = @_;
    local $?;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', -$pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', -$pid;
    waitpid($pid, 0);
}

END { local $?; $_->stop for @running }

1;
