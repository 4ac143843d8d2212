# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A perl program for run-programs.sh: a large hash and a large string in the
# main interpreter, checked a few thousand random entries at a time between
# requests; ithreads (interpreters of their own) with hashes of their own and
# counters shared with the main thread. Requests on standard input, one answer
# line each on standard output:
#   (at start)  READY <digest>
#   verify      OK <digest> ticks=<n> threads=<n>   (every thread ran since)
#            or FAIL <reason>
#   quit        BYE
#
# usage: program.pl ENTRIES THREADS

use strict;
use warnings;
use threads;
use threads::shared;
use Digest::SHA;
use IO::Handle;
use Time::HiRes qw(sleep time);

my ($entries, $nthreads) = @ARGV;
die "usage: program.pl ENTRIES THREADS\n" unless $entries && defined $nthreads;
STDOUT->autoflush(1);

sub value { my ($i) = @_; return ($i * 2654435761) % 4294967296; }

my @ticks : shared = (0) x $nthreads;
my @thread_errors : shared;
my $stop : shared = 0;

# Threads first: each clones the interpreter as it is, and it is small now.
my @workers = map {
        my $idx = $_;
        threads->create(sub {
                my %own = map { ("t$idx-$_" => $_ * 7 + $idx) } 0 .. 19999;
                my $n = 0;
                while (!$stop) {
                        for (1 .. 100) {
                                my $i = int(rand(20000));
                                my $v = $own{"t$idx-$i"};
                                if (!defined $v || $v != $i * 7 + $idx) {
                                        lock(@thread_errors);
                                        push @thread_errors, "thread $idx: t$idx-$i is " . ($v // 'missing');
                                }
                        }
                        { lock(@ticks); $ticks[$idx]++; }
                        sleep(0.01);
                }
                return 0;
        });
} 0 .. $nthreads - 1;

my %h;
$h{"key-$_"} = value($_) for 0 .. $entries - 1;
my $unit = join('', map { chr(($_ * 131 + ($_ >> 12)) & 0xff) } 0 .. 65535);
my $big = $unit x 512;    # 32 MiB
my @order = keys %h;      # the hash's own order, stable while it is unchanged

sub digest {
        my $sha = Digest::SHA->new(256);
        for (my $i = 0; $i < @order; $i += 65536) {
                my $end = $i + 65535 < $#order ? $i + 65535 : $#order;
                $sha->add(join("\n", map { "$_=$h{$_}" } @order[$i .. $end]), "\n");
        }
        $sha->add($big);
        return $sha->hexdigest;
}

my @errors;
sub spot_check {
        for (1 .. 2000) {
                my $i = int(rand($entries));
                my $v = $h{"key-$i"};
                push @errors, "key-$i is " . ($v // 'missing') . ", expected " . value($i)
                        if !defined $v || $v != value($i);
        }
        my $off = int(rand(511)) * 65536;
        push @errors, "string differs at offset $off" if substr($big, $off, 65536) ne $unit;
        push @errors, "hash has " . scalar(keys %h) . " keys" if scalar(keys %h) != $entries;
}

my $reference = digest();
print "READY $reference\n";

sub verify {
        my @before;
        { lock(@ticks); @before = @ticks; }
        my $d = digest();
        return "FAIL digest $d, expected $reference" if $d ne $reference;
        spot_check();
        return "FAIL " . scalar(@errors) . " errors; first: $errors[0]" if @errors;
        my $deadline = time + 60;
        for my $i (0 .. $nthreads - 1) {
                return "FAIL thread $i is gone" unless $workers[$i]->is_running;
                while (1) {
                        my $t;
                        { lock(@ticks); $t = $ticks[$i]; }
                        last if $t > $before[$i];
                        return "FAIL thread $i made no progress in 60 s" if time > $deadline;
                        sleep(0.01);
                }
        }
        {
                lock(@thread_errors);
                return "FAIL " . scalar(@thread_errors) . " errors; first: $thread_errors[0]" if @thread_errors;
        }
        my $sum = 0;
        { lock(@ticks); $sum += $_ for @ticks; }
        return "OK $d ticks=$sum threads=" . scalar(threads->list(threads::running));
}

my $pending = '';
my $rin = '';
vec($rin, fileno(STDIN), 1) = 1;
while (1) {
        my $n = select(my $rout = $rin, undef, undef, 0.2);
        if ($n <= 0) {
                spot_check();
                next;
        }
        my $k = sysread(STDIN, my $chunk, 4096);
        last unless $k;
        $pending .= $chunk;
        while ($pending =~ s/^([^\n]*)\n//) {
                my $line = $1;
                $line =~ s/\s+$//;
                if ($line eq 'verify') {
                        print verify(), "\n";
                } elsif ($line eq 'quit') {
                        $stop = 1;
                        $_->join for @workers;
                        print "BYE\n";
                        exit 0;
                } else {
                        print "FAIL unknown request '$line'\n";
                }
        }
}
$stop = 1;
$_->join for @workers;
exit 0;
