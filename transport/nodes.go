package transport

import (
	"net/url"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// checkNode refuses u, a request's source or destination, unless it is an
// object URL of a node of ServerOptions.NodeMap (when that is set).
func (s *Server) checkNode(what string, u *url.URL) error {
	if s.opts.NodeMap == nil {
		return nil
	}
	m := s.opts.NodeMap()
	if m == nil || m.Len() == 0 {
		return insitu.Errorf(insitu.Unavailable, "%s %s: the server has no cluster map yet", what, u.Redacted())
	}
	if _, ok := nodeOf(m, u); ok {
		return nil
	}
	return insitu.Errorf(insitu.InvalidArgument,
		"%s %s is not an object URL of a node of the cluster map (version %d, %d nodes); the server puts to and fetches from the cluster's nodes only",
		what, u.Redacted(), m.Version(), m.Len())
}

// nodeOf returns the node of m whose object API u addresses: u has the
// node's scheme and host (compared without regard to case), its path
// starts with the node's base path followed by /v1/objects/, and it has no
// user information, query or fragment. It is the check of
// [ServerOptions.NodeMap] on sources and destinations.
func nodeOf(m *locality.Map, u *url.URL) (locality.Node, bool) {
	if m == nil || u == nil || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return locality.Node{}, false
	}
	for _, n := range m.Nodes() {
		nu, err := url.Parse(n.URL)
		if err != nil {
			continue
		}
		if !strings.EqualFold(nu.Scheme, u.Scheme) || !strings.EqualFold(nu.Host, u.Host) {
			continue
		}
		if strings.HasPrefix(u.Path, strings.TrimSuffix(nu.Path, "/")+"/v1/objects/") && !dotSegments(u.Path) {
			return n, true
		}
	}
	return locality.Node{}, false
}

// dotSegments reports whether a path has a "." or ".." segment, which could
// lead a request out of the object API.
func dotSegments(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
