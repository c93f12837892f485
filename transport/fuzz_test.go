package transport

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/insitu-data/insitu/internal/wire"
)

// FuzzFrameDecode feeds arbitrary messages to the frame decoder: it must
// never panic, and what it accepts must encode back to the same bytes.
// Seeds: testdata/fuzz/FuzzFrameDecode.
func FuzzFrameDecode(f *testing.F) {
	f.Add(frameBytes(frameOpen, flagEnd, 1, []byte(`{"bucket":"b","key":"k","size":0}`)))
	f.Add(frameBytes(frameData, 0, 7, bytes.Repeat([]byte{0xAB}, 100)))
	f.Add(frameBytes(frameCredit, 0, 3, []byte{0, 1, 0, 0}))
	f.Add([]byte{9, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, fb, err := readFrame(bytes.NewReader(msg))
		if err != nil {
			if fb != nil {
				t.Fatalf("readFrame returned a buffer with the error %v", err)
			}
			return
		}
		defer putFrame(fb)
		if h.len > maxFramePayload || int(h.len) != len(msg)-frameHeaderLen {
			t.Fatalf("accepted a frame whose length %d does not match its %d bytes", h.len, len(msg))
		}
		var hb [frameHeaderLen]byte
		putHeader(hb[:], h)
		if !bytes.Equal(hb[:], msg[:frameHeaderLen]) || !bytes.Equal(fb.payload(), msg[frameHeaderLen:]) {
			t.Fatalf("frame %+v does not encode back to its bytes", h)
		}
		if h.typ == frameCredit {
			if n, err := creditOf(fb.payload()); err != nil || n == 0 {
				t.Fatalf("accepted a CREDIT of %d: %v", n, err)
			}
		}
	})
}

func frameBytes(typ frameType, flags uint8, id uint32, payload []byte) []byte {
	b := make([]byte, frameHeaderLen+len(payload))
	putHeader(b, frameHeader{typ: typ, flags: flags, id: id, len: uint32(len(payload))})
	copy(b[frameHeaderLen:], payload)
	return b
}

// FuzzRequest feeds arbitrary URL wildcards, headers and OPEN payloads to
// the request parsers: they must never panic, what they accept must be
// valid, and an accepted request must survive a round trip through its
// own encoding. Seeds: testdata/fuzz/FuzzRequest.
func FuzzRequest(f *testing.F) {
	f.Add("b", "dir/file.flac", "-ar 44100", "", "", "", "", "", []byte(`{"bucket":"b","key":"k","size":3,"args":"x"}`))
	f.Add("~", "a%20b", "%zz", "/data/x", "http://127.0.0.1:1/v1/objects/b/k", "", "12", "1000", []byte(`{"key":"../x"}`))
	f.Fuzz(func(t *testing.T, bucket, key, args, path, source, put, size, timeout string, open []byte) {
		h := http.Header{}
		for k, v := range map[string]string{
			wire.Args: args, wire.Path: path, wire.SourceURL: source,
			wire.PutURL: put, wire.Size: size, wire.Timeout: timeout,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if r, err := parseHeaders(bucket, key, h, -1); err == nil {
			if err := r.validate(); err != nil {
				t.Fatalf("parseHeaders accepted an invalid request: %v", err)
			}
			h2 := http.Header{}
			r.setHeaders(h2)
			b := r.Bucket
			if b == "" {
				b = emptyBucket
			}
			r2, err := parseHeaders(b, r.Key, h2, -1)
			if err != nil {
				t.Fatalf("a request's own headers do not parse: %v", err)
			}
			if *r2 != *r {
				t.Fatalf("headers round trip: %+v, want %+v", r2, r)
			}
		}
		if r, err := parseOpen(open); err == nil {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := parseOpen(b)
			if err != nil {
				t.Fatalf("a request's own JSON does not parse: %v", err)
			}
			if *r2 != *r {
				t.Fatalf("JSON round trip: %+v, want %+v", r2, r)
			}
		}
	})
}
