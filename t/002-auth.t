#!/usr/bin/perl

# Authentication of the upgrade: an HS256 JWT in "Authorization: Bearer" or
# "?access_token=", claims sub, dev, exp; ids of 1..64 characters from
# [A-Za-z0-9._@-]; the secret is the secret file without its trailing
# newline.  Everything else is 401.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;
use ChatTest::WS;

my $t = ChatTest->new;
$t->chat_conf->run;

# the HTTP status of a handshake with %o (see ChatTest::WS::try_connect);
# a 101 is checked to be usable, then closed
sub status {
    my (%o) = @_;
    my ($ws, $st) = ChatTest::WS->try_connect($t, %o);
    if ($ws) {
        my $r = $ws->cmd('ping');
        $ws->close(1000);
        return $r && $r->{ok} ? 101 : "101 but ping failed";
    }
    return $st // 'no answer';
}

sub tok { $t->token(@_) }

my $now = time;

# --- accepted

is status(token => tok()), 101, 'valid token in Authorization';
is status(token => tok(), auth => 'query'), 101,
    'valid token in ?access_token=';
is status(token => tok(), auth => 'query', query => 'v=1'), 101,
    'access_token among other query arguments';
is status(token => tok(user => 'a.b_c@d-e', device => 'X.9_@-z')), 101,
    'ids using every allowed punctuation';
is status(token => tok(user => 'u' x 64, device => 'd' x 64)), 101,
    '64-character ids';
is status(token => tok(user => '1', device => '2')), 101,
    '1-character ids';
is status(token => tok(header => { alg => 'HS256' })), 101,
    'header without "typ"';
is status(token => tok(claims => { iat => $now, jti => 'x', aud => 'y' })),
    101, 'extra claims are ignored';

# --- refused

is status(token => undef), 401, 'no credentials';
is status(token => tok(), headers => [ Authorization => 'Basic YTpi' ]),
    401, 'Authorization: Basic';
is status(token => tok(secret => 'wrong secret')), 401,
    'signed with another secret';
is status(token => tok(secret => $t->secret . "\n")), 401,
    'signed with the secret including its newline';
is status(token => tok(exp => $now - 3600)), 401, 'expired an hour ago';
is status(token => tok(claims => { exp => undef })), 401, 'no exp';
is status(token => tok(claims => { sub => undef })), 401, 'no sub';
is status(token => tok(claims => { dev => undef })), 401, 'no dev';
is status(token => tok(user => '')), 401, 'empty sub';
is status(token => tok(device => '')), 401, 'empty dev';
is status(token => tok(user => 'u' x 65)), 401, '65-character sub';
is status(token => tok(device => 'd' x 65)), 401, '65-character dev';
is status(token => tok(user => 'al ice')), 401, 'space in sub';
is status(token => tok(user => 'a/b')), 401, 'slash in sub';
is status(token => tok(user => "a\x{e9}")), 401, 'non-ASCII sub';
is status(token => tok(device => 'ph:one')), 401, 'colon in dev';
is status(token => tok(user => "a\nb")), 401, 'newline in sub';
is status(token => tok(claims => { sub => 123 })), 401, 'numeric sub';

is status(token => tok(header => { alg => 'none', typ => 'JWT' },
    signature => '')), 401, 'alg none, no signature';
is status(token => tok(header => { alg => 'HS512', typ => 'JWT' })), 401,
    'alg HS512';
is status(token => tok(header => { alg => 'RS256', typ => 'JWT' })), 401,
    'alg RS256';
is status(token => tok(signature => '')), 401, 'empty signature';
my $good = tok();
(my $flipped = $good) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
is status(token => $flipped), 401, 'last signature character changed';
is status(token => 'abc'), 401, 'not a JWT';
is status(token => 'a.b'), 401, 'two segments';
is status(token => "$good.x"), 401, 'four segments';
is status(token => tok(payload => 'not json')), 401, 'payload not JSON';
is status(token => tok(payload => '[1,2]')), 401, 'payload not an object';
is status(token => tok(header => 'not json')), 401, 'header not JSON';

# the server still serves after all that
is status(token => tok()), 101, 'valid token still accepted';

$t->done_testing;
