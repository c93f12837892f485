package locality_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// FuzzParseMap parses arbitrary bytes as a cluster map (the body of
// PUT /v1/map): that never panics; a map that parses has a version within
// 0..MaxMapVersion, re-marshals and parses to an equal map, and places
// any name on one of its nodes.
func FuzzParseMap(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"nodes":[{"id":"a","url":"http://127.0.0.1:7001"}]}`,
		`{"version":3,"nodes":[{"id":"b","url":"https://b.example:443","transform_url":"http://127.0.0.1:9000"},{"id":"a","url":"http://127.0.0.1:7001"}]}`,
		`{"version":9007199254740991,"nodes":[{"id":"a","url":"http://x"}]}`,
		`{"version":9007199254740992,"nodes":[{"id":"a","url":"http://x"}]}`,
		`{"version":-1,"nodes":[{"id":"a","url":"http://x"}]}`,
		`{"version":1e300,"nodes":[{"id":"a","url":"http://x"}]}`,
		`{"version":1,"nodes":[]}`,
		`{"version":1,"nodes":[{"id":"a","url":"http://x"},{"id":"a","url":"http://y"}]}`,
		`{"version":1,"nodes":[{"id":"","url":"http://x"}]}`,
		`{"version":1,"nodes":[{"id":"a","url":"file:///etc/passwd"}]}`,
		`{"version":1,"nodes":[{"id":"a","url":"/relative"}]}`,
		`{"version":1,"nodes":[{"id":"a","url":"http://x"}]} trailing`,
		`null`,
		``,
	} {
		f.Add([]byte(s), "bucket", "key/with/slashes.flac")
	}
	f.Fuzz(func(t *testing.T, b []byte, bucket, key string) {
		m, err := locality.ParseMap(b)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseMap(%q) = %v and a map", b, err)
			}
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("ParseMap(%q) = %v, not an InvalidArgument error", b, err)
			}
			return
		}
		if v := m.Version(); v < 0 || v > locality.MaxMapVersion {
			t.Fatalf("ParseMap(%q): version %d outside 0..%d", b, v, locality.MaxMapVersion)
		}
		if m.Len() == 0 {
			t.Fatalf("ParseMap(%q): a map without nodes", b)
		}
		enc, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of %v: %v", m, err)
		}
		again, err := locality.ParseMap(enc)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", enc, err)
		}
		if again.Version() != m.Version() || !reflect.DeepEqual(again.Nodes(), m.Nodes()) {
			t.Fatalf("round trip changed the map: %v -> %s -> %v", m, enc, again)
		}
		name := insitu.Name{Bucket: bucket, Key: key}
		owner := m.Owner(name)
		if _, ok := m.Node(owner.ID); !ok || owner.ID == "" {
			t.Fatalf("Owner(%v) = %+v, not a node of %v", name, owner, m)
		}
		if again.Owner(name) != owner {
			t.Fatalf("Owner(%v) differs after the round trip: %+v, %+v", name, owner, again.Owner(name))
		}
		if !m.Owns(owner.ID, name) {
			t.Fatalf("Owns(%q, %v) is false for the owner", owner.ID, name)
		}
	})
}

// FuzzVerify checks Secret.Verify on arbitrary Authorization header values
// of a GET /v1/map: it never panics, and it accepts exactly the values made
// of the scheme "Bearer" in any case, one or more spaces, and an
// administrative token of the secret (object tokens do not allow it).
func FuzzVerify(f *testing.F) {
	secret := locality.Secret("fuzz secret")
	exp := time.Now().Add(time.Hour)
	token := secret.AdminToken(exp)
	obj := secret.ObjectToken(locality.Read, insitu.Name{Bucket: "v1", Key: "map"}, exp)
	f.Add("Bearer " + obj)
	f.Add("Bearer " + secret.ObjectToken(locality.Write, insitu.Name{Bucket: "b", Key: "k"}, exp))
	f.Add("Bearer " + secret.AdminToken(exp.Add(48*time.Hour)))
	for _, s := range []string{
		"Bearer " + token,
		"bearer " + token,
		"BEARER    " + token,
		"Bearer " + token + " ",
		"Bearer\t" + token,
		"Bearer " + strings.ToUpper(token),
		"Bearer " + token[:len(token)-1],
		"Basic " + token,
		"Bearer",
		"Bearer ",
		"",
		token,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/v1/map", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !locality.Secret(nil).Verify(r) {
			t.Fatal("the zero Secret refused a request")
		}
		r.Header["Authorization"] = []string{auth}
		const scheme = "Bearer"
		want := len(auth) > len(scheme) &&
			strings.EqualFold(auth[:len(scheme)], scheme) &&
			auth[len(scheme)] == ' ' &&
			strings.TrimLeft(auth[len(scheme):], " ") == token
		if got := secret.Verify(r); got != want {
			t.Fatalf("Verify(Authorization: %q) = %v, want %v", auth, got, want)
		}
		if !locality.Secret(nil).Verify(r) {
			t.Fatalf("the zero Secret refused Authorization: %q", auth)
		}
	})
}
