-- Outbound deliveries (chat-ops): one row per event and destination, written by the
-- destination's lease holder together with the destination's cursor (outbox.go).
-- Keep in step with ../postgres/0002_outbox.sql.
CREATE TABLE outbox_dests (
	dest TEXT PRIMARY KEY,
	through INTEGER NOT NULL,
	owner TEXT NOT NULL,
	epoch INTEGER NOT NULL,
	lease_ns INTEGER NOT NULL,
	disabled_ns INTEGER NOT NULL,
	disabled_reason TEXT NOT NULL
);
CREATE TABLE outbox (
	dest TEXT NOT NULL,
	pos INTEGER NOT NULL,
	webhook_id TEXT NOT NULL,
	event_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	server_id INTEGER NOT NULL,
	at_ns INTEGER NOT NULL,
	data BLOB NOT NULL,
	state TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	next_ns INTEGER NOT NULL,
	created_ns INTEGER NOT NULL,
	done_ns INTEGER NOT NULL,
	last_error TEXT NOT NULL,
	PRIMARY KEY (dest, pos)
);
CREATE INDEX outbox_state ON outbox (dest, state, pos);
