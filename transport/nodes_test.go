package transport

import (
	"net/url"
	"testing"

	"github.com/insitu-data/insitu/locality"
)

func TestNodeOf(t *testing.T) {
	m, err := locality.NewMap(1,
		locality.Node{ID: "n1", URL: "http://127.0.0.1:7001"},
		locality.Node{ID: "n2", URL: "http://127.0.0.1:7002/store/"})
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]string{
		"http://127.0.0.1:7001/v1/objects/b/k":            "n1",
		"HTTP://127.0.0.1:7001/v1/objects/b/a/b/c":        "n1",
		"http://127.0.0.1:7002/store/v1/objects/b/k":      "n2",
		"http://127.0.0.1:7002/v1/objects/b/k":            "", // not under the node's base path
		"http://127.0.0.1:7003/v1/objects/b/k":            "", // another port
		"https://127.0.0.1:7001/v1/objects/b/k":           "", // another scheme
		"http://127.0.0.1:7001/v1/map":                    "", // not the object API
		"http://127.0.0.1:7001/v1/objects/../map":         "",
		"http://127.0.0.1:7001/v1/objects/b/%2e%2e/x":     "",
		"http://127.0.0.1:7001/v1/objects/b/k?x=1":        "",
		"http://127.0.0.1:7001/v1/objects/b/k#f":          "",
		"http://u:p@127.0.0.1:7001/v1/objects/b/k":        "",
		"http://localhost:7001/v1/objects/b/k":            "", // the map says 127.0.0.1
		"http://127.0.0.1:7001/v1/objectsX/b/k":           "",
		"http://127.0.0.1.evil.example:7001/v1/objects/b": "",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := nodeOf(m, u)
		if ok != (want != "") || n.ID != want {
			t.Errorf("nodeOf(%s) = %q, %v; want %q", raw, n.ID, ok, want)
		}
	}
}
