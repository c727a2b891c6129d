-- Outbound deliveries (chat-ops): one row per event and destination, written by the
-- destination's lease holder together with the destination's cursor (outbox.go).
-- Keep in step with ../sqlite/0002_outbox.sql.
CREATE TABLE outbox_dests (
	dest TEXT PRIMARY KEY,
	through BIGINT NOT NULL,
	owner TEXT NOT NULL,
	epoch BIGINT NOT NULL,
	lease_ns BIGINT NOT NULL,
	disabled_ns BIGINT NOT NULL,
	disabled_reason TEXT NOT NULL
);
CREATE TABLE outbox (
	dest TEXT NOT NULL,
	pos BIGINT NOT NULL,
	webhook_id TEXT NOT NULL,
	event_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	server_id BIGINT NOT NULL,
	at_ns BIGINT NOT NULL,
	data BYTEA NOT NULL,
	state TEXT NOT NULL,
	attempts BIGINT NOT NULL,
	next_ns BIGINT NOT NULL,
	created_ns BIGINT NOT NULL,
	done_ns BIGINT NOT NULL,
	last_error TEXT NOT NULL,
	PRIMARY KEY (dest, pos)
);
CREATE INDEX outbox_state ON outbox (dest, state, pos);
