/* SQL for list filters: "?N IS NULL OR COL IN (values of the JSON array ?N)". */
#ifndef VPXD_API_FILTERS_H
#define VPXD_API_FILTERS_H

#define IN_FILTER(COL, N) \
    " AND (?" #N " IS NULL OR " COL " IN (SELECT value FROM json_each(?" #N ")))"

#define API_LIST_MAX 4000

#endif
