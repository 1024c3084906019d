-- Tasks with progress and a history of their changes; events; alarms.
CREATE TABLE task (
    id          TEXT PRIMARY KEY,
    service     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    user_name   TEXT,
    status      TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'BLOCKED',
                    'SUCCEEDED', 'FAILED')),
    cancelable  INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL DEFAULT 100,
    completed   INTEGER NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    result      TEXT,              -- JSON
    error       TEXT,              -- JSON error body
    start_time  TEXT,
    end_time    TEXT,
    created     TEXT NOT NULL
);
CREATE INDEX task_status ON task(status);

CREATE TABLE task_history (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    task      TEXT NOT NULL REFERENCES task(id) ON DELETE CASCADE,
    time      TEXT NOT NULL,
    status    TEXT NOT NULL,
    completed INTEGER NOT NULL,
    message   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX task_history_task ON task_history(task);

CREATE TABLE event (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    type      TEXT NOT NULL,
    severity  TEXT NOT NULL DEFAULT 'info' CHECK (severity IN ('info',
                  'warning', 'error')),
    object    TEXT,
    user_name TEXT,
    message   TEXT NOT NULL
);

CREATE TABLE alarm (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    object_type TEXT NOT NULL,
    event_type  TEXT,              -- fires when this event is recorded
    metric      TEXT,              -- or when this metric crosses threshold
    threshold   REAL,
    severity    TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('warning',
                    'error')),
    enabled     INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE alarm_state (
    alarm        TEXT NOT NULL REFERENCES alarm(id) ON DELETE CASCADE,
    object       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('green', 'yellow', 'red')),
    time         TEXT NOT NULL,
    message      TEXT NOT NULL DEFAULT '',
    acknowledged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (alarm, object)
);

INSERT INTO alarm (id, name, description, object_type, event_type, severity) VALUES
  ('alarm-1', 'Host not responding',
   'A host stopped sending heartbeats', 'host', 'HostNotRespondingEvent', 'error'),
  ('alarm-2', 'Virtual machine power state changed',
   'A VM was powered on, off, suspended or reset', 'vm', 'VmPowerStateChangedEvent', 'warning');
INSERT INTO alarm (id, name, description, object_type, metric, threshold, severity) VALUES
  ('alarm-3', 'Datastore usage on disk',
   'Datastore usage is over the threshold (percent)', 'datastore', 'datastore.usage', 85.0, 'warning');
