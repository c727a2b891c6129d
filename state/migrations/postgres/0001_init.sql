-- hostkey-mcp shared state, PostgreSQL. Times are Unix nanoseconds; absent values are 0 or ''.
-- Keep in step with ../sqlite/0001_init.sql: the same tables and columns, PostgreSQL types.
CREATE TABLE event_head (id BIGINT PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL, pruned BIGINT NOT NULL);
INSERT INTO event_head (id, last, pruned) VALUES (1, 0, 0);
CREATE TABLE events (
	pos BIGINT PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	server_id BIGINT NOT NULL,
	at_ns BIGINT NOT NULL,
	data BYTEA NOT NULL
);
CREATE TABLE event_dedupe (dkey TEXT PRIMARY KEY, pos BIGINT NOT NULL);
CREATE INDEX event_dedupe_pos ON event_dedupe (pos);
CREATE TABLE install_jobs (
	id TEXT PRIMARY KEY,
	secret_hash BYTEA NOT NULL UNIQUE,
	server_id BIGINT NOT NULL,
	state TEXT NOT NULL,
	created_ns BIGINT NOT NULL,
	done_ns BIGINT NOT NULL,
	event_id TEXT NOT NULL,
	data BYTEA NOT NULL
);
CREATE TABLE workflows (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	session TEXT NOT NULL,
	owner TEXT NOT NULL,
	epoch BIGINT NOT NULL,
	lease_ns BIGINT NOT NULL,
	state TEXT NOT NULL,
	input BYTEA NOT NULL,
	result BYTEA NOT NULL,
	created_ns BIGINT NOT NULL,
	updated_ns BIGINT NOT NULL
);
CREATE INDEX workflows_lease ON workflows (state, lease_ns);
CREATE TABLE workflow_steps (
	job_id TEXT NOT NULL,
	name TEXT NOT NULL,
	seq BIGINT NOT NULL,
	intent BYTEA NOT NULL,
	intent_ns BIGINT NOT NULL,
	intent_epoch BIGINT NOT NULL,
	done BIGINT NOT NULL,
	result BYTEA NOT NULL,
	done_ns BIGINT NOT NULL,
	PRIMARY KEY (job_id, name)
);
CREATE TABLE approvals (
	id TEXT PRIMARY KEY,
	akey TEXT NOT NULL,
	session TEXT NOT NULL,
	state TEXT NOT NULL,
	via TEXT NOT NULL,
	data BYTEA NOT NULL,
	created_ns BIGINT NOT NULL,
	expires_ns BIGINT NOT NULL,
	decided_ns BIGINT NOT NULL,
	used_ns BIGINT NOT NULL
);
CREATE INDEX approvals_key ON approvals (akey);
CREATE TABLE handles (id TEXT PRIMARY KEY, data BYTEA NOT NULL, expires_ns BIGINT NOT NULL);
CREATE TABLE cooldowns (name TEXT PRIMARY KEY, failures BIGINT NOT NULL, until_ns BIGINT NOT NULL);
CREATE TABLE rate_buckets (name TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, updated_ns BIGINT NOT NULL);
CREATE TABLE audit_head (id BIGINT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');
CREATE TABLE audit_lines (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, line BYTEA NOT NULL);
CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE topic_versions (topic BIGINT PRIMARY KEY, v BIGINT NOT NULL);
INSERT INTO topic_versions (topic, v) VALUES (0, 0), (1, 0);
