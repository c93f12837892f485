package transporttest_test

import (
	"fmt"

	"github.com/insitu-data/insitu/transport"
	"github.com/insitu-data/insitu/transport/transporttest"
)

// A transport's tests run the suite against its harness:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, transporttest.Server(transport.WS))
//	}
//
// The harnesses of insitu's own transports:
func ExampleRun() {
	harnesses := []transporttest.Harness{transporttest.InProcess()}
	for _, m := range transport.Modes() {
		harnesses = append(harnesses, transporttest.Server(m))
	}
	for _, h := range harnesses {
		fmt.Println(h.Name(), "remote:", h.Remote())
	}
	// Output:
	// inproc remote: false
	// ws remote: true
	// hpush remote: true
	// hpull remote: true
}
