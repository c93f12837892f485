package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coder/websocket"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// A WebSocket frame is one binary message: a 12-byte header, then the
// payload (see docs/PROTOCOL.md):
//
//	offset 0  type      uint8
//	offset 1  flags     uint8
//	offset 2  reserved  uint16, zero
//	offset 4  id        uint32, big-endian; the request the frame is about
//	offset 8  length    uint32, big-endian; the payload's length
const frameHeaderLen = 12

// maxFramePayload bounds a frame's payload. DATA frames carry at most
// chunkSize bytes from insitu's own senders; OPEN, ERROR and RESULT carry
// JSON.
const maxFramePayload = 1 << 20

// frameType is the first byte of a frame.
type frameType uint8

// The frame types.
const (
	frameOpen   frameType = 1 // client → server: a new request; JSON payload
	frameData   frameType = 2 // both ways: bytes of the input or the output
	frameCredit frameType = 3 // both ways: the receiver grants more window; 4-byte payload
	frameError  frameType = 4 // server → client: the request failed; JSON payload; final
	frameCancel frameType = 5 // client → server: the client gave the request up; no payload
	frameResult frameType = 6 // server → client: a direct-put result or a skip; JSON payload; final
)

var frameNames = [...]string{
	frameOpen: "OPEN", frameData: "DATA", frameCredit: "CREDIT",
	frameError: "ERROR", frameCancel: "CANCEL", frameResult: "RESULT",
}

func (t frameType) String() string {
	if t > 0 && int(t) < len(frameNames) {
		return frameNames[t]
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// flagEnd marks the last frame of a direction of a request: on OPEN, no
// input follows; on DATA, the last chunk (input from the client; output,
// and success, from the server).
const flagEnd uint8 = 1

// frameHeader is a decoded frame header.
type frameHeader struct {
	typ   frameType
	flags uint8
	id    uint32
	len   uint32
}

func (h frameHeader) end() bool { return h.flags&flagEnd != 0 }

func putHeader(b []byte, h frameHeader) {
	b[0] = byte(h.typ)
	b[1] = h.flags
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], h.id)
	binary.BigEndian.PutUint32(b[8:], h.len)
}

// protocolError is a broken frame: the connection that carried it is
// closed with the error's text as the reason.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func protoErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// parseHeader decodes and checks a frame header.
func parseHeader(b []byte) (frameHeader, error) {
	if len(b) < frameHeaderLen {
		return frameHeader{}, protoErrorf("frame of %d bytes is shorter than its %d-byte header", len(b), frameHeaderLen)
	}
	h := frameHeader{
		typ:   frameType(b[0]),
		flags: b[1],
		id:    binary.BigEndian.Uint32(b[4:]),
		len:   binary.BigEndian.Uint32(b[8:]),
	}
	switch {
	case h.typ == 0 || int(h.typ) >= len(frameNames):
		return h, protoErrorf("unknown frame type %d", b[0])
	case b[2] != 0 || b[3] != 0:
		return h, protoErrorf("%s frame has non-zero reserved bytes", h.typ)
	case h.flags&^flagEnd != 0:
		return h, protoErrorf("%s frame has unknown flags %#x", h.typ, h.flags)
	case h.flags != 0 && h.typ != frameOpen && h.typ != frameData:
		return h, protoErrorf("%s frame has flags %#x; only OPEN and DATA take flags", h.typ, h.flags)
	case h.id == 0:
		return h, protoErrorf("%s frame has request id 0", h.typ)
	case h.len > maxFramePayload:
		return h, protoErrorf("%s frame of %d bytes is over the limit of %d", h.typ, h.len, maxFramePayload)
	case h.typ == frameCredit && h.len != 4:
		return h, protoErrorf("CREDIT frame has a %d-byte payload, want 4", h.len)
	case h.typ == frameCancel && h.len != 0:
		return h, protoErrorf("CANCEL frame has a %d-byte payload, want 0", h.len)
	}
	return h, nil
}

// creditOf decodes the payload of a checked CREDIT frame.
func creditOf(p []byte) (uint32, error) {
	n := binary.BigEndian.Uint32(p)
	if n == 0 {
		return 0, protoErrorf("CREDIT frame grants 0 bytes")
	}
	return n, nil
}

// frameBuf is a pooled buffer holding one frame: header then payload.
type frameBuf struct {
	b []byte
}

// payload returns the buffer's payload bytes.
func (f *frameBuf) payload() []byte { return f.b[frameHeaderLen:] }

// frameClasses are the payload capacities of the pooled frame buffers,
// powers of two from 4 KiB to chunkSize: a control frame or a small object
// takes a small buffer and a large object's chunks a large one, and a
// frame never holds more than twice its payload (or 4 KiB).
var frameClasses = [...]int{4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, chunkSize}

var framePools [len(frameClasses)]sync.Pool

// frameClass returns the index of the smallest class that holds n payload
// bytes, or -1 when n is over them all.
func frameClass(n int) int {
	for i, c := range frameClasses {
		if n <= c {
			return i
		}
	}
	return -1
}

// getFrame returns a buffer for a frame of n payload bytes; its capacity
// is that of n's class.
func getFrame(n int) *frameBuf {
	i := frameClass(n)
	if i < 0 {
		return &frameBuf{b: make([]byte, frameHeaderLen+n)}
	}
	f, _ := framePools[i].Get().(*frameBuf)
	if f == nil {
		f = &frameBuf{b: make([]byte, frameHeaderLen+frameClasses[i])}
	}
	f.b = f.b[:frameHeaderLen+n]
	return f
}

// putFrame returns a buffer to its class's pool.
func putFrame(f *frameBuf) {
	if f == nil {
		return
	}
	if i := frameClass(cap(f.b) - frameHeaderLen); i >= 0 && cap(f.b) == frameHeaderLen+frameClasses[i] {
		f.b = f.b[:cap(f.b)]
		framePools[i].Put(f)
	}
}

// readFrame reads one message from r: a checked header and its payload,
// in a buffer the caller owns (and returns with putFrame).
func readFrame(r io.Reader) (frameHeader, *frameBuf, error) {
	var hb [frameHeaderLen]byte
	if n, err := io.ReadFull(r, hb[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return frameHeader{}, nil, protoErrorf("frame of %d bytes is shorter than its %d-byte header", n, frameHeaderLen)
		}
		return frameHeader{}, nil, err
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return h, nil, err
	}
	f := getFrame(int(h.len))
	copy(f.b, hb[:])
	if n, err := io.ReadFull(r, f.payload()); err != nil {
		putFrame(f)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return h, nil, protoErrorf("%s frame carries %d payload bytes, its header says %d", h.typ, n, h.len)
		}
		return h, nil, err
	}
	var one [1]byte
	if n, err := io.ReadFull(r, one[:]); n != 0 || err != io.EOF {
		putFrame(f)
		if err != nil && err != io.EOF {
			return h, nil, err
		}
		return h, nil, protoErrorf("%s frame is longer than the %d payload bytes its header says", h.typ, h.len)
	}
	if h.typ == frameCredit {
		if _, err := creditOf(f.payload()); err != nil {
			putFrame(f)
			return h, nil, err
		}
	}
	return h, f, nil
}

// errorPayload encodes err as the JSON payload of an ERROR frame.
func errorPayload(err error) []byte {
	b, _ := json.Marshal(wire.Body(err))
	return b
}

// resultFrame is the JSON payload of a RESULT frame.
type resultFrame struct {
	insitu.PutResult
	Skipped bool `json:"skipped,omitempty"`
}

// readFrames reads binary frames from c and hands each to dispatch until
// the connection ends, a message is not a binary frame (a protocol error),
// or dispatch fails; it returns why it stopped. Client and server share it.
//
// A message that breaks the frame format is read to its end before the
// protocol error is returned: one larger than the read limit (a frame
// header and maxFramePayload) is then refused by the WebSocket layer,
// which closes the connection with 1009 (message too big) as
// docs/PROTOCOL.md says, whatever its header claimed; readFrames returns
// that error instead, so that the caller does not close with 1002.
func readFrames(c *websocket.Conn, dispatch func(frameHeader, *frameBuf) error) error {
	for {
		typ, r, err := c.Reader(context.Background())
		if err != nil {
			return err
		}
		var h frameHeader
		var f *frameBuf
		if typ != websocket.MessageBinary {
			err = protoErrorf("a text message; insitu frames are binary")
		} else {
			h, f, err = readFrame(r)
		}
		var pe *protocolError
		if errors.As(err, &pe) {
			if _, derr := io.Copy(io.Discard, r); errors.Is(derr, websocket.ErrMessageTooBig) {
				return derr
			}
			return err
		}
		if err == nil {
			err = dispatch(h, f)
		}
		if err != nil {
			return err
		}
	}
}
