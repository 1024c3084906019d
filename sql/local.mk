# sql/: vpxd's schema, only through numbered migrations applied in order at
# start-up.  They are embedded in vpxd at build time (sql/embed.sh).
KVC_SQL_MIGRATIONS = \
	sql/0001-inventory.sql \
	sql/0002-tasks-events-alarms.sql \
	sql/0003-access-control.sql \
	sql/0004-ha.sql \
	sql/0005-drs.sql \
	sql/0006-stats.sql \
	sql/0007-resource-pools.sql \
	sql/0008-snapshot-privileges.sql
EXTRA_DIST += $(KVC_SQL_MIGRATIONS) sql/embed.sh

vpxd/migrations.c: $(KVC_SQL_MIGRATIONS) sql/embed.sh
	@$(MKDIR_P) vpxd
	$(AM_V_GEN)$(SHELL) $(srcdir)/sql/embed.sh $@ $(srcdir) $(KVC_SQL_MIGRATIONS)
BUILT_SOURCES += vpxd/migrations.c
CLEANFILES += vpxd/migrations.c
