package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// MaxTransformName is the longest name of a named transform.
const MaxTransformName = 64

// healthTimeout bounds one health check of a transform server.
const healthTimeout = 2 * time.Second

// registry holds a node's named transforms: the builtins of its options,
// fixed, and the transform servers registered at run time.
type registry struct {
	mu      sync.RWMutex
	servers map[string]locality.TransformSpec
}

// validTransformName reports whether name can name a transform: 1 to 64
// of a-z, A-Z, 0-9, '.', '_' and '-', starting with a letter or digit
// (so a chain "a,b" and a URL path segment need no escaping).
func validTransformName(name string) bool {
	if name == "" || len(name) > MaxTransformName {
		return false
	}
	for i, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// knowsTransform reports whether name is a builtin or a registered server.
func (n *Node) knowsTransform(name string) bool {
	if _, ok := n.transforms[name]; ok {
		return true
	}
	n.reg.mu.RLock()
	defer n.reg.mu.RUnlock()
	_, ok := n.reg.servers[name]
	return ok
}

// lookupTransform returns the transform named name and the function that
// releases it when its user is done: a builtin as it is; a registered
// server as the node's pooled client of it. An unknown name is NotFound,
// listing the names the node knows; a server that cannot be reached,
// Unavailable.
func (n *Node) lookupTransform(ctx context.Context, name string) (insitu.Transform, locality.TransformSpec, func(), error) {
	if t, ok := n.transforms[name]; ok {
		return t, locality.TransformSpec{}, func() {}, nil
	}
	n.reg.mu.RLock()
	spec, ok := n.reg.servers[name]
	n.reg.mu.RUnlock()
	if !ok {
		return nil, spec, nil, insitu.Errorf(insitu.NotFound, "unknown transform %q on node %s (it knows: %s)", name, n.id, n.transformNames())
	}
	mode, _ := transport.ParseMode(spec.Mode) // checked when registered
	t, release, err := n.serverTransform(ctx, cluster.ServerSpec{Mode: mode, LocalFile: spec.LocalFile}, spec.URL)
	if err != nil {
		return nil, spec, nil, fmt.Errorf("transform %q: %w", name, err)
	}
	return t, spec, release, nil
}

// transformNames lists the names of the node's transforms, sorted, for
// errors.
func (n *Node) transformNames() string {
	names := make([]string, 0, len(n.transforms))
	for name := range n.transforms {
		names = append(names, name)
	}
	n.reg.mu.RLock()
	for name := range n.reg.servers {
		names = append(names, name)
	}
	n.reg.mu.RUnlock()
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// serverURL returns the base URL of spec's server: its URL, or the
// TransformURL of this node's entry in its map for "".
func (n *Node) serverURL(u string) (string, error) {
	if u != "" {
		return u, nil
	}
	self, ok := n.Map().Node(n.id)
	if !ok || self.TransformURL == "" {
		return "", insitu.Errorf(insitu.InvalidArgument,
			"node %s has no transform server of its own (its entry in the cluster map has no transform_url)", n.id)
	}
	return self.TransformURL, nil
}

// RegisterTransform registers the transform server of spec under name,
// replacing a server registered under it before, once the server has
// answered its health check. A bad name, mode or URL, a URL that
// Options.AllowTransformURL refuses, and the name of a builtin are
// InvalidArgument; a server that does not answer is Unavailable, and
// nothing changes.
func (n *Node) RegisterTransform(ctx context.Context, name string, spec locality.TransformSpec) (locality.TransformInfo, error) {
	if err := n.enter(); err != nil {
		return locality.TransformInfo{}, err
	}
	defer n.leave()
	bad := func(format string, args ...any) error {
		return insitu.Errorf(insitu.InvalidArgument, "transform %q: "+format, append([]any{name}, args...)...)
	}
	switch {
	case !validTransformName(name):
		return locality.TransformInfo{}, bad("use 1 to %d of letters, digits, '.', '_' and '-', starting with a letter or digit", MaxTransformName)
	case n.transforms[name] != nil:
		return locality.TransformInfo{}, bad("is a builtin of node %s; choose another name", n.id)
	}
	if spec.Mode == "" {
		spec.Mode = transport.WS.String()
	}
	if _, err := transport.ParseMode(spec.Mode); err != nil {
		return locality.TransformInfo{}, bad("mode: %w", err)
	}
	if spec.URL != "" {
		u, err := url.Parse(spec.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
			return locality.TransformInfo{}, bad("url %q: want http(s)://host[:port][/path], without credentials, query or fragment", spec.URL)
		case !n.allowTransformURL(u):
			return locality.TransformInfo{}, bad("url %s is not allowed by node %s's policy (node.Options.AllowTransformURL; default: loopback only)", u.Redacted(), n.id)
		}
	}
	if err := n.checkHealth(ctx, spec.URL); err != nil {
		return locality.TransformInfo{}, fmt.Errorf("transform %q: %w", name, err)
	}
	n.reg.mu.Lock()
	if n.reg.servers == nil {
		n.reg.servers = map[string]locality.TransformSpec{}
	}
	old, replaced := n.reg.servers[name]
	n.reg.servers[name] = spec
	n.reg.mu.Unlock()
	if replaced && old != spec {
		n.retireClient(old)
	}
	n.log.Info("transform registered", "name", name, "url", spec.URL, "mode", spec.Mode, "local_file", spec.LocalFile)
	return locality.TransformInfo{Name: name, Kind: locality.ServerTransform, TransformSpec: spec, Health: "ok"}, nil
}

// retireClient retires the node's pooled client of spec's server (closed
// once its holders let it go), so that a removed or replaced server's
// connections do not outlive its registration.
func (n *Node) retireClient(spec locality.TransformSpec) {
	u, err := n.serverURL(spec.URL)
	if err != nil {
		return
	}
	mode, _ := transport.ParseMode(spec.Mode)
	n.jobs.sidecars.retire(sidecarKey{url: u, mode: mode, localFile: spec.LocalFile})
}

// RemoveTransform removes the transform server registered under name.
// Jobs and reads that hold it finish with it; its client is closed then. An unknown name is
// NotFound; a builtin is InvalidArgument.
func (n *Node) RemoveTransform(ctx context.Context, name string) error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	if n.transforms[name] != nil {
		return insitu.Errorf(insitu.InvalidArgument, "transform %q is a builtin of node %s: it cannot be removed", name, n.id)
	}
	n.reg.mu.Lock()
	old, ok := n.reg.servers[name]
	delete(n.reg.servers, name)
	n.reg.mu.Unlock()
	if !ok {
		return insitu.Errorf(insitu.NotFound, "transform %q is not registered on node %s", name, n.id)
	}
	n.retireClient(old)
	n.log.Info("transform removed", "name", name)
	return nil
}

// Transforms lists the node's named transforms, sorted by name, each
// server's health checked now (at most healthTimeout each, at once).
func (n *Node) Transforms(ctx context.Context) []locality.TransformInfo {
	return n.transformList(ctx, "", true)
}

// transformList lists the named transforms, or only the one named only
// when it is not "", checking the servers' health when check is set
// (else Health is "").
func (n *Node) transformList(ctx context.Context, only string, check bool) []locality.TransformInfo {
	var infos []locality.TransformInfo
	for name := range n.transforms {
		if only == "" || name == only {
			infos = append(infos, locality.TransformInfo{Name: name, Kind: locality.BuiltinTransform, Health: "ok"})
		}
	}
	n.reg.mu.RLock()
	for name, spec := range n.reg.servers {
		if only == "" || name == only {
			infos = append(infos, locality.TransformInfo{Name: name, Kind: locality.ServerTransform, TransformSpec: spec})
		}
	}
	n.reg.mu.RUnlock()
	var wg sync.WaitGroup
	for i := range infos {
		if check && infos[i].Kind == locality.ServerTransform {
			wg.Go(func() { infos[i].Health = health(n.checkHealth(ctx, infos[i].URL)) })
		}
	}
	wg.Wait()
	slices.SortFunc(infos, func(a, b locality.TransformInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

func health(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// checkHealth asks the transform server at u ("" for this node's own)
// for GET /health, within healthTimeout; anything but a 200 is
// Unavailable.
func (n *Node) checkHealth(ctx context.Context, u string) error {
	base, err := n.serverURL(u)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/health", nil)
	if err != nil {
		return insitu.Errorf(insitu.InvalidArgument, "transform server url %q: %w", base, err)
	}
	hc := *n.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse } // no detour past the URL policy
	resp, err := hc.Do(req)
	if err != nil {
		return insitu.Errorf(insitu.Unavailable, "transform server %s does not answer its health check: %w", redact(base), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return insitu.Errorf(insitu.Unavailable, "transform server %s answers its health check with %s", redact(base), resp.Status)
	}
	return nil
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(a bad URL)"
}

// serveTransforms answers GET /v1/transforms.
func (n *Node) serveTransforms(w http.ResponseWriter, r *http.Request, _ *locality.Map) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		n.methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	// ?health=0 lists without checking the servers (a peer adopting the
	// set needs no health of this node's view).
	writeJSON(w, http.StatusOK, struct {
		Transforms []locality.TransformInfo `json:"transforms"`
	}{n.transformList(r.Context(), "", r.URL.Query().Get("health") != "0")})
}

// maxTransformSpec bounds the body of a registration.
const maxTransformSpec = 16 << 10

// serveTransform answers GET, PUT and DELETE /v1/transforms/{name}.
func (n *Node) serveTransform(w http.ResponseWriter, r *http.Request, _ *locality.Map) {
	name := r.PathValue("name")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if infos := n.transformList(r.Context(), name, true); len(infos) == 1 {
			writeJSON(w, http.StatusOK, infos[0])
			return
		}
		n.writeError(w, r, insitu.Errorf(insitu.NotFound, "transform %q is not known on node %s", name, n.id))
	case http.MethodPut:
		var spec locality.TransformSpec
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTransformSpec))
		dec.DisallowUnknownFields()
		if err := decodeOne(dec, &spec); err != nil {
			n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "transform spec: %w", err))
			return
		}
		info, err := n.RegisterTransform(r.Context(), name, spec)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	case http.MethodDelete:
		if err := n.RemoveTransform(r.Context(), name); err != nil {
			n.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		n.methodNotAllowed(w, r, "GET, HEAD, PUT, DELETE")
	}
}

// storePath is the file of name in the store, for a transform server
// that reads local files.
func (n *Node) storePath(name insitu.Name) string {
	return filepath.Join(n.dir, relPath(name))
}

// adoptTransforms gives a node that has no registered transform servers
// those of its peers, so that a node that joins a cluster (or restarts:
// the registry lives in memory) serves the transforms the cluster has: it
// asks the other nodes of its map, one at a time, for their transforms
// and registers each server of theirs registered as "the server next to
// each node" (an empty URL) that it has not, checked as any registration
// is (a failure is logged, and the rest go on). A server registered by
// URL is that node's alone and is not adopted. It runs in
// the background, on the node's life (Shutdown waits for it), and gives
// up on a peer after healthTimeout.
func (n *Node) adoptTransforms(m *locality.Map) {
	if err := n.enter(); err != nil {
		return
	}
	go func() {
		defer n.leave()
		n.reg.mu.RLock()
		have := len(n.reg.servers)
		n.reg.mu.RUnlock()
		if have > 0 || m.Len() < 2 {
			return
		}
		client, err := locality.NewClient(m, &locality.ClientOptions{Secret: n.secret, HTTPClient: n.hc})
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(m.Len())*(healthTimeout+healthTimeout))
		defer cancel()
		stop := context.AfterFunc(n.bg, cancel) // Shutdown ends it
		defer stop()
		for _, peer := range m.Nodes() {
			if peer.ID == n.id {
				continue
			}
			var list struct {
				Transforms []locality.TransformInfo `json:"transforms"`
			}
			pctx, pcancel := context.WithTimeout(ctx, healthTimeout)
			err := client.Call(pctx, peer, http.MethodGet, "/v1/transforms?health=0", nil, &list)
			pcancel()
			if err != nil {
				n.log.Debug("asking a peer for its transforms", "peer", peer.ID, "err", err)
				continue
			}
			for _, info := range list.Transforms {
				// Only a registration of "the server next to each node"
				// means the same on this node: a URL a peer registered is
				// that peer's (a loopback address there is another process
				// here, and its secret is the peer's).
				if info.Kind != locality.ServerTransform || info.URL != "" || n.knowsTransform(info.Name) {
					continue
				}
				if _, err := n.RegisterTransform(ctx, info.Name, info.TransformSpec); err != nil {
					n.log.Warn("adopting a peer's transform", "peer", peer.ID, "name", info.Name, "err", err)
				}
			}
		}
	}()
}
