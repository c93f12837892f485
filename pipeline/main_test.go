package pipeline_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a run
// must leave nothing behind, not even the transform that ignored its
// context, once that transform returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
