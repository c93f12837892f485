package transporttest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
)

// node is a stand-in for a storage node's direct-put receiver:
// PUT /v1/objects/{bucket}/{key...} stores the body (only when it arrives
// whole) and answers {"name","size","checksum","owner"}.
type node struct {
	base  string
	token string
	// lie makes it answer a checksum of other bytes than it got. Set it
	// before the first put.
	lie bool

	mu      sync.Mutex
	objects map[string][]byte
}

func startNode(t *testing.T, token string) *node {
	n := &node{token: token, objects: make(map[string][]byte)}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/objects/{bucket}/{key...}", n.put)
	n.base = serve(t, mux)
	return n
}

func (n *node) put(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+n.token {
		writeJSONError(w, http.StatusUnauthorized, insitu.PermissionDenied, "bad token")
		return
	}
	name := insitu.Name{Bucket: r.PathValue("bucket"), Key: r.PathValue("key")}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, insitu.InvalidArgument, "the body broke off: "+err.Error())
		return
	}
	sum := checksum(b)
	if n.lie {
		sum = checksum(append(b, 'x'))
	}
	n.mu.Lock()
	n.objects[name.String()] = b
	n.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(insitu.PutResult{Name: name, Size: int64(len(b)), Checksum: sum, Owner: "node-1"})
}

// dest returns the destination of name on the node.
func (n *node) dest(name insitu.Name) insitu.Destination {
	return insitu.Destination{Name: name, URL: n.base + "/v1/objects/" + name.Bucket + "/" + escapeKey(name.Key), Token: n.token}
}

func (n *node) get(name insitu.Name) ([]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, ok := n.objects[name.String()]
	return b, ok
}

func (n *node) host() string { return strings.TrimPrefix(n.base, "http://") }

// checksum is the XXH64 of b as 16 hex digits, as insitu.PutResult has it.
func checksum(b []byte) string { return hex16(xxhash.Sum64(b)) }

// listen listens on a free port of 127.0.0.1.
func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}
