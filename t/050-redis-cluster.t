#!/usr/bin/perl

# Sharded pub/sub on a Redis Cluster: two gateway instances (2 workers
# each) on a cluster of 3 primaries + 3 replicas, "chat_redis ...
# cluster=on" with the primaries as seeds.  Users whose channels hash to
# every shard chat across the instances.
#   - each primary's PUBSUB SHARDCHANNELS lists only channels of its own
#     slots, and all of them together are exactly the users' channels;
#     PUBSUB SHARDNUMSUB on each primary counts a channel there only;
#     no classic subscription is left anywhere (PUBSUB NUMSUB);
#   - every primary carried SPUBLISHes (INFO commandstats);
#   - every message arrives exactly once, nothing missing or stray;
#   - the retention sweep's lease is taken on the shard of its key;
#   - resharding under traffic (the slots of one primary's users moved to
#     another, as redis-cli --cluster reshard does it): the workers follow
#     (-ASK/-MOVED, the map read again), the moved users' channels end up
#     subscribed on their new primary and nowhere else, and no message is
#     lost or duplicated on the way (publishes answered -MOVED are sent
#     again).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use ChatTest;
use ChatTest::Cluster;
use ChatTest::RedisCluster qw(slot primaries owner cli);

my $c = ChatTest::Cluster->new(instances => 2, workers => 2, lb => 0);
my $rc = $c->private_redis(cluster => 1);
$c->conf(http => "chat_ping_interval 60s;\n    chat_poll_interval 1s;\n"
    . "    chat_sweep_interval 1s;")->run;
my $t = $c->t;
my $prefix = $t->redis_prefix;

my $prim = primaries(($rc->ports)[0]);
is scalar(@$prim), 3, 'the cluster has 3 primaries';

# a user tag under which the 12 users' channels cover every shard
my ($tag, %by_shard);
for my $k (1 .. 100) {
    %by_shard = ();
    push @{ $by_shard{ owner($prim, "${prefix}u:c${k}u$_") } },
        "c${k}u$_" for 1 .. 12;
    if (keys %by_shard == 3) {
        $tag = "c$k";
        last;
    }
}
ok $tag, 'users on every shard: ' . join ' ',
    map { "$_=" . scalar @{ $by_shard{$_} } } sort keys %by_shard;

my $tr = ChatTest::Cluster::Traffic->new(t => $t, ports => [ $c->ports ],
    users => 12, rate => 3, tag => $tag);
ok $tr->start(timeout => 30), 'clients connected to both instances,'
    . ' chats created';
$tr->pump(4);

# --- where the subscriptions are

my @users = map { "${tag}u$_" } 1 .. 12;
my %chan = map { ("${prefix}u:$_" => 1) } @users;
my (%seen, @stray);
for my $m (@$prim) {
    my @list = grep { length } cli($m->{port}, 'pubsub', 'shardchannels',
        "'${prefix}*'");
    for my $ch (@list) {
        $seen{$ch}++;
        push @stray, "$ch on $m->{port}"
            unless (owner($prim, $ch) // 0) == $m->{port};
    }
}
ok !@stray, 'each shard lists only channels of its own slots'
    or diag join ' ', @stray;
is_deeply [ sort keys %seen ], [ sort keys %chan ],
    'together: exactly the users\' channels, each on one shard';

my @bad;
for my $m (@$prim) {
    my %n = cli($m->{port}, 'pubsub', 'shardnumsub', sort keys %chan);
    for my $ch (sort keys %chan) {
        my $own = (owner($prim, $ch) == $m->{port});
        push @bad, "$ch: $n{$ch} on $m->{port}"
            if ($own && !$n{$ch}) || (!$own && $n{$ch});
    }
    my %classic = cli($m->{port}, 'pubsub', 'numsub', sort keys %chan);
    push @bad, "classic subscriptions on $m->{port}"
        if grep { $_ } values %classic;
}
ok !@bad, 'PUBSUB SHARDNUMSUB: each channel counted on its shard only'
    or diag join "\n", @bad;

my @share;
for my $m (@$prim) {
    my ($l) = grep { /^cmdstat_spublish:/ }
        cli($m->{port}, 'info', 'commandstats');
    my ($n) = ($l // '') =~ /calls=(\d+)/;
    push @share, $n // 0;
}
ok !grep({ !$_ } @share), 'every primary carried SPUBLISHes: '
    . join ' ', @share;

# --- the sweep lease, on the shard of its key

my $key = "${prefix}sweep";
my $lease = $tr->pump_until(sub {
    my ($v) = cli(owner($prim, $key), 'get', $key);
    defined $v && $v =~ /^[0-9a-f]{16}$/;
}, 10);
ok $lease, "the sweep lease \"$key\" is on its shard (slot " . slot($key)
    . ')';

# --- resharding under traffic: the slots of one primary's users move to
# another, slot by slot as redis-cli --cluster reshard moves them
# (IMPORTING, MIGRATING, then NODE on every primary)

my ($from, $to, $other) = @$prim;
my ($from_id) = cli($from->{port}, 'cluster', 'myid');
my ($to_id) = cli($to->{port}, 'cluster', 'myid');
my @moving = map { "${prefix}u:$_" } @{ $by_shard{ $from->{port} } };
my %slots = map { (slot($_) => 1) } @moving;
my $script = join '; ', 'set -e', map {
    my $s = $_;
    ("redis-cli -p $to->{port} cluster setslot $s importing $from_id",
     "redis-cli -p $from->{port} cluster setslot $s migrating $to_id",
     map { "redis-cli -p $_ cluster setslot $s node $to_id" }
         $to->{port}, $from->{port}, $other->{port})
} sort { $a <=> $b } keys %slots;
my $t_re = time;
my ($st, $out) = $tr->run_cmd(['sh', '-c', $script], 30);
is $st, 0, sprintf('%d slots moved from %d to %d in %.1f s, traffic'
    . ' going on', scalar(keys %slots), $from->{port}, $to->{port},
    time - $t_re) or diag $out;

my $followed = $tr->pump_until(sub {
    my %n = cli($to->{port}, 'pubsub', 'shardnumsub', @moving);
    my @left = grep { length } cli($from->{port}, 'pubsub',
        'shardchannels', "'${prefix}*'");
    !@left && !grep { !$n{$_} } @moving;
}, 20);
ok $followed, scalar(@moving) . ' channels moved with their slots: on'
    . " $to->{port} now, none left on $from->{port}";
$tr->pump(2);

$tr->check($c, name => 'redis cluster');
$tr->close_all;

$c->done_testing;
