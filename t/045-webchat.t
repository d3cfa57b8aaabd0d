#!/usr/bin/perl

# The web chat (clients/web) in Debian's chromium, headless, driven by
# playwright-core (tests/node/webchat.test.mjs), against nginx with the
# sample configuration of `make run` (conf/chat.conf: the page at /, the
# SDK at /sdk/, media in a local store, the token endpoint) and its two
# workers.  Two users on three devices: a group, a text and an image (bob's
# loaded from its signed URL), bob's page closed while alice sends three
# messages and reopened with them in order, bob's second device getting
# the same, an answer seen live; people added and removed, and the page's
# connection state through a reload.  A screenshot of each step goes to
# test-output/webchat/ (CHAT_TEST_OUTPUT to change it); a console error in
# any page fails it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use ChatTest;

my $node = "$ChatTest::REPO/tests/node";
my $chromium = $ENV{CHAT_CHROMIUM} || '/usr/bin/chromium';
-x $chromium
    or BAIL_OUT("$chromium is not installed (scripts/deps test installs"
        . ' the chromium package)');
-d "$node/node_modules/playwright-core"
    or BAIL_OUT('npm package playwright-core not installed in tests/node'
        . ' (scripts/deps test installs it)');

my $t = ChatTest->new(workers => 2);
$t->sample_conf->run;

my $out = $ENV{CHAT_TEST_OUTPUT} || "$ChatTest::REPO/test-output";
$t->node_tests(
    dir => $node,
    files => [ 'webchat.test.mjs' ],
    env => {
        CHAT_HTTP => 'http://127.0.0.1:' . $t->port,
        CHAT_TEST_OUTPUT => "$out/webchat",
        CHAT_CHROMIUM => $chromium,
        CHAT_NGINX_PID => $t->pid,
    },
    min => 3,
);
diag("screenshots: $out/webchat") if $ENV{CHAT_TEST_VERBOSE};

$t->done_testing;
