package loader

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/insitu-data/insitu"
)

// Listing is the names of a source, in its listing's order, as a loader
// in ShuffleGlobal holds them (the names only, end to end). Get one from
// [Loader.Listing] or [ReadListing]; give it to Options.Listing so that
// another loader of the same source (another worker of the process, the
// next run of a job) does not list the source again before its first
// sample. A Listing is immutable and safe for concurrent use.
type Listing struct {
	t *nameTable
}

// Len returns the number of names.
func (ls *Listing) Len() int { return ls.t.len() }

// ID identifies the listing as a State's Listing does: "<count>-<hex>",
// its count and a hash of its names in order.
func (ls *Listing) ID() string { return ls.t.id }

// Listing returns the source's listing, listing it on the first call
// (also that of [Loader.Samples] in ShuffleGlobal), or Options.Listing.
// Its errors are the listing's.
func (l *Loader) Listing(ctx context.Context) (*Listing, error) {
	t, err := l.listing(ctx)
	if err != nil {
		return nil, err
	}
	return &Listing{t: t}, nil
}

// listingMagic starts the encoding of a listing.
const listingMagic = "insitu-loader-listing 1\n"

// MaxListingKey bounds the length of a key in [ReadListing].
const MaxListingKey = 64 << 10

// WriteTo writes the listing to w in a compact binary form that
// [ReadListing] reads: about the length of each name plus one or two
// bytes. It returns the bytes written and w's error.
func (ls *Listing) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var tmp [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		k, _ := bw.Write(b)
		n += int64(k)
	}
	uvarint := func(v uint64) { put(binary.AppendUvarint(tmp[:0], v)) }
	t := ls.t
	put([]byte(listingMagic))
	uvarint(uint64(len(t.buckets)))
	for _, b := range t.buckets {
		uvarint(uint64(len(b)))
		put([]byte(b))
	}
	uvarint(uint64(t.len()))
	start := 0
	for i, end := range t.ends {
		if len(t.buckets) > 1 {
			uvarint(uint64(t.bidx[i]))
		}
		uvarint(uint64(end - start))
		k, _ := bw.WriteString(t.str[start:end])
		n += int64(k)
		start = end
	}
	put([]byte(t.id + "\n"))
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("loader: writing a listing: %w", err)
	}
	return n, nil
}

// ReadListing reads a listing that [Listing.WriteTo] wrote. Something
// else, a truncated or corrupt listing, or a key over MaxListingKey bytes,
// is an InvalidArgument error; r's errors are returned wrapped.
func ReadListing(r io.Reader) (*Listing, error) {
	br := bufio.NewReader(r)
	bad := func(what string) (*Listing, error) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: reading a listing: %s", what)
	}
	fail := func(err error) (*Listing, error) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return bad("truncated")
		}
		if insitu.CodeOf(err) != insitu.Unknown {
			return nil, err
		}
		return nil, fmt.Errorf("loader: reading a listing: %w", err)
	}
	magic := make([]byte, len(listingMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return fail(err)
	}
	if string(magic) != listingMagic {
		return bad("not a listing")
	}
	nb, err := binary.ReadUvarint(br)
	if err != nil {
		return fail(err)
	}
	if nb == 0 || nb > math.MaxUint16+1 {
		return bad(fmt.Sprintf("%d buckets", nb))
	}
	t := &nameTable{}
	for range nb {
		b, err := readString(br)
		if err != nil {
			return fail(err)
		}
		t.buckets = append(t.buckets, string(b))
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return fail(err)
	}
	if count > math.MaxUint32 {
		return bad(fmt.Sprintf("%d names", count))
	}
	d := xxhash.New()
	var key []byte
	for range count {
		bi := uint64(0)
		if nb > 1 {
			if bi, err = binary.ReadUvarint(br); err != nil {
				return fail(err)
			}
			if bi >= nb {
				return bad(fmt.Sprintf("bucket %d of %d", bi, nb))
			}
		}
		if key, err = readBytes(br, key); err != nil {
			return fail(err)
		}
		if nb > 1 {
			if t.bidx == nil {
				t.bidx = make([]uint16, 0, min(count, 1<<20))
			}
			t.bidx = append(t.bidx, uint16(bi))
		}
		t.keys = append(t.keys, key...)
		t.ends = append(t.ends, len(t.keys))
		_, _ = d.WriteString(t.buckets[bi])
		_, _ = d.WriteString("/")
		_, _ = d.Write(key)
		_, _ = d.WriteString("\n") // as hashName
	}
	id, err := br.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	t.id = fmt.Sprintf("%d-%016x", t.len(), d.Sum64())
	if id[:len(id)-1] != t.id {
		return bad(fmt.Sprintf("its names hash to %s, but it says %s: corrupt", t.id, id[:len(id)-1]))
	}
	t.str, t.keys, t.ends = string(t.keys), nil, slices.Clip(t.ends)
	return &Listing{t: t}, nil
}

// readString reads a uvarint length and that many bytes.
func readString(br *bufio.Reader) ([]byte, error) { return readBytes(br, nil) }

// readBytes reads a uvarint length and that many bytes, into buf[:0].
func readBytes(br *bufio.Reader, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > MaxListingKey {
		return nil, insitu.Errorf(insitu.InvalidArgument, "loader: reading a listing: a name of %d bytes, over %d", n, MaxListingKey)
	}
	buf = slices.Grow(buf[:0], int(n))[:n]
	_, err = io.ReadFull(br, buf)
	return buf, err
}
