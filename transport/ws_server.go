package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// parseWindow reads a window header; absent means defaultWindow.
func parseWindow(v string) (int, error) {
	if v == "" {
		return defaultWindow, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minWindow || n > maxWindow {
		return 0, insitu.Errorf(insitu.InvalidArgument, "header %s: %q is not a window between %d and %d bytes", wire.Window, v, minWindow, maxWindow)
	}
	return n, nil
}

// wsServerConn is the server's side of one WebSocket connection.
type wsServerConn struct {
	s          *Server
	c          *websocket.Conn
	ctx        context.Context
	cancel     context.CancelCauseFunc
	peerWindow int // the client's receive window: our output credit per request

	mu      sync.Mutex
	streams map[uint32]*wsStream
	wg      sync.WaitGroup

	lastFrame atomic.Int64 // when the last frame arrived, in Unix nanoseconds
	idle      *time.Timer  // closes the connection once idle for IdleTimeout
}

// wsStream is one request in flight on a connection.
type wsStream struct {
	id     uint32
	in     *inbox // nil when the input does not travel on the connection
	win    *sendWindow
	cancel context.CancelCauseFunc
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	peerWindow, err := parseWindow(r.Header.Get(wire.Window))
	if err != nil {
		wire.WriteError(w, err)
		return
	}
	if s.shuttingDown() {
		wire.WriteError(w, errShuttingDown)
		return
	}
	w.Header().Set(wire.Window, strconv.Itoa(s.opts.Window))
	w.Header().Set(wire.MaxStreams, strconv.Itoa(s.opts.MaxStreams))
	// The connection outlives the request: its deadlines (ours, or an
	// http.Server's) would end it. Each frame's write is bounded instead,
	// and an idle connection closed.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.log.Debug("transport: WebSocket upgrade failed", "err", err)
		return // Accept answered
	}
	c.SetReadLimit(frameHeaderLen + maxFramePayload)
	ctx, cancel := context.WithCancelCause(s.ctx)
	sc := &wsServerConn{s: s, c: c, ctx: ctx, cancel: cancel, peerWindow: peerWindow, streams: make(map[uint32]*wsStream)}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close(websocket.StatusGoingAway, "the transform server is shutting down")
		return
	}
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	sc.lastFrame.Store(time.Now().UnixNano())
	sc.idle = time.AfterFunc(time.Hour, sc.checkIdle) // set before it can fire
	sc.idle.Reset(s.opts.IdleTimeout)
	sc.serve()
	sc.idle.Stop()
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
}

// goAway closes the connection after a shutdown drained it.
func (sc *wsServerConn) goAway() {
	sc.c.Close(websocket.StatusGoingAway, "the transform server is shutting down")
	sc.cancel(errShuttingDown)
}

// checkIdle closes the connection if it carried no request and no frame
// for IdleTimeout, and else looks again when it could have.
func (sc *wsServerConn) checkIdle() {
	if sc.ctx.Err() != nil {
		return
	}
	d := sc.s.opts.IdleTimeout
	sc.mu.Lock()
	busy := len(sc.streams) > 0
	sc.mu.Unlock()
	quiet := time.Since(time.Unix(0, sc.lastFrame.Load()))
	switch {
	case busy:
		sc.idle.Reset(d)
	case quiet < d:
		sc.idle.Reset(d - quiet)
	default:
		sc.s.log.Debug("transport: closing an idle WebSocket connection", "idle", quiet)
		sc.c.Close(websocket.StatusNormalClosure, fmt.Sprintf("idle for %v", d))
		sc.cancel(insitu.Errorf(insitu.Unavailable, "the WebSocket connection was idle for %v", d))
	}
}

// closeReason fits a reason in a close frame (at most 123 bytes).
func closeReason(s string) string {
	if len(s) > 123 {
		s = s[:120] + "..."
	}
	return s
}

// serve reads frames until the connection ends, then cancels what is left
// on it and waits for it.
func (sc *wsServerConn) serve() {
	stop := context.AfterFunc(sc.ctx, func() { sc.c.CloseNow() })
	defer stop()
	err := readFrames(sc.c, sc.dispatch)
	var pe *protocolError
	if errors.As(err, &pe) {
		sc.s.log.Warn("transport: closing a WebSocket connection on a protocol error", "err", err)
		sc.c.Close(websocket.StatusProtocolError, closeReason(pe.msg))
	}
	gone := insitu.Errorf(insitu.Unavailable, "the WebSocket connection ended: %v", err)
	sc.cancel(gone)
	sc.mu.Lock()
	for _, st := range sc.streams {
		if st.in != nil {
			st.in.fail(gone)
		}
		st.win.close(gone)
	}
	sc.mu.Unlock()
	sc.wg.Wait()
	sc.c.CloseNow()
}

// dispatch handles one frame from the client; an error closes the connection.
func (sc *wsServerConn) dispatch(h frameHeader, f *frameBuf) error {
	sc.lastFrame.Store(time.Now().UnixNano())
	switch h.typ {
	case frameOpen:
		defer putFrame(f)
		return sc.open(h, f.payload())
	case frameData:
		sc.mu.Lock()
		st := sc.streams[h.id]
		sc.mu.Unlock()
		switch {
		case st == nil: // a request that ended already
			putFrame(f)
			return nil
		case st.in == nil:
			putFrame(f)
			return protoErrorf("DATA for request %d, whose OPEN said no input follows", h.id)
		}
		return st.in.push(f, h.end())
	case frameCredit:
		n, _ := creditOf(f.payload()) // checked by readFrame
		putFrame(f)
		sc.mu.Lock()
		st := sc.streams[h.id]
		sc.mu.Unlock()
		if st != nil {
			st.win.add(n)
		}
		return nil
	case frameCancel:
		putFrame(f)
		sc.mu.Lock()
		st := sc.streams[h.id]
		sc.mu.Unlock()
		if st != nil {
			st.cancel(insitu.Errorf(insitu.Canceled, "the client canceled the request"))
		}
		return nil
	}
	putFrame(f)
	return protoErrorf("%s frame from a client; only a server sends it", h.typ)
}

// open starts a request.
func (sc *wsServerConn) open(h frameHeader, payload []byte) error {
	sc.mu.Lock()
	_, dup := sc.streams[h.id]
	n := len(sc.streams)
	sc.mu.Unlock()
	if dup {
		return protoErrorf("request id %d reused while in flight", h.id)
	}
	req, err := parseOpen(payload)
	if err == nil && !req.hasBody() && !h.end() {
		err = insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
			"an OPEN frame that names a local path or a source URL carries the END flag: no input follows"), req.name())
	}
	var p *prepared
	if err == nil {
		p, err = sc.s.prepare(req)
	}
	if err == nil && n >= sc.s.opts.MaxStreams {
		err = insitu.WithName(insitu.Errorf(insitu.InvalidArgument,
			"too many requests in flight on one connection (the server's %s is %d)", wire.MaxStreams, sc.s.opts.MaxStreams), req.name())
	}
	if err == nil {
		err = sc.s.begin()
	}
	if err != nil {
		sc.sendError(h.id, err)
		return nil
	}
	ctx, cancel := context.WithCancelCause(sc.ctx)
	ctx, cancelObject := sc.s.objectContext(ctx, req)
	st := &wsStream{id: h.id, win: newSendWindow(sc.peerWindow, sc.s.opts.IOTimeout), cancel: func(cause error) {
		cancel(cause)
		if cause == nil {
			cancelObject()
		}
	}}
	if req.hasBody() {
		st.in = newInbox(ctx, sc, h.id, sc.s.opts.Window, sc.s.opts.IOTimeout)
		if h.end() {
			st.in.close(io.EOF)
		}
	}
	sc.mu.Lock()
	sc.streams[h.id] = st
	sc.mu.Unlock()
	sc.wg.Add(1)
	go sc.run(ctx, st, p)
	return nil
}

// run transforms one request and sends its reply.
func (sc *wsServerConn) run(ctx context.Context, st *wsStream, p *prepared) {
	defer sc.wg.Done()
	defer sc.s.end()
	defer st.cancel(nil)
	var body io.Reader
	if st.in != nil {
		body = st.in
		defer st.in.discard()
	}
	out := &frameSender{ctx: ctx, conn: sc, id: st.id, win: st.win, limit: chunkFor(sc.peerWindow)}
	defer out.release()
	unregister := func() {
		sc.mu.Lock()
		delete(sc.streams, st.id)
		sc.mu.Unlock()
	}
	defer unregister()

	res, err := sc.s.serveObject(ctx, p, body, out)
	switch {
	case err == nil && p.put == nil:
		// The last DATA frame is the success; the request leaves the
		// table before it goes, so that the client may reuse its slot.
		if err = out.flush(flagEnd, unregister); err == nil {
			return
		}
		if ctx.Err() != nil {
			err = insitu.WithName(context.Cause(ctx), p.name())
		}
	case err == nil:
		unregister()
		b, _ := json.Marshal(resultFrame{PutResult: res})
		sc.sendFrame(frameResult, st.id, b)
		return
	case err == insitu.ErrSkip:
		unregister()
		b, _ := json.Marshal(resultFrame{Skipped: true})
		sc.sendFrame(frameResult, st.id, b)
		return
	}
	unregister()
	sc.s.logFailure(p.name(), err)
	sc.sendError(st.id, err)
}

func (sc *wsServerConn) sendError(id uint32, err error) {
	sc.sendFrame(frameError, id, errorPayload(err))
}

// sendFrame sends a frame of a type with a payload; a failure means the
// connection is gone, which its reader sees too.
func (sc *wsServerConn) sendFrame(typ frameType, id uint32, payload []byte) {
	f := getFrame(len(payload))
	putHeader(f.b, frameHeader{typ: typ, id: id, len: uint32(len(payload))})
	copy(f.payload(), payload)
	sc.send(f.b)
	putFrame(f)
}

func (sc *wsServerConn) sendCredit(id uint32, n uint32) {
	var b [frameHeaderLen + 4]byte
	putHeader(b[:], frameHeader{typ: frameCredit, id: id, len: 4})
	binary.BigEndian.PutUint32(b[frameHeaderLen:], n)
	sc.send(b[:])
}

// send writes one frame, within IOTimeout: a write that does not complete
// in time (a client that does not read) closes the connection, since no
// frame can follow a half-written one. The connection's end ends it too.
func (sc *wsServerConn) send(frame []byte) error {
	ctx, cancel := context.WithTimeout(sc.ctx, sc.s.opts.IOTimeout)
	defer cancel()
	if err := sc.c.Write(ctx, websocket.MessageBinary, frame); err != nil {
		if ctx.Err() == context.DeadlineExceeded && sc.ctx.Err() == nil {
			err = insitu.Errorf(insitu.Unavailable, "a frame's write to the client did not complete in %v", sc.s.opts.IOTimeout)
			sc.s.log.Debug("transport: closing a WebSocket connection whose client does not read", "err", err)
			sc.cancel(err)
			return err
		}
		return insitu.Errorf(insitu.Unavailable, "sending on the WebSocket connection: %w", err)
	}
	return nil
}
