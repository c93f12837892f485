package transport

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
)

// frameConn sends whole frames (header and payload) on a connection.
type frameConn interface {
	send(frame []byte) error
	sendCredit(id uint32, n uint32)
}

// inbox holds the DATA a request received and its consumer has not read
// yet. Its sender respects the window, so it never holds more than window
// bytes; as the consumer reads, the inbox grants the sender more with
// CREDIT frames.
type inbox struct {
	ctx    context.Context // the consumer's
	conn   frameConn
	id     uint32
	window int
	idle   time.Duration // the longest wait for more bytes; 0: no limit
	timer  *time.Timer   // for idle, used by the consumer only

	mu        sync.Mutex
	bufs      []*frameBuf
	off       int // bytes of bufs[0]'s payload already read
	size      int // bytes buffered
	err       error
	ended     bool // the last DATA arrived: no credit to grant any more
	discarded bool
	unacked   int // bytes read and not yet credited back
	wake      chan struct{}
}

// newInbox returns the inbox of request id, whose consumer reads with ctx;
// a wait for more bytes longer than idle (0: no limit) fails with
// DeadlineExceeded.
func newInbox(ctx context.Context, conn frameConn, id uint32, window int, idle time.Duration) *inbox {
	return &inbox{ctx: ctx, conn: conn, id: id, window: window, idle: idle, wake: make(chan struct{}, 1)}
}

// wait waits for a signal: bytes, the end, or a failure.
func (q *inbox) wait() error {
	if q.idle <= 0 {
		select {
		case <-q.wake:
			return nil
		case <-q.ctx.Done():
			return q.ctx.Err()
		}
	}
	if q.timer == nil {
		q.timer = time.NewTimer(q.idle)
	} else {
		q.timer.Reset(q.idle)
	}
	defer q.timer.Stop()
	select {
	case <-q.wake:
		return nil
	case <-q.ctx.Done():
		return q.ctx.Err()
	case <-q.timer.C:
		return insitu.Errorf(insitu.DeadlineExceeded, "no input from the client for %v", q.idle)
	}
}

// ready waits until n bytes are buffered or the input ended (a clean end
// is no error), each wait bounded as the reads are.
func (q *inbox) ready(n int) error {
	for {
		q.mu.Lock()
		size, err := q.size, q.err
		q.mu.Unlock()
		switch {
		case err == io.EOF, err == nil && size >= n:
			return nil
		case err != nil:
			return err
		}
		if err := q.wait(); err != nil {
			return err
		}
	}
}

func (q *inbox) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// coalesceBelow is the payload size under which a DATA frame is copied
// into the inbox's last buffer when it fits there.
const coalesceBelow = 4 << 10

// push adds the payload of a DATA frame; it takes f. It fails when the
// sender overran the window or sent DATA after its last.
func (q *inbox) push(f *frameBuf, end bool) error {
	n := len(f.payload())
	q.mu.Lock()
	switch {
	case q.ended:
		q.mu.Unlock()
		putFrame(f)
		return protoErrorf("DATA for request %d after its last DATA frame", q.id)
	case q.discarded || q.err != nil:
		q.ended = q.ended || end
		q.mu.Unlock()
		putFrame(f)
		return nil
	case q.size+n > q.window:
		q.mu.Unlock()
		putFrame(f)
		return protoErrorf("DATA for request %d overruns its flow-control window of %d bytes", q.id, q.window)
	}
	switch tail := len(q.bufs) - 1; {
	case n == 0:
		putFrame(f)
	case n < coalesceBelow && tail >= 1 && cap(q.bufs[tail].b)-len(q.bufs[tail].b) >= n:
		// A small frame joins the last one buffered, so that a peer
		// sending tiny frames cannot make each hold a whole buffer. Not
		// the first one: the consumer reads it without the lock.
		t := q.bufs[tail]
		t.b = append(t.b, f.payload()...)
		q.size += n
		putFrame(f)
	default:
		q.bufs = append(q.bufs, f)
		q.size += n
	}
	if end {
		q.ended = true
		q.err = io.EOF
	}
	q.mu.Unlock()
	q.signal()
	return nil
}

// close ends the inbox: after the bytes buffered, reads return err (io.EOF
// for a clean end). It does nothing once the inbox has ended.
func (q *inbox) close(err error) {
	q.mu.Lock()
	if !q.ended && q.err == nil {
		q.err = err
	}
	q.ended = true
	q.mu.Unlock()
	q.signal()
}

// fail ends the inbox with err unless its last DATA already arrived.
func (q *inbox) fail(err error) {
	q.mu.Lock()
	if !q.ended && q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.signal()
}

// discard drops what is buffered and what arrives later. The consumer
// calls it when it is done.
func (q *inbox) discard() {
	q.mu.Lock()
	bufs := q.bufs
	q.bufs, q.size, q.off, q.discarded = nil, 0, 0, true
	if q.err == nil {
		q.err = io.ErrClosedPipe
	}
	q.mu.Unlock()
	for _, f := range bufs {
		putFrame(f)
	}
}

// next waits for buffered bytes or the end.
func (q *inbox) next() (*frameBuf, int, error) {
	for {
		q.mu.Lock()
		if q.size > 0 {
			f, off := q.bufs[0], q.off
			q.mu.Unlock()
			return f, off, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return nil, 0, err
		}
		if err := q.wait(); err != nil {
			return nil, 0, err
		}
	}
}

// consumed records that n bytes of bufs[0] were read, and grants credit
// once half a window was read.
func (q *inbox) consumed(n int) {
	q.mu.Lock()
	if q.discarded {
		q.mu.Unlock()
		return
	}
	q.off += n
	q.size -= n
	var done *frameBuf
	if q.off == len(q.bufs[0].payload()) {
		done = q.bufs[0]
		q.bufs[0] = nil
		q.bufs = q.bufs[1:]
		q.off = 0
	}
	q.unacked += n
	grant := 0
	if !q.ended && q.unacked >= q.window/2 {
		grant, q.unacked = q.unacked, 0
	}
	q.mu.Unlock()
	putFrame(done)
	if grant > 0 {
		q.conn.sendCredit(q.id, uint32(grant))
	}
}

// Read reads buffered bytes, waiting for them with the consumer's context.
func (q *inbox) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f, off, err := q.next()
	if err != nil {
		return 0, err
	}
	n := copy(p, f.payload()[off:])
	q.consumed(n)
	return n, nil
}

// WriteTo writes the bytes to w as they arrive, without copying them, until
// the end: io.EOF gives a nil error.
func (q *inbox) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		f, off, err := q.next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write(f.payload()[off:])
		total += int64(n)
		q.consumed(n)
		if err != nil {
			return total, &outputError{err}
		}
	}
}

// outputError is an error of the writer given to inbox.WriteTo.
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// sendWindow is the credit a sender has: how many more bytes the receiver
// takes for one request.
type sendWindow struct {
	idle  time.Duration // the longest wait for credit; 0: no limit
	mu    sync.Mutex
	avail int64
	err   error
	wake  chan struct{}
}

// newSendWindow returns a window of initial bytes of credit; a wait for
// more longer than idle (0: no limit) fails with DeadlineExceeded.
func newSendWindow(initial int, idle time.Duration) *sendWindow {
	return &sendWindow{avail: int64(initial), idle: idle, wake: make(chan struct{}, 1)}
}

func (w *sendWindow) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// add grants n more bytes.
func (w *sendWindow) add(n uint32) {
	w.mu.Lock()
	if w.avail < 1<<40 { // a peer flooding credits cannot overflow it
		w.avail += int64(n)
	}
	w.mu.Unlock()
	w.signal()
}

// close makes take fail with err from now on.
func (w *sendWindow) close(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.signal()
}

// take waits for credit and takes up to want bytes of it.
func (w *sendWindow) take(ctx context.Context, want int) (int, error) {
	for {
		w.mu.Lock()
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return 0, err
		}
		if w.avail > 0 {
			k := int(min(int64(want), w.avail))
			w.avail -= int64(k)
			w.mu.Unlock()
			return k, nil
		}
		w.mu.Unlock()
		if err := w.wait(ctx); err != nil {
			return 0, err
		}
	}
}

func (w *sendWindow) wait(ctx context.Context) error {
	var stalled <-chan time.Time
	if w.idle > 0 {
		t := time.NewTimer(w.idle)
		defer t.Stop()
		stalled = t.C
	}
	select {
	case <-w.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stalled:
		return insitu.Errorf(insitu.DeadlineExceeded, "the client granted no credit for %v (it does not take the output)", w.idle)
	}
}

// frameSender turns a stream of bytes into DATA frames of one request,
// each sent when the window allows. Its chunks are limit bytes (see
// chunkFor), the first one as large as the size hint when that is less
// (at most 64 KiB when there is no hint), the second one what is left to
// the next multiple of limit.
type frameSender struct {
	ctx   context.Context
	conn  frameConn
	id    uint32
	win   *sendWindow
	limit int       // the chunk size: chunkFor(the peer's window)
	hint  int       // the expected size of the stream; 0: unknown
	f     *frameBuf // the pending chunk: payload bytes f.b[frameHeaderLen:frameHeaderLen+n]
	size  int       // the pending chunk's size
	n     int
	sent  int64 // bytes sent before the pending chunk

	carry    byte // a byte read ahead by atEOF, for the next chunk
	hasCarry bool
}

// chunkFor returns the chunk size for a peer with a receive window of
// window bytes: half the window, at most chunkSize. The first chunk then
// always fits the initial credit, and as the receiver grants credit half
// a window or more at a time, a chunk usually goes out as one frame.
func chunkFor(window int) int { return min(chunkSize, window/2) }

// firstChunk is the first chunk's size when the stream's size is unknown.
const firstChunk = 64 << 10

// buf returns the pending chunk's payload buffer, whole. After a short
// first chunk the next one ends at a multiple of limit, so that the later
// ones line up with the credit the receiver grants.
func (s *frameSender) buf() []byte {
	if s.f == nil {
		s.size = s.limit - int(s.sent%int64(s.limit))
		if s.sent == 0 {
			s.size = min(firstChunk, s.limit)
			if s.hint > 0 {
				s.size = min(s.hint, s.limit)
			}
		}
		s.f = getFrame(s.size)
	}
	return s.f.b[frameHeaderLen : frameHeaderLen+s.size]
}

// full reports whether the pending chunk is full.
func (s *frameSender) full() bool { return s.f != nil && s.n == s.size }

// Write sends p on, a chunk at a time. A full chunk waits for the next
// Write (or the final flush), so that the last chunk of an output can
// carry the END flag.
func (s *frameSender) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if s.full() {
			if err := s.flush(0, nil); err != nil {
				return written, err
			}
		}
		k := copy(s.buf()[s.n:], p)
		s.n += k
		p = p[k:]
		written += k
	}
	return written, nil
}

// fill reads r into the pending chunk until the chunk is full or r ends,
// and reports whether r ended.
func (s *frameSender) fill(r io.Reader) (eof bool, err error) {
	b := s.buf()
	if s.hasCarry && s.n < len(b) {
		b[s.n] = s.carry
		s.n++
		s.hasCarry = false
	}
	for s.n < len(b) {
		n, err := r.Read(b[s.n:])
		s.n += n
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// sendAll sends what r holds, size bytes when size >= 0, the last chunk
// with the END flag.
func (s *frameSender) sendAll(r io.Reader, size int64) error {
	for {
		eof, err := s.fill(r)
		if err != nil {
			return &readError{err}
		}
		if !eof && size >= 0 && s.sent+int64(s.n) == size {
			// All the bytes announced are in: make sure r ends, so that
			// this chunk can be the last.
			if eof, err = s.atEOF(r); err != nil {
				return &readError{err}
			}
		}
		if eof {
			return s.flush(flagEnd, nil)
		}
		if err := s.flush(0, nil); err != nil {
			return err
		}
	}
}

// atEOF reports whether r has ended; a byte it reads instead is kept for
// the next chunk.
func (s *frameSender) atEOF(r io.Reader) (bool, error) {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n == 1 {
			s.carry, s.hasCarry = one[0], true
			return false, nil
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// readError is an error of the input reader given to frameSender.sendAll.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// flush sends the pending bytes, in as many frames as the credit makes
// it, the last with flags. last, if not nil, runs just before the last
// frame is sent. A flush of no bytes sends one empty frame with flags.
func (s *frameSender) flush(flags uint8, last func()) error {
	if s.n == 0 && flags == 0 {
		return nil
	}
	if s.f == nil {
		s.f, s.size = getFrame(0), 0 // an empty last frame
	}
	off := 0
	for {
		rem := s.n - off
		k := rem
		if rem > 0 {
			var err error
			if k, err = s.win.take(s.ctx, rem); err != nil {
				return err
			}
		}
		var fl uint8
		if k == rem {
			fl = flags
			if last != nil {
				last()
			}
		}
		// The header goes just before this piece's payload, over bytes
		// that were sent already.
		frame := s.f.b[off : off+frameHeaderLen+k]
		putHeader(frame, frameHeader{typ: frameData, flags: fl, id: s.id, len: uint32(k)})
		if err := s.conn.send(frame); err != nil {
			return err
		}
		off += k
		s.sent += int64(k)
		if k == rem {
			break
		}
	}
	if s.n == s.size && s.size < s.limit {
		s.release() // the stream is longer than its first chunk: go on with full-size ones
	}
	s.n = 0
	return nil
}

// release returns the chunk buffer.
func (s *frameSender) release() {
	putFrame(s.f)
	s.f = nil
	s.n = 0
}
