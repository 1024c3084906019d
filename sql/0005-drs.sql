-- DRS (docs/drs.md): per-cluster settings, rules, recommendations.
-- Whether DRS is on stays in cluster.drs_enabled.
CREATE TABLE drs_config (
    cluster    TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    automation TEXT NOT NULL DEFAULT 'fullyAutomated' CHECK (automation IN
                   ('manual', 'partiallyAutomated', 'fullyAutomated')),
    threshold  INTEGER NOT NULL DEFAULT 3 CHECK (threshold BETWEEN 1 AND 5),
    interval_s INTEGER NOT NULL DEFAULT 60 CHECK (interval_s BETWEEN 1 AND 86400)
);

-- VM-VM (affinity, anti-affinity) and VM-host (must, should, must not,
-- should not) rules; members as JSON arrays of ids.
CREATE TABLE drs_rule (
    id      TEXT PRIMARY KEY,
    cluster TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('VM_AFFINITY', 'VM_ANTI_AFFINITY',
                'VM_HOST_MUST', 'VM_HOST_SHOULD', 'VM_HOST_MUST_NOT',
                'VM_HOST_SHOULD_NOT')),
    enabled INTEGER NOT NULL DEFAULT 1,
    vms     TEXT NOT NULL DEFAULT '[]',
    hosts   TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL,
    UNIQUE (cluster, name)
);

-- What a pass recommended, and what became of it.
CREATE TABLE drs_recommendation (
    id           TEXT PRIMARY KEY,
    cluster      TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    vm           TEXT NOT NULL,
    source       TEXT NOT NULL,
    target       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    gain         REAL NOT NULL,
    cost         REAL NOT NULL,
    migration_ms INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',
                     'applying', 'applied', 'failed', 'superseded')),
    message      TEXT NOT NULL DEFAULT '',
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
);
CREATE INDEX drs_recommendation_cluster ON drs_recommendation(cluster, state);
