-- Users, roles (sets of privileges), permissions on inventory objects,
-- sessions (only a hash of each token is stored) and the audit log.
CREATE TABLE users (
    name     TEXT PRIMARY KEY,
    hash     TEXT NOT NULL,       -- argon2id encoded hash
    builtin  INTEGER NOT NULL DEFAULT 0,
    created  TEXT NOT NULL
);

CREATE TABLE role (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    builtin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE role_privilege (
    role      INTEGER NOT NULL REFERENCES role(id) ON DELETE CASCADE,
    privilege TEXT NOT NULL,
    PRIMARY KEY (role, privilege)
);

CREATE TABLE permission (
    entity    TEXT NOT NULL,
    principal TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    role      INTEGER NOT NULL REFERENCES role(id),
    propagate INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (entity, principal)
);

CREATE TABLE session (
    token_hash    TEXT PRIMARY KEY,   -- hex SHA-256 of the token
    user_name     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created       TEXT NOT NULL,
    last_accessed TEXT NOT NULL,
    last_epoch    INTEGER NOT NULL
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    user_name TEXT NOT NULL,
    remote    TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL,        -- e.g. "POST /api/vcenter/vm"
    object    TEXT NOT NULL DEFAULT '',
    result    TEXT NOT NULL,        -- "ok" or the error type
    status    INTEGER NOT NULL DEFAULT 0
);

-- Built-in roles: ids below 100, as vCenter keeps its system roles apart.
INSERT INTO role (id, name, builtin) VALUES
  (-1, 'Admin', 1), (-2, 'ReadOnly', 1), (-5, 'NoAccess', 1),
  (1, 'VirtualMachinePowerUser', 1);
INSERT INTO role_privilege (role, privilege) VALUES
  (-1, 'System.All'),
  (-2, 'System.Anonymous'), (-2, 'System.Read'), (-2, 'System.View'),
  (1, 'System.Anonymous'), (1, 'System.Read'), (1, 'System.View'),
  (1, 'VirtualMachine.Interact.PowerOn'), (1, 'VirtualMachine.Interact.PowerOff'),
  (1, 'VirtualMachine.Interact.Suspend'), (1, 'VirtualMachine.Interact.Reset'),
  (1, 'VirtualMachine.Interact.ConsoleInteract'),
  (1, 'VirtualMachine.Interact.ToolsInstall');
