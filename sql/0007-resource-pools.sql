-- Resource pools (docs/resource-pools.md): a VM's own CPU (MHz) and memory
-- (MiB) reservation, limit and shares, as a vSphere VM's resource
-- allocation.  A VM without a row reserves nothing, has no limit and normal
-- shares (1000 per vCPU, 10 per MiB of memory, as vSphere computes them).
CREATE TABLE vm_alloc (
    vm               TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    cpu_reservation  INTEGER NOT NULL DEFAULT 0 CHECK (cpu_reservation >= 0),
    cpu_limit        INTEGER NOT NULL DEFAULT -1 CHECK (cpu_limit >= -1),
    cpu_shares_level TEXT NOT NULL DEFAULT 'NORMAL',
    cpu_shares       INTEGER NOT NULL DEFAULT 0,
    mem_reservation  INTEGER NOT NULL DEFAULT 0 CHECK (mem_reservation >= 0),
    mem_limit        INTEGER NOT NULL DEFAULT -1 CHECK (mem_limit >= -1),
    mem_shares_level TEXT NOT NULL DEFAULT 'NORMAL',
    mem_shares       INTEGER NOT NULL DEFAULT 0
);
