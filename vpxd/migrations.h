/* The schema migrations embedded from sql/ at build time (sql/embed.sh). */
#ifndef VPXD_MIGRATIONS_H
#define VPXD_MIGRATIONS_H

struct vpxd_migration {
    const char *name;       /* "0001-inventory" */
    const char *sql;
};

/* In file order; ends with { NULL, NULL }. */
extern const struct vpxd_migration vpxd_migrations[];

#endif
