# packaging/: default configs, systemd units, Debian packaging (see
# docs/packaging.md).  `make install` puts configs in $(sysconfdir)/kvcenter,
# units in $(systemdsystemunitdir) and creates the state directory; the
# programs themselves are installed by each folder's bin/sbin/libexec rules.
kvcsysconfdir = $(sysconfdir)/kvcenter
dist_kvcsysconf_DATA = packaging/etc/vpxd.conf packaging/etc/hostd.conf \
	packaging/etc/vmkd.conf

systemdsystemunitdir = $(prefix)/lib/systemd/system
KVC_UNITS = packaging/systemd/kvcenter-vpxd.service \
	packaging/systemd/kvcenter-hostd.service \
	packaging/systemd/kvcenter-vmkd.service
nodist_systemdsystemunit_DATA = $(KVC_UNITS)
CLEANFILES += $(KVC_UNITS)
EXTRA_DIST += $(KVC_UNITS:=.in) packaging/debian

# Units name the installed paths, so they are made at build time.
kvc_unit_gen = $(MKDIR_P) packaging/systemd && $(SED) \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@kvcsysconfdir[@]|$(kvcsysconfdir)|g' \
	-e 's|@docdir[@]|$(docdir)|g'
packaging/systemd/kvcenter-vpxd.service: packaging/systemd/kvcenter-vpxd.service.in Makefile
	$(AM_V_GEN)$(kvc_unit_gen) $(srcdir)/$@.in > $@.tmp && mv $@.tmp $@
packaging/systemd/kvcenter-hostd.service: packaging/systemd/kvcenter-hostd.service.in Makefile
	$(AM_V_GEN)$(kvc_unit_gen) $(srcdir)/$@.in > $@.tmp && mv $@.tmp $@
packaging/systemd/kvcenter-vmkd.service: packaging/systemd/kvcenter-vmkd.service.in Makefile
	$(AM_V_GEN)$(kvc_unit_gen) $(srcdir)/$@.in > $@.tmp && mv $@.tmp $@

install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(localstatedir)/lib/kvcenter'

# kvcenter's MIB, where net-snmp looks for MIB files.
mibdir = $(datadir)/snmp/mibs
dist_mib_DATA = packaging/mib/KVCENTER-MIB.txt
