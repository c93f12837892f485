package seaweedfstest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/insitu-data/insitu/seaweedfs/seaweedfstest"
)

// StartProcess starts a cluster outside of tests, as an example program
// does: a master, three volume servers and a filer on 127.0.0.1.
func ExampleStartProcess() {
	c, err := seaweedfstest.StartProcess(context.Background(), nil)
	if err != nil {
		log.Fatal(err) // weed missing: the error says how to install it
	}
	defer c.Close()
	fmt.Println("filer:", c.FilerURL, "master:", c.MasterURL)
	fmt.Println("volume servers:", c.VolumeServers)
}

// A package's tests share one cluster: a package-level Shared, and a
// TestMain that stops it after the tests.
func ExampleShared() {
	var cluster seaweedfstest.Shared // package level, in a _test.go file

	testMain := func(m *testing.M) {
		code := m.Run()
		if err := cluster.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}
	testSomething := func(t *testing.T) {
		c := cluster.Get(t) // started by the first test that asks
		t.Log(c.FilerURL)
	}
	_, _ = testMain, testSomething
}
