package node

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/locality"
)

// rebalanceBudget bounds the time of one rebalance call: past it the node
// answers with More set, and the caller calls again.
const rebalanceBudget = 30 * time.Second

// errBudget ends a rebalance's walk when its time is up.
var errBudget = errors.New("rebalance: time is up")

// Rebalance moves the copies in the node's store of objects it does not
// own under its current map to their owners, never overwriting: each is
// put to its owner only if the owner has nothing under the name, then
// removed here, with the directories it leaves empty; one whose owner has the name is kept and reported as a
// conflict (see [cluster.RebalanceReport]). It stops after 30 seconds
// with More set in the report; call it again to go on. Links, special
// files, temporary files and names that are not object names are left
// alone. One rebalance runs at a time; another call meanwhile is
// Unavailable. A call goes on after the store path after (a report's Next; ""
// to start at the beginning), in lexical order.
func (n *Node) Rebalance(ctx context.Context, after string) (cluster.RebalanceReport, error) {
	if err := n.enter(); err != nil {
		return cluster.RebalanceReport{}, err
	}
	defer n.leave()
	if !n.rebalancing.CompareAndSwap(false, true) {
		return cluster.RebalanceReport{}, insitu.Errorf(insitu.Unavailable, "node %s: a rebalance runs already; try again once it has ended", n.id)
	}
	defer n.rebalancing.Store(false)
	rep := cluster.RebalanceReport{Node: n.id}
	client, err := locality.NewClient(n.Map(), &locality.ClientOptions{Secret: n.secret, HTTPClient: n.hc})
	if err != nil {
		return rep, err
	}
	deadline := time.Now().Add(rebalanceBudget)
	var last string // the last path looked at
	err = fs.WalkDir(n.root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if rel != "." && after != "" && rel <= after && !strings.HasPrefix(after, rel+"/") {
			if d != nil && d.IsDir() {
				return fs.SkipDir // wholly before the cursor
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errBudget
		}
		last = rel
		if err != nil {
			return nil // a directory removed meanwhile, say: the next call sees
		}
		if !d.Type().IsRegular() || atomicfile.IsTemp(path.Base(rel)) || !utf8.ValidString(rel) {
			return nil // directories are walked; links and special files are no objects
		}
		bucket, key, ok := strings.Cut(rel, "/")
		name := insitu.Name{Bucket: bucket, Key: key}
		if !ok || name.Validate() != nil || n.Map().Owns(n.id, name) {
			return nil
		}
		rep.Scanned++
		switch err := n.moveCopy(ctx, client, name, rel); {
		case err == nil:
			rep.Moved++
		case errors.Is(err, insitu.Exists):
			rep.Kept++
			if len(rep.Conflicts) < cluster.MaxRebalanceNames {
				rep.Conflicts = append(rep.Conflicts, name)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			rep.Failed++
			if len(rep.Errors) < cluster.MaxRebalanceNames {
				rep.Errors = append(rep.Errors, n.scrub(err.Error()))
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errBudget):
		rep.More, rep.Next = true, last
	case err != nil:
		return rep, err
	}
	return rep, nil
}

// moveCopy puts the copy at rel, of name, to name's owner if the owner
// has none, then removes it here; an owner that has the name already is
// Exists, and the copy stays.
func (n *Node) moveCopy(ctx context.Context, client *locality.Client, name insitu.Name, rel string) error {
	f, err := n.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return n.fileError(name, err, false)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return n.fileError(name, err, false)
	}
	if lfi, err := n.root.Lstat(rel); err != nil || !os.SameFile(fi, lfi) || !fi.Mode().IsRegular() {
		return &insitu.Error{Code: insitu.PermissionDenied, Name: name, Msg: "the copy changed while it was opened"}
	}
	// The copy's origin goes with it, so a resumed job still knows it.
	var origin *insitu.Origin
	if value, err := atomicfile.FileAttr(f, atomicfile.OriginAttr); err == nil && value != "" {
		if o, err := insitu.ParseOrigin(atomicfile.DecodeOrigin(value, name.Key)); err == nil {
			origin = &o
		}
	}
	if _, err := client.PutIfAbsent(ctx, name, f, fi.Size(), origin); err != nil {
		return err
	}
	if n.Map().Owns(n.id, name) {
		return nil // the map changed meanwhile: the copy here is the owner's again
	}
	// Remove only the file sent: if the map changed back and forth during
	// the put and a client wrote the name here meanwhile, that is a new
	// file (every put renames or links one in), and it stays.
	if now, err := n.root.Lstat(rel); err != nil || !os.SameFile(fi, now) || !now.ModTime().Equal(fi.ModTime()) || now.Size() != fi.Size() {
		return nil
	}
	if err := n.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n.fileError(name, err, true)
	}
	n.removeEmptyParents(name)
	return nil
}

// serveRebalance is POST /v1/rebalance.
func (n *Node) serveRebalance(w http.ResponseWriter, r *http.Request, _ *locality.Map) {
	if r.Method != http.MethodPost {
		n.methodNotAllowed(w, r, "POST")
		return
	}
	rep, err := n.Rebalance(r.Context(), r.URL.Query().Get("after"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
