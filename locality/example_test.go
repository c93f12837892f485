package locality_test

import (
	"fmt"
	"log"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

func Example() {
	m, err := locality.NewMap(1,
		locality.Node{ID: "n1", URL: "http://127.0.0.1:7001"},
		locality.Node{ID: "n2", URL: "http://127.0.0.1:7002"},
		locality.Node{ID: "n3", URL: "http://127.0.0.1:7003"},
	)
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"a.flac", "b.flac", "dir/track-01.flac"} {
		fmt.Println(key, "→", m.Owner(insitu.Name{Bucket: "audio", Key: key}).ID)
	}

	// A fourth node takes over about a quarter of the names, and a new
	// version of the map says so.
	m2, err := m.With(locality.Node{ID: "n4", URL: "http://127.0.0.1:7004"})
	if err != nil {
		panic(err)
	}
	fmt.Println(m2)
	// Output:
	// a.flac → n2
	// b.flac → n1
	// dir/track-01.flac → n3
	// map v2 [n1 n2 n3 n4]
}

// A map that places by key gives a key one owner in every bucket: a copy
// of "in" into "out" under the same keys stores each output on the node
// that holds its input.
func ExampleMap_WithPlacement() {
	m, err := locality.NewMap(1,
		locality.Node{ID: "n1", URL: "http://127.0.0.1:7001"},
		locality.Node{ID: "n2", URL: "http://127.0.0.1:7002"},
		locality.Node{ID: "n3", URL: "http://127.0.0.1:7003"})
	if err != nil {
		log.Fatal(err)
	}
	byKey, err := m.WithPlacement(locality.ByKey)
	if err != nil {
		log.Fatal(err)
	}
	same := 0
	for i := range 300 {
		key := fmt.Sprintf("clip-%03d.flac", i)
		if byKey.Owner(insitu.Name{Bucket: "in", Key: key}) == byKey.Owner(insitu.Name{Bucket: "out", Key: key}) {
			same++
		}
	}
	fmt.Println(byKey)
	fmt.Println(same, "of 300 keys have one owner in both buckets")
	// Output:
	// map v2 by key [n1 n2 n3]
	// 300 of 300 keys have one owner in both buckets
}
