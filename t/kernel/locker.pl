#!/usr/bin/perl
# Lock helper of t/kernel/guest-locks.sh, run inside the test VM through
# the host's / (chroot): Debian's perl is always there, and fcntl and
# flock need a process that holds a file open.  Paths are as the chroot
# sees them.
#
#   locker.pl try   FILE r|w           non-blocking fcntl lock of the whole
#                                       file: exit 0 taken, 1 refused
#                                       (EAGAIN/EACCES), 2 another error
#   locker.pl hold  FILE r|w MARK GO   blocking fcntl lock; then create MARK,
#                                       wait until GO exists, unlock, exit
#   locker.pl ftry  FILE               non-blocking flock (LOCK_EX): as try
#   locker.pl fhold FILE MARK GO       flock (LOCK_EX), as hold
#   locker.pl count FILE N             N times: fcntl write lock (blocking),
#                                       read the decimal number in FILE, write
#                                       it plus one, unlock
#   locker.pl range FILE START LEN r|w non-blocking lock of a byte range:
#                                       as try
use strict;
use warnings;
use Fcntl qw(:DEFAULT :flock F_SETLK F_SETLKW F_RDLCK F_WRLCK F_UNLCK
	     SEEK_SET);
use Errno qw(EAGAIN EACCES EWOULDBLOCK);

# struct flock on x86_64: short type, short whence, (pad), off_t start,
# off_t len, pid_t pid, (pad)
sub flk { my ($type, $start, $len) = @_;
	return pack("s s x4 q q l x4", $type, SEEK_SET, $start, $len, 0); }

sub open_rw { my ($f) = @_;
	sysopen(my $fh, $f, O_RDWR | O_CREAT, 0666) or
		do { print STDERR "open $f: $!\n"; exit 2; };
	return $fh; }

sub refused { return $!{EAGAIN} || $!{EACCES} || $!{EWOULDBLOCK}; }

sub wait_for { my ($go) = @_;
	select(undef, undef, undef, 0.1) until -e $go; }

sub touch { my ($f) = @_;
	open(my $m, '>', $f) or die "create $f: $!"; close($m); }

my $op = shift @ARGV // '';
if ($op eq 'try' || $op eq 'range') {
	my $f = shift @ARGV;
	my ($start, $len) = $op eq 'range' ? (shift @ARGV, shift @ARGV) : (0, 0);
	my $t = (shift @ARGV) eq 'r' ? F_RDLCK : F_WRLCK;
	my $fh = open_rw($f);
	my $l = flk($t, $start, $len);
	exit 0 if fcntl($fh, F_SETLK, $l);
	exit 1 if refused();
	print STDERR "fcntl F_SETLK $f: $!\n";
	exit 2;
} elsif ($op eq 'hold') {
	my ($f, $mode, $mark, $go) = @ARGV;
	my $fh = open_rw($f);
	my $l = flk($mode eq 'r' ? F_RDLCK : F_WRLCK, 0, 0);
	fcntl($fh, F_SETLKW, $l) or
		do { print STDERR "fcntl F_SETLKW $f: $!\n"; exit 2; };
	touch($mark);
	wait_for($go);
	$l = flk(F_UNLCK, 0, 0);
	fcntl($fh, F_SETLK, $l) or
		do { print STDERR "unlock $f: $!\n"; exit 2; };
	exit 0;
} elsif ($op eq 'ftry') {
	my $fh = open_rw(shift @ARGV);
	exit 0 if flock($fh, LOCK_EX | LOCK_NB);
	exit 1 if refused();
	print STDERR "flock: $!\n";
	exit 2;
} elsif ($op eq 'fhold') {
	my ($f, $mark, $go) = @ARGV;
	my $fh = open_rw($f);
	flock($fh, LOCK_EX) or do { print STDERR "flock $f: $!\n"; exit 2; };
	touch($mark);
	wait_for($go);
	flock($fh, LOCK_UN) or do { print STDERR "flock -u $f: $!\n"; exit 2; };
	exit 0;
} elsif ($op eq 'count') {
	my ($f, $n) = @ARGV;
	my $fh = open_rw($f);
	for (1 .. $n) {
		my $l = flk(F_WRLCK, 0, 0);
		fcntl($fh, F_SETLKW, $l) or
			do { print STDERR "fcntl F_SETLKW $f: $!\n"; exit 2; };
		sysseek($fh, 0, SEEK_SET);
		my $buf = '';
		sysread($fh, $buf, 64) // die "read $f: $!";
		my $v = ($buf =~ /^(\d+)/) ? $1 : 0;
		sysseek($fh, 0, SEEK_SET);
		my $out = ($v + 1) . "\n";
		syswrite($fh, $out) == length($out) or die "write $f: $!";
		$l = flk(F_UNLCK, 0, 0);
		fcntl($fh, F_SETLK, $l) or die "unlock $f: $!";
	}
	exit 0;
}
print STDERR "usage: locker.pl try|hold|ftry|fhold|count|range ...\n";
exit 2;
