package transport_test

import (
	"testing"

	"github.com/insitu-data/insitu/transport"
	"github.com/insitu-data/insitu/transport/transporttest"
)

func TestConformance(t *testing.T) {
	harnesses := []transporttest.Harness{transporttest.InProcess()}
	for _, m := range transport.Modes() {
		harnesses = append(harnesses, transporttest.Server(m))
	}
	for _, h := range harnesses {
		t.Run(h.Name, func(t *testing.T) {
			t.Parallel()
			transporttest.Run(t, h)
		})
	}
}
