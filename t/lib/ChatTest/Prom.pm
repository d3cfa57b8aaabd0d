package ChatTest::Prom;

# ChatTest::Prom: a strict parser of the Prometheus text exposition format
# (version 0.0.4), for the tests of chat_metrics.  parse($text) returns
# ($metrics, \@errors): $metrics->{families}{name} = { type, help,
# samples => [ [name, {labels}, value], ... ] } and $metrics->{value}{key}
# with key "name" or 'name{a="x",b="y"}' (labels sorted).  It refuses
# what Prometheus refuses and what the format's rules forbid:
#   - a line that is neither a sample, "# HELP", "# TYPE" nor a comment;
#   - bad metric or label names, bad escapes, values that are no number;
#   - a TYPE after samples of its family, two TYPEs or HELPs for a family,
#     a family whose samples are not together, a sample of no family with
#     a TYPE line (we require TYPE and HELP for all), duplicate series;
#   - counters not ending in _total or negative; histograms whose buckets
#     are not cumulative, without +Inf, or whose +Inf bucket differs from
#     _count, or without _sum.

use strict;
use warnings;

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LNAME = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $VALUE = qr/[+-]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|Inf|NaN)/;

sub key {
    my ($name, $labels) = @_;
    return $name unless %$labels;
    return $name . '{' . join(',', map { "$_=\"$labels->{$_}\"" }
        sort keys %$labels) . '}';
}

# the family of a sample name (histogram and summary suffixes)
sub family_of {
    my ($fam, $name) = @_;
    return $name if $fam->{$name};
    for my $sfx (qw(_bucket _sum _count)) {
        (my $base = $name) =~ s/\Q$sfx\E$// or next;
        return $base if $fam->{$base};
    }
    return $name;
}

# scrape($t, $path): one GET of $t's metrics location (default
# /chat/metrics; the test's server block declares it), parsed: the value
# hash of parse(), {} when there was no answer
sub scrape {
    my ($t, $path) = @_;
    my (undef, undef, $body) = $t->http('GET', $path // '/chat/metrics');
    my ($m) = parse($body // '');
    return $m->{value} // {};
}

sub parse {
    my ($text) = @_;
    my (%fam, %value, @err, %closed, $current);
    my $n = 0;

    push @err, 'does not end with a newline' if $text ne ''
        && substr($text, -1) ne "\n";

    for my $line (split /\n/, $text) {
        $n++;
        if ($line =~ /^#\s+(HELP|TYPE)\s+($NAME)(?:\s+(.*))?$/) {
            my ($kw, $name, $rest) = ($1, $2, $3 // '');
            my $f = $fam{$name} //= { samples => [] };
            if ($closed{$name} || @{ $f->{samples} }) {
                push @err, "line $n: $kw of $name after its samples";
            }
            if ($kw eq 'TYPE') {
                push @err, "line $n: second TYPE of $name" if $f->{type};
                push @err, "line $n: bad type '$rest'" unless $rest
                    =~ /^(counter|gauge|histogram|summary|untyped)$/;
                $f->{type} = $rest;
            } else {
                push @err, "line $n: second HELP of $name"
                    if defined $f->{help};
                push @err, "line $n: bad escape in HELP"
                    if $rest =~ /\\[^\\n]/;
                $f->{help} = $rest;
            }
            if (defined $current && $current ne $name) {
                $closed{$current} = 1;
            }
            $current = $name;
            next;
        }
        next if $line =~ /^#/;
        if ($line =~ /^\s*$/) {
            push @err, "line $n: empty line";
            next;
        }
        my ($name, $lab, $val) = $line =~
            /^($NAME)(?:\{(.*)\})?[ \t]+($VALUE)(?:[ \t]+-?[0-9]+)?$/
            or do { push @err, "line $n: not a sample: $line"; next };
        my %labels;
        if (defined $lab && $lab ne '') {
            my $l = $lab;
            while ($l ne '') {
                $l =~ s/^($LNAME)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//
                    or do { push @err, "line $n: bad labels {$lab}"; last };
                push @err, "line $n: label $1 twice" if exists $labels{$1};
                $labels{$1} = $2;
            }
        }
        my $f = family_of(\%fam, $name);
        if (!$fam{$f} || !$fam{$f}{type} || !defined $fam{$f}{help}) {
            push @err, "line $n: $name has no TYPE and HELP";
            $fam{$f} //= { samples => [] };
        }
        push @err, "line $n: samples of $f are not together"
            if $closed{$f};
        if (defined $current && $current ne $f) {
            $closed{$current} = 1;
        }
        $current = $f;
        my $k = key($name, \%labels);
        push @err, "line $n: duplicate series $k" if exists $value{$k};
        $value{$k} = $val + 0;
        push @{ $fam{$f}{samples} }, [ $name, \%labels, $val + 0 ];
    }

    for my $f (sort keys %fam) {
        my $type = $fam{$f}{type} // 'untyped';
        my @s = @{ $fam{$f}{samples} };
        if ($type eq 'counter') {
            push @err, "$f: a counter's name ends in _total"
                unless $f =~ /_total$/;
            push @err, "$f: negative counter" if grep { $_->[2] < 0 } @s;
        }
        next unless $type eq 'histogram';
        my %series;
        for my $s (@s) {
            my %l = %{ $s->[1] };
            my $le = delete $l{le};
            my $id = key('', \%l);
            if ($s->[0] eq "${f}_bucket") {
                push @err, "$f: bucket without le" unless defined $le;
                push @{ $series{$id}{b} }, [ $le, $s->[2] ] if defined $le;
            } elsif ($s->[0] eq "${f}_sum") {
                $series{$id}{sum} = $s->[2];
            } elsif ($s->[0] eq "${f}_count") {
                $series{$id}{count} = $s->[2];
            } else {
                push @err, "$f: stray sample $s->[0]";
            }
        }
        for my $id (keys %series) {
            my $h = $series{$id};
            my @b = @{ $h->{b} // [] };
            push @err, "$f: no buckets" unless @b;
            push @err, "$f: no _sum" unless defined $h->{sum};
            push @err, "$f: no _count" unless defined $h->{count};
            my ($prev_le, $prev) = (-1e300, 0);
            for my $b (@b) {
                my $le = $b->[0] eq '+Inf' ? 9**9**9 : $b->[0];
                push @err, "$f: le $b->[0] is no number"
                    unless $b->[0] eq '+Inf' || $b->[0] =~ /^$VALUE$/;
                push @err, "$f: buckets not in increasing le"
                    if $le <= $prev_le;
                push @err, "$f: buckets not cumulative at le=$b->[0]"
                    if $b->[1] < $prev;
                ($prev_le, $prev) = ($le, $b->[1]);
            }
            push @err, "$f: last bucket is not +Inf"
                unless @b && $b[-1][0] eq '+Inf';
            push @err, "$f: +Inf bucket $prev != _count "
                . ($h->{count} // 'none')
                if @b && defined $h->{count} && $prev != $h->{count};
        }
    }

    return ({ families => \%fam, value => \%value }, \@err);
}

1;
