package atomicfile

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// The extended attribute OriginAttr holds an origin in one of two forms.
// A value that starts with "args=" is the origin's text (as stores wrote
// it before the compact form, and still write for an origin the compact
// form cannot hold). Any other value starting with originCompact is the
// compact form, the origin's fields in binary:
//
//	0x01                       the form
//	4 bytes                    CRC-32 (IEEE, big-endian) of the key the value
//	                           was written for: a file renamed or copied to
//	                           another key has no origin, not another one
//	16 bytes                   Args, the digest's bytes
//	version                    0x00 "" | 0x01 uvarint size, uvarint mtime ("<size>-<mtime>") | 0x02 uvarint length, bytes
//	uvarint length, bytes      Transform
//	uvarint length, bytes      Input.Bucket
//	uvarint p, uvarint length, bytes
//	                           Input.Key: the first p bytes of the key of the
//	                           file the attribute is on, then these bytes
//
// The compact form exists for ext4's default 256-byte inodes, which keep
// a value of this attribute of up to 56 bytes in the inode and give a
// longer one a block of its own (a long transform ID, or an input key that
// shares little with the output's, still does): the text of a typical origin (about 120
// bytes) doubled the space and the writes of a 4 KiB object, while its
// compact form (about 50 bytes: the input's key mostly shares the
// output's) stays in the inode.
const originCompact = 0x01

// EncodeOrigin returns the value of the attribute OriginAttr that records
// the origin text on the file of the object whose key is key: the compact
// form when text is an origin's text, text itself otherwise (a store only
// records texts it has checked, so that does not happen).
func EncodeOrigin(text, key string) string {
	o, err := insitu.ParseOrigin(text)
	if err != nil {
		return text
	}
	args, err := hex.DecodeString(o.Args)
	if err != nil || len(args) != 16 {
		return text
	}
	b := make([]byte, 0, 64)
	b = append(b, originCompact)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(key)))
	b = append(b, args...)
	switch size, mtime, ok := parseVersion(o.Version); {
	case o.Version == "":
		b = append(b, 0)
	case ok:
		b = append(b, 1)
		b = binary.AppendUvarint(b, size)
		b = binary.AppendUvarint(b, mtime)
	default:
		b = append(b, 2)
		b = appendString(b, o.Version)
	}
	b = appendString(b, o.Transform)
	b = appendString(b, o.Input.Bucket)
	p := commonPrefix(o.Input.Key, key)
	b = binary.AppendUvarint(b, uint64(p))
	b = appendString(b, o.Input.Key[p:])
	return string(b)
}

// DecodeOrigin returns the origin text that value, the attribute
// OriginAttr of the file of the object whose key is key, records: "" when
// it records none, or is not one of the two forms (see [EncodeOrigin]),
// or is not an origin.
func DecodeOrigin(value, key string) string {
	if strings.HasPrefix(value, "args=") {
		if _, err := insitu.ParseOrigin(value); err != nil {
			return ""
		}
		return value
	}
	r := compactReader{b: []byte(value)}
	if r.byte() != originCompact || binary.BigEndian.Uint32(r.bytes(4)) != crc32.ChecksumIEEE([]byte(key)) {
		return ""
	}
	var o insitu.Origin
	o.Args = hex.EncodeToString(r.bytes(16))
	switch r.byte() {
	case 0:
	case 1:
		size, mtime := r.uvarint(), r.uvarint()
		o.Version = strconv.FormatUint(size, 10) + "-" + strconv.FormatUint(mtime, 10)
	case 2:
		o.Version = r.string()
	default:
		return ""
	}
	o.Transform = r.string()
	o.Input.Bucket = r.string()
	p := r.uvarint()
	suffix := r.string()
	if r.bad || len(r.b) != 0 || p > uint64(len(key)) {
		return ""
	}
	o.Input.Key = key[:p] + suffix
	text := o.String()
	if _, err := insitu.ParseOrigin(text); err != nil {
		return ""
	}
	return text
}

// parseVersion reads a version of the form "<size>-<mtime>", two decimal
// numbers as strconv.FormatUint writes them; ok is false for any other
// version, which the compact form keeps as it is.
func parseVersion(v string) (size, mtime uint64, ok bool) {
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	size, err1 := strconv.ParseUint(a, 10, 64)
	mtime, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || strconv.FormatUint(size, 10) != a || strconv.FormatUint(mtime, 10) != b {
		return 0, 0, false
	}
	return size, mtime, true
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// compactReader reads the compact form; bad is set, and every read then
// gives zeros, once the value is too short or a number too long.
type compactReader struct {
	b   []byte
	bad bool
}

func (r *compactReader) byte() byte {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *compactReader) bytes(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	p := bytes.Clone(r.b[:n])
	r.b = r.b[n:]
	return p
}

func (r *compactReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *compactReader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
