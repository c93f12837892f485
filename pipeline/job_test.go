package pipeline_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/pipeline"
)

func TestJobSpecValidate(t *testing.T) {
	known := func(name string) bool { return name == "ffmpeg-wav" }
	good := pipeline.JobSpec{Bucket: "audio", DstBucket: "wav", Transform: "ffmpeg-wav",
		Rename: &pipeline.RenameExt{From: ".flac", To: ".wav"}, Workers: 4, Timeout: pipeline.Duration(time.Minute)}
	if err := good.Validate(known); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for want, mutate := range map[string]func(*pipeline.JobSpec){
		"unknown transform": func(s *pipeline.JobSpec) { s.Transform = "nope" },
		"no transform":      func(s *pipeline.JobSpec) { s.Transform = "" },
		"bucket":            func(s *pipeline.JobSpec) { s.Bucket = "../etc" },
		"dst_bucket":        func(s *pipeline.JobSpec) { s.DstBucket = "a b" },
		"rename":            func(s *pipeline.JobSpec) { s.Rename = &pipeline.RenameExt{From: ".flac", To: "/x"} },
		"workers":           func(s *pipeline.JobSpec) { s.Workers = -2 },
		"timeout":           func(s *pipeline.JobSpec) { s.Timeout = -1 },
		"id":                func(s *pipeline.JobSpec) { s.ID = "has space" },
		"source bucket":     func(s *pipeline.JobSpec) { s.DstBucket = s.Bucket },
		"both transform":    func(s *pipeline.JobSpec) { s.Server = &pipeline.ServerSpec{Mode: "ws"} },
		"unknown mode":      func(s *pipeline.JobSpec) { s.Transform, s.Server = "", &pipeline.ServerSpec{Mode: "grpc"} },
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
	var s pipeline.JobSpec
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
	var s pipeline.JobSpec
	dec := json.NewDecoder(strings.NewReader(in))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	want := pipeline.ServerSpec{Mode: "hpull", LocalFile: true, DirectPut: true}
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
	for _, mode := range []string{"", "ws", "hpush", "hpull"} {
		s.Server.Mode = mode
		if err := s.Validate(nil); err != nil {
			t.Errorf("mode %q refused: %v", mode, err)
		}
	}
	s.Server.DirectPut = false
	if s.Options().DirectPut {
		t.Errorf("Options().DirectPut = true without the server's direct put")
	}
	b, _ := json.Marshal(pipeline.JobSpec{Bucket: "a", DstBucket: "b", Server: &pipeline.ServerSpec{}})
	if strings.Contains(string(b), `"transform"`) || !strings.Contains(string(b), `"server":{}`) {
		t.Errorf("a server spec encodes as %s", b)
	}
	// Neither a transform nor a server.
	err := (&pipeline.JobSpec{Bucket: "a", DstBucket: "b"}).Validate(nil)
	if !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "no transform") {
		t.Errorf("no transform, no server: %v", err)
	}
}
