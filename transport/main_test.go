package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a server,
// connection, flusher or transform that outlives what started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
