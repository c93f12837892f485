package transport

import (
	"fmt"

	"github.com/insitu-data/insitu"
)

// Mode is how a [Client] reaches a transform server.
type Mode uint8

// The transports. The zero Mode is [WS].
const (
	// WS streams many objects at once over a pool of long-lived WebSocket
	// connections (GET /v1/stream).
	WS Mode = iota
	// HPush sends each object in the body of one HTTP request
	// (PUT /v1/transform/{bucket}/{key...}), or only its local path.
	HPush
	// HPull sends one HTTP request per object that names where the server
	// fetches the bytes from (GET /v1/transform/{bucket}/{key...}).
	HPull
)

var modeNames = [...]string{WS: "ws", HPush: "hpush", HPull: "hpull"}

// Modes lists every Mode, in the order of their declaration.
func Modes() []Mode { return []Mode{WS, HPush, HPull} }

// String returns the mode's name: "ws", "hpush" or "hpull".
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode returns the Mode named s ("ws", "hpush" or "hpull"), or an
// [insitu.InvalidArgument] error.
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if n == s {
			return Mode(m), nil
		}
	}
	return 0, insitu.Errorf(insitu.InvalidArgument, "unknown transport mode %q (want ws, hpush or hpull)", s)
}

// Set parses s into m, so that a *Mode is a flag.Value.
func (m *Mode) Set(s string) error {
	p, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// MarshalText encodes the mode as its name.
func (m Mode) MarshalText() ([]byte, error) {
	if int(m) >= len(modeNames) {
		return nil, insitu.Errorf(insitu.InvalidArgument, "unknown transport mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText decodes a mode's name.
func (m *Mode) UnmarshalText(b []byte) error { return m.Set(string(b)) }
