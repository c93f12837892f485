package seaweedfs_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
)

// cluster is the SeaweedFS cluster that the tests which leave it as they
// found it share; tests that stop volume servers, change flags or need the
// S3 gateway (whose start takes 12 s more) start their own, in parallel.
var cluster seaweedfstest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := cluster.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the shared SeaweedFS cluster:", err)
		code = 1
	}
	os.Exit(code)
}
