package node_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests: every
// node, job, transform-server client and connection a test starts must be
// gone once the tests have shut their clusters down.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// The tests' own requests go through the default client.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
