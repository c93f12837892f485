//go:build !linux

package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Extended attributes are kept on Linux only.
const attrsKept = false

func setAttr(*os.File, string, string) error { return errors.ErrUnsupported }

func getAttr(*os.File, string) (string, error) { return "", nil }

func openNoFollow(root *os.Root, name string) (*os.File, error) {
	return root.Open(filepath.FromSlash(name))
}
