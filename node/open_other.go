//go:build !linux

package node

import "github.com/insitu-data/insitu"

// storeDir would hold the store's directory open for fast opens; without
// openat2(2) there are none, and every open takes the usual path.
type storeDir struct{}

// openStoreDir returns nil: no fast opens here.
func (n *Node) openStoreDir() *storeDir { return nil }

// close does nothing.
func (d *storeDir) close() {}

// open never opens: ok is false, and the caller takes the usual path.
func (d *storeDir) open(insitu.Name, int64) (opened, bool) { return opened{}, false }
