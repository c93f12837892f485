package seaweedfs_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
)

// cluster is the SeaweedFS cluster that the tests which leave it as they
// found it share, with the S3 gateway; tests that stop volume servers
// start their own.
var cluster = seaweedfstest.Shared{Options: &seaweedfstest.Options{S3: true}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := cluster.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the shared SeaweedFS cluster:", err)
		code = 1
	}
	os.Exit(code)
}
