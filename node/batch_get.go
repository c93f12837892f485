package node

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
)

// Bounds of a batch GET (POST /v1/batch) on the node's side.
const (
	// batchMemSpool is how much of a transformed object's output a batch
	// holds in memory before it spools the rest to a temporary file: the
	// size of a tar member must be known before its header is written.
	batchMemSpool = 1 << 20
	// batchBufSize is the buffer the tar stream is written through, so
	// that small members go out in large writes.
	batchBufSize = 64 << 10
	// batchAhead is how many objects a batch opens ahead of the one it
	// writes (objects as stored only), so that the latency of opening
	// files overlaps; batchSmall is the size up to which such an object
	// is read into memory at once (and its file closed). A batch so holds
	// at most batchAhead+2 open files and (batchAhead+2)*batchSmall bytes.
	batchAhead = 16
	batchSmall = 64 << 10
)

// batchFailed marks the failures of a batch in "fail" mode: the batch ends
// with err, which is about the objects[index] of the request.
type batchFailed struct {
	index int
	name  insitu.Name
	err   error
}

func (f *batchFailed) Error() string { return f.err.Error() }

// serveBatch answers POST /v1/batch: the objects the request names, in its
// order, as one tar stream (see [locality.BatchRequest] and PROTOCOL.md,
// "Batch GET"). Memory is bounded whatever the batch's size: the names
// (at most locality.MaxBatchNames, in at most locality.MaxBatchBody of
// JSON), a 64 KiB write buffer, and for a transformed object the first
// MiB of its output (the rest goes to an unlinked temporary file, up to
// the node's MaxObjectSize). Objects are read one at a time.
func (n *Node) serveBatch(w http.ResponseWriter, r *http.Request, m *locality.Map) {
	if r.Method != http.MethodPost {
		n.methodNotAllowed(w, r, "POST")
		return
	}
	req, err := decodeBatch(r.Body)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	var rc readChain // none: the objects as stored
	if req.Transform != "" || req.Args != "" {
		if rc, err = n.parseReadChain(req.Transform, req.Args); err != nil {
			n.writeError(w, r, err)
			return
		}
	}
	fail := req.OnError == locality.OnErrorFail
	for i, name := range req.Objects {
		if err := checkName(name); err != nil {
			n.writeError(w, r, insitu.Errorf(insitu.InvalidArgument, "objects[%d]: %w", i, err))
			return
		}
	}
	if fail {
		// Every name the node does not own fails the batch before a byte.
		for i, name := range req.Objects {
			if err := n.own(m, name); err != nil {
				n.writeError(w, r, batchError(i, name, err))
				return
			}
		}
	}
	bs := &batchStream{n: n, w: w, r: r, m: m, rc: rc, fail: fail}
	defer bs.close()
	if len(rc.names) > 0 {
		// One transform at a time: each output is spooled whole.
		for i, name := range req.Objects {
			if err := bs.object(i, name, bs.openTransformed(r.Context(), name)); err != nil {
				bs.failed(err)
				return
			}
		}
		bs.end(len(req.Objects))
		return
	}
	bs.dir = n.openStoreDir()
	defer bs.dir.close()
	ctx, cancel := context.WithCancel(r.Context())
	order, workers := bs.prefetch(ctx, req.Objects)
	defer func() {
		// Stop the opening, close what was opened ahead, and wait for
		// the openers.
		cancel()
		for slot := range order {
			if o := <-slot; o.body != nil {
				o.body.Close()
			}
		}
		workers.Wait()
	}()
	for i, name := range req.Objects {
		slot, ok := <-order
		if !ok { // ctx is done: the client went away
			bs.failed(ctx.Err())
			return
		}
		if err := bs.object(i, name, <-slot); err != nil {
			bs.failed(err)
			return
		}
	}
	bs.end(len(req.Objects))
}

// opened is an object opened ahead for its member.
type opened struct {
	data  []byte        // the bytes of a small object, read whole; else
	body  io.ReadCloser // the reader of its bytes
	size  int64
	obj   insitu.Object
	mtime time.Time // the member's modification time
	err   error
}

// prefetch opens the objects names as stored, in order, up to batchAhead
// ahead of the one the caller takes, on batchAhead goroutines: it sends a
// slot per name to the channel it returns, in order, each of which gets
// the object once opened (read into memory, file closed, when it has at
// most batchSmall bytes). The channel is closed after the last slot, or
// when ctx ends; the caller takes every slot and closes the bodies it
// gets, then waits for the WaitGroup.
func (bs *batchStream) prefetch(ctx context.Context, names []insitu.Name) (<-chan chan opened, *sync.WaitGroup) {
	type job struct {
		name insitu.Name
		slot chan opened
	}
	order := make(chan chan opened, batchAhead)
	jobs := make(chan job, batchAhead)
	wg := new(sync.WaitGroup)
	for range min(batchAhead, len(names)) {
		wg.Go(func() {
			for j := range jobs {
				j.slot <- bs.openStored(ctx, j.name)
			}
		})
	}
	wg.Go(func() {
		defer close(order)
		defer close(jobs)
		for _, name := range names {
			slot := make(chan opened, 1)
			select {
			case order <- slot:
			case <-ctx.Done():
				return
			}
			jobs <- job{name, slot} // a worker is free: order holds at most batchAhead slots
		}
	})
	return order, wg
}

// openStored opens name's object as stored: in a few system calls
// through the batch's store directory (see [storeDir.open]) when it can,
// else through the node's root (which also answers once the node is
// shutting down, as every other read does).
func (bs *batchStream) openStored(ctx context.Context, name insitu.Name) opened {
	if bs.m.Owns(bs.n.id, name) && ctx.Err() == nil && !bs.n.life.isClosing() {
		if o, ok := bs.dir.open(name, batchSmall); ok {
			o.obj.Name, o.obj.Size, o.obj.Owner = name, o.size, bs.n.id
			return o
		}
	}
	f, obj, err := bs.n.open(ctx, bs.m, name)
	if err != nil {
		return opened{err: err}
	}
	if obj.Size > batchSmall {
		return opened{body: f, size: obj.Size, obj: obj, mtime: modTime(obj.Version)}
	}
	defer f.Close()
	b := make([]byte, obj.Size)
	if _, err := io.ReadFull(f, b); err != nil {
		return opened{err: bs.n.fileError(name, err, false)}
	}
	return opened{data: b, size: obj.Size, obj: obj, mtime: modTime(obj.Version)}
}

// batchError is the error of a batch's objects[i] when it fails the batch.
func batchError(i int, name insitu.Name, err error) error {
	code := insitu.CodeOf(err)
	msg := wire.Body(err).Message
	return &insitu.Error{Code: code, Msg: fmt.Sprintf("objects[%d] %s: %s", i, name, msg), Err: err}
}

// decodeBatch reads the JSON body of a batch GET: one object, nothing but
// white space after it. It counts the names as they come, so that a batch
// of more than locality.MaxBatchNames names is refused (InvalidArgument)
// without reading them all; a body over locality.MaxBatchBody bytes is
// TooLarge. Unknown fields are refused.
func decodeBatch(body io.Reader) (*locality.BatchRequest, error) {
	lr := &io.LimitedReader{R: body, N: locality.MaxBatchBody + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	bad := func(err error) error {
		if lr.N <= 0 {
			return insitu.Errorf(insitu.TooLarge, "a batch request is at most %d bytes of JSON", locality.MaxBatchBody)
		}
		var ie *insitu.Error
		if errors.As(err, &ie) {
			return err
		}
		return insitu.Errorf(insitu.InvalidArgument, "reading the batch request: %v", err)
	}
	delim := func(want json.Delim) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return fmt.Errorf("got %v, want %q", tok, want)
		}
		return nil
	}
	req := new(locality.BatchRequest)
	if err := delim('{'); err != nil {
		return nil, bad(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, bad(fmt.Errorf("field %q given twice", key))
		}
		seen[key] = true
		switch key {
		case "objects":
			if err := delim('['); err != nil {
				return nil, bad(err)
			}
			for dec.More() {
				if len(req.Objects) == locality.MaxBatchNames {
					return nil, insitu.Errorf(insitu.InvalidArgument, "a batch names at most %d objects; split it", locality.MaxBatchNames)
				}
				var name insitu.Name
				if err := dec.Decode(&name); err != nil {
					return nil, bad(fmt.Errorf("objects[%d]: %w", len(req.Objects), err))
				}
				req.Objects = append(req.Objects, name)
			}
			if err := delim(']'); err != nil {
				return nil, bad(err)
			}
		case "transform":
			err = dec.Decode(&req.Transform)
		case "args":
			err = dec.Decode(&req.Args)
		case "on_error":
			err = dec.Decode(&req.OnError)
		default:
			err = fmt.Errorf("unknown field %q", key)
		}
		if err != nil {
			return nil, bad(err)
		}
	}
	if err := delim('}'); err != nil {
		return nil, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(errors.New("more after the request's JSON object"))
	}
	switch req.OnError {
	case "":
		req.OnError = locality.OnErrorEntry
	case locality.OnErrorEntry, locality.OnErrorFail:
	default:
		return nil, insitu.Errorf(insitu.InvalidArgument, "on_error %q: want %q or %q", req.OnError, locality.OnErrorEntry, locality.OnErrorFail)
	}
	return req, nil
}

// batchStream writes the tar stream of one batch GET.
type batchStream struct {
	n    *Node
	w    http.ResponseWriter
	r    *http.Request
	m    *locality.Map
	rc   readChain
	fail bool
	dir  *storeDir // the store, for fast opens of objects as stored; nil for none

	bw      *bufio.Writer
	tw      *tar.Writer
	hdr     tar.Header // the header of the member being written
	ustar   ustarBlock // the header of a small object's member, when ustar holds it
	started bool       // the response's status is sent
	errors  int        // error members written

	spoolMem  []byte   // a transformed output's first batchMemSpool bytes
	spoolFile *os.File // and the rest: unlinked, made at the first need
}

// start sends the status and headers, once.
func (bs *batchStream) start() {
	if bs.started {
		return
	}
	bs.started = true
	h := bs.w.Header()
	h.Set("Content-Type", locality.BatchContentType)
	h.Set(wire.Owner, bs.n.id)
	h.Set("Trailer", wire.ErrorCode+", "+wire.ErrorMessage)
	bs.w.WriteHeader(http.StatusOK)
	bs.bw = bufio.NewWriterSize(bs.w, batchBufSize)
	bs.tw = tar.NewWriter(bs.bw)
}

// object writes objects[i] = name's member from o, the object opened:
// its bytes, or its error member; in "fail" mode an object that could not
// be opened is a *batchFailed. Any other error cuts the stream. It closes
// o's body.
func (bs *batchStream) object(i int, name insitu.Name, o opened) error {
	ctx := bs.r.Context()
	body, size, obj, err := o.body, o.size, o.obj, o.err
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if bs.fail {
			return &batchFailed{index: i, name: name, err: err}
		}
		return bs.errorMember(name, err)
	}
	if body != nil {
		defer body.Close()
	}
	bs.start()
	if body == nil && obj.Origin == "" {
		if hdr, ok := bs.ustar.header(name, size, o.mtime); ok {
			// The header archive/tar would write, by hand; the bytes and
			// their padding straight into the buffer.
			if err := bs.tw.Flush(); err != nil {
				return err
			}
			if _, err := bs.bw.Write(hdr); err != nil {
				return err
			}
			if _, err := bs.bw.Write(o.data); err != nil {
				return err
			}
			_, err := bs.bw.Write(bs.ustar.zeros[:tarPadding(size)])
			return err
		}
	}
	hdr := &bs.hdr
	*hdr = tar.Header{Typeflag: tar.TypeReg, Name: relPath(name), Size: size, Mode: 0o644, ModTime: o.mtime}
	if obj.Origin != "" {
		hdr.PAXRecords = map[string]string{locality.BatchOriginRecord: obj.Origin}
	}
	if err := bs.tw.WriteHeader(hdr); err != nil {
		return err
	}
	var k int64
	if body == nil {
		var n int
		n, err = bs.tw.Write(o.data)
		k = int64(n)
	} else {
		k, err = io.Copy(bs.tw, body)
	}
	if err == nil && k != size {
		err = insitu.Errorf(insitu.Internal, "%s changed size while it was read: %d bytes, not %d", name, k, size)
	}
	if err != nil {
		return insitu.WithName(err, name)
	}
	return nil
}

// openTransformed runs name's object through the batch's chain, on this
// goroutine, into the batch's spool, so that the output's size is known
// before its member is written.
func (bs *batchStream) openTransformed(ctx context.Context, name insitu.Name) opened {
	releaseSlot, err := bs.n.acquireRead(ctx)
	if err != nil {
		return opened{err: err}
	}
	defer releaseSlot()
	f, obj, err := bs.n.open(ctx, bs.m, name)
	if err != nil {
		return opened{err: err}
	}
	defer f.Close()
	in := &insitu.Input{Object: obj, Args: bs.rc.args, Body: f}
	in.Path = fdPath(f)
	t, release, err := bs.n.resolve(ctx, bs.rc, in)
	if err != nil {
		return opened{err: err}
	}
	defer release()
	// A transform may take a while: what is buffered goes out first.
	if bs.bw != nil {
		if err := bs.bw.Flush(); err != nil {
			return opened{err: err}
		}
	}
	if err := bs.resetSpool(name); err != nil {
		return opened{err: err}
	}
	w := &spoolWriter{bs: bs, name: name}
	if err := bs.n.runRead(ctx, name, t, in, w); err != nil {
		if w.over != nil {
			err = w.over
		}
		return opened{err: bs.n.readError(name, in.Path, err)}
	}
	r := io.MultiReader(bytes.NewReader(bs.spoolMem[:w.mem]), io.NewSectionReader(bs.spoolFile, 0, w.file))
	return opened{body: io.NopCloser(r), size: int64(w.mem) + w.file, obj: obj, mtime: modTime(obj.Version)}
}

// resetSpool readies the batch's spool for the next output: its memory,
// and its temporary file emptied when it has one.
func (bs *batchStream) resetSpool(name insitu.Name) error {
	if bs.spoolMem == nil {
		bs.spoolMem = make([]byte, batchMemSpool)
	}
	if bs.spoolFile != nil {
		if err := bs.spoolFile.Truncate(0); err != nil {
			return &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: "spooling the transformed output", Err: err}
		}
	}
	return nil
}

// spoolWriter holds a transformed output whole: the first batchMemSpool
// bytes in the batch's memory, the rest in its temporary file (unlinked,
// made at the first need), at most the node's MaxObjectSize in all (more
// is TooLarge).
type spoolWriter struct {
	bs   *batchStream
	name insitu.Name
	mem  int   // bytes in bs.spoolMem
	file int64 // bytes in bs.spoolFile
	over error // TooLarge, once the output passed the limit
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	bs := w.bs
	if w.over != nil {
		return 0, w.over
	}
	if int64(w.mem)+w.file+int64(len(p)) > bs.n.maxSize {
		w.over = &insitu.Error{Code: insitu.TooLarge, Name: w.name, Msg: fmt.Sprintf("the transformed output is over the node's limit of %d bytes", bs.n.maxSize)}
		return 0, w.over
	}
	k := copy(bs.spoolMem[w.mem:], p)
	w.mem += k
	if k == len(p) {
		return k, nil
	}
	if bs.spoolFile == nil {
		f, err := os.CreateTemp("", ".insitu-batch-*")
		if err != nil {
			return k, &insitu.Error{Code: insitu.Unavailable, Name: w.name, Msg: "spooling the transformed output", Err: err}
		}
		_ = os.Remove(f.Name()) // unlinked: gone with the last close, crash or not
		bs.spoolFile = f
	}
	m, err := bs.spoolFile.WriteAt(p[k:], w.file)
	w.file += int64(m)
	return k + m, err
}

// errorMember writes name's error member: the JSON error body, with the
// code in the PAX record INSITU.error too.
func (bs *batchStream) errorMember(name insitu.Name, err error) error {
	b := wire.Body(err)
	if b.Code == insitu.NotOwner {
		b.MapVersion = bs.m.Version()
	}
	b.Message = bs.n.scrub(b.Message)
	raw, _ := json.Marshal(b)
	bs.n.log.Debug("batch entry failed", "object", name.String(), "code", b.Code.String(), "msg", b.Message)
	bs.start()
	bs.errors++
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: relPath(name), Size: int64(len(raw)), Mode: 0o644,
		ModTime: time.Unix(0, 0), PAXRecords: map[string]string{locality.BatchErrorRecord: b.Code.String()}}
	if err := bs.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = bs.tw.Write(raw)
	return err
}

// end writes the end member and the tar footer.
func (bs *batchStream) end(count int) {
	bs.start()
	raw, _ := json.Marshal(locality.BatchEnd{Count: count, Errors: bs.errors})
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: locality.BatchEndMember, Size: int64(len(raw)), Mode: 0o644, ModTime: time.Unix(0, 0)}
	if err := bs.tw.WriteHeader(hdr); err != nil {
		bs.failed(err)
		return
	}
	if _, err := bs.tw.Write(raw); err != nil {
		bs.failed(err)
		return
	}
	if err := bs.tw.Close(); err != nil {
		bs.failed(err)
		return
	}
	if err := bs.bw.Flush(); err != nil {
		bs.failed(err)
	}
}

// failed ends a batch that err stopped: before the status, with the usual
// error response; after it, by flushing what is whole and setting the
// trailers Insitu-Error-Code and Insitu-Error-Message, with no end member
// (so the client cannot take the stream for whole). A client that is gone
// gets nothing.
func (bs *batchStream) failed(err error) {
	var bf *batchFailed
	if errors.As(err, &bf) {
		err = batchError(bf.index, bf.name, bf.err)
	}
	if bs.r.Context().Err() != nil {
		bs.n.log.Debug("batch stopped: the client went away", "err", err)
		return
	}
	if !bs.started {
		bs.n.writeError(bs.w, bs.r, err)
		return
	}
	if bw, ok := bs.w.(*boundedWriter); ok && bw.ex.cutErr != nil {
		return // the client stopped reading: the connection is closed
	}
	_ = bs.bw.Flush()
	b := wire.Body(err)
	h := bs.w.Header()
	h.Set(wire.ErrorCode, b.Code.String())
	h.Set(wire.ErrorMessage, url.PathEscape(bs.n.scrub(b.Message)))
	bs.n.log.Warn("batch failed after its first byte", "code", b.Code.String(), "err", err)
}

// close releases the spool file.
func (bs *batchStream) close() {
	if bs.spoolFile != nil {
		bs.spoolFile.Close()
	}
}

// modTime returns the modification time in an object's version,
// "<size>-<ns>", or the Unix epoch when it has none.
func modTime(version string) time.Time {
	if _, ns, ok := strings.Cut(version, "-"); ok {
		if v, err := strconv.ParseInt(ns, 10, 64); err == nil {
			return time.Unix(0, v)
		}
	}
	return time.Unix(0, 0)
}

// ustarBlock makes the ustar headers of a batch's object members, the
// same bytes as archive/tar's Writer.WriteHeader writes for a
// tar.Header{Typeflag: tar.TypeReg, Name, Size, Mode: 0o644, ModTime} with
// no PAX records, without its checks, copies and formatting.
type ustarBlock struct {
	blk   [tarBlock]byte
	sum   int64 // the checksum of blk's fixed fields
	ready bool
	zeros [tarBlock]byte
}

// tarBlock is the size of a tar block.
const tarBlock = 512

// tarPadding returns how many zero bytes follow a member of size bytes.
func tarPadding(size int64) int64 { return -size & (tarBlock - 1) }

// The fields of a ustar header: offset and length.
const (
	ustarName, ustarNameLen   = 0, 100
	ustarSize, ustarSizeLen   = 124, 12
	ustarMtime, ustarMtimeLen = 136, 12
	ustarSum, ustarSumLen     = 148, 8
)

// header returns the header of name's member, of size bytes, modified at
// mtime (rounded to the second, as archive/tar does), and true; or false
// when ustar does not hold it (a name of more than 100 bytes or not ASCII,
// a size or time out of its octal fields): archive/tar then writes it, in
// pax or with ustar's prefix field. The block is valid until the next call.
func (u *ustarBlock) header(name insitu.Name, size int64, mtime time.Time) ([]byte, bool) {
	n := len(name.Bucket) + 1 + len(name.Key)
	secs := mtime.Round(time.Second).Unix()
	if mtime.IsZero() {
		secs = 0
	}
	if n > ustarNameLen || size < 0 || size >= 1<<33 || secs < 0 || secs >= 1<<33 || !plainASCII(name.Bucket) || !plainASCII(name.Key) {
		return nil, false
	}
	b := &u.blk
	if !u.ready {
		u.fixed()
	}
	clear(b[ustarName : ustarName+ustarNameLen])
	copy(b[ustarName:], name.Bucket)
	b[ustarName+len(name.Bucket)] = '/'
	copy(b[ustarName+len(name.Bucket)+1:], name.Key)
	octal(b[ustarSize:ustarSize+ustarSizeLen-1], size)
	octal(b[ustarMtime:ustarMtime+ustarMtimeLen-1], secs)
	sum := u.sum
	for _, c := range b[ustarName : ustarName+n] {
		sum += int64(c)
	}
	for _, c := range b[ustarSize : ustarMtime+ustarMtimeLen] {
		sum += int64(c)
	}
	octal(b[ustarSum:ustarSum+6], sum)
	return b[:], true
}

// fixed fills the fields that every header of a batch's object has, and
// their checksum: the checksum field counts as spaces, the name, size
// and time as zeros (header adds theirs).
func (u *ustarBlock) fixed() {
	b := &u.blk
	copy(b[100:], "0000644\x00") // mode
	copy(b[108:], "0000000\x00") // uid
	copy(b[116:], "0000000\x00") // gid
	b[156] = tar.TypeReg
	copy(b[257:], "ustar\x0000") // magic and version
	copy(b[329:], "0000000\x00") // devmajor
	copy(b[337:], "0000000\x00") // devminor
	b[ustarSize+ustarSizeLen-1] = 0
	b[ustarMtime+ustarMtimeLen-1] = 0
	b[ustarSum+6], b[ustarSum+7] = 0, ' '
	u.sum = 8 * ' ' // the checksum field
	for i, c := range b {
		if i < ustarSum || i >= ustarSum+ustarSumLen {
			u.sum += int64(c)
		}
	}
	u.ready = true
}

// octal writes x into b as len(b) octal digits, leading zeros included.
func octal(b []byte, x int64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + x&7)
		x >>= 3
	}
}

// plainASCII reports whether s is ASCII without NUL.
func plainASCII(s string) bool {
	for i := range len(s) {
		if c := s[i]; c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}
