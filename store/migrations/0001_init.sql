-- 0001_init: the schema of SPEC §8, verbatim, except schema_migration, which the
-- migration runner creates itself (§8 "Migrations"). Released: never edit this file;
-- add 0002_*.sql instead. The runner stores the sha256 of these exact bytes.

CREATE TABLE sandbox (
  id                   TEXT PRIMARY KEY CHECK (length(id) = 26 AND id = upper(id)),
  status               TEXT NOT NULL CHECK (status IN ('creating','running','stopping','stopped',
                                             'waking','error','destroyed','purged')),
  node                 TEXT NOT NULL DEFAULT 'local',    -- host that runs it (multi-host later)
  image                TEXT NOT NULL,
  env                  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(env) AND json_type(env) = 'object'),
  visibility           TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public','private')),
  idle_policy          TEXT NOT NULL DEFAULT 'sleep' CHECK (idle_policy IN ('sleep','always_on')),
  template             TEXT,                             -- §2.6.1; NULL: the skeleton was used
  git_remote_url       TEXT,
  dev_command          TEXT,                             -- NULL: sandbox.dev_command / detection
  dev_port             INTEGER CHECK (dev_port BETWEEN 1 AND 65535),
  memory_bytes INTEGER CHECK (memory_bytes > 0),  -- overrides; NULL = sandbox.memory / .cpus / .pids
  cpus_milli   INTEGER CHECK (cpus_milli > 0),    -- 1500 = 1.5 CPUs
  pids         INTEGER CHECK (pids > 0),
  keepalive_until INTEGER, last_active_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, started_at INTEGER, stopped_at INTEGER,
  stop_reason          TEXT,                             -- §5.1 stop reasons
  exit_code INTEGER, oom_killed INTEGER NOT NULL DEFAULT 0,  -- of a die that sandboxd did not cause (§5.2)
  container_id         TEXT,                             -- full 64-hex id; NULL when none exists
  container_ip         TEXT,
  container_missing    INTEGER NOT NULL DEFAULT 0,       -- §5.1
  fresh_workspace      INTEGER NOT NULL DEFAULT 0,       -- §5.3: this create made the workspace (rollback)
  error_reason         TEXT,                             -- §5.1 error reasons; with error_message
  error_message        TEXT,
  external_user_id     TEXT CHECK (length(external_user_id) <= 256),  -- the owner record (§5.7)
  external_project_id  TEXT CHECK (length(external_project_id) <= 256),
  external_workspace_id TEXT CHECK (length(external_workspace_id) <= 256),
  runtimed_secret_gen  INTEGER NOT NULL DEFAULT 0,
  runtimed_secret_hash TEXT,                             -- hex SHA-256 of the issued secret (§6.2)
  spec_version         INTEGER NOT NULL DEFAULT 1        -- +1 on any change of the container spec
) STRICT;
CREATE INDEX sandbox_status_idx  ON sandbox(status);
CREATE INDEX sandbox_idle_idx    ON sandbox(last_active_at) WHERE status = 'running' AND idle_policy = 'sleep';
CREATE INDEX sandbox_user_idx    ON sandbox(external_user_id, created_at);
CREATE INDEX sandbox_project_idx ON sandbox(external_project_id, created_at);

CREATE TABLE sandbox_port (
  sandbox_id TEXT NOT NULL REFERENCES sandbox(id) ON DELETE CASCADE,
  port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  position   INTEGER NOT NULL,                           -- declaration order; 0 = primary (§1.5)
  PRIMARY KEY (sandbox_id, port)
) STRICT, WITHOUT ROWID;

CREATE TABLE task (
  id          TEXT PRIMARY KEY CHECK (length(id) = 26),
  sandbox_id  TEXT NOT NULL REFERENCES sandbox(id) ON DELETE CASCADE,
  agent       TEXT NOT NULL CHECK (agent IN ('opencode','claude-code','command')),
  prompt      TEXT,                                      -- agents only
  argv        TEXT CHECK (argv IS NULL OR json_valid(argv)),  -- command only: JSON array
  model       TEXT,
  env_keys    TEXT NOT NULL DEFAULT '[]',                -- names only: env VALUES are never stored
  status      TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
  exit_code INTEGER, error_code TEXT, error_message TEXT,
  result      TEXT CHECK (result IS NULL OR json_valid(result)),  -- data of the done event
  timeout_ms INTEGER NOT NULL, actor TEXT NOT NULL,
  created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, cancel_requested_at INTEGER,
  last_event_id  INTEGER NOT NULL DEFAULT 0,             -- highest event id stored
  events_dropped INTEGER NOT NULL DEFAULT 0,
  CHECK ((agent = 'command') = (argv IS NOT NULL) AND (agent = 'command') = (prompt IS NULL))
) STRICT;
CREATE INDEX task_sandbox_idx ON task(sandbox_id, created_at);
CREATE INDEX task_open_idx    ON task(sandbox_id) WHERE status IN ('queued','running');

CREATE TABLE task_event (
  task_id TEXT NOT NULL REFERENCES task(id) ON DELETE CASCADE,
  id      INTEGER NOT NULL CHECK (id >= 1),
  type    TEXT NOT NULL CHECK (type IN ('started','stdout','stderr','message','tool','file','exit','error','done')),
  ts      INTEGER NOT NULL,
  data    TEXT NOT NULL,                                 -- the event's data object, JSON
  PRIMARY KEY (task_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit (
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
  actor      TEXT NOT NULL,          -- 'token:<name>' | 'operator' | 'system' | 'anonymous'
  actor_ip TEXT, request_id TEXT,
  action     TEXT NOT NULL,          -- e.g. sandbox.create, task.cancel, file.put (named in §2, §5, §7)
  sandbox_id TEXT,                   -- no FK: audit rows outlive everything
  detail     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
) STRICT;
CREATE INDEX audit_ts_idx      ON audit(ts);
CREATE INDEX audit_sandbox_idx ON audit(sandbox_id, ts) WHERE sandbox_id IS NOT NULL;
CREATE INDEX audit_action_idx  ON audit(action, ts);

CREATE TABLE instance (             -- exactly one row, made on first boot
  id         TEXT NOT NULL CHECK (length(id) = 26),  -- the instance id (§1.2)
  created_at INTEGER NOT NULL
) STRICT;
