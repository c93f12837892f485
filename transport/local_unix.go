//go:build unix && !linux

package transport

import (
	"os"
	"syscall"
)

// openConfined opens rel, a clean relative path, inside root, through the
// os.Root (links that stay inside it are followed, a link at the last
// element included; others are refused) and with O_NONBLOCK, so that a
// FIFO cannot block the open.
func openConfined(root *os.Root, rel string) (*os.File, error) {
	return root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// fdPath returns "": outside Linux there is no path a started process can
// open that names f itself, and Input.Path is the request's path.
func fdPath(*os.File) string { return "" }
