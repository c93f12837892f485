package cluster_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
)

// decodeSpec decodes b as the node decodes the body of POST /v1/jobs: one
// JSON value, no unknown field, nothing but white space after it.
func decodeSpec(b []byte) (cluster.JobSpec, error) {
	var spec cluster.JobSpec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the JSON value")
		}
		return spec, fmt.Errorf("after the JSON value: %w", err)
	}
	return spec, nil
}

// FuzzJobSpec decodes arbitrary bytes as a job spec and validates it: that
// never panics; a spec that validates survives a JSON round trip equal and
// still valid; and its runner options, rename included, never panic.
func FuzzJobSpec(f *testing.F) {
	for _, s := range []string{
		`{"id":"j1","bucket":"in","dst_bucket":"out","transform":"upper"}`,
		`{"bucket":"in","prefix":"a/","dst_bucket":"out","server":{"mode":"hpull","local_file":true,"direct_put":true},"rename":{"from_ext":".flac","to_ext":".wav"},"args":"-ar 8000","workers":4,"skip_existing":true,"dry_run":true,"continue_on_error":true,"retries":3,"timeout":"1m30s"}`,
		`{"bucket":"in","dst_bucket":"out","server":{}}`,
		`{"bucket":"in","dst_bucket":"out","transform":"t","timeout":1500000000}`,
		`{"bucket":"in","dst_bucket":"out","transform":"t"} {"bucket":"x"}`,
		`{"bucket":"in","dst_bucket":"out","transform":"t"}]`,
		`{"bucket":"in","dst_bucket":"in","transform":"t"}`,
		`{"bucket":"../etc","dst_bucket":"out","transform":"t"}`,
		`{"bucket":"in","dst_bucket":"out","transform":"t","rename":{"from_ext":".a","to_ext":"/b"}}`,
		`{"bucket":"in","dst_bucket":"out","server":{"mode":"smoke"}}`,
		`{"bucket":"in","dst_bucket":"out","transform":"t","timeout":"-1s"}`,
		`{"bucket":"in","dst_bucket":"out","transform":"t","unknown":1}`,
		`{"id":"` + string(bytes.Repeat([]byte("a"), 65)) + `","bucket":"in","dst_bucket":"out","transform":"t"}`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := decodeSpec(b)
		if err != nil {
			return
		}
		if err := spec.Validate(nil); err != nil {
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("Validate(%q) = %v, not an InvalidArgument error", b, err)
			}
			return
		}
		enc, err := json.Marshal(&spec)
		if err != nil {
			t.Fatalf("Marshal of the valid spec %#v: %v", spec, err)
		}
		again, err := decodeSpec(enc)
		if err != nil {
			t.Fatalf("decoding the re-encoded spec %s: %v", enc, err)
		}
		if !reflect.DeepEqual(spec, again) {
			t.Fatalf("round trip changed the spec:\n in: %#v\nout: %#v\nvia %s", spec, again, enc)
		}
		if err := again.Validate(nil); err != nil {
			t.Fatalf("the re-decoded spec %s no longer validates: %v", enc, err)
		}
		o := spec.Options()
		for _, n := range []insitu.Name{
			{Bucket: spec.Bucket, Key: "a"},
			{Bucket: spec.Bucket, Key: "dir/x.flac"},
			{Bucket: spec.Bucket, Key: "x.wav"},
			{Bucket: spec.Bucket, Key: "no-ext"},
			{Bucket: spec.Bucket, Key: ".hidden"},
		} {
			out, err := o.Rename(n)
			if err == nil && out.Bucket != spec.DstBucket {
				t.Fatalf("Rename(%v) = %v, not in dst_bucket %q", n, out, spec.DstBucket)
			}
		}
	})
}
