-- Inventory: every managed object is a row of `entity` (id, type, name,
-- parent), so folder contents and permission propagation walk one table;
-- each type keeps its own columns in its own table, deleted with the entity.
CREATE TABLE id_seq (
    next INTEGER NOT NULL
);
INSERT INTO id_seq (next) VALUES (1);

CREATE TABLE entity (
    id      TEXT PRIMARY KEY,
    type    TEXT NOT NULL CHECK (type IN ('folder', 'datacenter', 'cluster',
                'host', 'resource_pool', 'vm', 'datastore', 'network')),
    name    TEXT NOT NULL,
    parent  TEXT REFERENCES entity(id),
    created TEXT NOT NULL
);
CREATE INDEX entity_parent ON entity(parent);
CREATE UNIQUE INDEX entity_name ON entity(parent, type, name);

CREATE TABLE folder (
    id          TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    folder_type TEXT NOT NULL CHECK (folder_type IN ('DATACENTER', 'DATASTORE',
                    'HOST', 'NETWORK', 'VIRTUAL_MACHINE')),
    datacenter  TEXT
);

CREATE TABLE datacenter (
    id               TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    vm_folder        TEXT NOT NULL,
    host_folder      TEXT NOT NULL,
    datastore_folder TEXT NOT NULL,
    network_folder   TEXT NOT NULL
);

CREATE TABLE cluster (
    id            TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    datacenter    TEXT NOT NULL,
    resource_pool TEXT NOT NULL,
    ha_enabled    INTEGER NOT NULL DEFAULT 0,
    drs_enabled   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE host (
    id               TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    datacenter       TEXT NOT NULL,
    cluster          TEXT,
    resource_pool    TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    port             INTEGER NOT NULL,
    user_name        TEXT NOT NULL,
    thumbprint       TEXT NOT NULL,
    connection_state TEXT NOT NULL DEFAULT 'DISCONNECTED' CHECK (connection_state
                         IN ('CONNECTED', 'DISCONNECTED', 'NOT_RESPONDING')),
    power_state      TEXT NOT NULL DEFAULT 'POWERED_ON' CHECK (power_state
                         IN ('POWERED_ON', 'POWERED_OFF', 'STANDBY')),
    maintenance      INTEGER NOT NULL DEFAULT 0,
    cpu_count        INTEGER NOT NULL DEFAULT 0,
    cpu_mhz          INTEGER NOT NULL DEFAULT 0,
    memory_bytes     INTEGER NOT NULL DEFAULT 0,
    product_version  TEXT NOT NULL DEFAULT '',
    last_seen        TEXT
);
CREATE UNIQUE INDEX host_addr ON host(hostname, port);

CREATE TABLE resource_pool (
    id                TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    datacenter        TEXT NOT NULL,
    owner             TEXT NOT NULL,          -- cluster or standalone host
    cpu_reservation   INTEGER NOT NULL DEFAULT 0,
    cpu_limit         INTEGER NOT NULL DEFAULT -1,
    cpu_expandable    INTEGER NOT NULL DEFAULT 1,
    cpu_shares_level  TEXT NOT NULL DEFAULT 'NORMAL',
    cpu_shares        INTEGER NOT NULL DEFAULT 4000,
    mem_reservation   INTEGER NOT NULL DEFAULT 0,
    mem_limit         INTEGER NOT NULL DEFAULT -1,
    mem_expandable    INTEGER NOT NULL DEFAULT 1,
    mem_shares_level  TEXT NOT NULL DEFAULT 'NORMAL',
    mem_shares        INTEGER NOT NULL DEFAULT 163840
);

CREATE TABLE datastore (
    id                   TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    datacenter           TEXT NOT NULL,
    ds_type              TEXT NOT NULL DEFAULT 'VMFS',
    url                  TEXT NOT NULL DEFAULT '',
    capacity             INTEGER NOT NULL DEFAULT 0,
    free_space           INTEGER NOT NULL DEFAULT 0,
    accessible           INTEGER NOT NULL DEFAULT 1,
    thin_provisioning    INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE network (
    id         TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    datacenter TEXT NOT NULL,
    net_type   TEXT NOT NULL DEFAULT 'STANDARD_PORTGROUP',
    vlan       INTEGER NOT NULL DEFAULT 0
);

-- Which host sees which datastore and network.
CREATE TABLE host_datastore (
    host      TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    datastore TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    PRIMARY KEY (host, datastore)
);
CREATE TABLE host_network (
    host    TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    network TEXT NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    PRIMARY KEY (host, network)
);

CREATE TABLE vm (
    id               TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    datacenter       TEXT NOT NULL,
    host             TEXT,
    cluster          TEXT,
    resource_pool    TEXT,
    datastore        TEXT,
    guest_os         TEXT NOT NULL DEFAULT 'OTHER_LINUX_64',
    hw_version       TEXT NOT NULL DEFAULT 'VMX_19',
    power_state      TEXT NOT NULL DEFAULT 'POWERED_OFF' CHECK (power_state
                         IN ('POWERED_OFF', 'POWERED_ON', 'SUSPENDED')),
    cpu_count        INTEGER NOT NULL DEFAULT 1,
    cores_per_socket INTEGER NOT NULL DEFAULT 1,
    memory_mib       INTEGER NOT NULL DEFAULT 512,
    bios_uuid        TEXT NOT NULL,
    instance_uuid    TEXT NOT NULL UNIQUE,
    config_path      TEXT NOT NULL DEFAULT '',
    hardware         TEXT NOT NULL DEFAULT '{}',  -- disks, nics, cdroms (JSON)
    tools_run_state  TEXT NOT NULL DEFAULT 'NOT_RUNNING',
    tools_version    TEXT NOT NULL DEFAULT '',
    guest_state      TEXT NOT NULL DEFAULT 'NOT_RUNNING',
    guest_host_name  TEXT NOT NULL DEFAULT '',
    guest_ip         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX vm_host ON vm(host);
