//go:build !linux

package node

import "os"

// fdPath returns "": Input.Path stays the store path, checked just before
// the transform runs.
func fdPath(*os.File) string { return "" }
