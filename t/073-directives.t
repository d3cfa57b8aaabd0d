#!/usr/bin/perl

# docs/directives.md against the command tables (scripts/directives): the
# reference passes, and the check catches a directive added to a command
# table without documentation, one documented in the wrong context, and a
# section left for a directive that is gone.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Temp qw(tempdir);
use ChatTest;

my $repo = $ChatTest::REPO;
my $check = "$repo/scripts/directives";

sub run_check {
    my ($src, $doc) = @_;
    my $out = `'$check' '$src' '$doc' 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = run_check("$repo/ngx_chat_module", "$repo/docs/directives.md");
is $rc, 0, 'the reference documents every directive' or diag $out;
like $out, qr/ok \((\d+) directives/, 'it counted them';
my ($n) = $out =~ /ok \((\d+) directives/;
cmp_ok $n // 0, '>=', 37, 'both modules\' tables were read';

my $tmp = tempdir(CLEANUP => 1);
mkdir "$tmp/src";
system('cp', glob("$repo/ngx_chat_module/*.c"), "$tmp/src/") == 0
    or die "cp failed";

sub edit {
    my ($file, $from, $to) = @_;
    open my $in, '<', $file or die "$file: $!";
    local $/;
    my $s = <$in>;
    close $in;
    $s =~ s/\Q$from\E/$to/ or die "no '$from' in $file";
    open my $o, '>', $file or die "$file: $!";
    print $o $s;
    close $o;
}

# a new directive in the media module's table, not documented
edit("$tmp/src/ngx_chat_media_module.c",
    '    { ngx_string("chat_media_grace"),',
    qq(    { ngx_string("chat_media_new_thing"),\n)
    . qq(      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,\n)
    . qq(      NULL, 0, 0, NULL },\n\n)
    . '    { ngx_string("chat_media_grace"),');
($rc, $out) = run_check("$tmp/src", "$repo/docs/directives.md");
isnt $rc, 0, 'an undocumented directive fails the check';
like $out, qr/chat_media_new_thing is not in/, '... naming it';

# chat_health allowed in server{} too: the documented context is wrong
system('cp', "$repo/ngx_chat_module/ngx_chat_media_module.c", "$tmp/src/");
edit("$tmp/src/ngx_chat_module.c",
    qq(ngx_string("chat_health"),\n      NGX_HTTP_LOC_CONF),
    qq(ngx_string("chat_health"),\n      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF));
($rc, $out) = run_check("$tmp/src", "$repo/docs/directives.md");
isnt $rc, 0, 'a wrong context fails the check';
like $out, qr/chat_health: Context "location", the code allows "server, location"/,
    '... naming both';

# a documented directive that no table has
system('cp', "$repo/ngx_chat_module/ngx_chat_module.c", "$tmp/src/");
system('cp', "$repo/docs/directives.md", "$tmp/doc.md");
open my $fh, '>>', "$tmp/doc.md" or die;
print $fh "\n### chat_gone\n\n    Syntax:   chat_gone;\n    Default:  —\n"
    . "    Context:  http\n\nGone.\n\n    chat_gone;\n";
close $fh;
($rc, $out) = run_check("$tmp/src", "$tmp/doc.md");
isnt $rc, 0, 'a section without a directive fails the check';
like $out, qr/chat_gone is documented but no command table has it/,
    '... naming it';

done_testing;
