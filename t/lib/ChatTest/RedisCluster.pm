package ChatTest::RedisCluster;

# ChatTest::RedisCluster: what the Redis Cluster tests (t/05*-redis-*.t)
# need to look at a cluster from the outside.
#
#   slot($key)                  the hash slot (CRC16/XMODEM mod 16384, hash
#                               tags honoured), as CLUSTER KEYSLOT says
#   primaries($port)            [ { port, from => [..], to => [..] } ]:
#                               the primaries that own slots, as the node
#                               on $port sees them (CLUSTER NODES), healthy
#                               ones only
#   owner(\@primaries, $key)    the port of the primary owning $key
#   cli($port, @args)           redis-cli's output lines (blocking, short)

use strict;
use warnings;

use Exporter 'import';
our @EXPORT_OK = qw(slot primaries owner cli);

sub crc16 {
    my ($s) = @_;
    my $crc = 0;
    for my $c (unpack 'C*', $s) {
        $crc ^= $c << 8;
        for (1 .. 8) {
            $crc = ($crc & 0x8000) ? (($crc << 1) ^ 0x1021) : ($crc << 1);
            $crc &= 0xffff;
        }
    }
    return $crc;
}

sub slot {
    my ($key) = @_;
    if ($key =~ /^[^{]*\{([^}]+)\}/) {
        $key = $1;
    }
    return crc16($key) & 16383;
}

sub cli {
    my ($port, @args) = @_;
    my $out = `redis-cli -h 127.0.0.1 -p $port @args 2>&1`;
    $out =~ s/\r//g;
    return split /\n/, $out;
}

sub primaries {
    my ($port) = @_;
    my @p;
    for my $l (cli($port, 'cluster', 'nodes')) {
        my @f = split / /, $l;
        next unless @f >= 8 && $f[2] =~ /\bmaster\b/ && $f[2] !~ /fail/;
        my ($nport) = $f[1] =~ /:(\d+)@/ or next;
        my $m = { port => $nport, from => [], to => [] };
        for my $r (@f[8 .. $#f]) {
            next unless $r =~ /^(\d+)(?:-(\d+))?$/;
            push @{ $m->{from} }, $1;
            push @{ $m->{to} }, $2 // $1;
        }
        push @p, $m if @{ $m->{from} };
    }
    return [ sort { $a->{port} <=> $b->{port} } @p ];
}

sub owner {
    my ($primaries, $key) = @_;
    my $s = slot($key);
    for my $m (@$primaries) {
        for my $i (0 .. $#{ $m->{from} }) {
            return $m->{port} if $s >= $m->{from}[$i] && $s <= $m->{to}[$i];
        }
    }
    return undef;
}

1;
