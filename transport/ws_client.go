package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
	"github.com/insitu-data/insitu/locality"
)

// wsPool is a client's WebSocket connections to one server.
type wsPool struct {
	cl     *Client
	slots  []*wsSlot
	next   atomic.Uint32
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
}

type wsSlot struct {
	mu   sync.Mutex
	conn *wsConn
}

func newWSPool(cl *Client) *wsPool {
	p := &wsPool{cl: cl, slots: make([]*wsSlot, cl.opts.Pool)}
	for i := range p.slots {
		p.slots[i] = &wsSlot{}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// warm opens the first connection.
func (p *wsPool) warm(ctx context.Context) error {
	_, err := p.slotConn(ctx, p.slots[0])
	return err
}

func (p *wsPool) close() {
	p.cancel()
	for _, s := range p.slots {
		s.mu.Lock()
		c := s.conn
		s.mu.Unlock()
		if c != nil {
			c.c.Close(websocket.StatusNormalClosure, "the client is closing")
			c.die(errClientClosed)
		}
	}
}

// slotConn returns the slot's connection, dialing a new one when it has
// none or its last one died.
func (p *wsPool) slotConn(ctx context.Context, s *wsSlot) (*wsConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.usable() {
		return s.conn, nil
	}
	if p.ctx.Err() != nil {
		return nil, errClientClosed
	}
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return c, nil
}

// errConnGone makes acquire pick a connection again.
var errConnGone = errors.New("connection gone")

// acquire returns a connection and a new call on it: round robin over the
// slots, taking a free stream anywhere before waiting for one.
func (p *wsPool) acquire(ctx context.Context) (*wsConn, *wsCall, error) {
	n := len(p.slots)
	for attempt := 0; ; attempt++ {
		start := int(p.next.Add(1) % uint32(n))
		conn, err := p.slotConn(ctx, p.slots[start])
		if err != nil {
			return nil, nil, err
		}
		if call := conn.tryRegister(ctx); call != nil {
			return conn, call, nil
		}
		for i := 1; i < n; i++ {
			s := p.slots[(start+i)%n]
			s.mu.Lock()
			other := s.conn
			s.mu.Unlock()
			if other != nil && other.usable() {
				if call := other.tryRegister(ctx); call != nil {
					return other, call, nil
				}
			}
		}
		call, err := conn.register(ctx)
		if err == errConnGone && attempt < 3 {
			continue
		}
		if err == errConnGone {
			err = conn.deadErr()
		}
		return conn, call, err
	}
}

// dial opens a WebSocket connection.
func (p *wsPool) dial(ctx context.Context) (*wsConn, error) {
	cl := p.cl
	h := http.Header{}
	h.Set(wire.Window, strconv.Itoa(cl.opts.Window))
	if tok := cl.opts.Secret.AdminToken(time.Now().Add(locality.RequestTokenTTL)); tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	where := cl.base.Redacted()
	dctx, cancel := context.WithTimeout(ctx, cl.opts.IOTimeout)
	defer cancel()
	wc, resp, err := websocket.Dial(dctx, cl.base.String()+"/v1/stream", &websocket.DialOptions{
		HTTPClient:      cl.http,
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if dctx.Err() != nil {
			return nil, insitu.Errorf(insitu.Unavailable, "opening a WebSocket to %s: no answer within %v", where, cl.opts.IOTimeout)
		}
		if resp != nil && resp.StatusCode < 400 && resp.StatusCode != http.StatusSwitchingProtocols {
			// Not an error answer, and no upgrade: not a transform server.
			resp.Body.Close()
			return nil, insitu.Errorf(insitu.Unavailable, "opening a WebSocket to %s: the server answered %s, not 101 Switching Protocols: it does not speak the insitu stream", where, resp.Status)
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			_, err := wire.DecodeError(resp, insitu.Name{}, "opening a WebSocket to "+where)
			return nil, err
		}
		return nil, insitu.Errorf(insitu.Unavailable, "opening a WebSocket to %s: %w", where, err)
	}
	bad := func(err error) (*wsConn, error) {
		wc.Close(websocket.StatusProtocolError, closeReason(err.Error()))
		return nil, insitu.Errorf(insitu.Unavailable, "opening a WebSocket to %s: %w", where, err)
	}
	sendWin, err := parseWindow(resp.Header.Get(wire.Window))
	if err != nil {
		return bad(err)
	}
	streams := defaultMaxStreams
	if v := resp.Header.Get(wire.MaxStreams); v != "" {
		if streams, err = strconv.Atoi(v); err != nil || streams < 1 || streams > 1<<16 {
			return bad(insitu.Errorf(insitu.InvalidArgument, "header %s: %q is not a number between 1 and 65536", wire.MaxStreams, v))
		}
	}
	wc.SetReadLimit(frameHeaderLen + maxFramePayload)
	c := &wsConn{
		pool: p, c: wc, where: where, sendWin: sendWin,
		slots: make(chan struct{}, streams), calls: make(map[uint32]*wsCall),
	}
	c.ctx, c.cancel = context.WithCancelCause(p.ctx)
	c.idleSince = time.Now()
	c.lastFrame.Store(time.Now().UnixNano())
	context.AfterFunc(c.ctx, func() { wc.CloseNow() })
	go c.readLoop()
	go c.watch()
	return c, nil
}

// watch keeps an eye on the connection until it ends, every IOTimeout:
// while calls are in flight and nothing came from the server for
// IOTimeout, it pings the server, and drops the connection when no pong
// comes within IOTimeout (a frozen or unreachable server); once no call
// was in flight for IdleTimeout, it retires and closes the connection.
func (c *wsConn) watch() {
	o := &c.pool.cl.opts
	every := min(o.IOTimeout, o.IdleTimeout)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		busy := len(c.calls) > 0
		idle := !busy && !c.idleSince.IsZero() && time.Since(c.idleSince) >= o.IdleTimeout
		if idle {
			c.retired = true
		}
		c.mu.Unlock()
		switch {
		case idle:
			c.c.Close(websocket.StatusNormalClosure, "idle")
			c.die(insitu.Errorf(insitu.Unavailable, "the connection was idle for %v", o.IdleTimeout))
			return
		case busy && time.Since(time.Unix(0, c.lastFrame.Load())) >= o.IOTimeout:
			ctx, cancel := context.WithTimeout(c.ctx, o.IOTimeout)
			err := c.c.Ping(ctx)
			cancel()
			if err != nil && c.ctx.Err() == nil {
				c.die(insitu.Errorf(insitu.Unavailable, "the server did not answer a ping within %v", o.IOTimeout))
				return
			}
		}
	}
}

// wsConn is the client's side of one WebSocket connection.
type wsConn struct {
	pool    *wsPool
	c       *websocket.Conn
	where   string
	sendWin int // the server's window: input credit per request
	slots   chan struct{}
	ctx     context.Context
	cancel  context.CancelCauseFunc

	mu        sync.Mutex
	calls     map[uint32]*wsCall
	nextID    uint32
	dead      error
	retired   bool      // out of request ids, or idle: closes once its calls end
	idleSince time.Time // when its last call ended; zero while it has calls

	lastFrame atomic.Int64 // when the last frame arrived, in Unix nanoseconds
}

// wsCall is one request in flight on a connection.
type wsCall struct {
	id     uint32
	name   insitu.Name
	out    *inbox      // the output
	win    *sendWindow // the input's credit
	result *resultFrame
}

func (c *wsConn) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead == nil && !c.retired
}

func (c *wsConn) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	return insitu.Errorf(insitu.Unavailable, "the WebSocket connection to %s is closing", c.where)
}

// tryRegister starts a call if the connection has a free stream.
func (c *wsConn) tryRegister(ctx context.Context) *wsCall {
	select {
	case c.slots <- struct{}{}:
	default:
		return nil
	}
	call, _ := c.newCall(ctx)
	return call
}

// register starts a call, waiting for a free stream.
func (c *wsConn) register(ctx context.Context) (*wsCall, error) {
	select {
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		return nil, errConnGone
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.newCall(ctx)
}

// newCall registers a call on a stream slot already taken.
func (c *wsConn) newCall(ctx context.Context) (*wsCall, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil || c.retired {
		<-c.slots
		return nil, errConnGone
	}
	c.nextID++
	id := c.nextID
	if id == math.MaxUint32 {
		c.retired = true
	}
	call := &wsCall{id: id, out: newInbox(ctx, c, id, c.pool.cl.opts.Window, 0), win: newSendWindow(c.sendWin, 0)}
	c.calls[id] = call
	c.idleSince = time.Time{}
	return call, nil
}

// finish removes a call whose final frame arrived and frees its stream.
func (c *wsConn) finish(id uint32) *wsCall {
	c.mu.Lock()
	call := c.calls[id]
	if call != nil {
		delete(c.calls, id)
		<-c.slots
	}
	closeNow := c.retired && len(c.calls) == 0
	if len(c.calls) == 0 && c.idleSince.IsZero() {
		c.idleSince = time.Now()
	}
	c.mu.Unlock()
	if closeNow {
		go c.c.Close(websocket.StatusNormalClosure, "out of request ids")
	}
	return call
}

// cancelCall tells the server the client gave the call up, unless it has
// ended already. Its stream is freed when the server's final frame comes.
func (c *wsConn) cancelCall(call *wsCall) {
	c.mu.Lock()
	_, inflight := c.calls[call.id]
	c.mu.Unlock()
	if inflight {
		c.sendFrame(frameCancel, 0, call.id, nil)
	}
}

// die fails the calls in flight with Unavailable and closes the connection.
func (c *wsConn) die(cause error) { c.fail(cause, c.c.CloseNow) }

// fail marks the connection dead with cause, unless it is already (the
// first cause is the one every call reports), fails the calls in flight
// and then closes the connection with closeConn.
func (c *wsConn) fail(cause error, closeConn func() error) {
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return
	}
	var err error
	if errors.Is(cause, insitu.Canceled) {
		err = cause
	} else {
		err = insitu.Errorf(insitu.Unavailable, "the WebSocket connection to %s was lost: %v", c.where, cause)
	}
	c.dead = err
	calls := c.calls
	c.calls = make(map[uint32]*wsCall)
	c.mu.Unlock()
	for _, call := range calls {
		call.out.fail(err)
		call.win.close(err)
	}
	c.cancel(err)
	closeConn()
}

func (c *wsConn) readLoop() {
	err := readFrames(c.c, c.dispatch)
	var pe *protocolError
	if errors.As(err, &pe) {
		c.pool.cl.log.Warn("transport: closing a WebSocket connection on a protocol error", "server", c.where, "err", err)
		// Dead first, so that a write failing while the close handshake
		// runs reports this cause, not the closed connection.
		c.fail(err, func() error {
			c.c.Close(websocket.StatusProtocolError, closeReason(pe.msg))
			return c.c.CloseNow()
		})
		return
	}
	c.die(err)
}

// errEnded stops an input sender whose call ended.
var errEnded = errors.New("the request ended")

// dispatch handles one frame from the server; an error closes the connection.
func (c *wsConn) dispatch(h frameHeader, f *frameBuf) error {
	c.lastFrame.Store(time.Now().UnixNano())
	lookup := func() *wsCall {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.calls[h.id]
	}
	switch h.typ {
	case frameData:
		var call *wsCall
		if h.end() {
			call = c.finish(h.id)
		} else {
			call = lookup()
		}
		if call == nil {
			putFrame(f)
			return nil
		}
		if h.end() {
			call.win.close(errEnded)
		}
		return call.out.push(f, h.end())
	case frameCredit:
		n, _ := creditOf(f.payload()) // checked by readFrame
		putFrame(f)
		if call := lookup(); call != nil {
			call.win.add(n)
		}
		return nil
	case frameError:
		defer putFrame(f)
		var b wire.ErrorBody
		if err := json.Unmarshal(f.payload(), &b); err != nil {
			return protoErrorf("ERROR frame for request %d: the JSON does not parse: %v", h.id, err)
		}
		if call := c.finish(h.id); call != nil {
			call.win.close(errEnded)
			call.out.fail(&insitu.Error{Code: b.Code, Name: call.name, Msg: b.Message})
		}
		return nil
	case frameResult:
		defer putFrame(f)
		var res resultFrame
		if err := json.Unmarshal(f.payload(), &res); err != nil {
			return protoErrorf("RESULT frame for request %d: the JSON does not parse: %v", h.id, err)
		}
		if call := c.finish(h.id); call != nil {
			call.win.close(errEnded)
			call.result = &res
			call.out.close(io.EOF)
		}
		return nil
	}
	putFrame(f)
	return protoErrorf("%s frame from a server; only a client sends it", h.typ)
}

// sendFrame sends a control frame.
func (c *wsConn) sendFrame(typ frameType, flags uint8, id uint32, payload []byte) error {
	f := getFrame(len(payload))
	defer putFrame(f)
	putHeader(f.b, frameHeader{typ: typ, flags: flags, id: id, len: uint32(len(payload))})
	copy(f.payload(), payload)
	return c.send(f.b)
}

func (c *wsConn) sendCredit(id uint32, n uint32) {
	var b [frameHeaderLen + 4]byte
	putHeader(b[:], frameHeader{typ: frameCredit, id: id, len: 4})
	binary.BigEndian.PutUint32(b[frameHeaderLen:], n)
	c.send(b[:])
}

// send writes one frame, within IOTimeout. A failed write, or one that
// did not complete in time (a server that does not read), kills the
// connection, so that no later call uses it.
func (c *wsConn) send(frame []byte) error {
	d := c.pool.cl.opts.IOTimeout
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageBinary, frame); err != nil {
		if ctx.Err() == context.DeadlineExceeded && c.ctx.Err() == nil {
			err = fmt.Errorf("a frame's write did not complete in %v", d)
		}
		c.die(err)
		return c.deadErr()
	}
	return nil
}

// do runs one request on a connection of the pool.
func (p *wsPool) do(ctx context.Context, req *request, body io.Reader, out io.Writer) (insitu.PutResult, error) {
	conn, call, err := p.acquire(ctx)
	if err != nil {
		return insitu.PutResult{}, err
	}
	call.name = req.name()
	defer call.out.discard()
	payload, err := json.Marshal(req)
	if err != nil {
		conn.finish(call.id)
		return insitu.PutResult{}, insitu.Errorf(insitu.InvalidArgument, "encoding the request: %v", err)
	}
	if len(payload) > maxFramePayload {
		conn.finish(call.id)
		return insitu.PutResult{}, insitu.Errorf(insitu.InvalidArgument, "the request is %d bytes of JSON, over the frame limit of %d (are the args that long?)", len(payload), maxFramePayload)
	}
	// The first chunk of the input is read before the OPEN goes out, so
	// that an input that fails at once (a reader's error, a size
	// mismatch) sends nothing.
	var flags uint8
	var snd *frameSender
	eof := false
	if body == nil {
		flags = flagEnd
	} else {
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		snd = &frameSender{ctx: sctx, conn: conn, id: call.id, win: call.win, limit: chunkFor(conn.sendWin)}
		if req.Size >= 0 {
			snd.hint = int(min(req.Size+1, chunkSize)) // +1: room to see the end
		}
		eof, err = snd.fill(body)
		if err == nil && !eof && req.Size == int64(snd.n) {
			eof, err = snd.atEOF(body)
		}
		if err != nil {
			snd.release()
			conn.finish(call.id)
			return insitu.PutResult{}, &readError{err}
		}
	}
	if err := conn.sendFrame(frameOpen, flags, call.id, payload); err != nil {
		if snd != nil {
			snd.release()
		}
		return insitu.PutResult{}, err
	}

	// The input goes out while the output comes in: a transform may write
	// before it has read everything.
	var sent chan error
	switch {
	case snd == nil:
	case eof:
		// A small input: one chunk, at most half the server's window
		// (chunkFor), so it fits the initial credit and the flush does
		// not wait for the transform to read.
		snd.flush(flagEnd, nil)
		snd.release()
	default:
		sent = make(chan error, 1)
		go func() {
			defer snd.release()
			err := snd.flush(0, nil)
			if err == nil {
				err = snd.sendAll(body, req.Size)
			}
			var re *readError
			if errors.As(err, &re) {
				call.out.fail(err)
				conn.cancelCall(call)
			}
			sent <- err
		}()
	}
	_, err = call.out.WriteTo(out)
	if err != nil {
		conn.cancelCall(call)
	}
	if sent != nil {
		call.win.close(errEnded)
		<-sent
	}
	if err != nil {
		return insitu.PutResult{}, err
	}
	switch r := call.result; {
	case r != nil && r.Skipped:
		return insitu.PutResult{}, insitu.ErrSkip
	case r != nil:
		return r.PutResult, nil
	case req.PutURL != "":
		return insitu.PutResult{}, insitu.Errorf(insitu.Internal, "the server sent the output back instead of putting it to its destination")
	}
	return insitu.PutResult{}, nil
}
