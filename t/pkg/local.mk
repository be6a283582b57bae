# The Debian package, built, installed, run as its systemd unit and
# purged. It installs a package on the machine, so it is not in TESTS:
# t/run-all.sh calls t/pkg/package-test.sh; make check builds svcrun,
# the service manager's part it plays where systemd is not PID 1.
check_PROGRAMS += t/pkg/svcrun
t_pkg_svcrun_SOURCES = t/pkg/svcrun.c t/notify_recv.h
t_pkg_svcrun_LDADD = # none of the project's libraries (t/local.mk's LDADD)
dist_check_SCRIPTS += t/pkg/package-test.sh
# What the package is built from travels in the release tarball too.
EXTRA_DIST += debian/changelog debian/control debian/copyright \
	debian/rules debian/source/format debian/source/options \
	debian/tessera.install debian/tessera.postinst debian/tessera.postrm \
	debian/tessera.prerm contrib/etc/tessera.conf contrib/etc/exports \
	contrib/logrotate/tessera contrib/systemd/tesserad@.service
