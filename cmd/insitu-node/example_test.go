package main

import (
	"fmt"

	"github.com/insitu-data/insitu/locality"
)

// The map file of a cluster of three nodes, the first with a transform
// server next to it, as package locality writes it: each node is started
// with -map naming this file and -listen at its URL's address.
func Example_mapFile() {
	m, err := locality.NewMap(1,
		locality.Node{ID: "n1", URL: "http://127.0.0.1:7001", TransformURL: "http://127.0.0.1:7101"},
		locality.Node{ID: "n2", URL: "http://127.0.0.1:7002"},
		locality.Node{ID: "n3", URL: "http://127.0.0.1:7003"},
	)
	if err != nil {
		panic(err)
	}
	b, err := m.MarshalJSON()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"version":1,"nodes":[{"id":"n1","url":"http://127.0.0.1:7001","transform_url":"http://127.0.0.1:7101"},{"id":"n2","url":"http://127.0.0.1:7002"},{"id":"n3","url":"http://127.0.0.1:7003"}]}
}
