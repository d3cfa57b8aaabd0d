#!/usr/bin/perl

# getChats by pages (docs/protocol.md "getChats", issue 11 finding 5).
# Anyone may add anyone to chats: an attacker puts a victim into 60 chats
# of 100 participants with 64-byte ids, about 400 KB of chat list, more
# than chat_output_limit (256 KiB).  Before pages, the victim's getChats
# was one frame over the limit and the victim was disconnected on every
# getChats.  Now the victim stays connected and pages through every chat
# exactly once, in chat id order, whatever the page size; a page is cut
# by bytes too; bad limit and cursor values are bad_request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new(workers => 2);
# idle clients (not reading while the attacker works) must not be
# disconnected for missing PONGs, even on a loaded machine
$t->chat_conf(listen => ' reuseport',
    http => 'chat_ping_interval 600s; chat_user_rate createChat off;')->run;

my $limit = 256 * 1024;                     # chat_output_limit's default

sub id64 { my ($p) = @_; $p . ('z' x (64 - length $p)) }

my $victim = id64('victim');
my $attacker = id64('mallory');
my @fillers = map { id64(sprintf 'filler%02d', $_) } 1 .. 98;

sub code_of {
    my ($r) = @_;
    return 'no response' unless $r;
    return 'ok' if $r->{ok};
    return $r->{error} && $r->{error}{code} // 'no code';
}

# Every worker's Redis connections are up before the first client: a kick
# ("one connection per device") published while Redis is not connected
# yet waits in the worker's backlog, and published late it would close
# the victim's next connection of the same device with 4001 (seen once).
ChatTest::poll(sub {
    $t->grep_log(qr/redis (cmd|sub): connected to /) >= 4 }, 15);

# the victim's device exists (so the chatUpdates wait in its inbox too)
my $v = $t->client($victim, 'phone');
$v->close(1000);

my $m = $t->client($attacker, 'laptop');

my @chats;
for my $i (1 .. 60) {
    my $r = $m->cmd('createChat', name => "spam $i",
        participants => [ $victim, @fillers ], _timeout => 30);
    push @chats, $r->{chatId} if $r && $r->{ok};
}
is scalar @chats, 60, 'the attacker put the victim into 60 chats of 100';

# a small receive buffer: the server's output queue holds what the
# client has not read, the drain backlog of 60 chatUpdates included
$v = $t->client($victim, 'phone', rcvbuf => 16384, timeout => 30);

# all pages of getChats with %o; ([chat ids in order], [pages], error)
sub walk {
    my ($ws, %o) = @_;
    my $between = delete $o{_between};
    my (@ids, @pages);
    my $cursor;
    for (1 .. 200) {
        my $r = $ws->cmd('getChats', %o,
            defined $cursor ? (cursor => $cursor) : (), _timeout => 30);
        return (\@ids, \@pages, code_of($r)) unless $r && $r->{ok};
        push @pages, $r;
        push @ids, map { $_->{chatId} } @{ $r->{chats} };
        $between->() if $between && @pages == 1;
        return (\@ids, \@pages, undef) unless defined $r->{nextCursor};
        $cursor = $r->{nextCursor};
    }
    return (\@ids, \@pages, 'endless');
}

sub in_order {
    my ($ids) = @_;
    for my $i (1 .. $#$ids) {
        return 0 unless $ids->[$i] > $ids->[$i - 1];
    }
    return 1;
}

my $json = ChatTest->json;

# --- the default page size: cut by bytes, not by the 50 chats

my ($ids, $pages, $err) = walk($v);
is $err, undef, 'default pages: every getChats answered ok';
is_deeply $ids, [ sort { $a <=> $b } @chats ],
    'default pages: each chat exactly once, in chat id order';
ok @$pages > 1, 'default pages: more than one page (' . @$pages . ')';
ok !(grep { @{ $_->{chats} } >= 50 } @$pages),
    'default pages: cut by bytes before 50 chats';
ok !(grep { length($json->encode($_)) > $limit / 4 + 1024 } @$pages),
    'default pages: each at most a quarter of chat_output_limit';
ok !(grep { @{ $_->{participants} } != 100 || $_->{admin} ne $attacker }
         map { @{ $_->{chats} } } @$pages),
    'default pages: whole chats, 100 participants each';
ok !exists $pages->[-1]{nextCursor}, 'the last page has no nextCursor';
ok !(grep { !exists $_->{nextCursor} } @$pages[0 .. $#$pages - 1]),
    'every other page has a nextCursor';

# --- the largest page size

($ids, $pages, $err) = walk($v, limit => 100);
is $err, undef, 'limit 100: every getChats answered ok';
is_deeply $ids, [ sort { $a <=> $b } @chats ],
    'limit 100: each chat exactly once, in chat id order';

# --- a small page size, while the chats change between pages: a chat
# created after the first page comes at the end (ids only grow), one the
# victim was removed from before its page does not come

my ($late, $gone);
($ids, $pages, $err) = walk($v, limit => 7, _between => sub {
    my $r = $m->cmd('createChat', name => 'late',
        participants => [ $victim ], _timeout => 30);
    $late = $r && $r->{ok} ? $r->{chatId} : 'none';
    $gone = $chats[-1];
    $r = $m->cmd('modifyChatParticipants', chatId => $gone,
        userId => $victim, operation => 'REMOVE', _timeout => 30);
    is code_of($r), 'ok', 'the attacker removes the victim from a chat';
});
is $err, undef, 'limit 7: every getChats answered ok';
my @want = ((sort { $a <=> $b } grep { $_ ne $gone } @chats), $late);
is_deeply $ids, \@want,
    'limit 7: each chat exactly once, in order, the new one last, '
    . 'not the one left';
is_deeply [ map { scalar @{ $_->{chats} } } @$pages ],
    [ (7) x 8, 4 ], 'limit 7: pages of 7, the last one with the rest';
ok in_order($ids), 'limit 7: chat ids only grow';

# --- a cursor past the end, and a user without chats

my $r = $v->cmd('getChats', cursor => $late);
ok $r && $r->{ok} && !@{ $r->{chats} } && !exists $r->{nextCursor},
    'a cursor after the last chat: no chats, no nextCursor'
    or diag explain $r;
my $lonely = $t->client('lonely');
$r = $lonely->cmd('getChats');
ok $r && $r->{ok} && ref $r->{chats} eq 'ARRAY' && !@{ $r->{chats} }
    && !exists $r->{nextCursor}, 'no chats: an empty page, no nextCursor'
    or diag explain $r;

# --- bad values: bad_request for that request only, the id echoed

for my $bad (
    [ limit => 0 ], [ limit => 101 ], [ limit => -1 ], [ limit => '5' ],
    [ limit => 1.5 ], [ limit => undef ], [ limit => 1e30 ],
    [ cursor => 'abc' ], [ cursor => '' ], [ cursor => -1 ],
    [ cursor => '9223372036854775808' ], [ cursor => '1' x 21 ],
    [ cursor => undef ], [ cursor => [ 1 ] ],
) {
    my ($k, $val) = @$bad;
    my $what = "$k " . (defined $val ? $json->encode($val) : 'null');
    $r = $v->cmd('getChats', $k => $val, id => "bad $what");
    is code_of($r), 'bad_request', "getChats $what: bad_request";
}

# the largest cursor a chat id can be is fine
$r = $v->cmd('getChats', cursor => '9223372036854775807');
ok $r && $r->{ok} && !@{ $r->{chats} }, 'cursor 2^63-1: an empty page';

# --- the victim is still connected, and nothing was dropped

$r = $v->cmd('ping');
ok $r && $r->{ok}, 'the victim is still connected';
is $v->close_code, undef, 'the victim was never sent a Close';
is scalar $t->grep_log(qr/output limit of \d+ bytes exceeded/), 0,
    'no connection went over its output limit';

$t->done_testing;
