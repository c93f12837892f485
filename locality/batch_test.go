package locality

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
)

// tarMember is a member as a batch's client reads it.
type tarMember struct {
	name string
	pax  map[string]string
	data string
}

// tarStream writes members with archive/tar in format (FormatUnknown:
// its choice), with the records of pax on every member that has any.
func tarStream(t *testing.T, format tar.Format, members []tarMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: int64(len(m.data)), Mode: 0o644,
			ModTime: time.Unix(1_700_000_000, 0), PAXRecords: m.pax, Format: format}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readMembers reads a stream with tarReader to its end, reading every
// member's bytes whole when whole is true and only its first byte else.
func readMembers(raw []byte, whole bool) ([]tarMember, error) {
	tr := newTarReader(bytes.NewReader(raw))
	var out []tarMember
	for {
		h, err := tr.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		m := tarMember{name: h.name()}
		for k, v := range h.pax {
			if strings.HasPrefix(k, "INSITU.") {
				if m.pax == nil {
					m.pax = map[string]string{}
				}
				m.pax[k] = v
			}
		}
		var b []byte
		if whole {
			b, err = io.ReadAll(tr)
		} else {
			b = make([]byte, min(1, h.size))
			_, err = io.ReadFull(tr, b)
		}
		if err != nil {
			return out, err
		}
		if bucket, key, ok := strings.Cut(m.name, "/"); ok && !h.is(insitu.Name{Bucket: bucket, Key: key}) {
			return out, fmt.Errorf("%q: is() is false for its own name", m.name)
		}
		m.data = string(b)
		out = append(out, m)
	}
}

// TestTarReader: the batch's tar reader reads what archive/tar writes, in
// every format and with every kind of header the node may send (ustar,
// ustar with a prefix, pax for a long or non-ASCII name or a record, GNU),
// whether or not the caller reads each member whole; and a stream cut
// anywhere, or with a header whose checksum is wrong, is an error, never
// a member with other bytes.
func TestTarReader(t *testing.T) {
	t.Parallel()
	members := []tarMember{
		{name: "b/empty"},
		{name: "b/one", data: "x"},
		{name: "b/block", data: strings.Repeat("a", 512)},
		{name: "b/over", data: strings.Repeat("b", 513)},
		{name: "b/" + strings.Repeat("k", 98), data: "100"},
		{name: "b/" + strings.Repeat("k", 99), data: "101: ustar's prefix"},
		{name: "b/d/" + strings.Repeat("k", 150), data: "long"},
		{name: "b/ünïcödé", data: "pax"},
		{name: "b/origin", pax: map[string]string{"INSITU.origin": "o=1"}, data: "origin"},
		{name: "b/err", pax: map[string]string{"INSITU.error": "not_found"}, data: `{"code":"not_found"}`},
		{name: ".insitu-batch-end", data: `{"count":9}`},
	}
	for _, format := range []tar.Format{tar.FormatUnknown, tar.FormatPAX, tar.FormatGNU} {
		var ms []tarMember
		for _, m := range members {
			if format == tar.FormatGNU && m.pax != nil {
				continue // GNU has no records
			}
			ms = append(ms, m)
		}
		raw := tarStream(t, format, ms)
		for _, whole := range []bool{true, false} {
			got, err := readMembers(raw, whole)
			if err != nil {
				t.Fatalf("%v: %v", format, err)
			}
			if len(got) != len(ms) {
				t.Fatalf("%v: %d members, want %d", format, len(got), len(ms))
			}
			for i, m := range got {
				want := ms[i]
				if !whole {
					want.data = want.data[:min(1, len(want.data))]
				}
				if m.name != want.name || m.data != want.data || fmt.Sprint(m.pax) != fmt.Sprint(want.pax) {
					t.Errorf("%v, whole %v: member %d is %+v, want %+v", format, whole, i, m, want)
				}
			}
		}
		// Cut anywhere: fewer members (an end between two: the client
		// counts them) or an error, and the members before it whole.
		for cut := range len(raw) - 1024 { // the footer is two blocks
			if at := cut % tarBlock; at > 1 && at < tarBlock-1 && cut%17 != 0 {
				continue // every block's edges, and every 17th byte
			}
			got, err := readMembers(raw[:cut], true)
			if err == nil && len(got) >= len(ms) {
				t.Fatalf("%v: the stream cut at %d read as whole: %d members", format, cut, len(got))
			}
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, tar.ErrHeader) {
				t.Fatalf("%v: cut at %d: %v", format, cut, err)
			}
			for i, m := range got {
				if m.name != ms[i].name || m.data != ms[i].data {
					t.Fatalf("%v: cut at %d: member %d is %+v", format, cut, i, m)
				}
			}
		}
	}
	// A header with a wrong checksum: an error.
	raw := tarStream(t, tar.FormatUnknown, members[:2])
	raw[512+10] ^= 1 // the second header's name (the first member is empty)
	if got, err := readMembers(raw, true); !errors.Is(err, tar.ErrHeader) || len(got) != 1 {
		t.Fatalf("a bad checksum: %d members, %v; want 1 and tar.ErrHeader", len(got), err)
	}
}
