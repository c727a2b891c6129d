-- hostkey-mcp shared state, SQLite. Times are Unix nanoseconds; absent values are 0 or ''.
-- Keep in step with ../postgres/0001_init.sql: the same tables and columns, SQLite types.
CREATE TABLE event_head (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL, pruned INTEGER NOT NULL);
INSERT INTO event_head (id, last, pruned) VALUES (1, 0, 0);
CREATE TABLE events (
	pos INTEGER PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	server_id INTEGER NOT NULL,
	at_ns INTEGER NOT NULL,
	data BLOB NOT NULL
);
CREATE TABLE event_dedupe (dkey TEXT PRIMARY KEY, pos INTEGER NOT NULL);
CREATE INDEX event_dedupe_pos ON event_dedupe (pos);
CREATE TABLE install_jobs (
	id TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL UNIQUE,
	server_id INTEGER NOT NULL,
	state TEXT NOT NULL,
	created_ns INTEGER NOT NULL,
	done_ns INTEGER NOT NULL,
	event_id TEXT NOT NULL,
	data BLOB NOT NULL
);
CREATE TABLE workflows (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	session TEXT NOT NULL,
	owner TEXT NOT NULL,
	epoch INTEGER NOT NULL,
	lease_ns INTEGER NOT NULL,
	state TEXT NOT NULL,
	input BLOB NOT NULL,
	result BLOB NOT NULL,
	created_ns INTEGER NOT NULL,
	updated_ns INTEGER NOT NULL
);
CREATE INDEX workflows_lease ON workflows (state, lease_ns);
CREATE TABLE workflow_steps (
	job_id TEXT NOT NULL,
	name TEXT NOT NULL,
	seq INTEGER NOT NULL,
	intent BLOB NOT NULL,
	intent_ns INTEGER NOT NULL,
	intent_epoch INTEGER NOT NULL,
	done INTEGER NOT NULL,
	result BLOB NOT NULL,
	done_ns INTEGER NOT NULL,
	PRIMARY KEY (job_id, name)
);
CREATE TABLE approvals (
	id TEXT PRIMARY KEY,
	akey TEXT NOT NULL,
	session TEXT NOT NULL,
	state TEXT NOT NULL,
	via TEXT NOT NULL,
	data BLOB NOT NULL,
	created_ns INTEGER NOT NULL,
	expires_ns INTEGER NOT NULL,
	decided_ns INTEGER NOT NULL,
	used_ns INTEGER NOT NULL
);
CREATE INDEX approvals_key ON approvals (akey);
CREATE TABLE handles (id TEXT PRIMARY KEY, data BLOB NOT NULL, expires_ns INTEGER NOT NULL);
CREATE TABLE cooldowns (name TEXT PRIMARY KEY, failures INTEGER NOT NULL, until_ns INTEGER NOT NULL);
CREATE TABLE rate_buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');
CREATE TABLE audit_lines (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, line BLOB NOT NULL);
CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE topic_versions (topic INTEGER PRIMARY KEY, v INTEGER NOT NULL);
INSERT INTO topic_versions (topic, v) VALUES (0, 0), (1, 0);
