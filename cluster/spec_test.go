package cluster_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/cluster"
	"github.com/insitu-data/insitu/transport"
)

func TestJobSpecValidate(t *testing.T) {
	known := func(name string) bool { return name == "ffmpeg-wav" }
	good := cluster.JobSpec{Bucket: "audio", DstBucket: "wav", Transform: "ffmpeg-wav",
		Rename: &cluster.RenameExt{From: ".flac", To: ".wav"}, Workers: 4, Timeout: cluster.Duration(time.Minute)}
	if err := good.Validate(known); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for want, mutate := range map[string]func(*cluster.JobSpec){
		"unknown transform": func(s *cluster.JobSpec) { s.Transform = "nope" },
		"no transform":      func(s *cluster.JobSpec) { s.Transform = "" },
		"bucket":            func(s *cluster.JobSpec) { s.Bucket = "../etc" },
		"dst_bucket":        func(s *cluster.JobSpec) { s.DstBucket = "a b" },
		"rename":            func(s *cluster.JobSpec) { s.Rename = &cluster.RenameExt{From: ".flac", To: "/x"} },
		"workers":           func(s *cluster.JobSpec) { s.Workers = -2 },
		"timeout":           func(s *cluster.JobSpec) { s.Timeout = -1 },
		"id":                func(s *cluster.JobSpec) { s.ID = "has space" },
		"source bucket":     func(s *cluster.JobSpec) { s.DstBucket = s.Bucket },
		"both transform":    func(s *cluster.JobSpec) { s.Server = &cluster.ServerSpec{Mode: transport.WS} },
		"unknown mode":      func(s *cluster.JobSpec) { s.Transform, s.Server = "", &cluster.ServerSpec{Mode: transport.Mode(9)} },
	} {
		s := good
		mutate(&s)
		err := s.Validate(known)
		if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate = %v, want an InvalidArgument error mentioning it", want, err)
		}
	}
}

func TestJobSpecOptionsAndJSON(t *testing.T) {
	in := `{"bucket":"audio","dst_bucket":"wav","transform":"t","rename":{"from_ext":".flac","to_ext":".wav"},
		"args":"x","workers":3,"skip_existing":true,"timeout":"1m30s"}`
	var s cluster.JobSpec
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	o := s.Options()
	if o.Workers != 3 || !o.SkipExisting || o.Args != "x" || o.Timeout != 90*time.Second {
		t.Fatalf("options %+v", o)
	}
	out, err := o.Rename(insitu.Name{Bucket: "audio", Key: "s1/a.flac"})
	if err != nil || out != (insitu.Name{Bucket: "wav", Key: "s1/a.wav"}) {
		t.Fatalf("rename = %v, %v", out, err)
	}
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"timeout":"1m30s"`) {
		t.Errorf("timeout encodes as %s", b)
	}
}

func TestJobSpecServer(t *testing.T) {
	in := `{"bucket":"audio","dst_bucket":"wav","server":{"mode":"hpull","local_file":true,"direct_put":true}}`
	var s cluster.JobSpec
	dec := json.NewDecoder(strings.NewReader(in))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	want := cluster.ServerSpec{Mode: transport.HPull, LocalFile: true, DirectPut: true}
	if s.Server == nil || *s.Server != want || s.Transform != "" {
		t.Fatalf("decoded %+v, server %+v", s, s.Server)
	}
	// A known-transform check does not apply to a server job.
	if err := s.Validate(func(string) bool { return false }); err != nil {
		t.Fatalf("a valid server spec refused: %v", err)
	}
	if o := s.Options(); !o.DirectPut {
		t.Errorf("Options().DirectPut = false, want the server's direct put")
	}
	for _, mode := range transport.Modes() {
		s.Server.Mode = mode
		if err := s.Validate(nil); err != nil {
			t.Errorf("mode %q refused: %v", mode, err)
		}
	}
	s.Server.DirectPut = false
	if s.Options().DirectPut {
		t.Errorf("Options().DirectPut = true without the server's direct put")
	}
	b, _ := json.Marshal(cluster.JobSpec{Bucket: "a", DstBucket: "b", Server: &cluster.ServerSpec{}})
	if strings.Contains(string(b), `"transform"`) || !strings.Contains(string(b), `"server":{}`) {
		t.Errorf("a server spec encodes as %s", b)
	}
	// A mode the transport does not know is refused when decoded.
	if err := json.Unmarshal([]byte(`{"mode":"grpc"}`), new(cluster.ServerSpec)); err == nil || !strings.Contains(err.Error(), "grpc") {
		t.Errorf("decoding mode grpc: %v, want an error naming it", err)
	}
	// Neither a transform nor a server.
	err := (&cluster.JobSpec{Bucket: "a", DstBucket: "b"}).Validate(nil)
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "no transform") {
		t.Errorf("no transform, no server: %v", err)
	}
}
