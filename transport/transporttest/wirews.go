package transporttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/coder/websocket"

	"github.com/insitu-data/insitu"
)

// The frame format of docs/PROTOCOL.md, written here from the document
// rather than taken from package transport, so that the suite checks the
// document and not an implementation against itself.
const (
	frameOpen   = 1
	frameData   = 2
	frameCredit = 3
	frameError  = 4
	frameCancel = 5
	frameResult = 6

	flagEnd    = 1
	headerLen  = 12
	maxPayload = 1 << 20

	minWindow = 64 << 10
	maxWindow = 64 << 20
)

var frameNames = map[byte]string{
	frameOpen: "OPEN", frameData: "DATA", frameCredit: "CREDIT",
	frameError: "ERROR", frameCancel: "CANCEL", frameResult: "RESULT",
}

func frameName(t byte) string {
	if n, ok := frameNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", t)
}

// frame is one decoded frame.
type frame struct {
	typ, flags byte
	id         uint32
	payload    []byte
}

func (f frame) end() bool { return f.flags&flagEnd != 0 }

// encode returns the frame's bytes, its length field the payload's.
func (f frame) encode() []byte {
	b := make([]byte, headerLen+len(f.payload))
	b[0], b[1] = f.typ, f.flags
	binary.BigEndian.PutUint32(b[4:], f.id)
	binary.BigEndian.PutUint32(b[8:], uint32(len(f.payload)))
	copy(b[headerLen:], f.payload)
	return b
}

func creditFrame(id, n uint32) frame {
	p := make([]byte, 4)
	binary.BigEndian.PutUint32(p, n)
	return frame{typ: frameCredit, id: id, payload: p}
}

// parseServerFrame decodes a frame from the server and checks it against
// the format: the types a server sends, flags only on DATA, reserved bytes
// zero, a request id, the length the payload's and at most 1 MiB, a CREDIT
// of 4 bytes granting at least 1, an ERROR of {"code","message"} with a
// known code, a RESULT of a JSON object.
func parseServerFrame(msg []byte) (frame, error) {
	if len(msg) < headerLen {
		return frame{}, fmt.Errorf("a frame of %d bytes, shorter than its 12-byte header", len(msg))
	}
	f := frame{typ: msg[0], flags: msg[1], id: binary.BigEndian.Uint32(msg[4:]), payload: msg[headerLen:]}
	n := binary.BigEndian.Uint32(msg[8:])
	switch {
	case f.typ != frameData && f.typ != frameCredit && f.typ != frameError && f.typ != frameResult:
		return f, fmt.Errorf("a %s frame; a server sends DATA, CREDIT, ERROR and RESULT only", frameName(f.typ))
	case msg[2] != 0 || msg[3] != 0:
		return f, fmt.Errorf("a %s frame with non-zero reserved bytes", frameName(f.typ))
	case f.flags&^flagEnd != 0 || f.flags != 0 && f.typ != frameData:
		return f, fmt.Errorf("a %s frame with the flags %#x", frameName(f.typ), f.flags)
	case f.id == 0:
		return f, fmt.Errorf("a %s frame for request id 0", frameName(f.typ))
	case int(n) != len(f.payload):
		return f, fmt.Errorf("a %s frame whose length field says %d bytes and carries %d", frameName(f.typ), n, len(f.payload))
	case n > maxPayload:
		return f, fmt.Errorf("a %s frame of %d bytes, over the limit of %d", frameName(f.typ), n, maxPayload)
	}
	switch f.typ {
	case frameCredit:
		if n != 4 || binary.BigEndian.Uint32(f.payload) == 0 {
			return f, fmt.Errorf("a CREDIT frame of %d bytes granting %x; want 4 bytes granting at least 1", n, f.payload)
		}
	case frameError:
		var b errorBody
		if err := json.Unmarshal(f.payload, &b); err != nil {
			return f, fmt.Errorf("an ERROR frame whose JSON does not parse: %v", err)
		}
		if c := insitu.ParseCode(b.Code); c == insitu.Unknown && b.Code != "unknown" {
			return f, fmt.Errorf("an ERROR frame with the code %q, which is not an insitu code", b.Code)
		}
		if b.Message == "" {
			return f, fmt.Errorf("an ERROR frame without a message: %s", f.payload)
		}
	case frameResult:
		var m map[string]any
		if err := json.Unmarshal(f.payload, &m); err != nil {
			return f, fmt.Errorf("a RESULT frame whose JSON object does not parse: %v", err)
		}
	}
	return f, nil
}

// wsConn is the suite's raw client side of one stream connection. It
// tracks every request it opened, its credit both ways and its final
// frame, and fails the test on any frame that breaks the protocol.
type wsConn struct {
	t          *testing.T
	c          *websocket.Conn
	ctx        context.Context
	window     int // the server's window: the input credit of a new request
	maxStreams int
	mine       int // the window the suite announced: the output credit of a new request
	nextID     uint32

	inflight map[uint32]*wsReq
	ended    map[uint32]bool
}

// wsReq is one request on a wsConn.
type wsReq struct {
	id      uint32
	open    any    // the OPEN's JSON, or
	rawOpen []byte // its payload as is
	// input is sent in DATA frames as the credit allows, the last with
	// END; with noInput the OPEN carries END. emptyData sends an empty
	// input as one empty DATA with END instead.
	input     []byte
	noInput   bool
	emptyData bool
	// manual leaves the sending of the input to the test.
	manual bool
	// holdCredit grants no output credit until the test does.
	holdCredit bool

	sent    int
	credit  int64 // input bytes the server takes still
	endSent bool
	out     []byte
	granted int64 // output credit granted in all
	unacked int
	final   *frame
}

// dial opens a stream connection announcing window (0: no header) and
// checks the 101 response's headers.
func (w *wire) dial(t *testing.T, window int) *wsConn {
	t.Helper()
	ctx := waitCtx(t)
	h := http.Header{}
	if window > 0 {
		h.Set("Insitu-Window", strconv.Itoa(window))
	}
	if w.opts.Token != "" {
		h.Set("Authorization", "Bearer "+w.opts.Token)
	}
	c, resp, err := websocket.Dial(ctx, w.base+"/v1/stream", &websocket.DialOptions{
		HTTPHeader: h, HTTPClient: &http.Client{}, CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		t.Fatalf("opening a stream: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(headerLen + 2*maxPayload) // larger frames are the server's error, reported as such
	conn := &wsConn{t: t, c: c, ctx: ctx, mine: window, inflight: map[uint32]*wsReq{}, ended: map[uint32]bool{}}
	if conn.mine == 0 {
		conn.mine = 256 << 10 // the protocol's default
	}
	v := resp.Header.Get("Insitu-Window")
	if conn.window, err = strconv.Atoi(v); err != nil || conn.window < minWindow || conn.window > maxWindow {
		t.Fatalf("the 101 response's Insitu-Window is %q, want a number of bytes from %d to %d", v, minWindow, maxWindow)
	}
	v = resp.Header.Get("Insitu-Max-Streams")
	if conn.maxStreams, err = strconv.Atoi(v); err != nil || conn.maxStreams < 1 || conn.maxStreams > 1<<16 {
		t.Fatalf("the 101 response's Insitu-Max-Streams is %q, want a number from 1 to 65536", v)
	}
	return conn
}

// sendRaw sends one binary message as it is.
func (c *wsConn) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.c.Write(c.ctx, websocket.MessageBinary, b); err != nil {
		c.t.Fatalf("sending a frame: %v", err)
	}
}

func (c *wsConn) send(f frame) { c.t.Helper(); c.sendRaw(f.encode()) }

// recv reads and checks the next frame.
func (c *wsConn) recv() frame {
	c.t.Helper()
	typ, msg, err := c.c.Read(c.ctx)
	if err != nil {
		c.t.Fatalf("waiting for a frame (requests in flight: %d): %v", len(c.inflight), err)
	}
	if typ != websocket.MessageBinary {
		c.t.Fatalf("the server sent a text message %q; frames are binary", trunc(string(msg)))
	}
	f, err := parseServerFrame(msg)
	if err != nil {
		c.t.Fatalf("the server sent %v", err)
	}
	return f
}

// start opens the requests.
func (c *wsConn) start(reqs ...*wsReq) {
	c.t.Helper()
	for _, r := range reqs {
		c.nextID++
		r.id = c.nextID
		r.credit = int64(c.window)
		r.granted = int64(c.mine)
		payload := r.rawOpen
		if payload == nil {
			var err error
			if payload, err = json.Marshal(r.open); err != nil {
				c.t.Fatal(err)
			}
		}
		var flags byte
		if r.noInput {
			flags, r.endSent = flagEnd, true
		}
		c.inflight[r.id] = r
		c.send(frame{typ: frameOpen, flags: flags, id: r.id, payload: payload})
	}
}

// push sends what input the credit allows.
func (c *wsConn) push(r *wsReq) {
	c.t.Helper()
	for !r.endSent && !r.manual && r.final == nil {
		left := len(r.input) - r.sent
		if left == 0 {
			c.send(frame{typ: frameData, flags: flagEnd, id: r.id})
			r.endSent = true
			return
		}
		if r.credit == 0 {
			return
		}
		k := min(int64(left), r.credit, int64(c.window/2))
		var flags byte
		if int(k) == left && !r.emptyData {
			flags = flagEnd
		}
		c.send(frame{typ: frameData, flags: flags, id: r.id, payload: r.input[r.sent : r.sent+int(k)]})
		r.sent += int(k)
		r.credit -= k
		r.endSent = flags == flagEnd
	}
}

// grant gives the server back the output credit r's reading used.
func (c *wsConn) grant(r *wsReq) {
	if r.unacked > 0 && r.final == nil {
		c.send(creditFrame(r.id, uint32(r.unacked)))
		r.granted += int64(r.unacked)
		r.unacked = 0
	}
}

// pump sends input and handles frames until done reports true.
func (c *wsConn) pump(done func() bool) {
	c.t.Helper()
	for {
		for _, r := range c.inflight {
			c.push(r)
		}
		if done() {
			return
		}
		c.dispatch(c.recv())
	}
}

// dispatch handles one frame from the server.
func (c *wsConn) dispatch(f frame) {
	c.t.Helper()
	r := c.inflight[f.id]
	switch {
	case r == nil && c.ended[f.id] && f.typ == frameCredit:
		return // credit for a request that ended: harmless
	case r == nil && c.ended[f.id]:
		c.t.Fatalf("the server sent a %s frame for request %d after its final frame", frameName(f.typ), f.id)
	case r == nil:
		c.t.Fatalf("the server sent a %s frame for request %d, which the suite never opened", frameName(f.typ), f.id)
	}
	switch f.typ {
	case frameData:
		r.out = append(r.out, f.payload...)
		if int64(len(r.out)) > r.granted {
			c.t.Fatalf("request %d: the server sent %d bytes of output with %d of credit granted: it overran the window", r.id, len(r.out), r.granted)
		}
		r.unacked += len(f.payload)
		if f.end() {
			c.finish(r, f)
			return
		}
		if !r.holdCredit && r.unacked >= c.mine/2 {
			c.grant(r)
		}
	case frameCredit:
		r.credit += int64(binary.BigEndian.Uint32(f.payload))
	default:
		c.finish(r, f)
	}
}

func (c *wsConn) finish(r *wsReq, f frame) {
	r.final = &f
	delete(c.inflight, r.id)
	c.ended[r.id] = true
}

// run opens the requests and pumps until each has its final frame.
func (c *wsConn) run(reqs ...*wsReq) {
	c.t.Helper()
	c.start(reqs...)
	c.pump(func() bool {
		for _, r := range reqs {
			if r.final == nil {
				return false
			}
		}
		return true
	})
}

// barrier runs an echo request to its end, handling the frames of the
// requests in flight meanwhile: what the server sent before its answer
// has arrived.
func (c *wsConn) barrier() {
	c.t.Helper()
	r := echoReq("barrier", []byte("barrier"))
	c.run(r)
	wantData(c.t, "an echo on the same connection", r, []byte("barrier"))
}

// wantClosed reads until the server closes the connection, and checks the
// close status is one of want and has a reason.
func (c *wsConn) wantClosed(what string, want ...websocket.StatusCode) {
	c.t.Helper()
	for {
		_, _, err := c.c.Read(c.ctx)
		if err == nil {
			continue
		}
		got := websocket.CloseStatus(err)
		for _, s := range want {
			if got == s {
				var ce websocket.CloseError
				if errors.As(err, &ce) && ce.Reason == "" && s == websocket.StatusProtocolError {
					c.t.Errorf("%s: closed with %d and no reason; the reason says what was wrong", what, s)
				}
				return
			}
		}
		c.t.Fatalf("%s: the connection ended with %v (status %d), want a close with status %v", what, err, got, want)
	}
}

// open is the JSON of an OPEN frame.
func open(key string, size int64, more ...any) map[string]any {
	m := map[string]any{"bucket": "b", "key": key, "size": size}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i].(string)] = more[i+1]
	}
	return m
}

func echoReq(key string, input []byte) *wsReq {
	return &wsReq{open: open("echo/"+key, int64(len(input))), input: input, noInput: len(input) == 0}
}

// wantData checks that r ended in success with the output want.
func wantData(t *testing.T, what string, r *wsReq, want []byte) {
	t.Helper()
	if r.final.typ != frameData {
		t.Fatalf("%s: the final frame is %s %s, want the last DATA", what, frameName(r.final.typ), r.final.payload)
	}
	if !bytes.Equal(r.out, want) {
		t.Fatalf("%s: %d bytes of output (checksum %s), want %d (checksum %s)", what, len(r.out), checksum(r.out), len(want), checksum(want))
	}
}

// wantErrorFrame checks that r ended with an ERROR of code, whose message
// is msg when msg is not "".
func wantErrorFrame(t *testing.T, what string, r *wsReq, code insitu.Code, msg string) {
	t.Helper()
	if r.final.typ != frameError {
		t.Fatalf("%s: the final frame is %s (%d bytes of output), want ERROR %s", what, frameName(r.final.typ), len(r.out), code)
	}
	var b errorBody
	json.Unmarshal(r.final.payload, &b) // checked by parseServerFrame
	if b.Code != code.String() || msg != "" && b.Message != msg {
		t.Fatalf("%s: ERROR %s %q, want %s %q", what, b.Code, b.Message, code, msg)
	}
}

// wantResult checks that r ended with a RESULT, and decodes it into v.
func wantResult(t *testing.T, what string, r *wsReq, v any) {
	t.Helper()
	if r.final.typ != frameResult {
		t.Fatalf("%s: the final frame is %s %s, want RESULT", what, frameName(r.final.typ), trunc(string(r.final.payload)))
	}
	if err := json.Unmarshal(r.final.payload, v); err != nil {
		t.Fatalf("%s: RESULT %s: %v", what, r.final.payload, err)
	}
}

func (w *wire) testWSHandshake(t *testing.T) {
	for _, window := range []int{0, minWindow, 1 << 20} {
		c := w.dial(t, window)
		c.barrier()
	}
	h := http.Header{"Insitu-Window": {"12"}}
	if w.opts.Token != "" {
		h.Set("Authorization", "Bearer "+w.opts.Token)
	}
	_, resp, err := websocket.Dial(waitCtx(t), w.base+"/v1/stream", &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{}})
	if err == nil {
		t.Fatal("an upgrade with Insitu-Window: 12 succeeded; a window under 64 KiB is 400 invalid_argument")
	}
	wantUpgradeError(t, "an upgrade with Insitu-Window: 12", resp, 400, insitu.InvalidArgument)
}

// wantUpgradeError checks the answer to a refused upgrade.
func wantUpgradeError(t *testing.T, what string, resp *http.Response, status int, code insitu.Code) {
	t.Helper()
	if resp == nil {
		t.Fatalf("%s: no HTTP response", what)
	}
	b, _ := io.ReadAll(resp.Body)
	wantError(t, what, response{Response: resp, body: b}, status, code, "")
}

func (w *wire) testWSAuth(t *testing.T) {
	for _, tok := range []string{"", "0123"} {
		h := http.Header{}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
		_, resp, err := websocket.Dial(waitCtx(t), w.base+"/v1/stream", &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{}})
		if err == nil {
			t.Fatalf("an upgrade with the token %q succeeded", tok)
		}
		wantUpgradeError(t, fmt.Sprintf("an upgrade with the token %q", tok), resp, 401, insitu.PermissionDenied)
	}
}

func (w *wire) testWSEcho(t *testing.T) {
	c := w.dial(t, minWindow)
	empty := echoReq("empty", nil)
	emptyData := &wsReq{open: open("echo/empty-data", 0), emptyData: true}
	c.run(empty, emptyData)
	wantData(t, "an OPEN with END", empty, nil)
	wantData(t, "an empty DATA with END", emptyData, nil)
	for i, n := range []int{1, 100 << 10, 1<<20 + 5} {
		data := genBytes(uint64(20+i), int64(n))
		r := echoReq(strconv.Itoa(n), data)
		c.run(r)
		wantData(t, fmt.Sprintf("an echo of %d bytes", n), r, data)
		// And without a size.
		r = &wsReq{open: open("echo/unsized", -1), input: data}
		c.run(r)
		wantData(t, fmt.Sprintf("an echo of %d bytes without a size", n), r, data)
	}
}

func (w *wire) testWSConcurrent(t *testing.T) {
	c := w.dial(t, 0)
	n := min(16, c.maxStreams)
	reqs := make([]*wsReq, n)
	for i := range reqs {
		reqs[i] = echoReq(fmt.Sprintf("many/%d", i), genBytes(uint64(30+i), int64(i*13<<10+i)))
	}
	c.run(reqs...)
	for i, r := range reqs {
		wantData(t, fmt.Sprintf("request %d of %d in flight at once", i, n), r, r.input)
	}
}

func (w *wire) testWSInfo(t *testing.T) {
	c := w.dial(t, 0)
	name := insitu.Name{Bucket: "", Key: "info/dir/ünï code.bin"}
	r := &wsReq{open: map[string]any{"bucket": "", "key": name.Key, "size": 6, "owner": "node-ü7", "args": oddArgs}, input: []byte("123456")}
	unsized := &wsReq{open: map[string]any{"bucket": "b", "key": "info/x"}, input: []byte("1234")}
	c.run(r, unsized)
	wantData(t, "the fields of an OPEN", r, []byte(infoLines(name, 6, "node-ü7", "", 6, oddArgs)))
	wantData(t, "an OPEN without a size", unsized, []byte(infoLines(insitu.Name{Bucket: "b", Key: "info/x"}, -1, "", "", 4, "")))
}

func (w *wire) testWSErrorCodes(t *testing.T) {
	c := w.dial(t, 0)
	reqs := make([]*wsReq, len(allCodes))
	for i, code := range allCodes {
		msg := "the transform says " + code.code.String() + " ünï\n100%"
		reqs[i] = &wsReq{open: open("fail/"+code.code.String()+"/x", 5, "args", msg), input: []byte("input")}
	}
	c.run(reqs...)
	for i, code := range allCodes {
		wantErrorFrame(t, "a transform failing with "+code.code.String(), reqs[i], code.code, reqs[i].open.(map[string]any)["args"].(string))
	}
	c.barrier() // the connection still works
}

func (w *wire) testWSLateError(t *testing.T) {
	c := w.dial(t, 0)
	data := genBytes(40, 300<<10)
	r := &wsReq{open: open("late/internal/x", int64(len(data)), "args", "bad data at the end"), input: data}
	c.run(r)
	wantErrorFrame(t, "a transform that fails after its output", r, insitu.Internal, "bad data at the end")
	if !bytes.HasPrefix(data, r.out) {
		t.Fatalf("a transform that fails after its output: the %d bytes of DATA before the ERROR are not its output", len(r.out))
	}
}

func (w *wire) testWSSkip(t *testing.T) {
	c := w.dial(t, 0)
	skip := &wsReq{open: open("skip/x", 3), input: []byte("abc")}
	late := &wsReq{open: open("skiplate/x", 100<<10), input: genBytes(41, 100<<10)}
	c.run(skip, late)
	for _, r := range []*wsReq{skip, late} {
		var res struct {
			Skipped bool `json:"skipped"`
		}
		wantResult(t, "a skipped object", r, &res)
		if !res.Skipped {
			t.Fatalf("a skipped object: RESULT %s, want {\"skipped\":true}", r.final.payload)
		}
	}
}

func (w *wire) testWSDirectPut(t *testing.T) {
	n := startNode(t, "node-token")
	c := w.dial(t, 0)
	data := genBytes(42, 200<<10)
	names := []insitu.Name{{Bucket: "out", Key: "ws-put.bin"}, {Bucket: "out", Key: "ws-empty.bin"}, {Bucket: "out", Key: "ws-failed.bin"}}
	dst := func(i int) (string, any, string, any) {
		d := n.dest(names[i])
		return "put_url", d.URL, "put_token", d.Token
	}
	a, b, cc, d := dst(0)
	full := &wsReq{open: open("echo/x", int64(len(data)), a, b, cc, d), input: data}
	a, b, cc, d = dst(1)
	empty := &wsReq{open: open("echo/y", 0, a, b, cc, d), noInput: true}
	a, b, cc, d = dst(2)
	failed := &wsReq{open: open("fail/not_found/z", int64(len(data)), a, b, cc, d), input: data}
	c.run(full, empty, failed)
	for i, r := range []*wsReq{full, empty} {
		var res insitu.PutResult
		wantResult(t, "a direct put", r, &res)
		if res.Name != names[i] || res.Size != int64(len(r.input)) || res.Checksum != checksum(r.input) {
			t.Fatalf("a direct put of %d bytes: RESULT %s, want name %v, size %d, checksum %s", len(r.input), r.final.payload, names[i], len(r.input), checksum(r.input))
		}
		if got, ok := n.get(names[i]); !ok || !bytes.Equal(got, r.input) {
			t.Fatalf("a direct put of %d bytes: the destination holds %d bytes (%v)", len(r.input), len(got), ok)
		}
	}
	wantErrorFrame(t, "a failed direct put", failed, insitu.NotFound, "")
	if _, ok := n.get(names[2]); ok {
		t.Fatal("a failed direct put left an object at the destination")
	}
}

func (w *wire) testWSPull(t *testing.T) {
	data := genBytes(43, 300<<10)
	src := startWireSource(t, "source-token", map[string][]byte{"in.bin": data})
	c := w.dial(t, 0)
	ok := &wsReq{open: open("echo/x", -1, "source_url", src.url("in.bin"), "source_token", "source-token"), noInput: true}
	missing := &wsReq{open: open("echo/y", -1, "source_url", src.url("missing"), "source_token", "source-token"), noInput: true}
	c.run(ok, missing)
	wantData(t, "an OPEN with a source URL", ok, data)
	wantErrorFrame(t, "an OPEN with the source URL of a missing object", missing, insitu.NotFound, "")
}

func (w *wire) testWSLocalFile(t *testing.T) {
	f := makeLocalFiles(t, w.opts.Root)
	c := w.dial(t, 0)
	ok := &wsReq{open: open("echo/x", -1, "path", f.file), noInput: true}
	outside := &wsReq{open: open("echo/y", -1, "path", f.outside), noInput: true}
	missing := &wsReq{open: open("echo/z", -1, "path", f.missing), noInput: true}
	c.run(ok, outside, missing)
	wantData(t, "an OPEN with a local path", ok, f.data)
	wantErrorFrame(t, "an OPEN with a path outside the roots", outside, insitu.PermissionDenied, "")
	wantErrorFrame(t, "an OPEN with a missing file", missing, insitu.NotFound, "")
}

func (w *wire) testWSCancel(t *testing.T) {
	c := w.dial(t, 0)
	r := &wsReq{open: open("wait/x", 0), noInput: true}
	withInput := &wsReq{open: open("wait/y", -1), manual: true}
	c.start(r, withInput)
	c.send(frame{typ: frameData, id: withInput.id, payload: []byte("some input, never ended")})
	c.send(frame{typ: frameCancel, id: r.id})
	c.send(frame{typ: frameCancel, id: withInput.id})
	c.pump(func() bool { return r.final != nil && withInput.final != nil })
	wantErrorFrame(t, "a canceled request", r, insitu.Canceled, "")
	wantErrorFrame(t, "a canceled request with its input unfinished", withInput, insitu.Canceled, "")
	c.barrier()
}

func (w *wire) testWSTimeout(t *testing.T) {
	c := w.dial(t, 0)
	r := &wsReq{open: open("wait/x", 0, "timeout_ms", 100), noInput: true}
	c.run(r)
	wantErrorFrame(t, "a request past its timeout_ms", r, insitu.DeadlineExceeded, "")
	c.barrier()
}

func (w *wire) testWSInputWindow(t *testing.T) {
	c := w.dial(t, 0)
	r := &wsReq{open: open("wait/x", -1), manual: true}
	c.start(r)
	// A transform that reads nothing takes a window of input, and no more.
	chunk := make([]byte, min(c.window/2, maxPayload))
	for sent := 0; sent < c.window; {
		k := min(len(chunk), c.window-sent)
		c.send(frame{typ: frameData, id: r.id, payload: chunk[:k]})
		sent += k
		r.credit -= int64(k)
	}
	c.barrier() // not closed: the window was the server's own
	if r.final != nil {
		t.Fatalf("a request that sent its window of input ended with %s %s", frameName(r.final.typ), r.final.payload)
	}
	c.send(frame{typ: frameData, id: r.id, payload: make([]byte, r.credit+1)})
	c.wantClosed("input over the window", websocket.StatusProtocolError)
}

func (w *wire) testWSOutputWindow(t *testing.T) {
	const total = 1 << 20
	c := w.dial(t, minWindow)
	r := &wsReq{open: open(fmt.Sprintf("gen/%d/x", total), 0), noInput: true, holdCredit: true}
	c.start(r)
	// The server sends at least half a window without credit (a receiver
	// grants half a window at a time), and never more than the window:
	// dispatch fails the test on a byte over the credit.
	c.pump(func() bool { return len(r.out) >= minWindow/2 || r.final != nil })
	if r.final != nil {
		t.Fatalf("gen: the request ended with %s after %d bytes, before its output", frameName(r.final.typ), len(r.out))
	}
	c.barrier() // whatever the server sent meanwhile has arrived, and is within the window
	r.holdCredit = false
	c.grant(r)
	c.pump(func() bool { return r.final != nil })
	wantData(t, "an output of 1 MiB through a 64 KiB window", r, patternBytes(total))
}

func (w *wire) testWSMaxStreams(t *testing.T) {
	c := w.dial(t, 0)
	if c.maxStreams > 4096 {
		t.Skipf("the server allows %d streams per connection; the suite fills at most 4096", c.maxStreams)
	}
	waits := make([]*wsReq, c.maxStreams)
	for i := range waits {
		waits[i] = &wsReq{open: open(fmt.Sprintf("wait/%d", i), 0), noInput: true}
	}
	c.start(waits...)
	over := &wsReq{open: open("echo/over", 0), noInput: true}
	c.run(over)
	wantErrorFrame(t, fmt.Sprintf("request %d on a connection of Insitu-Max-Streams %d", c.maxStreams+1, c.maxStreams), over, insitu.InvalidArgument, "")
	for _, r := range waits {
		if r.final != nil {
			t.Fatalf("a waiting request ended with %s %s", frameName(r.final.typ), r.final.payload)
		}
		c.send(frame{typ: frameCancel, id: r.id})
	}
	c.pump(func() bool { return len(c.inflight) == 0 })
	for _, r := range waits {
		wantErrorFrame(t, "a canceled request", r, insitu.Canceled, "")
	}
	c.barrier()
}

func (w *wire) testWSBadRequests(t *testing.T) {
	c := w.dial(t, 0)
	cases := []struct {
		what string
		req  *wsReq
		code insitu.Code
	}{
		{"an OPEN whose JSON does not parse", &wsReq{rawOpen: []byte(`{"bucket":"b","key":`), noInput: true}, insitu.InvalidArgument},
		{"a .. key segment", &wsReq{open: open("echo/../x", 0), noInput: true}, insitu.InvalidArgument},
		{"an empty key", &wsReq{open: open("", 0), noInput: true}, insitu.InvalidArgument},
		{"a bad bucket", &wsReq{open: map[string]any{"bucket": "b c", "key": "echo/x", "size": 0}, noInput: true}, insitu.InvalidArgument},
		{"a size below -1", &wsReq{open: open("echo/x", -5), noInput: true}, insitu.InvalidArgument},
		{"a negative timeout", &wsReq{open: open("echo/x", 0, "timeout_ms", -1), noInput: true}, insitu.InvalidArgument},
		{"a path without END", &wsReq{open: open("echo/x", -1, "path", "/nonexistent/x"), manual: true}, insitu.InvalidArgument},
		{"a relative path", &wsReq{open: open("echo/x", -1, "path", "tmp/x"), noInput: true}, insitu.InvalidArgument},
		{"a path and a source", &wsReq{open: open("echo/x", -1, "path", "/tmp/x", "source_url", "http://127.0.0.1:9/v1/objects/b/k"), noInput: true}, insitu.InvalidArgument},
		{"a source that is not http", &wsReq{open: open("echo/x", -1, "source_url", "file:///etc/passwd"), noInput: true}, insitu.InvalidArgument},
		{"a source that is not loopback", &wsReq{open: open("echo/x", -1, "source_url", "http://192.0.2.1:7001/v1/objects/b/k"), noInput: true}, insitu.InvalidArgument},
		{"a put URL with credentials", &wsReq{open: open("echo/x", 0, "put_url", "http://u:p@127.0.0.1:9/x"), noInput: true}, insitu.InvalidArgument},
		{"a put URL that is not loopback", &wsReq{open: open("echo/x", 0, "put_url", "http://192.0.2.1:7001/v1/objects/b/k"), noInput: true}, insitu.InvalidArgument},
	}
	for _, tc := range cases {
		c.run(tc.req)
		wantErrorFrame(t, tc.what, tc.req, tc.code, "")
	}
	// Frames for requests not in flight are dropped quietly: one that
	// ended, one never opened.
	ended := cases[0].req.id
	c.send(frame{typ: frameData, id: ended, payload: []byte("late")})
	c.send(creditFrame(ended, 1024))
	c.send(frame{typ: frameCancel, id: ended})
	c.send(frame{typ: frameData, flags: flagEnd, id: 99999, payload: []byte("stray")})
	c.send(creditFrame(99998, 1))
	c.send(frame{typ: frameCancel, id: 99997})
	c.barrier()
}

func (w *wire) testWSSizeMismatch(t *testing.T) {
	c := w.dial(t, 0)
	short := &wsReq{open: open("info/short", 5), input: []byte("abc")}
	long := &wsReq{open: open("info/long", 3), input: []byte("abcde")}
	zero := &wsReq{open: open("info/zero", 0), input: []byte("a")}
	c.run(short, long, zero)
	wantErrorFrame(t, "an OPEN of size 5 with 3 bytes of DATA", short, insitu.InvalidArgument, "")
	wantErrorFrame(t, "an OPEN of size 3 with 5 bytes of DATA", long, insitu.InvalidArgument, "")
	wantErrorFrame(t, "an OPEN of size 0 with 1 byte of DATA", zero, insitu.InvalidArgument, "")
	c.barrier()
}

func (w *wire) testWSBrokenFrames(t *testing.T) {
	openWait := func(id uint32, flags byte) []byte {
		return frame{typ: frameOpen, flags: flags, id: id, payload: []byte(`{"bucket":"b","key":"wait/x","size":-1}`)}.encode()
	}
	withHeader := func(f frame, edit func(b []byte)) []byte {
		b := f.encode()
		edit(b)
		return b
	}
	data := frame{typ: frameData, id: 1, payload: []byte("abc")}
	cases := []struct {
		what string
		msgs [][]byte
	}{
		{"a message shorter than a header", [][]byte{{2, 0, 0}}},
		{"an unknown type", [][]byte{frame{typ: 9, id: 1}.encode()}},
		{"a type 0", [][]byte{frame{typ: 0, id: 1}.encode()}},
		{"non-zero reserved bytes", [][]byte{withHeader(data, func(b []byte) { b[2] = 1 })}},
		{"unknown flags", [][]byte{frame{typ: frameData, flags: 0x40, id: 1}.encode()}},
		{"flags on a CREDIT", [][]byte{withHeader(creditFrame(1, 1), func(b []byte) { b[1] = flagEnd })}},
		{"request id 0", [][]byte{frame{typ: frameData, id: 0, payload: []byte("x")}.encode()}},
		{"a length over 1 MiB in a short message", [][]byte{withHeader(data, func(b []byte) { b[8], b[9], b[10], b[11] = 0, 0x10, 0, 0x40 })}},
		{"a length over the payload", [][]byte{withHeader(data, func(b []byte) { b[11] = 6 })}},
		{"a length under the payload", [][]byte{withHeader(data, func(b []byte) { b[11] = 1 })}},
		{"a CREDIT of 3 bytes", [][]byte{frame{typ: frameCredit, id: 1, payload: []byte{0, 0, 1}}.encode()}},
		{"a CREDIT of 0", [][]byte{creditFrame(1, 0).encode()}},
		{"a CANCEL with a payload", [][]byte{frame{typ: frameCancel, id: 1, payload: []byte("x")}.encode()}},
		{"a RESULT from a client", [][]byte{frame{typ: frameResult, id: 1, payload: []byte("{}")}.encode()}},
		{"an ERROR from a client", [][]byte{frame{typ: frameError, id: 1, payload: []byte(`{"code":"internal","message":"x"}`)}.encode()}},
		{"an OPEN whose id is in flight", [][]byte{openWait(5, 0), openWait(5, 0)}},
		{"DATA after the END of the input", [][]byte{openWait(6, flagEnd), frame{typ: frameData, id: 6, payload: []byte("late")}.encode()}},
	}
	for _, tc := range cases {
		c := w.dial(t, 0)
		for _, m := range tc.msgs {
			c.sendRaw(m)
		}
		c.wantClosed(tc.what, websocket.StatusProtocolError)
	}
	c := w.dial(t, 0)
	if err := c.c.Write(c.ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.wantClosed("a text message", websocket.StatusProtocolError)

	c = w.dial(t, 0)
	c.sendRaw(frame{typ: frameData, id: 1, payload: make([]byte, maxPayload+64)}.encode())
	c.wantClosed("a message over the read limit", websocket.StatusMessageTooBig)

	c = w.dial(t, 0)
	c.sendRaw(append(data.encode(), make([]byte, maxPayload)...))
	c.wantClosed("a message over the read limit whose header says 3 bytes", websocket.StatusMessageTooBig)
}
