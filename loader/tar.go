package loader

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// tarReader reads the members of a tar stream for shards: a regular
// member's name and size, then its bytes, with no allocation per member
// (archive/tar's Reader parses every field of every header into a new
// Header, which costs more than reading a small member). It reads the
// USTAR, PAX and GNU formats: the ustar prefix of a name, a PAX header's
// path and size, a GNU long name, a base-256 size; global PAX headers,
// directories, links and other members that hold no file are skipped. It
// checks each header's checksum.
type tarReader struct {
	r       *bufio.Reader
	blk     [512]byte
	name    []byte // the current member's name, valid until next
	size    int64  // the current member's size
	left    int64  // the bytes of the current member (and its padding) not read
	long    []byte // a name for the next header, from a PAX or GNU long-name header
	paxSize int64  // a size for the next header from a PAX header, or -1
}

// Limits of the headers that give the next member a name or a size.
const (
	maxTarLongName = 64 << 10
	maxTarPAX      = 1 << 20
)

var errTarHeader = errors.New("invalid tar header")

func newTarReader(r io.Reader) *tarReader {
	return &tarReader{r: bufio.NewReaderSize(r, 64<<10), paxSize: -1}
}

// reset makes t read r from its start, keeping its buffer.
func (t *tarReader) reset(r io.Reader) {
	t.r.Reset(r)
	t.name, t.size, t.left, t.long, t.paxSize = t.name[:0], 0, 0, nil, -1
}

// next moves to the next regular member, skipping what is left of the
// current one: io.EOF at the end of the archive (a zero block, or the
// end of the stream between members), io.ErrUnexpectedEOF when it ends in
// a member, errTarHeader (wrapped) for a bad header.
func (t *tarReader) next() error {
	for {
		if err := t.discard(t.left); err != nil {
			return err
		}
		t.left = 0
		if _, err := io.ReadFull(t.r, t.blk[:]); err != nil {
			return err // io.EOF between members: the end, as archive/tar has it
		}
		if t.blk == [512]byte{} {
			return io.EOF
		}
		if err := t.checksum(); err != nil {
			return err
		}
		size, err := parseTarNumber(t.blk[124:136])
		if err != nil || size < 0 {
			return errTarHeader
		}
		typ := t.blk[156]
		pad := -size & 511
		switch typ {
		case 'L', 'x': // a GNU long name, a PAX header: about the next member
			limit := int64(maxTarLongName)
			if typ == 'x' {
				limit = maxTarPAX
			}
			if size > limit {
				return errTarHeader
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(t.r, b); err != nil {
				return unexpected(err)
			}
			t.left = pad
			if typ == 'L' {
				t.long = cstring(b)
			} else if err := t.pax(b); err != nil {
				return err
			}
			continue
		case 'S': // GNU sparse: skip its extension headers
			for ext := t.blk[482] != 0; ext; ext = t.blk[504] != 0 {
				if _, err := io.ReadFull(t.r, t.blk[:]); err != nil {
					return unexpected(err)
				}
			}
		}
		if t.paxSize >= 0 {
			size, pad = t.paxSize, -t.paxSize&511
		}
		t.left = size + pad
		if typ != '0' && typ != 0 && typ != '7' { // not a file: skip it
			t.long, t.paxSize = nil, -1
			continue
		}
		t.size = size
		t.name = t.name[:0]
		switch {
		case t.long != nil:
			t.name = append(t.name, t.long...)
		case string(t.blk[257:263]) == "ustar\x00" && t.blk[345] != 0: // a POSIX prefix
			t.name = append(append(append(t.name, cstring(t.blk[345:500])...), '/'), cstring(t.blk[:100])...)
		default:
			t.name = append(t.name, cstring(t.blk[:100])...)
		}
		t.long, t.paxSize = nil, -1
		return nil
	}
}

// read reads the current member's bytes into b, of its size.
func (t *tarReader) read(b []byte) error {
	if int64(len(b)) != t.size {
		return errTarHeader
	}
	if _, err := io.ReadFull(t.r, b); err != nil {
		return unexpected(err)
	}
	t.left -= t.size
	return nil
}

// discard skips n bytes of the stream.
func (t *tarReader) discard(n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := t.r.Discard(k)
		n -= int64(d)
		if err != nil {
			return unexpected(err)
		}
	}
	return nil
}

// checksum checks the header's checksum: the sum of its bytes, the
// checksum's field counted as spaces (unsigned, or signed as some old
// tars have it).
func (t *tarReader) checksum() error {
	want, err := parseTarNumber(t.blk[148:156])
	if err != nil {
		return errTarHeader
	}
	// The bytes' sum, eight at a time: two lanes of 16 bits per pair of
	// bytes, which 64 words cannot overflow (64×2×255 < 65536).
	var lanes uint64
	for i := 0; i < len(t.blk); i += 8 {
		w := binary.LittleEndian.Uint64(t.blk[i:])
		lanes += w&0x00ff00ff00ff00ff + w>>8&0x00ff00ff00ff00ff
	}
	u := int64(lanes&0xffff + lanes>>16&0xffff + lanes>>32&0xffff + lanes>>48)
	for _, c := range t.blk[148:156] {
		u += ' ' - int64(c)
	}
	if want == u {
		return nil
	}
	var s int64
	for i, c := range t.blk {
		if i >= 148 && i < 156 {
			c = ' '
		}
		s += int64(int8(c))
	}
	if want != s {
		return errTarHeader
	}
	return nil
}

// pax takes the path and size of a PAX header's records ("<len>
// <key>=<value>\n" each).
func (t *tarReader) pax(b []byte) error {
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp < 1 {
			return errTarHeader
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= sp+1 || n > len(b) || b[n-1] != '\n' {
			return errTarHeader
		}
		k, v, ok := bytes.Cut(b[sp+1:n-1], []byte("="))
		if !ok {
			return errTarHeader
		}
		switch string(k) {
		case "path":
			t.long = append([]byte(nil), v...)
		case "size":
			size, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || size < 0 {
				return errTarHeader
			}
			t.paxSize = size
		}
		b = b[n:]
	}
	return nil
}

// parseTarNumber parses a numeric field: octal digits (with leading
// spaces, ended by a NUL or a space), or base-256 when its first byte has
// the high bit set.
func parseTarNumber(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, errTarHeader // negative
		}
		var n int64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if n > (1<<63-1)>>8 {
				return 0, errTarHeader
			}
			n = n<<8 | int64(c)
		}
		return n, nil
	}
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	var n int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '7'; i++ {
		if n > (1<<63-1)>>3 {
			return 0, errTarHeader
		}
		n = n<<3 | int64(b[i]-'0')
	}
	for ; i < len(b); i++ {
		if b[i] != 0 && b[i] != ' ' {
			return 0, errTarHeader
		}
	}
	return n, nil
}

// cstring returns b up to its first NUL.
func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// unexpected turns the io.EOF of a stream that ends in a member into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
