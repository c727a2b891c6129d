// Package testdata ships the sandbox fixtures: a fake Hostkey account (API keys, servers
// in NL/US/FI, presets, OS and software lists, traffic plans, invoices ...) that the invapi
// simulator (invapi/sim) serves. All data is invented: IPs come from the documentation
// ranges (203.0.113.0/24, 198.51.100.0/24, 192.0.2.0/24), hostnames end in .example.
// It imports nothing of the module.
package testdata

import "embed"

// Sandbox holds sandbox/*.json. Open files as "sandbox/<name>.json".
//
//go:embed sandbox/*.json
var Sandbox embed.FS
