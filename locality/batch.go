package locality

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// The wire format of a batch GET (POST /v1/batch; docs/PROTOCOL.md,
// "Batch GET").
const (
	// MaxBatchNames is the most objects one batch request names, and
	// the most one [Client.BatchGet] takes.
	MaxBatchNames = 100_000
	// MaxBatchBody is the largest JSON body of a batch request, in bytes.
	MaxBatchBody = 16 << 20
	// BatchContentType is the media type of a batch's answer: a tar
	// stream.
	BatchContentType = "application/x-tar"
	// BatchEndMember is the name of the last member of a whole batch
	// stream, whose body is a [BatchEnd]. An object's member is named
	// "<bucket>/<key>", so no object has this name.
	BatchEndMember = ".insitu-batch-end"
	// BatchErrorRecord is the PAX record that marks an error member: its
	// value is the error's code, and the member's body the JSON error
	// body {"code","message"} that an error response has.
	BatchErrorRecord = "INSITU.error"
	// BatchOriginRecord is the PAX record that carries the origin recorded
	// with an object (see [insitu.OriginSink]), when it has one.
	BatchOriginRecord = "INSITU.origin"
	// OnErrorEntry and OnErrorFail are what a batch does with an object
	// that cannot be read: an error member in its place (the default), or
	// the end of the batch.
	OnErrorEntry = "entry"
	OnErrorFail  = "fail"
)

// BatchRequest is the JSON body of a batch GET (POST /v1/batch).
type BatchRequest struct {
	// Objects are the objects to read, in the order of the answer's
	// members; a name may come more than once.
	Objects []insitu.Name `json:"objects"`
	// Transform is a chain of the node's transforms, "a,b,c", that every
	// object is read through (as GET ?transform= does); "" for the bytes
	// as stored.
	Transform string `json:"transform,omitempty"`
	// Args go to every stage of Transform.
	Args string `json:"args,omitempty"`
	// OnError is OnErrorEntry ("" too) or OnErrorFail.
	OnError string `json:"on_error,omitempty"`
}

// BatchEnd is the body of a batch stream's end member.
type BatchEnd struct {
	// Count is the number of object members before it (error members
	// included): the number of names of the request.
	Count int `json:"count"`
	// Errors is the number of error members among them.
	Errors int `json:"errors"`
}

// Defaults of [BatchGetOptions].
const (
	// DefaultBatchWindow is BatchGetOptions.Window's default.
	DefaultBatchWindow = 256
	// DefaultBatchBuffer is BatchGetOptions.BufferBytes's default: 4 MiB.
	DefaultBatchBuffer = 4 << 20
)

// BatchGetOptions configure [Client.BatchGet]. A nil *BatchGetOptions
// means every default; so does the zero value of each field.
type BatchGetOptions struct {
	// Transform is a chain of transforms, "a,b,c", known by name on the
	// owners, that every object is read through next to its data; its
	// output is what an entry's Body reads. Default "": the bytes as
	// stored.
	Transform string
	// Args go to every stage of Transform.
	Args string
	// OnError is what an object that cannot be read does: OnErrorEntry
	// (the default) yields an error for it and goes on; OnErrorFail
	// yields its error as the last thing of the iteration.
	OnError string
	// Window is how many entries the client reads ahead of the caller
	// from each owner. Default (0): DefaultBatchWindow.
	Window int
	// BufferBytes bounds the bytes of the entries read ahead from each
	// owner. An entry larger than it is not read ahead: its Body reads
	// the owner's stream itself, which waits for the caller meanwhile.
	// Default (0): DefaultBatchBuffer.
	BufferBytes int64
}

// BatchEntry is one object of a batch GET.
type BatchEntry struct {
	// Index is the object's position in the names given to BatchGet.
	Index int
	// Object is the object's name, the size of what Body reads (the
	// transform's output when there is one), its owner and its Origin
	// ("" for none). On an error, only the name is set. The size is -1
	// when unknown: an object that was not where the client's map put
	// it is read alone, and a large transformed output then comes
	// without its size.
	Object insitu.Object
	// Body reads the object's bytes. It is nil on an error, and may be
	// read only until the loop's body returns: then the iteration moves
	// on and discards what the caller did not read. The caller does not
	// close it.
	Body io.Reader
}

// BatchGet reads the objects names, in order, in a few requests: it
// splits them by owner under the client's map, reads each owner's part as
// one stream (POST /v1/batch, docs/PROTOCOL.md), all owners at once, and
// yields the entries in the order of names (duplicates included):
//
//	for e, err := range client.BatchGet(ctx, names, nil) {
//		if err != nil {
//			if e == nil {
//				return err // the batch failed
//			}
//			log.Print(err) // e.Object.Name could not be read
//			continue
//		}
//		io.Copy(dst, e.Body)
//	}
//
// An error about one object (missing, not owned under the owner's map, a
// transform that failed on it, an owner that cannot be reached or whose
// stream broke: Unavailable) comes with an entry that names it; with
// OnError OnErrorEntry the iteration goes on, with OnErrorFail it ends
// there, after the entries before it. An error about the batch (bad
// options or names, more than MaxBatchNames, an unknown transform, a
// refused token, ctx done) comes with a nil entry and ends the
// iteration. Leaving the loop early stops the requests and every
// goroutine of the call before the loop's statement returns.
//
// Memory is bounded: per owner, at most Window entries and BufferBytes
// bytes are read ahead of the caller; an entry larger than BufferBytes
// streams (its owner's stream waits for the caller meanwhile, so the owner
// may cut it off after its ProgressTimeout). A part of more than
// MaxBatchBody bytes of JSON is sent in several requests. A batch GET
// needs the administrative token (the client's secret makes one). An
// object whose node answers not_owner (the client's map, or the node's,
// is stale) is read alone with [Client.Get] (or [Client.GetTransformed]),
// which brings the maps in line, in its place.
func (c *Client) BatchGet(ctx context.Context, names []insitu.Name, opts *BatchGetOptions) iter.Seq2[*BatchEntry, error] {
	return func(yield func(*BatchEntry, error) bool) {
		o, err := batchOptions(opts)
		if err == nil {
			err = checkBatchNames(names)
		}
		if err != nil {
			yield(nil, err)
			return
		}
		if len(names) == 0 {
			return
		}
		m := c.Map()
		partOf := make([]int32, len(names))
		byID := map[string]int{}
		var parts []*batchPart
		for i, name := range names {
			owner := m.Owner(name)
			k, ok := byID[owner.ID]
			if !ok {
				k = len(parts)
				byID[owner.ID] = k
				parts = append(parts, &batchPart{c: c, node: owner, o: &o, names: names,
					ch: make(chan batchItem, o.Window), budget: budget{free: o.BufferBytes, wake: make(chan struct{}, 1)}})
			}
			parts[k].idx = append(parts[k].idx, i)
			partOf[i] = int32(k)
		}
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		for _, p := range parts {
			wg.Go(func() { p.run(ctx) })
		}
		for i, name := range names {
			p := parts[partOf[i]]
			var it batchItem
			select {
			case it = <-p.ch:
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
			switch {
			case it.fatal:
				yield(nil, it.err)
				return
			case it.idx != i:
				yield(nil, insitu.Errorf(insitu.Internal, "locality: batch: entry %d where %d was due", it.idx, i))
				return
			case errors.Is(it.err, insitu.NotOwner):
				// The client's map is stale, or the owner's: read the
				// object alone, which brings the maps in line.
				more, err := c.batchGetOne(ctx, i, name, &o, yield)
				if !more {
					return
				}
				if err == nil {
					continue
				}
				it.err = err
				fallthrough
			case it.err != nil:
				if !yield(&BatchEntry{Index: i, Object: insitu.Object{Name: name}}, it.err) || o.OnError == OnErrorFail {
					return
				}
				continue
			}
			e := &BatchEntry{Index: i, Object: it.obj}
			if it.live != nil {
				e.Body = it.live
			} else {
				e.Body = bytes.NewReader(it.data)
			}
			more := yield(e, nil)
			if it.live != nil {
				it.live.finish()
				close(it.done)
			} else {
				p.budget.release(int64(len(it.data)))
			}
			if !more {
				return
			}
		}
	}
}

// batchGetOne reads names[i] = name alone, with Get or GetTransformed,
// whose NotOwner handling brings the maps in line, and yields its entry.
// It returns whether to go on, and the error of the read, not yielded.
func (c *Client) batchGetOne(ctx context.Context, i int, name insitu.Name, o *BatchGetOptions, yield func(*BatchEntry, error) bool) (bool, error) {
	var (
		rc  io.ReadCloser
		obj insitu.Object
		err error
	)
	if o.Transform == "" {
		rc, obj, err = c.Get(ctx, name)
	} else {
		rc, obj, err = c.GetTransformed(ctx, name, strings.Split(o.Transform, ","), o.Args)
	}
	if err != nil {
		return true, err
	}
	defer rc.Close()
	return yield(&BatchEntry{Index: i, Object: obj, Body: rc}, nil), nil
}

// batchOptions returns opts with the defaults filled in, or an
// InvalidArgument error.
func batchOptions(opts *BatchGetOptions) (BatchGetOptions, error) {
	var o BatchGetOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.OnError == "":
		o.OnError = OnErrorEntry
	case o.OnError != OnErrorEntry && o.OnError != OnErrorFail:
		return o, insitu.Errorf(insitu.InvalidArgument, "locality: BatchGet: OnError %q; want %q or %q", o.OnError, OnErrorEntry, OnErrorFail)
	}
	switch {
	case o.Window < 0 || o.BufferBytes < 0:
		return o, insitu.Errorf(insitu.InvalidArgument, "locality: BatchGet: negative Window or BufferBytes")
	case o.Transform == "" && o.Args != "":
		return o, insitu.Errorf(insitu.InvalidArgument, "locality: BatchGet: Args without a Transform")
	}
	if o.Window == 0 {
		o.Window = DefaultBatchWindow
	}
	if o.BufferBytes == 0 {
		o.BufferBytes = DefaultBatchBuffer
	}
	return o, nil
}

// checkBatchNames refuses a batch of more than MaxBatchNames names, or
// with a name a node cannot store.
func checkBatchNames(names []insitu.Name) error {
	if len(names) > MaxBatchNames {
		return insitu.Errorf(insitu.InvalidArgument, "locality: BatchGet: %d names; at most %d in one batch", len(names), MaxBatchNames)
	}
	for i, name := range names {
		if err := checkName(name); err != nil {
			return insitu.Errorf(insitu.InvalidArgument, "locality: BatchGet: names[%d]: %w", i, err)
		}
	}
	return nil
}

// batchItem is what a part hands the merge for one index: the bytes read
// ahead (data), or a body that reads the stream (live, with done closed
// by the merge once the caller is past it), or the object's error; or,
// fatal, the error that ends the batch.
type batchItem struct {
	idx   int
	obj   insitu.Object
	data  []byte
	live  *liveBody
	done  chan struct{}
	err   error
	fatal bool
}

// batchPart reads the entries of one owner.
type batchPart struct {
	c      *Client
	node   Node
	o      *BatchGetOptions
	names  []insitu.Name
	idx    []int // the indexes of names that this part reads, ascending
	ch     chan batchItem
	budget budget
}

// run reads the part's entries, a request at a time, and hands them to
// the merge in order, one item per index, until it has handed them all,
// a fatal error, or ctx is done.
func (p *batchPart) run(ctx context.Context) {
	done := 0
	for done < len(p.idx) {
		k := p.chunk(done)
		sent, err := p.request(ctx, p.idx[done:done+k])
		done += sent
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			p.send(ctx, batchItem{fatal: true, err: fe.err})
			return
		}
		// The node is down, refused the request as unavailable, or its
		// stream broke: the rest of the part fails, entry by entry.
		for j, i := range p.idx[done:] {
			e := err
			if j > 0 && insitu.CodeOf(err) != insitu.Unavailable {
				e = &insitu.Error{Code: insitu.Unavailable, Msg: "node " + p.node.ID + ": the batch stream ended before this object: " + err.Error()}
			}
			if !p.send(ctx, batchItem{idx: i, err: insitu.WithName(e, p.names[i])}) {
				return
			}
		}
		return
	}
}

// fatalError is an error that ends the batch rather than an entry.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// send hands it to the merge, and reports whether ctx was still going.
func (p *batchPart) send(ctx context.Context, it batchItem) bool {
	select {
	case p.ch <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// chunk returns how many of the part's names from position from go in one
// request: at most MaxBatchNames, in at most MaxBatchBody bytes of JSON.
func (p *batchPart) chunk(from int) int {
	size := 128 + jsonLen(p.o.Transform) + jsonLen(p.o.Args)
	k := 0
	for _, i := range p.idx[from:] {
		n := p.names[i]
		size += 24 + jsonLen(n.Bucket) + jsonLen(n.Key)
		if k == MaxBatchNames || (k > 0 && size > MaxBatchBody) {
			break
		}
		k++
	}
	return k
}

// jsonLen bounds the length of s as a JSON string's contents.
func jsonLen(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
			n += 6
		case r == '"' || r == '\\':
			n += 2
		default:
			n += utf8.RuneLen(r)
		}
	}
	return n
}

// request reads the entries of the names at idx in one request, and
// returns how many items it handed the merge, and what stopped it.
func (p *batchPart) request(ctx context.Context, idx []int) (int, error) {
	objs := make([]insitu.Name, len(idx))
	for j, i := range idx {
		objs[j] = p.names[i]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(BatchRequest{Objects: objs, Transform: p.o.Transform, Args: p.o.Args, OnError: OnErrorEntry}); err != nil {
		return 0, &fatalError{insitu.Errorf(insitu.InvalidArgument, "locality: BatchGet: encoding the request: %w", err)}
	}
	objs = nil
	req, err := p.c.newRequest(ctx, http.MethodPost, strings.TrimSuffix(p.node.URL, "/")+"/v1/batch", &buf)
	if err != nil {
		return 0, &fatalError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", BatchContentType)
	resp, err := p.c.do(ctx, req, p.node.ID, insitu.Name{})
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		_, err := responseError(resp, p.node.ID, insitu.Name{})
		if c := insitu.CodeOf(err); c != insitu.Unavailable && c != insitu.DeadlineExceeded {
			err = &fatalError{err}
		}
		return 0, err
	}
	defer resp.Body.Close()
	owner := resp.Header.Get(wire.Owner)
	if owner == "" {
		owner = p.node.ID
	}
	tr := newTarReader(resp.Body)
	sent := 0
	for sent < len(idx) {
		i := idx[sent]
		name := p.names[i]
		hdr, err := tr.next()
		if err != nil {
			return sent, p.cut(ctx, resp, err)
		}
		if !hdr.is(name) {
			return sent, &fatalError{insitu.Errorf(insitu.Internal, "node %s: batch member %d is %q, not %q", p.node.ID, sent, hdr.name(), name)}
		}
		if code := hdr.pax[BatchErrorRecord]; code != "" {
			raw, err := io.ReadAll(io.LimitReader(tr, wire.MaxErrorBody))
			if err != nil {
				return sent, p.cut(ctx, resp, err)
			}
			var b wire.ErrorBody
			if json.Unmarshal(raw, &b) != nil || b.Message == "" {
				b = wire.ErrorBody{Code: insitu.ParseCode(code), Message: strings.TrimSpace(string(raw))}
			}
			if !p.send(ctx, batchItem{idx: i, err: &insitu.Error{Code: b.Code, Name: name, Msg: "node " + p.node.ID + ": " + b.Message}}) {
				return sent, ctx.Err()
			}
			sent++
			continue
		}
		obj := insitu.Object{Name: name, Size: hdr.size, Owner: owner}
		if o := hdr.pax[BatchOriginRecord]; o != "" {
			if _, err := insitu.ParseOrigin(o); err == nil {
				obj.Origin = o
			}
		}
		if hdr.size > p.o.BufferBytes {
			lb := &liveBody{ctx: ctx, r: tr, name: name, node: p.node.ID}
			done := make(chan struct{})
			if !p.send(ctx, batchItem{idx: i, obj: obj, live: lb, done: done}) {
				return sent, ctx.Err()
			}
			sent++
			select {
			case <-done:
			case <-ctx.Done():
				return sent, ctx.Err()
			}
			continue
		}
		if err := p.budget.acquire(ctx, hdr.size); err != nil {
			return sent, err
		}
		data := make([]byte, hdr.size)
		if _, err := io.ReadFull(tr, data); err != nil {
			p.budget.release(hdr.size)
			return sent, p.cut(ctx, resp, err)
		}
		if !p.send(ctx, batchItem{idx: i, obj: obj, data: data}) {
			return sent, ctx.Err()
		}
		sent++
	}
	// The end member and the tar footer: read, so that the connection
	// can serve the next request. Every entry is whole already (each
	// member had its size).
	for {
		if _, err := tr.next(); err != nil {
			break
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return sent, nil
}

// cut returns the error of a batch stream that broke with err: the error
// of the trailers Insitu-Error-Code and Insitu-Error-Message when the
// node sent them, else Unavailable.
func (p *batchPart) cut(ctx context.Context, resp *http.Response, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
		// What is left of the body, and then the trailers.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		if code := resp.Trailer.Get(wire.ErrorCode); code != "" {
			msg, _ := url.PathUnescape(resp.Trailer.Get(wire.ErrorMessage))
			return &insitu.Error{Code: insitu.ParseCode(code), Msg: "node " + p.node.ID + ": " + msg}
		}
	}
	return &insitu.Error{Code: insitu.Unavailable, Msg: "node " + p.node.ID + ": the batch stream broke", Err: err}
}

// liveBody is the Body of an entry that is not read ahead: it reads the
// owner's stream, until the merge moves past the entry.
type liveBody struct {
	ctx  context.Context
	r    io.Reader
	name insitu.Name
	node string
	mu   sync.Mutex
	over bool
}

var errBatchMovedOn = errors.New("locality: a batch entry's Body read after the iteration moved past it")

func (b *liveBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return 0, errBatchMovedOn
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if cerr := b.ctx.Err(); cerr != nil {
			return n, cerr
		}
		return n, &insitu.Error{Code: insitu.Unavailable, Name: b.name, Msg: "node " + b.node + ": reading the object in the batch stream", Err: err}
	}
	return n, err
}

// finish ends the body's use.
func (b *liveBody) finish() {
	b.mu.Lock()
	b.over = true
	b.mu.Unlock()
}

// budget counts the bytes a part may still read ahead. One goroutine (the
// part's) acquires; the merge releases.
type budget struct {
	mu   sync.Mutex
	free int64
	wake chan struct{} // capacity 1: a release since the last wait
}

// acquire takes n bytes, waiting for releases as needed.
func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives n bytes back.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// tarReader reads a batch's tar stream. It parses a ustar header of a
// regular file itself, and hands any other header (pax, GNU, a base-256
// size) to archive/tar, which reads that one member. Like archive/tar, it
// reads no more of the stream than the members it is asked for (the HTTP
// client's buffer is the only one).
type tarReader struct {
	r    io.Reader
	blk  [tarBlock]byte
	cur  io.Reader // the current member's bytes: r, or a tar.Reader
	left int64     // bytes of the current member not yet read
	pad  int64     // zero bytes after them
	hdr  tarHeader
}

// tarHeader is what a batch's client needs of a member's header.
type tarHeader struct {
	raw  []byte            // the name as a ustar header has it (prefix, name); or
	full string            // the name archive/tar read
	pre  []byte            // ustar's prefix field, "" for none
	size int64             // the member's size
	pax  map[string]string // its pax records, nil for none
}

// tarBlock is the size of a tar block.
const tarBlock = 512

func newTarReader(r io.Reader) *tarReader {
	return &tarReader{r: r}
}

// is reports whether the member is name's: "<bucket>/<key>".
func (h *tarHeader) is(name insitu.Name) bool {
	if h.raw == nil || len(h.pre) > 0 {
		return h.name() == name.Bucket+"/"+name.Key
	}
	b := len(name.Bucket)
	return len(h.raw) == b+1+len(name.Key) && string(h.raw[:b]) == name.Bucket && h.raw[b] == '/' && string(h.raw[b+1:]) == name.Key
}

// name returns the member's name.
func (h *tarHeader) name() string {
	if h.raw == nil {
		return h.full
	}
	if len(h.pre) > 0 {
		return string(h.pre) + "/" + string(h.raw)
	}
	return string(h.raw)
}

// next skips what is left of the current member and reads the next
// header. The header it returns is valid until the next call. The end of
// the archive is io.EOF; a cut stream io.ErrUnexpectedEOF (or io.EOF
// before any header), a bad header tar.ErrHeader.
func (t *tarReader) next() (*tarHeader, error) {
	if t.left+t.pad > 0 {
		if _, err := io.CopyN(io.Discard, t, t.left); err != nil {
			return nil, unexpected(err)
		}
		if _, err := io.ReadFull(t.r, t.blk[:t.pad]); err != nil {
			return nil, unexpected(err)
		}
		t.left, t.pad = 0, 0
	}
	if _, err := io.ReadFull(t.r, t.blk[:]); err != nil {
		return nil, err
	}
	b := &t.blk
	if b[0] == 0 && allZero(b[:]) {
		return nil, io.EOF // the footer
	}
	if string(b[257:265]) != "ustar\x0000" || b[156] != tar.TypeReg || b[124]&0x80 != 0 || !ustarChecksum(b) {
		return t.slow()
	}
	size, ok := octalField(b[124:136])
	if !ok {
		return t.slow()
	}
	t.hdr = tarHeader{raw: cstring(b[0:100]), pre: cstring(b[345:500]), size: size}
	t.cur, t.left, t.pad = t.r, size, -size&(tarBlock-1)
	return &t.hdr, nil
}

// slow reads the member whose header is in t.blk with archive/tar, which
// reads no further than the member's bytes (their padding is left to
// next).
func (t *tarReader) slow() (*tarHeader, error) {
	tr := tar.NewReader(io.MultiReader(bytes.NewReader(t.blk[:]), t.r))
	hdr, err := tr.Next()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: member %q is not a regular file", tar.ErrHeader, hdr.Name)
	}
	t.hdr = tarHeader{full: hdr.Name, size: hdr.Size, pax: hdr.PAXRecords}
	t.cur, t.left, t.pad = tr, hdr.Size, -hdr.Size&(tarBlock-1)
	return &t.hdr, nil
}

// Read reads the current member's bytes.
func (t *tarReader) Read(p []byte) (int, error) {
	if t.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.cur.Read(p)
	t.left -= int64(n)
	if err == io.EOF {
		if t.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// unexpected turns the io.EOF of a stream cut within a member into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ustarChecksum reports whether b's checksum field holds the sum of its
// bytes (the field counting as spaces), as unsigned bytes.
func ustarChecksum(b *[tarBlock]byte) bool {
	want, ok := octalField(b[148:156])
	if !ok {
		return false
	}
	var sum int64 = 8 * ' '
	for _, c := range b[:148] {
		sum += int64(c)
	}
	for _, c := range b[156:] {
		sum += int64(c)
	}
	return sum == want
}

// octalField parses a numeric field of octal digits, with optional
// leading and trailing spaces and NULs, as archive/tar does for the
// fields written in octal.
func octalField(b []byte) (int64, bool) {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && (b[0] == ' ' || b[0] == 0) {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, true
	}
	var x int64
	for _, c := range b {
		if c < '0' || c > '7' || x >= 1<<60 {
			return 0, false
		}
		x = x<<3 | int64(c-'0')
	}
	return x, true
}

// cstring returns b up to its first NUL.
func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// allZero reports whether every byte of b is 0.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
