//go:build !unix

package transport

import "os"

// openConfined opens rel, a clean relative path, inside root, through the
// os.Root (links that stay inside it are followed, a link at the last
// element included; others are refused).
func openConfined(root *os.Root, rel string) (*os.File, error) {
	return root.OpenFile(rel, os.O_RDONLY, 0)
}

// fdPath returns "": Input.Path is the request's path.
func fdPath(*os.File) string { return "" }
