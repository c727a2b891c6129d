//go:build !unix

package audit

import "os"

// Without flock, one process per audit file is assumed (the in-process mutex still
// serializes goroutines).
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
