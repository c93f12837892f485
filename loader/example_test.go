package loader_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/insitu-data/insitu/loader"
	"github.com/insitu-data/insitu/source"
)

func ExampleLoader() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "loader-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	for _, k := range []string{"cat.txt", "dog.txt", "eel.txt", "fox.txt", "gnu.txt", "hen.txt", "owl.txt"} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte("a "+k[:3]), 0o644); err != nil {
			panic(err)
		}
	}
	src, err := source.Dir(dir, nil)
	if err != nil {
		panic(err)
	}

	l, err := loader.New(src, &loader.Options{Seed: 42, DropLast: true})
	if err != nil {
		panic(err)
	}
	for epoch := range 2 {
		for batch, err := range l.Batches(ctx, epoch, 3) {
			if err != nil {
				panic(err)
			}
			fmt.Print("epoch ", epoch, ":")
			for _, s := range batch {
				fmt.Printf(" %q", s.Data)
			}
			fmt.Println()
		}
	}

	// Stop in the middle of an epoch, and resume from the saved state.
	l, _ = loader.New(src, &loader.Options{Seed: 42})
	for s := range l.Samples(ctx, 1) {
		fmt.Println("delivered", s.Name.Key)
		break
	}
	saved, _ := json.Marshal(l.State())

	var st loader.State
	_ = json.Unmarshal(saved, &st)
	l, _ = loader.New(src, &loader.Options{Seed: 42, Resume: &st})
	fmt.Print("resumed:")
	for s := range l.Samples(ctx, st.Epoch) {
		fmt.Print(" ", s.Name.Key)
	}
	fmt.Println()
	// Output:
	// epoch 0: "a eel" "a dog" "a fox"
	// epoch 0: "a gnu" "a cat" "a hen"
	// epoch 1: "a fox" "a dog" "a owl"
	// epoch 1: "a gnu" "a cat" "a hen"
	// delivered fox.txt
	// resumed: dog.txt owl.txt gnu.txt cat.txt hen.txt eel.txt
}
