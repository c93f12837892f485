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
// The harnesses of insitu's own transports, and what they say of
// themselves:
func ExampleRun() {
	harnesses := []transporttest.Harness{transporttest.InProcess()}
	for _, m := range transport.Modes() {
		harnesses = append(harnesses, transporttest.Server(m))
	}
	for _, h := range harnesses {
		fmt.Printf("%s remote=%v sends-bytes=%v\n", h.Name, h.Remote, h.SendsBytes)
	}
	// Output:
	// inproc remote=false sends-bytes=false
	// ws remote=true sends-bytes=true
	// hpush remote=true sends-bytes=true
	// hpull remote=true sends-bytes=false
}
