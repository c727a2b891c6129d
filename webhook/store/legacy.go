package store

// The bucket layout of events.db, the bbolt store of earlier versions, as far as
// ImportBolt reads it; nothing writes this format any more.
var (
	bucketEvents = []byte("events") // cursor (8-byte big endian) → Event JSON; its sequence is the last cursor issued
	bucketDedupe = []byte("dedupe") // dedupe key → cursor
	bucketJobs   = []byte("jobs")   // job ID → Job JSON
	bucketMeta   = []byte("meta")   // "secret/"+name → named secret
)
